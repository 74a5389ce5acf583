"""The ControlNet nodes through the engine, on tiny checkpoints with ControlNets and
T2I-Adapters written under real file names, and the hint-picture nodes."""

from __future__ import annotations

import json
from unittest.mock import ANY as ANY_LINK

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.families import ModelFamily
from core.diffusion.hints import canny
from core.engine import Executor
from core.graph.model import Graph
from nodes.interop import open_workflow, to_comfy_api
from tests.helpers.controlnets import (
    controlnet_ldm_tensors,
    make_control_lora,
    make_tiny_adapter,
    make_tiny_controlnet,
    write_adapter,
    write_controlnet,
)
from tests.helpers.tiny_models import write_single_file
from tests.helpers.workflow_files import CheckpointKind, tiny_f8_pipeline

SD15, SDXL = "sd15.safetensors", "sdxl.safetensors"
CANNY = "control_v11p_sd15_canny.safetensors"
CONTROL_LORA = "control-lora-canny-rank2-sdxl.safetensors"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    sd1 = tiny_f8_pipeline(CheckpointKind(ModelFamily.SD1), seed=0)
    sdxl = tiny_f8_pipeline(CheckpointKind(ModelFamily.SDXL), seed=1)
    write_single_file(sd1, root / "checkpoints" / SD15)
    write_single_file(sdxl, root / "checkpoints" / SDXL)
    folder = root / "controlnet"
    write_controlnet(make_tiny_controlnet(sd1.unet, seed=1, scale=0.2), folder / CANNY)
    write_controlnet(
        make_tiny_controlnet(sd1.unet, seed=2, scale=0.2), folder / "control_sd15_depth.pth"
    )
    write_controlnet(
        make_tiny_controlnet(sdxl.unet, seed=3, scale=0.2),
        folder / "controlnet-canny-sdxl.safetensors",
        "diffusers",
    )
    write_adapter(
        make_tiny_adapter(sd1.unet, seed=4), root / "t2i_adapter" / "t2iadapter_canny_sd15v2.pth"
    )
    # A Control-LoRA for the SDXL checkpoint, and the full ControlNet it abbreviates.
    full, lora = make_control_lora(sdxl.unet, seed=6)
    save_file({k: v.contiguous() for k, v in lora.items()}, str(folder / CONTROL_LORA))
    write_controlnet(full, folder / "controlnet-lora-full.safetensors", "diffusers")
    # A difference file against the SD 1.x checkpoint.
    controlnet = make_tiny_controlnet(sd1.unet, seed=5, scale=0.2)
    unet = sd1.unet.state_dict()
    with torch.no_grad():
        for name, tensor in controlnet.state_dict().items():
            if name in unet:
                tensor.sub_(unet[name])
    tensors = {**controlnet_ldm_tensors(controlnet), "difference": torch.tensor([])}
    save_file(tensors, str(folder / "diff_control_sd15_depth_fp16.safetensors"))
    return root


def _graph(
    registry,
    ckpt=SD15,
    control=CANNY,
    apply="ControlNetApply",
    hint_size=64,
    source="GradientImage",
    **params,
):
    """A txt2img graph whose conditioning goes through ``apply`` with ``control``."""
    g = Graph(registry)
    loader = g.add_node("LoadCheckpoint", params={"ckpt_name": ckpt}).id
    pos = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    neg = g.add_node("CLIPTextEncode", params={"text": "blurry"}).id
    for node in (pos, neg):
        g.connect(loader, "CLIP", node, "clip")
    latent = g.add_node("EmptyLatentImage", params={"width": 64, "height": 64}).id
    g.connect(loader, "VAE", latent, "vae")
    sampler = g.add_node(
        "KSampler", params={"seed": 3, "steps": 3, "cfg": 5.0, "sampler_name": "euler"}
    ).id
    g.connect(loader, "MODEL", sampler, "model")
    g.connect(latent, "LATENT", sampler, "latent_image")
    positive, negative = (pos, "CONDITIONING"), (neg, "CONDITIONING")
    if apply:
        picture = g.add_node(source, params={"width": hint_size, "height": hint_size}).id
        edges = g.add_node("Canny").id
        g.connect(picture, "IMAGE", edges, "image")
        if control.startswith("diff_"):
            cnet = g.add_node("DiffControlNetLoader", params={"control_net_name": control}).id
            g.connect(loader, "MODEL", cnet, "model")
        else:
            cnet = g.add_node("ControlNetLoader", params={"control_net_name": control}).id
        node = g.add_node(apply, params=params).id
        g.connect(cnet, "CONTROL_NET", node, "control_net")
        g.connect(edges, "IMAGE", node, "image")
        if apply == "ControlNetApply":
            g.connect(pos, "CONDITIONING", node, "conditioning")
            positive = (node, "CONDITIONING")
        else:
            g.connect(pos, "CONDITIONING", node, "positive")
            g.connect(neg, "CONDITIONING", node, "negative")
            positive, negative = (node, "positive"), (node, "negative")
    g.connect(*positive, sampler, "positive")
    g.connect(*negative, sampler, "negative")
    return g, sampler


def _sample(registry, graph, sampler):
    report = Executor(registry).run(graph, outputs=[sampler], device="cpu")
    failed = {e.label: e.message for e in report.entries.values() if e.status == "failed"}
    assert report.status == "ok", failed
    notices = [r.value for r in report.entries[sampler].records if r.kind == "notice"]
    return report.outputs[sampler][0]["samples"], notices


def _fail(registry, graph, sampler):
    report = Executor(registry).run(graph, outputs=[sampler], device="cpu")
    assert report.status != "ok"
    return [e for e in report.entries.values() if e.status == "failed"]


def test_inputs_and_widgets_are_in_comfyui_order(registry):
    def names(type_id):
        return [i.name for i in registry.get(type_id).inputs]

    assert names("ControlNetLoader") == ["control_net_name"]
    assert names("DiffControlNetLoader") == ["model", "control_net_name"]
    assert names("ControlNetApply") == ["conditioning", "control_net", "image", "strength"]
    assert names("ControlNetApplyAdvanced") == [
        "positive",
        "negative",
        "control_net",
        "image",
        "strength",
        "start_percent",
        "end_percent",
    ]
    # ComfyUI's, then the working resolution comfyui_controlnet_aux's Canny Edge has.
    assert names("Canny") == ["image", "low_threshold", "high_threshold", "resolution"]


def test_apply_controlnet_steers_the_sampler_and_strength_zero_does_not(registry):
    plain = _sample(registry, *_graph(registry, apply=None))[0]
    controlled, notices = _sample(registry, *_graph(registry, strength=1.0))
    zero = _sample(registry, *_graph(registry, strength=0.0))[0]
    assert torch.equal(zero, plain)
    assert not torch.allclose(controlled, plain)
    assert notices == []


@pytest.mark.parametrize(
    "control",
    [
        "control_sd15_depth.pth",
        "t2iadapter_canny_sd15v2.pth",
        "diff_control_sd15_depth_fp16.safetensors",
    ],
)
def test_advanced_apply_runs_every_kind_of_file_in_its_window(registry, control):
    plain = _sample(registry, *_graph(registry, apply=None))[0]
    whole = _sample(
        registry, *_graph(registry, control=control, apply="ControlNetApplyAdvanced", strength=1.0)
    )[0]
    late = _sample(
        registry,
        *_graph(
            registry,
            control=control,
            apply="ControlNetApplyAdvanced",
            strength=1.0,
            start_percent=0.999,
            end_percent=1.0,
        ),
    )[0]
    assert not torch.allclose(whole, plain)
    assert not torch.equal(late, whole)


def test_an_sdxl_controlnet_runs_on_an_sdxl_model_and_an_sd15_one_is_refused(registry):
    plain = _sample(registry, *_graph(registry, ckpt=SDXL, apply=None))[0]
    controlled = _sample(
        registry, *_graph(registry, ckpt=SDXL, control="controlnet-canny-sdxl.safetensors")
    )[0]
    assert not torch.allclose(controlled, plain)
    (failed,) = _fail(registry, *_graph(registry, ckpt=SDXL, control=CANNY))
    assert CANNY in failed.message and "made for this model" in failed.message


def test_an_sdxl_control_lora_steers_as_its_full_controlnet_and_an_sd15_model_refuses_it(
    registry,
):
    plain = _sample(registry, *_graph(registry, ckpt=SDXL, apply=None))[0]
    lora = _sample(registry, *_graph(registry, ckpt=SDXL, control=CONTROL_LORA))[0]
    full = _sample(
        registry, *_graph(registry, ckpt=SDXL, control="controlnet-lora-full.safetensors")
    )[0]
    # The same ControlNet, up to rounding in the model's precision (bfloat16 on some CPUs).
    assert (lora - full).abs().max() < 0.1 * (full - plain).abs().max()
    (failed,) = _fail(registry, *_graph(registry, ckpt=SD15, control=CONTROL_LORA))
    assert CONTROL_LORA in failed.message and "does not fit the model" in failed.message


def test_a_hint_of_another_size_is_resized_with_a_notice(registry):
    _, notices = _sample(registry, *_graph(registry, hint_size=48))
    assert notices == [
        f"The hint for {CANNY} is 48×48 pixels; it was resized to the picture's 64×64."
    ]


def test_a_window_that_ends_before_it_starts_is_refused_on_its_field(registry):
    graph, sampler = _graph(
        registry, apply="ControlNetApplyAdvanced", start_percent=0.8, end_percent=0.2
    )
    (failed,) = _fail(registry, graph, sampler)
    assert "start_percent 0.8 is after end_percent 0.2" in failed.message


def test_canny_on_a_drawn_square_gives_its_outline():
    picture = torch.zeros(1, 64, 64, 3)
    picture[:, 16:48, 16:48] = torch.tensor([0.9, 0.2, 0.1])
    edges = canny(picture, 0.4, 0.8)
    assert edges.shape == picture.shape and set(edges.unique().tolist()) == {0.0, 1.0}
    edge = edges[0, :, :, 0] > 0
    ring = torch.zeros(64, 64, dtype=torch.bool)
    ring[14:50, 14:50] = True
    ring[18:46, 18:46] = False  # within two pixels of the square's border
    assert not (edge & ~ring).any()  # nothing away from the outline
    for side in (edge[20:44, 14:18], edge[20:44, 46:50], edge[14:18, 20:44], edge[46:50, 20:44]):
        assert side.any(dim=int(side.shape[0] > side.shape[1])).all()  # every side unbroken
    assert not canny(torch.full((1, 32, 32, 3), 0.5), 0.4, 0.8).any()


def test_threshold_and_resize_to_the_latent_size_prepare_hints(registry):
    g = Graph(registry)
    picture = g.add_node("GradientImage", params={"width": 40, "height": 24}).id
    black_white = g.add_node("ImageThreshold", params={"threshold": 0.5}).id
    g.connect(picture, "IMAGE", black_white, "image")
    latent = g.add_node("EmptyLatentImage", params={"width": 64, "height": 32}).id
    sized = g.add_node("ImageScaleToLatentSize").id
    g.connect(black_white, "IMAGE", sized, "image")
    g.connect(latent, "LATENT", sized, "latent")
    report = Executor(registry).run(g, outputs=[black_white, sized], device="cpu")
    assert report.status == "ok"
    binary = report.outputs[black_white][0]
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    assert tuple(report.outputs[sized][0].shape) == (1, 32, 64, 3)


def test_the_controlnet_nodes_export_to_comfyui_and_open_again(registry, tmp_path):
    graph, sampler = _graph(
        registry,
        control="diff_control_sd15_depth_fp16.safetensors",
        apply="ControlNetApplyAdvanced",
        source="EmptyImage",  # GradientImage has no ComfyUI equivalent
        strength=0.6,
        start_percent=0.1,
        end_percent=0.9,
    )
    prompt = to_comfy_api(graph)
    types = {node["class_type"]: node["inputs"] for node in prompt.values()}
    assert types["DiffControlNetLoader"]["control_net_name"] == (
        "diff_control_sd15_depth_fp16.safetensors"
    )
    advanced = types["ControlNetApplyAdvanced"]
    assert (advanced["strength"], advanced["start_percent"], advanced["end_percent"]) == (
        0.6,
        0.1,
        0.9,
    )
    assert types["Canny"] == {"low_threshold": 0.4, "high_threshold": 0.8, "image": ANY_LINK}
    path = tmp_path / "controlnet_api.json"
    path.write_text(json.dumps(prompt))
    opened = open_workflow(path, registry)
    assert not opened.report.unknown and opened.report.warnings == ()
    again = _sample(registry, opened.workflow.graph, sampler)[0]
    assert torch.equal(again, _sample(registry, graph, sampler)[0])
