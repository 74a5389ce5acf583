"""File → Export to ComfyUI (API format): writes where the save dialog says, or names the nodes
that keep the graph from being exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QFileDialog, QMessageBox

from core.graph.model import Graph
from core.graph.workflow import save_workflow
from nodes import build_registry
from nodeui.window import MainWindow
from tests.nodeui.windows import new_window

FIXTURES = Path(__file__).resolve().parents[1] / "interop" / "fixtures"


@pytest.fixture
def window(qtbot, tmp_path):
    made = new_window(tmp_path)
    qtbot.addWidget(made)
    yield made
    made.shutdown(persist=False)


def _file_menu_action(window: MainWindow, name: str):
    [file_menu] = [a.menu() for a in window.menuBar().actions() if a.text() == "&File"]
    [action] = [a for a in file_menu.actions() if a.objectName() == f"action_{name}"]
    return action


def test_file_menu_exports_the_api_format_where_the_dialog_says(window, monkeypatch, tmp_path):
    assert window.files.open(FIXTURES / "txt2img_ui04.json", ask=False)
    asked = []

    def choose(parent, caption, start, filters):
        asked.append((caption, start, filters))
        return str(tmp_path / "for_comfy"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", choose)
    _file_menu_action(window, "export_comfy_api").trigger()
    assert asked[0][0] == "Export to ComfyUI (API format)" and "*.json" in asked[0][2]
    prompt = json.loads((tmp_path / "for_comfy.json").read_text())
    assert prompt["3"]["class_type"] == "KSampler"
    assert prompt["8"]["inputs"] == {"samples": ["3", 0], "vae": ["4", 2]}
    assert "Exported" in window.statusBar().currentMessage()


def test_nodes_without_a_comfyui_equivalent_are_named_and_nothing_is_asked(
    window, monkeypatch, tmp_path
):
    graph = Graph(build_registry())
    graph.add_node("GradientImage", 3)
    path = tmp_path / "gradient.json"
    save_workflow(graph, path)
    assert window.files.open(path, ask=False)
    errors, asked = [], []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: errors.append(args[1:3]))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: asked.append(a) or ("", ""))
    _file_menu_action(window, "export_comfy_api").trigger()
    [(title, message)] = errors
    assert title == "Cannot export to ComfyUI" and "GradientImage (node 3)" in message
    assert asked == [] and not list(tmp_path.glob("*_api.json"))
