"""ComfyUI's official templates built on subgraphs (Comfy-Org/workflow_templates, see
fixtures/subgraphs/SOURCES.md) open as LatentLoom subgraphs and validate with only their
model files reported missing. They are Z-Image-Turbo and Qwen-Image text-to-image graphs:
the SD-era template there (SD 1.5's default.json) uses no subgraphs. Running those families
is out of LatentLoom's scope; opening, editing and checking them is not."""

from __future__ import annotations

import re

import pytest

from core.engine import Executor
from core.graph.spec import WidgetInput
from core.graph.workflow import dumps, loads
from nodes.cli.common import EXIT_INVALID
from nodes.cli.workflows import validate
from nodes.interop import open_workflow
from tests.interop.conftest import FIXTURES

TEMPLATES = FIXTURES / "subgraphs"
Z_IMAGE = "comfyui-template-01_get_started_text_to_image.json"
QWEN = "comfyui-template-01_qwen_t2i_subgraphed.json"
Z_TURBO = "comfyui-template-image_z_image_turbo.json"
Z_PROMPT = (
    'Giant blue and purple big billboard on rooftop in san francisco city billboard says "ComfyUI '
    'is built with love" All kinds of buoildings in different shapes and colors. Some buildings '
    'have grafitti "We" "Here" "Today"'
)

#: Per template: the instance, its definition's name and the model files it needs, as
#: (inner node, widget, file).
EXPECTED = {
    Z_IMAGE: (
        83,
        "Z-Image-Turbo Text to Image",
        {
            (28, "unet_name", "z_image_turbo_bf16.safetensors"),
            (29, "vae_name", "ae.safetensors"),
            (30, "clip_name", "qwen_3_4b.safetensors"),
        },
    ),
    QWEN: (
        75,
        "Qwen Image Text-to-image (Simplified)",
        {
            (37, "unet_name", "qwen_image_fp8_e4m3fn.safetensors"),
            (38, "clip_name", "qwen_2.5_vl_7b_fp8_scaled.safetensors"),
            (39, "vae_name", "qwen_image_vae.safetensors"),
            (73, "lora_name", "Qwen-Image-Lightning-4steps-V1.0.safetensors"),
        },
    ),
    Z_TURBO: (
        57,
        "Text to Image (Z-Image-Turbo)",
        {
            (28, "unet_name", "z_image_turbo_bf16.safetensors"),
            (29, "vae_name", "ae.safetensors"),
            (30, "clip_name", "qwen_3_4b.safetensors"),
        },
    ),
}
_MISSING = re.compile(r": '(\w+)': no \w+ model named '([^']+)'[:;] ")


def _open(name, registry):
    opened = open_workflow(TEMPLATES / name, registry)
    return opened.workflow.graph, opened.report


@pytest.mark.parametrize("name", list(EXPECTED))
def test_template_imports_its_subgraph_with_every_node_known(name, empty_registry):
    graph, report = _open(name, empty_registry)
    assert not report.unknown
    instance_id, title, _ = EXPECTED[name]
    definition = graph.subgraphs.get(graph.node(instance_id).type_id)
    assert definition.name == title
    inner = {n.type_id for n in definition.graph if n.id > 0}
    assert {
        "CLIPLoader",
        "UNETLoader",
        "LoadVAE",
        "EmptySD3LatentImage",
        "ModelSamplingAuraFlow",
        "CLIPTextEncode",
        "KSampler",
        "VAEDecode",
    } <= inner
    assert graph.spec(instance_id).outputs[0].type == "IMAGE"
    assert definition.graph.link_to(-20, "IMAGE") is not None


@pytest.mark.parametrize("name", list(EXPECTED))
def test_template_validates_with_only_its_model_files_missing(name, empty_registry):
    graph, _ = _open(name, empty_registry)
    instance_id, title, files = EXPECTED[name]
    problems = Executor(empty_registry).validate(graph)
    found = set()
    for problem in problems:
        assert problem.node_id == instance_id and problem.code == "check_failed"
        assert problem.message.startswith(f"in {title} › ")
        match = _MISSING.search(problem.message)
        assert match is not None, problem.message
        found.add((problem.path[-1], match.group(1), match.group(2)))
    assert len(problems) == len(found) and found == files


def test_the_cli_checks_the_nodes_inside_subgraphs(empty_registry, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LATENTLOOM_MODEL_ROOTS", str(tmp_path))
    assert validate(TEMPLATES / Z_IMAGE, [tmp_path]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "3 problem(s)" in err
    for needed in ("z_image_turbo_bf16.safetensors", "ae.safetensors", "qwen_3_4b.safetensors"):
        assert f"model named '{needed}'" in err


def test_widgets_shown_from_inner_nodes_become_promoted_inputs(empty_registry):
    graph, _ = _open(Z_IMAGE, empty_registry)
    definition = graph.subgraphs.get(graph.node(83).type_id)
    assert [b.name for b in definition.inputs] == ["text", "height", "width", "seed"]
    assert definition.graph.link_to(27, "text").src == -10
    assert definition.graph.link_to(3, "seed").src_output == "seed"
    spec = graph.spec(83)
    assert all(isinstance(spec.input(n), WidgetInput) for n in ("text", "height", "width", "seed"))
    # The instance stores no values, so it shows the inner widgets' own.
    assert spec.input("text").default == Z_PROMPT
    assert spec.input("seed").default == 528562900154240
    assert spec.input("width").default == 1024


def test_proxy_widget_values_land_on_the_inputs_they_name(empty_registry):
    graph, _ = _open(Z_TURBO, empty_registry)
    params = graph.node(57).params
    assert params["unet_name"] == "z_image_turbo_bf16.safetensors"
    assert params["clip_name"] == "qwen_3_4b.safetensors"
    assert params["vae_name"] == "ae.safetensors"
    assert params["steps"] == 8 and params["width"] == 1024
    assert params["text"].startswith("Latina female with thick wavy hair")
    # seed is shown from the sampler inside; its value in the file is null, so it keeps the
    # sampler's own.
    assert params["seed"] == 0 and graph.spec(57).input("seed").default == 0

    graph, _ = _open(QWEN, empty_registry)
    params = graph.node(75).params
    assert params["lora_name"] == "Qwen-Image-Lightning-4steps-V1.0.safetensors"
    assert params["clip_name"] == "qwen_2.5_vl_7b_fp8_scaled.safetensors"
    assert (params["width"], params["height"], params["steps"]) == (1328, 1328, 4)
    assert params["seed"] == 1125488487853216


def test_a_bypassed_inner_node_is_passed_through_not_checked(empty_registry):
    graph, _ = _open(Z_IMAGE, empty_registry)
    definition = graph.subgraphs.get(graph.node(83).type_id)
    assert definition.graph.node(11).bypassed
    problems = Executor(empty_registry).validate(graph)
    assert all(p.path[-1] != 11 for p in problems)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_saved_as_latentloom_the_template_keeps_its_subgraph_and_problems(name, empty_registry):
    graph, _ = _open(name, empty_registry)
    reopened = loads(dumps(graph), empty_registry).graph
    instance_id, _, _ = EXPECTED[name]
    assert reopened.node(instance_id).params == graph.node(instance_id).params
    before = [p.message for p in Executor(empty_registry).validate(graph)]
    assert [p.message for p in Executor(empty_registry).validate(reopened)] == before
