"""``open_workflow``: every supported file kind, and clear errors for everything else."""

from __future__ import annotations

import json

import pytest

from core.graph.model import Graph
from core.graph.workflow import PNG_KEY, WorkflowError, dumps, save_workflow
from nodes.interop import SourceFormat, open_bytes, open_workflow
from tests.interop.conftest import FIXTURES, write_png

UI = (FIXTURES / "txt2img_ui04.json").read_text()
API = (FIXTURES / "txt2img_api.json").read_text()


def test_comfyui_png_prefers_the_ui_workflow(registry, tmp_path):
    path = write_png(tmp_path / "ComfyUI_00001_.png", {"prompt": API, "workflow": UI})
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.COMFYUI_UI
    assert result.report.label == "ComfyUI workflow (UI format 0.4) in a PNG"
    assert result.workflow.graph.node(7).pos == (413.0, 389.0)


def test_comfyui_png_falls_back_to_the_prompt(registry, tmp_path):
    path = write_png(tmp_path / "c.png", {"prompt": API, "workflow": "{not json"})
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.COMFYUI_API
    assert "'workflow' text could not be used" in result.report.warnings[0]
    assert len(result.workflow.graph) == 7


def test_latentloom_png_and_json(registry, tmp_path):
    graph = Graph(registry)
    graph.add_node("EmptyLatentImage", params={"width": 64})
    path = write_png(tmp_path / "ours.png", {PNG_KEY: dumps(graph), "parameters": "x"})
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.LATENTLOOM
    assert result.workflow.graph.node(1).params["width"] == 64
    save_workflow(graph, tmp_path / "ours.json")
    result = open_workflow(tmp_path / "ours.json", registry)
    assert (result.report.source_format, result.report.mapped) == (SourceFormat.LATENTLOOM, 1)


def test_http_prompt_wrapper_opens_the_embedded_ui_workflow(registry):
    body = {
        "prompt": json.loads(API),
        "extra_data": {"extra_pnginfo": {"workflow": json.loads(UI)}},
    }
    result = open_bytes(json.dumps(body).encode(), registry, "request.json")
    assert result.report.source_format is SourceFormat.COMFYUI_UI


def test_a1111_parameters_as_a_text_file(registry, tmp_path):
    path = tmp_path / "params.txt"
    path.write_text("a fox\nNegative prompt: ugly\nSteps: 2, Sampler: Euler a, Size: 32x32")
    result = open_workflow(path, registry)
    assert (result.report.source_format, result.report.container) == (SourceFormat.A1111, "text")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x00\xff\xfe garbage", "not UTF-8"),
        (b"{ broken", "not valid JSON"),
        (b'{"hello": "world"}', "not a workflow LatentLoom can open"),
        (b"[1, 2, 3]", "not a workflow LatentLoom can open"),
        (b'{"nodes": [{"id": "x"}], "links": []}', "needs an integer id and a type"),
        (b'{"1": {"class_type": "KSampler", "inputs": {"seed": [1]}}, "2": 5}', "not a workflow"),
    ],
)
def test_bad_json_files_raise_a_workflow_error_naming_the_file(
    content, problem, registry, tmp_path
):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(WorkflowError) as info:
        open_workflow(path, registry)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_bad_pngs_raise_a_workflow_error(registry, tmp_path):
    plain = write_png(tmp_path / "plain.png", {})
    with pytest.raises(WorkflowError, match="carries no workflow"):
        open_workflow(plain, registry)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(plain.read_bytes()[:40])
    with pytest.raises(WorkflowError, match="damaged PNG"):
        open_workflow(truncated, registry)
    broken = write_png(tmp_path / "broken.png", {"workflow": "{nope"})
    with pytest.raises(WorkflowError, match="'workflow' text could not be used"):
        open_workflow(broken, registry)
    with pytest.raises(WorkflowError, match="cannot be read"):
        open_workflow(tmp_path / "missing.png", registry)


def test_damaged_comfyui_structures_never_escape_as_tracebacks(registry, tmp_path):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": "seed"}}))
    result = open_workflow(path, registry)  # inputs that are not an object: defaults
    assert result.workflow.graph.node(1).type_id == "KSampler"
    assert result.report.warnings == ("node 1: its inputs are not an object; defaults used",)
    path.write_text(json.dumps({"nodes": [5], "links": []}))
    with pytest.raises(WorkflowError, match="node entry 0 is not an object"):
        open_workflow(path, registry)


def test_imported_workflow_saves_and_reopens_as_latentloom(registry, tmp_path):
    imported = open_workflow(FIXTURES / "custom_node_ui1.json", registry).workflow.graph
    save_workflow(imported, tmp_path / "saved.json")
    reopened = open_workflow(tmp_path / "saved.json", registry)
    assert reopened.report.source_format is SourceFormat.LATENTLOOM
    assert {(u.node_id, u.type_id) for u in reopened.report.unknown} == {(31, "ImageSharpenPlus")}
    assert reopened.workflow.graph.state() == imported.state()
    assert reopened.workflow.graph.notes[1].text == "Made for the interop tests."
