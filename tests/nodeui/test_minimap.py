"""The minimap stays out of the graph's way: dragged to another corner, closed by its × or
from the View menu (both remembered in the settings), see-through while the pointer works
near it. Real mouse events on the minimap and the view."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from core.graph.model import Graph
from nodes import build_registry
from nodeui.canvas import minimap as mm
from nodeui.settings import open_settings
from tests.nodeui import shell_fakes
from tests.nodeui.canvas_helpers import LEFT, NO_MODS, make_canvas
from tests.nodeui.windows import new_window


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture
def canvas(qtbot, registry, tmp_path):
    graph = Graph(registry)
    graph.add_node("KSampler", pos=(0, 0))
    view, _ = make_canvas(qtbot, registry, graph)
    store = open_settings(tmp_path / "settings.ini")
    view.minimap.use_settings(store)
    return view, store


def header_point(minimap) -> QPoint:
    return QPoint(minimap.width() // 2 - 30, mm.HEADER // 2)


def test_dragging_the_header_moves_the_minimap_to_the_nearest_corner(qtbot, canvas, registry):
    view, store = canvas
    minimap = view.minimap
    assert minimap.corner == "bottom-right"
    bottom_right = minimap.pos()
    grab = header_point(minimap)
    QTest.mousePress(minimap, LEFT, NO_MODS, grab)
    for step in range(1, 6):  # most of the way to the top-left
        QTest.mouseMove(minimap, grab - QPoint(180 * step, 110 * step))
    QTest.mouseRelease(minimap, LEFT, NO_MODS, grab - QPoint(900, 550))
    assert minimap.corner == "top-left"
    assert minimap.pos() == QPoint(mm.MARGIN, mm.MARGIN)
    assert minimap.pos() != bottom_right
    view.resize(1000, 700)  # stays in its corner when the view changes size
    qtbot.waitUntil(lambda: minimap.pos() == QPoint(mm.MARGIN, mm.MARGIN))
    # a new view with the same settings puts it in the same corner
    other, _ = make_canvas(qtbot, registry)
    other.minimap.use_settings(store)
    assert other.minimap.corner == "top-left"


def test_a_drag_in_the_map_still_pans_the_view_and_leaves_it_in_place(canvas):
    view, _ = canvas
    minimap = view.minimap
    minimap.rebuild()
    where = minimap.pos()
    before = view.mapToScene(view.viewport().rect().center())
    QTest.mouseClick(minimap, LEFT, NO_MODS, QPoint(20, minimap.height() - 20))
    assert view.mapToScene(view.viewport().rect().center()) != before
    assert minimap.pos() == where and minimap.corner == "bottom-right"


def test_the_close_button_hides_it_and_the_choice_is_remembered(qtbot, canvas, registry):
    view, store = canvas
    minimap = view.minimap
    close = minimap.close_rect().center().toPoint()
    QTest.mouseClick(minimap, LEFT, NO_MODS, close)
    assert not minimap.isVisible() and not minimap.toggle_action.isChecked()
    other, _ = make_canvas(qtbot, registry)
    other.minimap.use_settings(store)
    assert not other.minimap.isVisible()
    other.minimap.toggle_action.trigger()  # View ▸ Show Minimap brings it back
    assert other.minimap.isVisible()
    assert open_settings(store.fileName()).value(mm.SHOWN_KEY) in (True, "true")


def test_the_view_menu_toggles_the_minimap(qtbot, tmp_path):
    window = new_window(tmp_path, shell_fakes.registry())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    try:
        titles = [a.text() for a in window.actions.view_menu.actions()]
        assert "Show &Minimap" in titles
        action = window.view.minimap.toggle_action
        assert window.view.minimap.isVisible()
        action.trigger()
        assert not window.view.minimap.isVisible()
        assert open_settings(tmp_path / "settings.ini").value(mm.SHOWN_KEY) in (False, "false")
    finally:
        window.shutdown(persist=False)


def test_it_turns_see_through_while_the_pointer_works_near_it(canvas):
    view, _ = canvas
    minimap = view.minimap
    vp = view.viewport()
    corner = minimap.geometry().topLeft()
    far = vp.mapFromParent(corner - QPoint(300, 300))
    near = vp.mapFromParent(corner - QPoint(20, 20))
    QTest.mouseMove(vp, far)
    assert not minimap.faded
    QTest.mouseMove(vp, near)
    assert minimap.faded
    QTest.mouseMove(vp, far)
    assert not minimap.faded


def test_a_faded_minimap_is_drawn_see_through(canvas):
    view, _ = canvas
    minimap = view.minimap
    minimap.rebuild()
    spot = QPoint(minimap.width() // 2, minimap.height() // 2)

    def lightness() -> int:
        return minimap.grab().toImage().pixelColor(spot).lightness()

    opaque = lightness()
    minimap.pointer_at(minimap.geometry().topLeft() - QPoint(10, 10))
    assert minimap.faded
    assert lightness() != opaque


def test_a_minimap_corner_must_be_one_of_the_four(canvas):
    view, _ = canvas
    with pytest.raises(ValueError, match="minimap corner 'middle'"):
        view.minimap.set_corner("middle")


def covered_nodes(view) -> list[int]:
    """The nodes the minimap hides, at least in part."""
    minimap = view.minimap
    box = view.viewport().mapFromParent(minimap.geometry().topLeft())
    shown = minimap.geometry().translated(box - minimap.geometry().topLeft())
    return [
        nid
        for nid, item in view.graph_scene.nodes.items()
        if view.mapFromScene(item.sceneBoundingRect()).boundingRect().intersects(shown)
    ]


@pytest.mark.parametrize("corner", mm.CORNERS)
def test_fit_to_window_leaves_the_minimap_no_node_to_cover(qtbot, registry, corner):
    graph = Graph(registry)
    for row in range(2):  # about the viewport's shape: fitted, it would fill it
        for col in range(5):
            graph.add_node("KSampler", pos=(col * 300, row * 500))
    view, _ = make_canvas(qtbot, registry, graph)
    view.minimap.set_corner(corner)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Home)
    assert view.minimap.isVisible() and covered_nodes(view) == []
    framed = view.zoom()
    view.minimap.set_shown(False)
    QTest.keyClick(view, Qt.Key.Key_Home)
    assert view.zoom() > framed  # hidden, it needs no room


def test_a_closed_minimap_redraws_only_once_shown_again(qtbot, canvas):
    view, _ = canvas
    minimap = view.minimap
    minimap.set_shown(False)
    graph = view.graph_scene.graph
    graph.add_node("KSampler", pos=(600, 0))
    assert not minimap._timer.isActive()  # no work for a map nobody sees
    minimap.set_shown(True)
    qtbot.waitUntil(lambda: not minimap._timer.isActive(), timeout=2000)
    assert minimap._to_map(view.graph_scene.nodes[2].sceneBoundingRect()).width() > 1.5
