"""A1111 ``parameters`` text: parsed, mapped to ComfyUI sampler names, rebuilt as a graph."""

from __future__ import annotations

import pytest
from PIL import Image

from core.engine import validate
from nodes.interop import SourceFormat, open_workflow
from nodes.interop.a1111 import (
    build_workflow,
    guess_model_name,
    map_sampler,
    parse_parameters,
)
from tests.interop.conftest import CKPT, saved_files, write_png

TEXT = """masterpiece, a cat in a hat,
sitting on a wall <lora:style:0.7>
Negative prompt: blurry, lowres,
watermark
Steps: 3, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234, Size: 32x48, \
Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, \
Lora hashes: "style: 0123abcd, other: 4567", Version: v1.6.0"""


def test_parameters_are_split_into_prompt_negative_and_settings():
    params = parse_parameters(TEXT)
    assert params.prompt == "masterpiece, a cat in a hat,\nsitting on a wall <lora:style:0.7>"
    assert params.negative_prompt == "blurry, lowres,\nwatermark"
    assert params.settings == {
        "Steps": "3",
        "Sampler": "DPM++ 2M Karras",
        "CFG scale": "6.5",
        "Seed": "1234",
        "Size": "32x48",
        "Model hash": "6ce0161689",
        "Model": "v1-5-pruned-emaonly",
        "Clip skip": "2",
        "Lora hashes": "style: 0123abcd, other: 4567",
        "Version": "v1.6.0",
    }


def test_parameters_without_negative_prompt_or_settings():
    assert parse_parameters("just a prompt").settings == {}
    params = parse_parameters("a dog\nSteps: 20, Sampler: Euler a")
    assert (params.prompt, params.negative_prompt) == ("a dog", "")


@pytest.mark.parametrize(
    ("sampler", "schedule_type", "expected"),
    [
        ("DPM++ 2M Karras", None, ("dpmpp_2m", "karras")),
        ("Euler a", None, ("euler_ancestral", "normal")),
        ("Euler", None, ("euler", "normal")),
        ("DPM++ 2M", "Karras", ("dpmpp_2m", "karras")),
        ("DPM++ 2M SDE Exponential", None, ("dpmpp_2m_sde", "exponential")),
        ("DDIM", None, ("ddim", "ddim_uniform")),
        ("LMS Karras", None, ("lms", "karras")),
        ("UniPC", None, ("uni_pc", "normal")),
        # A1111 1.9+ and Forge write the schedule apart from the sampler.
        ("Euler a", "Karras", ("euler_ancestral", "karras")),
        ("Euler a", "Automatic", ("euler_ancestral", "normal")),
        ("DPM++ 2M Karras", "Automatic", ("dpmpp_2m", "karras")),
        ("DPM++ SDE", "SGM Uniform", ("dpmpp_sde", "sgm_uniform")),
        ("Mystery sampler", None, ("", "")),
    ],
)
def test_a1111_sampler_names_map_to_comfyui_names(sampler, schedule_type, expected):
    assert map_sampler(sampler, schedule_type) == expected


def test_model_name_guess():
    available = ["sd15/v1-5-pruned-emaonly.safetensors", "other.ckpt"]
    assert guess_model_name("v1-5-pruned-emaonly", available) == available[0]
    assert guess_model_name("Other", available) == "other.ckpt"
    assert guess_model_name("missing", available) == "missing.safetensors"
    assert guess_model_name("given.ckpt", []) == "given.ckpt"


def _by_type(graph):
    out = {}
    for node in graph:
        out.setdefault(node.type_id, []).append(node)
    return out


def test_graph_rebuilt_from_parameters(registry):
    workflow, report = build_workflow(parse_parameters(TEXT), registry)
    graph = workflow.graph
    assert report.source_format is SourceFormat.A1111 and report.warnings == ()
    nodes = _by_type(graph)
    [load], [lora], [skip], [sampler] = (
        nodes["LoadCheckpoint"],
        nodes["LoadLoRA"],
        nodes["CLIPSetLastLayer"],
        nodes["KSampler"],
    )
    assert load.params["ckpt_name"] == CKPT  # found among the files by its stem
    assert lora.params == {
        "lora_name": "style.safetensors",
        "strength_model": 0.7,
        "strength_clip": 0.7,
    }
    assert skip.params == {"stop_at_clip_layer": -2}
    assert sampler.params == {
        "seed": 1234,
        "steps": 3,
        "cfg": 6.5,
        "sampler_name": "dpmpp_2m",
        "scheduler": "karras",
        "denoise": 1.0,
    }
    [latent] = nodes["EmptyLatentImage"]
    assert latent.params == {"width": 32, "height": 48, "batch_size": 1}
    texts = sorted(n.params["text"] for n in nodes["CLIPTextEncode"])
    assert texts == [
        "blurry, lowres,\nwatermark",
        "masterpiece, a cat in a hat,\nsitting on a wall",
    ]
    assert len(nodes["VAEDecode"]) == len(nodes["SaveImage"]) == 1
    # Laid out left to right along the data flow, no two nodes in one place.
    positions = [n.pos for n in graph]
    assert len(set(positions)) == len(positions)
    assert load.pos[0] < lora.pos[0] < sampler.pos[0] < nodes["SaveImage"][0].pos[0]
    assert workflow.extra["a1111"]["settings"]["Model hash"] == "6ce0161689"
    assert validate(graph) == []


def test_hires_fix_becomes_a_second_pass(registry):
    text = (
        "a lighthouse\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 32x32, "
        "Model: v1-5-pruned-emaonly, Denoising strength: 0.55, Hires upscale: 1.5, "
        "Hires steps: 2, Hires upscaler: Latent (nearest-exact)"
    )
    graph = build_workflow(parse_parameters(text), registry)[0].graph
    nodes = _by_type(graph)
    first, second = sorted(nodes["KSampler"], key=lambda n: n.pos[0])
    [upscale] = nodes["LatentUpscaleBy"]
    assert upscale.params == {"upscale_method": "nearest-exact", "scale_by": 1.5}
    assert first.params["denoise"] == 1.0 and second.params["denoise"] == 0.55
    links = {(lk.src, lk.dst, lk.dst_input) for lk in graph.links}
    assert {(first.id, upscale.id, "samples"), (upscale.id, second.id, "latent_image")} <= links
    assert validate(graph) == []


def test_img2img_parameters_ask_for_the_source_picture(registry):
    text = "a boat\nSteps: 2, Sampler: Euler, Seed: 1, Size: 32x32, Denoising strength: 0.4"
    workflow, report = build_workflow(parse_parameters(text), registry)
    nodes = _by_type(workflow.graph)
    assert nodes["KSampler"][0].params["denoise"] == 0.4 and "VAEEncode" in nodes
    assert "EmptyLatentImage" not in nodes
    assert any("Load Image" in w for w in report.warnings)
    assert any("no model" in w for w in report.warnings)


def test_unknown_sampler_falls_back_with_a_warning(registry):
    text = "x\nSteps: 2, Sampler: Restart, Schedule type: Karras, Seed: 1, Size: 32x32, Model: m"
    workflow, report = build_workflow(parse_parameters(text), registry)
    params = _by_type(workflow.graph)["KSampler"][0].params
    assert (params["sampler_name"], params["scheduler"]) == ("euler", "karras")
    assert [w for w in report.warnings if "'Restart'" in w] == [
        "A1111 sampler 'Restart' has no equivalent here; using euler instead"
    ]


def test_a1111_png_opens_validates_and_runs(registry, executor, tmp_path):
    path = write_png(tmp_path / "00001-1234.png", {"parameters": TEXT})
    result = open_workflow(path, registry)
    assert result.report.summary().startswith(
        "Opened an AUTOMATIC1111 generation parameters in a PNG: "
    )
    assert result.report.source_format is SourceFormat.A1111
    assert result.report.container == "png"
    report = executor.run(result.workflow.graph, output_dir=tmp_path / "out", device="cpu")
    assert report.status == "ok"
    [file] = saved_files(report)
    with Image.open(file) as picture:  # the asked-for size, on the tiny model's f=2 VAE too
        assert picture.size == (32, 48)


def test_a1111_missing_model_is_reported_by_validation(empty_registry, tmp_path):
    path = write_png(tmp_path / "a.png", {"parameters": TEXT})
    graph = open_workflow(path, empty_registry).workflow.graph
    problems = {(p.field, p.message) for p in validate(graph)}
    assert any(
        field == "ckpt_name" and "'v1-5-pruned-emaonly.safetensors'" in message
        for field, message in problems
    )
    assert any(field == "lora_name" and "'style.safetensors'" in m for field, m in problems)
