"""The shipped silhouette ControlNet: a small float16 folder the Load ControlNet Model node lists,
and an example workflow that, run by LatentLoom's executor, puts the object where the silhouette
is, wherever the silhouette is moved."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from tools.demo_model import controlnet_workflow
from tools.demo_model.evaluate_controlnet import CENTROID_PX, silhouette_centroid
from tools.demo_model.judge import judge
from tools.demo_model.scenes import Scene
from tools.demo_model.silhouettes import placed_object, silhouette
from tools.demo_model.train_controlnet import CONTROLNET_DIR, CONTROLNET_NAME

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = CONTROLNET_DIR / "diffusion_pytorch_model.safetensors"
#: Fewer steps than the workflow's 20 keep the test quick; the object's place is settled early.
STEPS = 8


def test_the_controlnet_is_a_float16_diffusers_folder_under_10_mb() -> None:
    config = json.loads((CONTROLNET_DIR / "config.json").read_text())
    assert config["_class_name"] == "ControlNetModel"
    assert config["conditioning_channels"] == 1
    with safe_open(WEIGHTS, framework="pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"F16"}  # noqa: SIM118
    size = sum(p.stat().st_size for p in CONTROLNET_DIR.rglob("*") if p.is_file())
    assert size <= 10 * 1024 * 1024, f"{size / 2**20:.1f} MiB"
    card = (CONTROLNET_DIR / "MODEL_CARD.md").read_text()
    assert "python -m tools.demo_model.train_controlnet" in card


def test_the_loader_lists_the_controlnet_and_the_workflow_names_it() -> None:
    from nodes import build_registry

    registry = build_registry()
    choices = registry.choices(registry.get("ControlNetLoader").input("control_net_name"))
    assert controlnet_workflow.CONTROLNET_FILE in choices
    assert controlnet_workflow.CONTROLNET_FILE.startswith(CONTROLNET_NAME + "/")


def test_the_shipped_hint_is_the_silhouette_the_workflow_script_draws(tmp_path) -> None:
    shipped = np.asarray(Image.open(ROOT / controlnet_workflow.HINT))
    drawn = controlnet_workflow.write_hint(tmp_path / "hint.png")
    assert np.array_equal(shipped, np.asarray(Image.open(drawn)))
    assert set(np.unique(shipped)) >= {0, 255}


def _run(graph, executor, node: int) -> np.ndarray:
    report = executor.run(graph, outputs=[node], device="cpu")
    assert report.status_of(node) == "ran", report.entries[node].message
    [picture] = report.outputs[node]
    return (picture[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The example workflow run as shipped (its own silhouette, up and right of the centre) and
    with the silhouette moved down and left; each as (silhouette, picture)."""
    from core.engine import Executor
    from core.graph.workflow import load_workflow
    from nodes import build_registry

    torch.set_num_threads(2)
    registry = build_registry()
    graph = load_workflow(controlnet_workflow.OUTPUT, registry).graph
    nodes = {node.type_id: node.id for node in graph}
    graph.set_param(nodes["KSampler"], "steps", STEPS)
    executor = Executor(registry)
    shipped_hint = np.asarray(Image.open(ROOT / controlnet_workflow.HINT))
    results = {"shipped": (shipped_hint, _run(graph, executor, nodes["VAEDecode"]))}
    moved = Scene("black", (placed_object("circle", "white", "big", (22, 43)),))
    moved_hint = silhouette(moved)
    path = tmp_path_factory.mktemp("hint") / "moved.png"
    Image.fromarray(moved_hint, mode="L").save(path)
    graph.set_param(nodes["LoadImage"], "image", str(path))
    results["moved"] = (moved_hint, _run(graph, executor, nodes["VAEDecode"]))
    graph.set_param(nodes["ControlNetApplyAdvanced"], "strength", 0.0)
    results["without control"] = (moved_hint, _run(graph, executor, nodes["VAEDecode"]))
    return results


@pytest.mark.parametrize("which", ["shipped", "moved"])
def test_the_object_follows_the_silhouette(pictures, which) -> None:
    hint, picture = pictures[which]
    found = judge(picture)
    assert found.colour == "red" and found.background == "blue"
    assert found.shape == "circle"
    distance = math.dist(found.centroid, silhouette_centroid(hint))
    assert distance <= CENTROID_PX, f"{which}: the object is {distance:.1f} px from the silhouette"


def test_without_the_controlnet_the_object_is_elsewhere(pictures) -> None:
    """The place comes from the ControlNet: the same prompt and seed at strength 0 put the
    object far from where the moved silhouette asks."""
    hint, picture = pictures["without control"]
    found = judge(picture)
    assert math.dist(found.centroid, silhouette_centroid(hint)) > 2 * CENTROID_PX


def test_the_shipped_workflow_is_what_the_script_writes(tmp_path) -> None:
    """Regenerating the example must not renumber its nodes or links."""
    from core.graph.workflow import save_workflow

    written = tmp_path / "controlnet.json"
    save_workflow(controlnet_workflow.build(), written, view=controlnet_workflow.VIEW)
    assert written.read_bytes() == controlnet_workflow.OUTPUT.read_bytes()
