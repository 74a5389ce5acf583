"""Load Upscale Model and Upscale Image (using Model), run through the engine on tiny random
models in the published key layouts, and imported from a ComfyUI workflow."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.model_paths import ModelPaths
from core.engine import CancelToken, Executor, ValidationError
from core.engine.cache import MODEL_POOL
from core.engine.events import Progress
from core.graph import types as t
from core.graph.model import Graph
from nodes import build_registry, upscale_models
from nodes.interop import open_workflow, to_comfy_api
from tests.helpers.upscale_models import (
    rrdbnet_weights,
    srvgg_weights,
    swinir_weights,
    to_original_layout,
    write_upscale_model_file,
)


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "models" / "upscale_models"
    folder.mkdir(parents=True)
    torch.save(to_original_layout(rrdbnet_weights()), folder / "4x-UltraSharp.pth")
    save_file(srvgg_weights(scale=2), folder / "realesr-general-x2.safetensors")
    write_upscale_model_file(folder / "RealESRGAN_x2plus.pth")
    torch.save(swinir_weights(scale=4), folder / "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth")
    return tmp_path / "models"


@pytest.fixture
def registry(root):
    return build_registry(ModelPaths.of(root))


def _upscale_graph(registry, model_name, width=40, height=24, source="GradientImage"):
    g = Graph(registry)
    picture = g.add_node(source, params={"width": width, "height": height}).id
    loader = g.add_node("UpscaleModelLoader", params={"model_name": model_name}).id
    upscale = g.add_node("ImageUpscaleWithModel").id
    g.connect(loader, "UPSCALE_MODEL", upscale, "upscale_model")
    g.connect(picture, "IMAGE", upscale, "image")
    return g, loader, upscale


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("4x-UltraSharp.pth", 4),
        ("realesr-general-x2.safetensors", 2),
        ("RealESRGAN_x2plus.pth", 2),
        ("001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth", 4),
    ],
)
def test_the_loaded_model_upscales_by_its_own_factor(registry, name, scale):
    g, loader, upscale = _upscale_graph(registry, name)
    report = Executor(registry).run(g, outputs=[upscale, loader], device="cpu")
    assert report.status == "ok", report.to_dict()
    (image,) = report.outputs[upscale]
    assert image.shape == (1, 24 * scale, 40 * scale, 3)
    assert report.outputs[loader][0].scale == scale


def test_the_upscale_model_is_cached_as_a_model_and_reloaded_when_the_file_changes(registry, root):
    assert t.UPSCALE_MODEL in t.MODEL_TYPES
    executor = Executor(registry)
    g, loader, upscale = _upscale_graph(registry, "4x-UltraSharp.pth")
    first = executor.run(g, outputs=[upscale, loader], device="cpu")
    again = executor.run(g, outputs=[upscale], device="cpu")
    assert again.status_of(loader) == "cached" and again.status_of(upscale) == "cached"
    assert executor.cache.used_bytes(MODEL_POOL) == first.outputs[loader][0].cache_nbytes()

    path = root / "upscale_models" / "4x-UltraSharp.pth"
    torch.save(to_original_layout(rrdbnet_weights(seed=5)), path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = executor.run(g, outputs=[upscale], device="cpu")
    assert changed.status_of(loader) == "ran" and changed.status_of(upscale) == "ran"
    assert not torch.equal(changed.outputs[upscale][0], first.outputs[upscale][0])


def test_progress_is_reported_per_tile_and_cancel_stops_between_tiles(registry, monkeypatch):
    monkeypatch.setattr(upscale_models, "TILE", 32)
    monkeypatch.setattr(upscale_models, "OVERLAP", 8)
    g, _, upscale = _upscale_graph(registry, "realesr-general-x2.safetensors", 100, 60)
    steps = []
    report = Executor(registry).run(
        g,
        outputs=[upscale],
        device="cpu",
        on_event=lambda e: steps.append((e.step, e.total)) if isinstance(e, Progress) else None,
    )
    assert report.status == "ok"
    total = steps[-1][1]
    assert total > 4 and steps == [(done, total) for done in range(total + 1)]

    token = CancelToken()
    ran: list[int] = []

    def on_event(event):
        if isinstance(event, Progress) and event.node_id == upscale:
            ran.append(event.step)
            if event.step == 2:
                token.cancel()

    cancelled = Executor(registry).run(
        g, outputs=[upscale], device="cpu", cancel=token, on_event=on_event
    )
    assert cancelled.status == "cancelled" and cancelled.status_of(upscale) == "cancelled"
    assert ran == [0, 1, 2]  # the third tile never ran


def test_missing_and_unsupported_files_are_reported_on_the_model_name(registry, root):
    g, loader, upscale = _upscale_graph(registry, "4x-missing.pth")
    with pytest.raises(ValidationError) as raised:
        Executor(registry).run(g, outputs=[upscale], device="cpu")
    problems = [p for p in raised.value.problems if p.node_id == loader]
    assert problems and problems[0].field == "model_name"
    assert "4x-missing.pth" in problems[0].message

    hat = {
        "conv_first.weight": torch.zeros(8, 3, 3, 3),
        "relative_position_index_SA": torch.zeros(4, 4, dtype=torch.long),
    }
    save_file(hat, root / "upscale_models" / "HAT_SRx4.safetensors")
    g, loader, upscale = _upscale_graph(registry, "HAT_SRx4.safetensors")
    report = Executor(registry).run(g, outputs=[upscale], device="cpu")
    entry = report.entries[loader]
    assert entry.status == "failed" and entry.field == "model_name"
    assert "HAT_SRx4.safetensors" in entry.message and "is a HAT upscale model" in entry.message
    assert "RRDBNet" in entry.message and "\n" not in entry.message


#: ComfyUI's own upscale example, cut to Load Image → Load Upscale Model → Upscale Image (using
#: Model) → Save Image, as its editor saves it.
COMFY_WORKFLOW = {
    "last_node_id": 4,
    "last_link_id": 3,
    "nodes": [
        {
            "id": 1,
            "type": "LoadImage",
            "pos": [0, 0],
            "size": [315, 314],
            "outputs": [
                {"name": "IMAGE", "type": "IMAGE", "links": [2], "slot_index": 0},
                {"name": "MASK", "type": "MASK", "links": None},
            ],
            "widgets_values": ["photo.png", "image"],
        },
        {
            "id": 2,
            "type": "UpscaleModelLoader",
            "pos": [0, 400],
            "size": [315, 58],
            "outputs": [
                {"name": "UPSCALE_MODEL", "type": "UPSCALE_MODEL", "links": [1], "slot_index": 0}
            ],
            "widgets_values": ["4x-UltraSharp.pth"],
        },
        {
            "id": 3,
            "type": "ImageUpscaleWithModel",
            "pos": [400, 200],
            "size": [241, 46],
            "inputs": [
                {"name": "upscale_model", "type": "UPSCALE_MODEL", "link": 1},
                {"name": "image", "type": "IMAGE", "link": 2},
            ],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [3], "slot_index": 0}],
        },
        {
            "id": 4,
            "type": "SaveImage",
            "pos": [700, 200],
            "size": [315, 270],
            "inputs": [{"name": "images", "type": "IMAGE", "link": 3}],
            "widgets_values": ["upscaled"],
        },
    ],
    "links": [
        [1, 2, 0, 3, 0, "UPSCALE_MODEL"],
        [2, 1, 0, 3, 1, "IMAGE"],
        [3, 3, 0, 4, 0, "IMAGE"],
    ],
    "groups": [],
    "config": {},
    "extra": {},
    "version": 0.4,
}


def test_a_comfyui_upscale_workflow_imports_and_runs(registry, tmp_path):
    from PIL import Image

    folder = tmp_path / "workflow"
    (folder / "input").mkdir(parents=True)
    Image.new("RGB", (20, 12), (200, 40, 90)).save(folder / "input" / "photo.png")
    path = folder / "upscale.json"
    path.write_text(json.dumps(COMFY_WORKFLOW))
    opened = open_workflow(path, registry)
    assert not opened.report.unknown and opened.report.warnings == ()
    graph = opened.workflow.graph
    assert graph.node(2).params["model_name"] == "4x-UltraSharp.pth"
    report = Executor(registry).run(graph, output_dir=tmp_path / "output", device="cpu")
    assert report.status == "ok", report.to_dict()
    (saved,) = (tmp_path / "output").glob("upscaled*.png")
    with Image.open(saved) as picture:
        assert picture.size == (80, 48)


def test_the_upscale_nodes_export_to_comfyui_under_their_own_names(registry):
    g, loader, upscale = _upscale_graph(registry, "4x-UltraSharp.pth", source="EmptyImage")
    prompt = to_comfy_api(g)
    assert prompt[str(loader)]["class_type"] == "UpscaleModelLoader"
    assert prompt[str(loader)]["inputs"] == {"model_name": "4x-UltraSharp.pth"}
    assert prompt[str(upscale)]["class_type"] == "ImageUpscaleWithModel"
    assert prompt[str(upscale)]["inputs"]["upscale_model"] == [str(loader), 0]
