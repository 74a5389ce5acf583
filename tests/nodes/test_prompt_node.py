"""CLIP Text Encode refuses huge and deeply nested prompts on its text field; Cancel stops it."""

from __future__ import annotations

import pytest

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import CancelToken, Executor, ValidationError
from core.engine.events import NodeStarted
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_single_file(make_tiny_pipeline(ModelFamily.SD1), root / "checkpoints" / "tiny.ckpt")
    return build_registry(ModelPaths.of(root))


def _graph(registry, text: str = "") -> tuple[Graph, str, str]:
    graph = Graph(registry)
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.ckpt"}).id
    encode = graph.add_node("CLIPTextEncode", params={"text": text}).id
    graph.connect(load, "CLIP", encode, "clip")
    return graph, load, encode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a red circle " * 2_000, "more than the 20,000 allowed"),
        ("(cat" * 100, "more than 64 brackets inside one another (at character 257)"),
    ],
)
def test_validation_pins_a_bad_prompt_to_the_text_field(registry, text, expected):
    graph, _, encode = _graph(registry, text)
    with pytest.raises(ValidationError) as info:
        Executor(registry).run(graph, outputs=[encode], device="cpu")
    [problem] = info.value.problems
    assert (problem.node_id, problem.field) == (encode, "text")
    assert "'text'" in problem.message and expected in problem.message


def test_a_prompt_made_too_long_by_a_link_fails_the_node_on_its_text_field(registry):
    graph, _, encode = _graph(registry)
    join = graph.add_node("TextJoin", params={"a": "red " * 3_000, "b": "blue " * 3_000}).id
    graph.connect(join, "STRING", encode, "text")
    report = Executor(registry).run(graph, outputs=[encode], device="cpu")
    entry = report.entries[encode]
    assert (entry.status, entry.field) == ("failed", "text")
    assert entry.message.startswith("'text': the prompt is 27,002 characters long")


def test_cancel_stops_text_encoding_before_its_chunks_run(registry):
    graph, load, encode = _graph(registry, "cat " * 300)
    executor = Executor(registry)
    executor.run(graph, outputs=[load], device="cpu")  # the checkpoint is cached from here on
    token = CancelToken()

    def on_event(event: object) -> None:
        if isinstance(event, NodeStarted) and event.node_id == encode:
            token.cancel()

    report = executor.run(graph, outputs=[encode], device="cpu", on_event=on_event, cancel=token)
    assert report.status_of(encode) == "cancelled"
