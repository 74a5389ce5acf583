"""``main.py export``: a workflow in ComfyUI's API format, to a file or stdout, with a clear
error naming the nodes that have no ComfyUI equivalent."""

from __future__ import annotations

import json
from pathlib import Path

import main
from core.graph import workflow as wf
from core.graph.model import Graph
from nodes import build_registry

FIXTURES = Path(__file__).resolve().parents[1] / "interop" / "fixtures"


def test_export_writes_the_api_format_to_a_file(tmp_path, capsys):
    out = tmp_path / "api.json"
    code = main.main(
        [
            "export",
            str(FIXTURES / "txt2img_ui04.json"),
            "--format",
            "comfyui-api",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    prompt = json.loads(out.read_text())
    assert prompt["3"]["class_type"] == "KSampler" and prompt["3"]["inputs"]["steps"] == 2
    assert prompt["3"]["inputs"]["model"] == ["4", 0]
    assert f"wrote {out}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["api.json"]  # no temporary file left


def test_export_without_out_prints_the_json(capsys):
    code = main.main(["export", str(FIXTURES / "txt2img_api.json"), "--format", "comfyui-api"])
    captured = capsys.readouterr()
    assert code == 0
    assert json.loads(captured.out)["9"]["class_type"] == "SaveImage"


def test_export_names_the_nodes_without_a_comfyui_equivalent(tmp_path, capsys):
    graph = Graph(build_registry())
    graph.add_node("GradientImage", 5)
    graph.add_node("SaveImage", 6)
    graph.connect(5, "IMAGE", 6, "images")
    path = tmp_path / "gradient.json"
    wf.save_workflow(graph, path)
    out = tmp_path / "api.json"
    code = main.main(["export", str(path), "--format", "comfyui-api", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.startswith(f"error: {path}: cannot export to ComfyUI's API format")
    assert "GradientImage (node 5)" in err and "Traceback" not in err


def test_export_refuses_an_out_in_a_missing_folder_or_a_folder(tmp_path, capsys):
    source = str(FIXTURES / "txt2img_ui04.json")
    for out, words in [(tmp_path / "no" / "a.json", "does not exist"), (tmp_path, "a folder")]:
        code = main.main(["export", source, "--format", "comfyui-api", "--out", str(out)])
        assert code == 2 and words in capsys.readouterr().err
