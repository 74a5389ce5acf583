"""The first screen: the window takes the screen on a first start, the shipped workflow's
links run between its nodes (never through them), and titles stay legible zoomed far out."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtTest import QTest

from core.graph.workflow import load_workflow
from nodes import build_registry
from nodeui.canvas import style as s
from tests.nodeui.canvas_helpers import make_canvas
from tests.nodeui.windows import new_window

LEFT = Qt.MouseButton.LeftButton
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


def _settle(qtbot, window, width: int) -> None:
    """Shows ``window`` as a window manager would give it ``width`` pixels on a first start."""
    window.show()
    qtbot.waitExposed(window)
    if width != window.width():
        window.showNormal()
        window.resize(width, 800)
    qtbot.waitUntil(lambda: window.width() == width)
    qtbot.wait(50)  # the columns are fitted after the resize, once the events settle


@pytest.mark.parametrize("width", [800, 1280, 1920])
def test_the_first_screens_side_panels_leave_the_canvas_most_of_the_window(qtbot, tmp_path, width):
    window = new_window(tmp_path, build_registry())
    qtbot.addWidget(window)
    _settle(qtbot, window, width - 4 if width == 800 else width)  # 800: the screen, maximised
    assert window.docks["library"].isVisible() and window.docks["viewer"].isVisible()
    canvas = window.view.viewport().width()
    assert canvas >= 0.55 * window.width(), (canvas, window.width())
    left = Qt.DockWidgetArea.LeftDockWidgetArea
    if width >= 1280:  # room for two columns at their preferred widths
        assert window.dockWidgetArea(window.docks["library"]) == left
        want_left, want_right = window.preferred_side_widths
        assert window.docks["library"].width() >= want_left - 2
        assert window.docks["inspector"].width() >= want_right - 2
    else:  # one readable column: the inspector's rows fit without a horizontal scroll bar
        inspector = window.docks["inspector"]
        tabbed = {dock.objectName() for dock in window.tabifiedDockWidgets(inspector)}
        assert tabbed == {"libraryDock", "queueDock", "sweepDock"}
        assert inspector.width() >= window.preferred_side_widths[1] - 2
    window.shutdown(persist=False)


def test_a_window_that_grows_after_it_shows_gets_back_two_columns(qtbot, tmp_path):
    """A window manager maximises the window some time after it shows."""
    window = new_window(tmp_path, build_registry())
    qtbot.addWidget(window)
    _settle(qtbot, window, 796)
    assert window.tabifiedDockWidgets(window.docks["inspector"])
    window.resize(1400, 800)
    qtbot.waitUntil(lambda: window.width() == 1400)
    left = Qt.DockWidgetArea.LeftDockWidgetArea
    qtbot.waitUntil(lambda: window.dockWidgetArea(window.docks["library"]) == left)
    assert window.tabifiedDockWidgets(window.docks["inspector"]) == []
    assert window.tabifiedDockWidgets(window.docks["queue"]) == [window.docks["sweep"]]
    assert window.view.viewport().width() >= 0.55 * window.width()
    window.shutdown(persist=False)


def test_panels_too_wide_for_a_small_window_start_hidden_and_the_view_menu_shows_them(
    qtbot, tmp_path
):
    window = new_window(tmp_path, build_registry())
    qtbot.addWidget(window)
    window.sweeps.panel.setMinimumWidth(400)  # as a large font would make it
    _settle(qtbot, window, 796)
    sweep = window.docks["sweep"]
    assert not sweep.isVisible() and not window.docks["queue"].isVisible()
    assert window.view.viewport().width() >= 0.55 * window.width()
    action = next(a for a in window.actions.panels_menu.actions() if a.text() == "Sweep")
    assert window.actions.panels_menu.menuAction() in window.actions.view_menu.actions()
    action.trigger()
    qtbot.waitUntil(sweep.isVisible)
    window.shutdown(persist=False)


def test_a_column_the_user_drags_keeps_its_width_and_the_saved_layout_is_restored(qtbot, tmp_path):
    first = new_window(tmp_path, build_registry())
    qtbot.addWidget(first)
    _settle(qtbot, first, 1280)
    inspector = first.docks["inspector"]
    before = inspector.width()
    # The separator between the canvas and the right column, dragged 120 px to the left.
    edge = first.mapFromGlobal(inspector.mapToGlobal(QPoint(0, inspector.height() // 2)))
    grab = edge - QPoint(2, 0)
    QTest.mousePress(first, LEFT, Qt.KeyboardModifier.NoModifier, grab)
    for step in range(1, 13):
        QTest.mouseMove(first, grab - QPoint(10 * step, 0))
        qtbot.wait(5)  # the layout follows each move as it comes
    QTest.mouseRelease(first, LEFT, Qt.KeyboardModifier.NoModifier, grab - QPoint(120, 0))
    qtbot.waitUntil(lambda: inspector.width() > before + 100)
    dragged = inspector.width()
    first.resize(1300, 800)  # no longer fitted: the user's width stays
    qtbot.wait(50)
    assert abs(inspector.width() - dragged) <= 2
    first.save_layout()
    first.shutdown(persist=False)
    again = new_window(tmp_path, build_registry())
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    qtbot.wait(50)
    assert abs(again.docks["inspector"].width() - dragged) <= 2
    again.shutdown(persist=False)
