from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.engine import Executor, NodeError, ValidationError
from core.graph import workflow as wf
from core.graph.model import Graph
from nodes import build_registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_registry_is_fresh_each_time_and_has_the_primitives(registry):
    assert build_registry() is not registry
    for type_id in (
        "Int",
        "Float",
        "String",
        "Boolean",
        "FloatMath",
        "IntMath",
        "TextJoin",
        "SaveText",
        "LoadImage",
        "SaveImage",
        "PreviewImage",
        "GradientImage",
    ):
        assert type_id in registry


def test_math_graph_runs_with_int_to_float_conversion(registry, tmp_path):
    g = Graph(registry)
    a = g.add_node("Int", params={"value": 7}).id
    m = g.add_node("FloatMath", params={"b": 0.5, "op": "multiply"}).id
    g.connect(a, "INT", m, "a")
    fmt = g.add_node("TextJoin", params={"a": "result", "separator": "="}).id
    g.connect(m, "FLOAT", fmt, "b")
    save = g.add_node("SaveText", params={"filename": "answer"}).id
    g.connect(fmt, "STRING", save, "text")
    report = Executor(registry).run(g, output_dir=tmp_path)
    assert report.status == "ok"
    assert (tmp_path / "answer.txt").read_text() == "result=3.5"


def test_division_by_zero_is_a_node_error_pinned_to_b(registry, tmp_path):
    g = Graph(registry)
    m = g.add_node("IntMath", params={"a": 1, "b": 0, "op": "modulo"}).id
    s = g.add_node("SaveText").id
    conv = g.add_node("TextJoin").id
    g.connect(m, "INT", conv, "a")
    g.connect(conv, "STRING", s, "text")
    report = Executor(registry).run(g, output_dir=tmp_path)
    entry = report.entries[m]
    assert entry.status == "failed" and "by zero" in entry.message
    assert report.entries[s].status == "skipped"


def test_float_power_overflow_only_matters_for_power(registry):
    from nodes.primitives import _float_math

    assert _float_math(None, 1e308, 5.0, "add") == pytest.approx(1e308)
    with pytest.raises(NodeError, match="too large"):
        _float_math(None, 1e308, 5.0, "power")


def test_save_image_embeds_the_workflow_and_the_png_reopens(registry, tmp_path):
    g = Graph(registry)
    grad = g.add_node("GradientImage", params={"width": 16, "height": 8}).id
    save = g.add_node("SaveImage", params={"filename_prefix": "t"}).id
    g.connect(grad, "IMAGE", save, "images")
    report = Executor(registry).run(g, output_dir=tmp_path, workflow=wf.to_dict(g))
    written = [r.value for r in report.entries[save].records if r.kind == "file"]
    assert len(written) == 1 and written[0].endswith("t_00001.png")
    reopened = wf.load_workflow(written[0], registry)
    assert reopened.graph.state() == g.state()


def test_load_image_missing_file_is_a_validation_problem(registry, tmp_path):
    g = Graph(registry)
    load = g.add_node("LoadImage", params={"image": str(tmp_path / "nope.png")}).id
    prev = g.add_node("PreviewImage").id
    g.connect(load, "IMAGE", prev, "images")
    with pytest.raises(ValidationError) as info:
        Executor(registry).run(g, output_dir=tmp_path)
    [problem] = info.value.problems
    assert problem.node_id == load and problem.field == "image"
    assert "does not exist" in problem.message


def test_load_image_cache_follows_file_contents(registry, tmp_path):
    from PIL import Image

    path = tmp_path / "in.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(path)
    g = Graph(registry)
    load = g.add_node("LoadImage", params={"image": str(path)}).id
    prev = g.add_node("PreviewImage").id
    g.connect(load, "IMAGE", prev, "images")
    executor = Executor(registry)
    executor.run(g, output_dir=tmp_path)
    assert executor.run(g, output_dir=tmp_path).entries[load].status == "cached"
    Image.new("RGB", (4, 4), (0, 0, 255)).save(path)  # same name, new pixels
    report = executor.run(g, output_dir=tmp_path)
    assert report.entries[load].status == "ran"
    [shown] = [r.value for r in report.entries[prev].records if r.kind == "images"]
    assert shown[0, 0, 0, 2] == 1.0


def test_default_workflow_is_valid(registry):
    from core.engine import validate

    path = Path(__file__).parents[2] / "resources" / "workflows" / "default.json"
    assert json.loads(path.read_text())["format"] == "latentloom"
    assert validate(wf.load_workflow(path, registry).graph) == []


def test_save_text_refuses_text_that_is_not_unicode_without_writing(registry, tmp_path):
    """Widgets refuse lone surrogates; text made by another node is checked when saved."""
    from types import SimpleNamespace

    save = registry.get("SaveText").function
    ctx = SimpleNamespace(output_dir=tmp_path, record=lambda kind, value: None)
    with pytest.raises(NodeError, match="lone surrogate") as info:
        save(ctx, text="broken \ud800", filename="notes")
    assert info.value.field == "text"
    assert list(tmp_path.iterdir()) == []
