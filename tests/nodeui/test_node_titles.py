"""Nodes of one kind can be told apart: titles are shortened in the middle (after the node
widened as far as it may), and an untitled prompt shows its first line under the title."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.graph.model import Graph
from nodes import build_registry
from nodeui.canvas import style as s
from tests.nodeui.canvas_helpers import LEFT, NO_MODS, at, make_canvas


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_two_new_prompt_nodes_show_their_full_title_and_their_prompts_first_line(qtbot, registry):
    graph = Graph(registry)
    first = graph.add_node("CLIPTextEncode", pos=(0, 0)).id
    second = graph.add_node("CLIPTextEncode", pos=(0, 300)).id
    view, _ = make_canvas(qtbot, registry, graph)
    items = [view.graph_scene.nodes[first], view.graph_scene.nodes[second]]
    assert [item.title_text for item in items] == ["CLIP Text Encode (Prompt)"] * 2
    for item, typed in zip(items, ("a red circle\non the left", "blurry"), strict=True):
        row = item.layout.editor("text")
        QTest.mouseDClick(
            view.viewport(), LEFT, NO_MODS, at(view, item.mapToScene(row.rect.center()))
        )
        editor = view.graph_scene.inline_editor
        QTest.keyClicks(editor.widget, typed.split("\n")[0])
        QTest.keyClick(editor.widget, Qt.Key.Key_Return)
        QTest.keyClicks(editor.widget, typed.split("\n")[1] if "\n" in typed else "")
        QTest.keyClick(editor.widget, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert [item.subtitle_text for item in items] == ["a red circle", "blurry"]
    assert items[0].layout.title_rect.height() == s.TITLE_HEIGHT + s.SUBTITLE_HEIGHT


def test_a_title_too_long_for_the_widest_node_loses_its_middle(qtbot, registry):
    graph = Graph(registry)
    title = "Positive prompt for the first pass of the castle scene, " * 2 + "final"
    node = graph.add_node("CLIPTextEncode", title=title, pos=(0, 0)).id
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[node]
    assert item.layout.width == s.MAX_AUTO_WIDTH and item.layout.subtitle == ""
    assert item.title_text.startswith("Positive prompt") and item.title_text.endswith("final")
    assert "…" in item.title_text


def test_a_sliders_label_stays_bright_over_its_fill(qtbot, registry):
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QImage, QPainter

    graph = Graph(registry)
    sampler = graph.add_node("KSampler", params={"denoise": 1.0}, pos=(0, 0)).id
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[sampler]
    row = item.layout.editor("denoise")
    label = QRectF(row.rect.left() + 8, row.rect.top(), 50, row.rect.height())
    area = item.mapRectToScene(label)
    image = QImage(int(area.width() * 2), int(area.height() * 2), QImage.Format.Format_RGB32)
    painter = QPainter(image)
    view.graph_scene.render(painter, QRectF(image.rect()), area)
    painter.end()
    brightest = max(
        QColor(image.pixel(x, y)).lightness()
        for y in range(image.height())
        for x in range(image.width())
    )
    assert brightest >= s.TEXT.lightness() - 30  # the label, not dimmed into the blue fill
