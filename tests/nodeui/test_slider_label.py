"""A slider's label stays readable whatever its fill: a low cfg's fill ends inside the word."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter

from core.graph.model import Graph
from nodes import build_registry
from nodeui.canvas import style as s
from tests.nodeui.canvas_helpers import make_canvas


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def brightest(view, item, local: QRectF) -> int:
    area = item.mapRectToScene(local)
    image = QImage(int(area.width() * 4), int(area.height() * 4), QImage.Format.Format_RGB32)
    painter = QPainter(image)
    view.graph_scene.render(painter, QRectF(image.rect()), area)
    painter.end()
    return max(
        QColor(image.pixel(x, y)).lightness()
        for y in range(image.height())
        for x in range(image.width())
    )


def test_a_label_the_fill_only_reaches_is_bright_past_the_fill_too(qtbot, registry):
    graph = Graph(registry)
    sampler = graph.add_node("KSampler", params={"cfg": 8.0}, pos=(0, 0)).id
    view, _ = make_canvas(qtbot, registry, graph)
    item = view.graph_scene.nodes[sampler]
    row = item.layout.editor("cfg")
    texts = item._texts[item.layout.editors.index(row)]
    fill_end = row.rect.left() + row.rect.width() * texts.fraction
    label_end = row.rect.left() + 8 + s.metrics().horizontalAdvance("cfg")
    assert row.rect.left() + 8 < fill_end < label_end - 6  # the fill ends inside the word
    past_fill = QRectF(fill_end + 2, row.rect.top(), label_end - fill_end - 2, row.rect.height())
    assert brightest(view, item, past_fill) >= s.TEXT.lightness() - 30
