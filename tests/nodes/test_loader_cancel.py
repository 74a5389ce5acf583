"""Cancelling a run while a loader node reads a checkpoint stops the load between stages."""

from __future__ import annotations

import pytest

from core.diffusion import loading
from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import CancelToken, Executor
from core.engine.events import NodeStarted
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    checkpoint = root / "checkpoints" / "tiny.safetensors"
    write_single_file(make_tiny_pipeline(ModelFamily.SDXL), checkpoint)
    return build_registry(ModelPaths.of(root))


def test_cancel_during_a_checkpoint_load_stops_it_before_it_completes(registry, monkeypatch):
    graph = Graph(registry)
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    token = CancelToken()
    built: list[str] = []
    real_build = loading._build

    def build(factory, state_dict, path, what, dtype):
        built.append(what)
        token.cancel()  # the user presses Cancel while the first component is being built
        return real_build(factory, state_dict, path, what, dtype)

    monkeypatch.setattr(loading, "_build", build)
    report = Executor(registry).run(graph, outputs=[load], device="cpu", cancel=token)
    assert report.status == "cancelled"
    assert report.status_of(load) == "cancelled"
    assert built == ["text encoder"]  # the second text encoder, the UNet and the VAE never ran

    monkeypatch.setattr(loading, "_build", real_build)
    finished = Executor(registry).run(graph, outputs=[load], device="cpu")
    assert finished.status_of(load) == "ran"


def test_cancel_as_the_load_starts_stops_it_once_the_file_is_read(registry):
    graph = Graph(registry)
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    token = CancelToken()

    def on_event(event: object) -> None:
        if isinstance(event, NodeStarted) and event.node_id == load:
            token.cancel()

    report = Executor(registry).run(
        graph, outputs=[load], device="cpu", on_event=on_event, cancel=token
    )
    assert report.status_of(load) == "cancelled"
