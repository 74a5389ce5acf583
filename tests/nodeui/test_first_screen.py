"""The first screen: the window takes the screen on a first start, the shipped workflow's
links run between its nodes (never through them), and titles stay legible zoomed far out."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter

from core.graph.workflow import load_workflow
from nodes import build_registry
from nodeui.canvas import style as s
from tests.nodeui.canvas_helpers import make_canvas
from tests.nodeui.windows import new_window

DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "workflows" / "default.json"


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_a_first_start_opens_maximised(qtbot, tmp_path):
    window = new_window(tmp_path, build_registry())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.isMaximized()
    window.shutdown(persist=False)


def test_the_default_workflows_links_pass_no_node(qtbot, registry):
    graph = load_workflow(DEFAULT, registry).graph
    view, _ = make_canvas(qtbot, registry, graph)
    scene = view.graph_scene
    for (dst, name), item in scene.links.items():
        link = graph.link_to(dst, name)
        path = item.path() if hasattr(item, "path") else item._path
        for i in range(1, 40):
            point = path.pointAtPercent(i / 40)
            inside = [
                nid
                for nid, node in scene.nodes.items()
                if nid not in (link.src, link.dst)
                and node.sceneBoundingRect().adjusted(4, 4, -4, -4).contains(point)
            ]
            assert inside == [], (link, point, inside)


def test_titles_stay_legible_zoomed_far_out(qtbot, registry):
    graph = load_workflow(DEFAULT, registry).graph
    view, _ = make_canvas(qtbot, registry, graph)
    scene = view.graph_scene
    sampler = next(n.id for n in graph if n.type_id == "KSampler")
    body = scene.nodes[sampler].sceneBoundingRect()
    zoom = 0.25
    image = QImage(int(body.width() * zoom), int(body.height() * zoom), QImage.Format.Format_RGB32)
    image.fill(QColor("black"))
    painter = QPainter(image)
    scene.render(painter, QRectF(image.rect()), body)
    painter.end()
    text = s.TEXT
    light = sum(
        1
        for y in range(image.height() // 2)
        for x in range(image.width())
        if QColor(image.pixel(x, y)).lightness() > text.lightness() - 40
    )
    assert light > 20  # the title's letters, at about s.FAR_TITLE_PX on screen
