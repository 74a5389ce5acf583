"""Corpus workflows that use node-pack nodes LatentLoom covers run end to end on tiny models:
img2img through ComfyUI_essentials' Image Resize, and txt2img finished by the WAS suite's
Image Bloom Filter. Models and pictures are written as in ``test_corpus_runs``."""

from __future__ import annotations

import torch

from tests.helpers.workflow_files import write_picture
from tests.interop.test_corpus_runs import Case, prepare, run


def test_img2img_through_essentials_image_resize_runs(tmp_path, pipelines):
    case = Case("salad_comfyui_api/sd1.5__img2img.json", {9: (64, 48)})
    prepared = prepare(case, tmp_path, pipelines)
    # The file resizes its input to fit 512×512 with its proportions kept; the same at the
    # tiny scale is a 128×96 picture fitted into 64×64, which gives 64×48.
    assert prepared.graph.node(11).type_id == "ResizeImageToFit"
    prepared.graph.set_param(11, "width", 64)
    prepared.graph.set_param(11, "height", 64)
    write_picture(tmp_path / "workflow" / "input" / "example.png", (128, 96), False)
    pictures = run(prepared)
    assert set(pictures) == {9}
    assert tuple(pictures[9].shape) == (1, 48, 64, 3)
    assert torch.isfinite(pictures[9]).all()


def test_txt2img_finished_by_was_bloom_runs(tmp_path, pipelines):
    # Node 17 previews the decoded picture, node 9 saves it after the bloom.
    case = Case("replicate_cog_comfyui/was_bloom_workflow_api.json", {9: (64, 64), 17: (64, 64)})
    prepared = prepare(case, tmp_path, pipelines)
    assert prepared.graph.node(23).type_id == "ImageBloom"
    pictures = run(prepared)
    assert set(pictures) == set(case.outputs)
    for node_id, (width, height) in case.outputs.items():
        assert tuple(pictures[node_id].shape) == (1, height, width, 3), node_id
        assert torch.isfinite(pictures[node_id]).all(), node_id
    # A screen blend only brightens, and a generated picture is never flat enough to give none.
    # The saved picture went through 8-bit PNG bytes no more than the preview did.
    assert bool((pictures[9] >= pictures[17] - 1 / 255).all())
    assert float((pictures[9] - pictures[17]).abs().max()) > 1 / 255
