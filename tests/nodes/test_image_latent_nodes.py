"""The image, mask and latent nodes as a ComfyUI file uses them: imported from the UI format,
validated and run by the executor; and VAE Encode (Tiled) with progress and Cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL

from core.diffusion import vae_ops
from core.diffusion.families import ModelFamily
from core.diffusion.models import VaeModel
from core.engine import Cancelled, Executor, NodeError, validate
from core.engine.context import CancelToken, NodeContext
from core.engine.events import Progress
from nodes import build_registry
from nodes.interop.comfyui import import_ui
from tests.helpers.tiny_models import _randomise, tiny_vae_config


def _ui_workflow(nodes: list[tuple], links: list[tuple]) -> dict:
    """A ComfyUI 0.4 UI workflow. ``nodes``: (id, type, widgets_values, input names, output
    types); ``links``: (source id, source slot, target id, target input name)."""
    raw = {}
    for node_id, type_id, values, inputs, outputs in nodes:
        raw[node_id] = {
            "id": node_id,
            "type": type_id,
            "pos": [0, 0],
            "mode": 0,
            "inputs": [{"name": name, "type": "*", "link": None} for name in inputs],
            "outputs": [{"name": kind, "type": kind, "links": []} for kind in outputs],
            "widgets_values": values,
        }
    rows = []
    for link_id, (src, slot, dst, name) in enumerate(links, start=1):
        target = next(i for i, entry in enumerate(raw[dst]["inputs"]) if entry["name"] == name)
        raw[dst]["inputs"][target]["link"] = link_id
        raw[src]["outputs"][slot]["links"].append(link_id)
        rows.append([link_id, src, slot, dst, target, raw[src]["outputs"][slot]["type"]])
    return {"version": 0.4, "nodes": list(raw.values()), "links": rows, "groups": []}


IMAGE, MASK, LATENT = ("IMAGE",), ("MASK",), ("LATENT",)
WORKFLOW = _ui_workflow(
    [
        (1, "EmptyImage", [64, 48, 1, 0x336699], [], IMAGE),
        (2, "ImagePadForOutpaint", [16, 0, 8, 0, 8], ["image"], ("IMAGE", "MASK")),
        (3, "ImageBlur", [2, 1.0], ["image"], IMAGE),
        (4, "ImageSharpen", [1, 1.0, 0.5], ["image"], IMAGE),
        (5, "FeatherMask", [4, 0, 4, 0], ["mask"], MASK),
        (6, "ThresholdMask", [0.3], ["mask"], MASK),
        (7, "GrowMask", [2, True], ["mask"], MASK),
        (8, "ImageCompositeMasked", [0, 0, False], ["destination", "source", "mask"], IMAGE),
        (9, "ImageBlend", [0.5, "multiply"], ["image1", "image2"], IMAGE),
        (10, "ImageScaleToTotalPixels", ["bilinear", 0.01, 8], ["image"], IMAGE),
        (11, "ImageCrop", [64, 64, 8, 0], ["image"], IMAGE),
        (12, "ImageColorToMask", [0x336699], ["image"], MASK),
        (13, "PreviewImage", [], ["images"], ()),
        (20, "EmptyLatentImage", [64, 64, 1], [], LATENT),
        (21, "EmptyLatentImage", [32, 32, 1], [], LATENT),
        (22, "LatentComposite", [16, 16, 0], ["samples_to", "samples_from"], LATENT),
        (23, "LatentCompositeMasked", [0, 0, False], ["destination", "source", "mask"], LATENT),
        (24, "LatentBlend", [0.5], ["samples1", "samples2"], LATENT),
        (25, "LatentAdd", [], ["samples1", "samples2"], LATENT),
        (26, "LatentSubtract", [], ["samples1", "samples2"], LATENT),
        (27, "LatentMultiply", [2.0], ["samples"], LATENT),
        (28, "LatentRotate", ["90 degrees"], ["samples"], LATENT),
        (29, "LatentFlip", ["y-axis: horizontally"], ["samples"], LATENT),
        (30, "LatentCrop", [64, 64, 0, 0], ["samples"], LATENT),
        (31, "SetLatentNoiseMask", [], ["samples", "mask"], LATENT),
    ],
    [
        (1, 0, 2, "image"),
        (2, 0, 3, "image"),
        (3, 0, 4, "image"),
        (2, 1, 5, "mask"),
        (5, 0, 6, "mask"),
        (6, 0, 7, "mask"),
        (2, 0, 8, "destination"),
        (4, 0, 8, "source"),
        (7, 0, 8, "mask"),
        (8, 0, 9, "image1"),
        (1, 0, 9, "image2"),
        (9, 0, 10, "image"),
        (10, 0, 11, "image"),
        (1, 0, 12, "image"),
        (11, 0, 13, "images"),
        (20, 0, 22, "samples_to"),
        (21, 0, 22, "samples_from"),
        (22, 0, 23, "destination"),
        (21, 0, 23, "source"),
        (12, 0, 23, "mask"),
        (23, 0, 24, "samples1"),
        (20, 0, 24, "samples2"),
        (24, 0, 25, "samples1"),
        (21, 0, 25, "samples2"),
        (25, 0, 26, "samples1"),
        (21, 0, 26, "samples2"),
        (26, 0, 27, "samples"),
        (27, 0, 28, "samples"),
        (28, 0, 29, "samples"),
        (29, 0, 30, "samples"),
        (30, 0, 31, "samples"),
        (7, 0, 31, "mask"),
    ],
)


def test_a_comfyui_graph_of_image_mask_and_latent_nodes_imports_validates_and_runs(
    tmp_path: Path,
) -> None:
    registry = build_registry()
    workflow, report = import_ui(WORKFLOW, registry)
    assert not report.unknown and not report.misfits and not report.warnings
    graph = workflow.graph
    # widgets_values landed by ComfyUI's widget order.
    assert graph.node(10).params == {
        "upscale_method": "bilinear",
        "megapixels": 0.01,
        "resolution_steps": 8,
    }
    assert graph.node(2).params["feathering"] == 8 and graph.node(22).params["feather"] == 0
    assert validate(graph, outputs=[13, 31, 12]) == []
    run = Executor(registry).run(graph, outputs=[13, 31, 12], output_dir=tmp_path, device="cpu")
    assert run.status == "ok", [e.message for e in run.entries.values()]
    # 64×48 padded to 88×48, scaled to ~0.01 MP in steps of 8 (136×72), cropped to 64×64.
    (shown,) = [r.value for r in run.entries[13].records if r.kind == "images"]
    assert shown.shape == (1, 64, 64, 3) and 0 <= float(shown.min()) <= float(shown.max()) <= 1
    (colour_mask,) = run.outputs[12]
    assert colour_mask.shape == (1, 48, 64) and float(colour_mask.min()) == 1
    (latent,) = run.outputs[31]
    assert latent["samples"].shape == (1, 4, 8, 8) and latent["noise_mask"].shape == (1, 48, 88)


def _vae() -> VaeModel:
    vae = AutoencoderKL.from_config(tiny_vae_config(ModelFamily.SD1))
    _randomise(vae, torch.Generator().manual_seed(1))
    return VaeModel(vae.eval(), 0.18215)


class _Events(list):
    def __call__(self, event: object) -> None:
        self.append(event)


def test_tiled_encode_blends_to_the_whole_encode_for_a_local_encoder() -> None:
    """An encoder whose cells depend only on their own pixels gives the whole encode for any
    tiling: what is tested is the tile placement and the blending of the overlaps."""
    weight = torch.randn(4, 3)

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        cells = torch.nn.functional.avg_pool2d(pixels, 8)
        return torch.einsum("oc,bchw->bohw", weight, cells)

    pixels = torch.rand(1, 3, 8 * 13, 8 * 11)
    tiled = vae_ops.encode_tiled(encode, pixels, 8, tile=32, overlap=16)
    torch.testing.assert_close(tiled, encode(pixels), rtol=1e-5, atol=1e-5)


def test_vae_encode_tiled_node_matches_encode_reports_each_tile_and_stops_on_cancel(
    tmp_path: Path,
) -> None:
    function = build_registry().get("VAEEncodeTiled").function
    vae, image = _vae(), torch.rand(1, 34, 30, 3)
    events = _Events()
    ctx = NodeContext("n1", "VAE Encode (Tiled)", CancelToken(), events, tmp_path)
    whole = function(ctx, image, vae, tile_size=64, overlap=0)
    torch.testing.assert_close(whole["samples"], vae_ops.encode(vae, image))
    assert whole["downscale"] == 2
    tiled = function(ctx, image, vae, tile_size=16, overlap=8)["samples"]
    assert tiled.shape == whole["samples"].shape
    steps = [(e.step, e.total) for e in events if isinstance(e, Progress)]
    # One whole tile, then tiles at rows 0, 8, 16, 18 and columns 0, 8, 14 of the 34×30 image.
    assert steps[-1] == (12, 12) and len(steps) == 1 + 12
    cancel = CancelToken()
    cancel.cancel()
    stopped = _Events()
    with pytest.raises(Cancelled):
        function(NodeContext("n1", "t", cancel, stopped, tmp_path), image, vae, 16, 8)
    assert len([e for e in stopped if isinstance(e, Progress)]) == 1  # stopped after one tile
    with pytest.raises(NodeError) as refused:
        function(ctx, image, vae, tile_size=64, overlap=64)
    assert refused.value.field == "overlap"


def test_image_to_mask_alpha_of_an_opaque_image_is_a_clear_error_on_channel() -> None:
    function = build_registry().get("ImageToMask").function
    with pytest.raises(NodeError, match="no alpha channel") as refused:
        function(None, torch.zeros(1, 2, 2, 3), "alpha")
    assert refused.value.field == "channel"


def test_vae_encoders_drop_an_alpha_channel() -> None:
    vae, rgb = _vae(), torch.rand(1, 16, 16, 3)
    rgba = torch.cat([rgb, torch.zeros(1, 16, 16, 1)], dim=-1)
    expected = vae_ops.encode(vae, rgb)
    torch.testing.assert_close(vae_ops.encode(vae, rgba), expected)
    torch.testing.assert_close(vae_ops.encode_in_tiles(vae, rgba, 64, 0), expected)
    inpaint, _ = vae_ops.encode_for_inpaint(vae, rgba, torch.zeros(1, 16, 16), 0)
    torch.testing.assert_close(inpaint, expected)


def test_batch_noise_size_and_mask_preview_nodes_run_from_a_comfyui_graph(tmp_path: Path) -> None:
    workflow = _ui_workflow(
        [
            (1, "EmptyImage", [8, 4, 2, 0x808080], [], IMAGE),
            (2, "ImageAddNoise", [5, "fixed", 0.5], ["image"], IMAGE),
            (3, "RepeatImageBatch", [2], ["image"], IMAGE),
            (4, "ImageFromBatch", [1, 2], ["image"], IMAGE),
            (5, "GetImageSize", [], ["image"], ("INT", "INT", "INT")),
            (6, "SolidMask", [0.25, 8, 4], [], MASK),
            (7, "MaskPreview", [], ["mask"], ()),
        ],
        [
            (1, 0, 2, "image"),
            (2, 0, 3, "image"),
            (3, 0, 4, "image"),
            (4, 0, 5, "image"),
            (6, 0, 7, "mask"),
        ],
    )
    registry = build_registry()
    graph = import_ui(workflow, registry)[0].graph
    assert graph.node(2).params == {"seed": 5, "strength": 0.5}
    run = Executor(registry).run(graph, outputs=[2, 4, 5, 7], output_dir=tmp_path, device="cpu")
    assert run.status == "ok", [e.message for e in run.entries.values()]
    noise = torch.randn(2, 4, 8, 3, generator=torch.Generator().manual_seed(5))
    expected = (0x80 / 255 + 0.5 * noise).clamp(0, 1)
    torch.testing.assert_close(run.outputs[2][0], expected)
    (picked,) = run.outputs[4]
    torch.testing.assert_close(picked, torch.cat([expected[1:], expected[:1]]))
    assert run.outputs[5] == (8, 4, 2)
    (shown,) = [r.value for r in run.entries[7].records if r.kind == "images"]
    assert shown.shape == (1, 4, 8, 3) and float(shown.max()) == 0.25
