"""Node types of widely used ComfyUI node packs that LatentLoom's own nodes cover: the real
nodes of corpus files map onto them with their values, say which pack they come from, and the
nodes compute what the packs' nodes do."""

from __future__ import annotations

import json

import pytest
import torch

from core.diffusion.model_paths import ModelPaths
from core.engine import NodeError
from nodes import build_registry
from nodes.interop import open_workflow, to_comfy_api
from nodes.interop.comfyui import import_api
from nodes.interop.comfyui.mapping import BY_COMFY_TYPE, export_mapping, mapping_for
from tools.corpus_report import CORPUS


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return build_registry(ModelPaths.of(tmp_path_factory.mktemp("models")))


def _node(path: str, node_id: int, registry):
    opened = open_workflow(CORPUS / path, registry)
    assert not opened.report.unknown or all(
        n.type_id not in BY_COMFY_TYPE for n in opened.report.unknown
    )
    return opened.workflow.graph.node(node_id), opened


def test_essentials_image_resize_in_the_salad_img2img_file(registry):
    node, opened = _node("salad_comfyui_api/sd1.5__img2img.json", 11, registry)
    assert node.type_id == "ResizeImageToFit"
    assert node.params == {
        "width": 512,
        "height": 512,
        "interpolation": "nearest",
        "method": "keep proportion",
        "condition": "always",
        "multiple_of": 0,
    }
    assert opened.report.unknown == ()
    links = {(lk.src, lk.src_output, lk.dst, lk.dst_input) for lk in opened.workflow.graph.links}
    assert (10, "IMAGE", 11, "image") in links and (11, "IMAGE", 12, "pixels") in links


def test_was_bloom_in_the_replicate_file(registry):
    node, opened = _node("replicate_cog_comfyui/was_bloom_workflow_api.json", 23, registry)
    assert node.type_id == "ImageBloom"
    assert node.params == {"radius": 10.0, "intensity": 1.0}
    assert opened.report.unknown == ()


def test_controlnet_aux_canny_thresholds_come_to_our_scale(registry):
    # An older version of the pack, without a resolution: 20 and 50 on 0..255 pixels.
    node, _ = _node("sepro_sdxl_workflows/dual_controlnet_basic.json", 28, registry)
    assert node.type_id == "Canny"
    assert node.params == {"low_threshold": 0.0784, "high_threshold": 0.1961, "resolution": 0}
    # The current version (API format), at the thresholds' ends.
    graph = import_api(
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "a.png", "upload": "image"}},
            "2": {
                "class_type": "CannyEdgePreprocessor",
                "inputs": {
                    "low_threshold": 0,
                    "high_threshold": 255,
                    "resolution": 768,
                    "image": ["1", 0],
                },
            },
        },
        registry,
    )[0].graph
    assert graph.node(2).params == {
        "low_threshold": 0.01,
        "high_threshold": 0.99,
        "resolution": 768,
    }


def test_pack_entries_name_their_pack_and_core_ones_do_not(registry):
    assert mapping_for("ImageResize+", registry).origin == "from ComfyUI_essentials"
    assert mapping_for("Image Bloom Filter", registry).origin == "from was-node-suite-comfyui"
    assert mapping_for("CannyEdgePreprocessor", registry).origin == "from comfyui_controlnet_aux"
    assert mapping_for("Canny", registry).origin == "ComfyUI core"


def test_our_canny_still_exports_as_comfyuis_core_canny(registry):
    # The preprocessor's entry converts values on the way in only, so it never exports.
    assert export_mapping("Canny", registry).comfy_type == "Canny"
    assert export_mapping("ResizeImageToFit", registry).comfy_type == "ImageResize+"


def test_resize_and_bloom_export_under_the_packs_names_and_come_back(registry):
    opened = open_workflow(CORPUS / "salad_comfyui_api/sd1.5__img2img.json", registry)
    exported = to_comfy_api(opened.workflow.graph)
    assert exported["11"]["class_type"] == "ImageResize+"
    assert exported["11"]["inputs"]["method"] == "keep proportion"
    again = import_api(json.loads(json.dumps(exported)), registry)[0].graph
    assert again.node(11).params == opened.workflow.graph.node(11).params


def test_resize_node_reports_the_size_it_gave(registry):
    spec = registry.get("ResizeImageToFit")
    image, width, height = spec.function(
        None, torch.rand(1, 30, 40, 3), 20, 20, "bilinear", "keep proportion", "always", 8
    )
    # 40×30 fits 20×20 as 20×15; trimmed to multiples of 8: 16×8.
    assert tuple(image.shape) == (1, 8, 16, 3) and (width, height) == (16, 8)


def test_canny_node_finds_edges_at_the_working_resolution(registry):
    spec = registry.get("Canny")
    step = torch.zeros(1, 8, 12, 3)
    step[:, :, 6:] = 1.0
    own = spec.function(None, step, 0.4, 0.8, 0)
    scaled = spec.function(None, step, 0.4, 0.8, 16)
    assert own.shape == (1, 8, 12, 3) and scaled.shape == (1, 16, 24, 3)
    # One vertical edge, down the middle, at either scale.
    assert bool(own[0, :, 5:7, 0].amax(dim=1).eq(1).all()) and float(own[0, :, :4].sum()) == 0
    assert bool(scaled[0, 2:-2, 10:14, 0].amax(dim=1).eq(1).all())
    assert float(scaled[0, :, :8].sum()) == 0 and float(scaled[0, :, 16:].sum()) == 0
    with pytest.raises(NodeError, match="low_threshold"):
        spec.function(None, step, 0.9, 0.5, 16)


def test_the_import_report_says_which_pack_each_such_node_comes_from(registry):
    opened = open_workflow(CORPUS / "replicate_cog_comfyui/was_bloom_workflow_api.json", registry)
    assert [(n.node_id, n.type_id, n.pack) for n in opened.report.from_packs] == [
        (23, "Image Bloom Filter", "was-node-suite-comfyui")
    ]
    assert opened.report.warnings == ()
    assert (
        "Node-pack types opened as LatentLoom's own nodes: "
        "Image Bloom Filter (from was-node-suite-comfyui)"
    ) in opened.report.summary()
    # UI format too, and ComfyUI's own nodes are not listed.
    opened = open_workflow(CORPUS / "sepro_sdxl_workflows/dual_controlnet_basic.json", registry)
    assert {(n.type_id, n.pack) for n in opened.report.from_packs} == {
        ("CannyEdgePreprocessor", "comfyui_controlnet_aux")
    }
