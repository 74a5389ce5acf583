"""Cancelling a run while a loader node reads a checkpoint stops the load between stages."""

from __future__ import annotations

import pytest

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import CancelToken, Executor
from core.engine.events import Progress
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    checkpoint = root / "checkpoints" / "tiny.safetensors"
    write_single_file(make_tiny_pipeline(ModelFamily.SDXL), checkpoint)
    return build_registry(ModelPaths.of(root))


def test_cancel_during_a_checkpoint_load_stops_it_after_the_current_stage(registry):
    graph = Graph(registry)
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    token = CancelToken()
    stages: list[Progress] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress) and event.node_id == load:
            stages.append(event)
            token.cancel()  # the user presses Cancel while the file is being loaded

    report = Executor(registry).run(
        graph, outputs=[load], device="cpu", on_event=on_event, cancel=token
    )
    assert report.status == "cancelled"
    assert report.status_of(load) == "cancelled"
    assert [(p.step, p.total) for p in stages] == [(1, 5)]  # read; encoders, UNet, VAE never ran

    finished = Executor(registry).run(graph, outputs=[load], device="cpu")
    assert finished.status_of(load) == "ran"
