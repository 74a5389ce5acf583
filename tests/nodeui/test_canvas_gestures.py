"""Real mouse and keyboard gestures on the view's viewport, checked against the graph and the
undo stack."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from core.graph.commands import AddNode, Connect
from nodes import build_registry
from nodeui import undo
from nodeui.canvas import menus
from tests.nodeui.canvas_helpers import canvas_with, click, drag
from tests.nodeui.canvas_helpers import make_canvas as _make_canvas

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture
def canvas(qtbot, registry):
    """A checkpoint loader at (0, 0) and a text encoder at (400, 0), not linked."""
    return canvas_with(qtbot, registry, ("LoadCheckpoint", (0, 0)), ("CLIPTextEncode", (400, 0)))


def title_point(item) -> QPointF:
    return item.mapToScene(QPointF(item.layout.width / 2, 12))


def test_drag_output_to_compatible_input_connects(canvas):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    start = scene.nodes[1].output_scene_pos("CLIP")
    end = scene.nodes[2].input_scene_pos("clip")
    drag(view, start, end)
    link = graph.link_to(2, "clip")
    assert link is not None and (link.src, link.src_output) == (1, "CLIP")
    assert stack.count() == 1 and (2, "clip") in scene.links
    stack.undo()
    assert graph.link_to(2, "clip") is None and (2, "clip") not in scene.links


def test_drag_to_incompatible_input_refuses_with_reason(canvas, qtbot):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    messages: list[str] = []
    scene.statusMessage.connect(messages.append)
    start = scene.nodes[1].output_scene_pos("MODEL")
    end = scene.nodes[2].input_scene_pos("clip")
    drag(view, start, end)
    assert graph.link_to(2, "clip") is None and stack.count() == 0
    assert messages and "MODEL" in messages[-1] and "CLIP" in messages[-1]


def test_highlights_compatible_sockets_while_dragging(canvas):
    view, _ = canvas
    scene = view.graph_scene
    vp = view.viewport()
    start = scene.nodes[1].output_scene_pos("CLIP")
    QTest.mousePress(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view.mapFromScene(start)
    )
    QTest.mouseMove(vp, view.mapFromScene(start + QPointF(40, 40)))
    assert scene.nodes[2].highlight == frozenset({"clip"})
    QTest.mouseRelease(
        vp,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view.mapFromScene(scene.nodes[2].input_scene_pos("clip")),
    )
    assert scene.nodes[2].highlight == frozenset()


def test_drop_on_occupied_input_replaces_and_detach_reroutes(canvas, qtbot):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("CLIPSetLastLayer", (0, 400), node_id=3))
    undo.push(stack, graph, Connect(1, "CLIP", 2, "clip"))
    undo.push(stack, graph, Connect(1, "CLIP", 3, "clip"))
    count = stack.count()
    drag(view, scene.nodes[3].output_scene_pos("CLIP"), scene.nodes[2].input_scene_pos("clip"))
    assert graph.link_to(2, "clip").src == 3 and stack.count() == count + 1
    stack.undo()
    assert graph.link_to(2, "clip").src == 1
    # Picking the link up from its input and dropping it on empty canvas removes it.
    drag(view, scene.nodes[2].input_scene_pos("clip"), QPointF(250, 500))
    assert graph.link_to(2, "clip") is None
    assert not view.palette.isVisible()


def test_release_on_empty_canvas_opens_filtered_palette_and_connects(canvas, qtbot):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    drop = QPointF(300, 450)
    drag(view, scene.nodes[1].output_scene_pos("VAE"), drop)
    palette = view.palette
    assert palette.isVisible()
    offered = {
        palette.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(palette.list.count())
    }
    assert "VAEDecode" in offered and "CLIPTextEncode" not in offered
    for type_id in offered:
        spec = graph.registry.get(type_id)
        assert any(i.link_type in ("VAE", "*") for i in spec.inputs)
    QTest.keyClicks(palette.search, "vae decode")
    assert palette.current_type() == "VAEDecode"
    QTest.keyClick(palette.search, Qt.Key.Key_Return)
    assert not palette.isVisible()
    (new_id,) = set(graph.nodes) - {1, 2}
    assert graph.node(new_id).type_id == "VAEDecode"
    assert graph.node(new_id).pos == (drop.x(), drop.y())
    assert graph.link_to(new_id, "vae").src == 1
    assert stack.count() == 1  # node and link are one step
    stack.undo()
    assert set(graph.nodes) == {1, 2}


def test_palette_keyboard_navigation_and_escape(canvas, qtbot):
    view, stack = canvas
    view.open_palette(QPointF(100, 400))
    palette = view.palette
    assert palette.isVisible() and palette.list.count() > 40
    QTest.keyClicks(palette.search, "latent")
    first = palette.current_type()
    QTest.keyClick(palette.search, Qt.Key.Key_Down)
    assert palette.current_type() != first
    QTest.keyClick(palette.search, Qt.Key.Key_Escape)
    assert not palette.isVisible() and stack.count() == 0


def test_rubber_band_selects_nodes_inside(canvas):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("Int", (0, 500), node_id=3))
    drag(view, QPointF(-60, -40), QPointF(700, 200))
    assert scene.selected_node_ids() == [1, 2]
    drag(view, QPointF(-60, 450), QPointF(300, 650), mods=Qt.KeyboardModifier.ShiftModifier)
    assert scene.selected_node_ids() == [1, 2, 3]
    click(view, title_point(scene.nodes[2]), mods=CTRL)
    assert scene.selected_node_ids() == [1, 3]
    click(view, QPointF(900, 600))
    assert scene.selected_node_ids() == []


def test_move_is_one_undo_step_and_undo_restores(canvas):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    start = title_point(scene.nodes[2])
    drag(view, start, start + QPointF(120, 80), steps=10)
    assert graph.node(2).pos == (520.0, 80.0)
    assert scene.nodes[2].pos() == QPointF(520, 80)
    assert stack.count() == 1
    stack.undo()
    assert graph.node(2).pos == (400.0, 0.0) and scene.nodes[2].pos() == QPointF(400, 0)
    # Two drags are two steps.
    drag(view, start, start + QPointF(10, 0))
    drag(view, start + QPointF(10, 0), start + QPointF(30, 0))
    assert stack.count() == 2


def test_ctrl_g_groups_and_group_title_drag_moves_members(canvas):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    scene.select_nodes([1, 2])
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_G, CTRL)
    assert len(graph.groups) == 1
    (group,) = graph.groups.values()
    assert group.nodes == {1, 2} and stack.count() == 1
    item = scene.groups[group.id]
    title = item.mapToScene(QPointF(40, 10))
    drag(view, title, title + QPointF(50, 60))
    assert graph.node(1).pos == (50.0, 60.0) and graph.node(2).pos == (450.0, 60.0)
    assert graph.groups[group.id].rect[0] == pytest.approx(group.rect[0] + 50)
    assert stack.count() == 2
    stack.undo()
    assert graph.node(1).pos == (0.0, 0.0) and graph.groups[group.id].rect == group.rect


def test_copy_paste_of_several_nodes_is_one_step(canvas, qtbot):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("CLIPTextEncode", (400, 300), node_id=3))
    undo.push(stack, graph, Connect(1, "CLIP", 2, "clip"))
    undo.push(stack, graph, Connect(1, "CLIP", 3, "clip"))
    count = stack.count()
    scene.select_nodes([1, 2, 3])
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_C, CTRL)
    QTest.keyClick(view, Qt.Key.Key_V, CTRL)
    new = set(graph.nodes) - {1, 2, 3}
    assert len(new) == 3 and stack.count() == count + 1
    assert sum(1 for lk in graph.links if lk.src in new) == 2
    assert scene.selected_node_ids() == sorted(new)
    stack.undo()
    assert set(graph.nodes) == {1, 2, 3}
    # Ctrl+Shift+V keeps the links that fed the copied nodes from outside.
    scene.select_nodes([2])
    QTest.keyClick(view, Qt.Key.Key_C, CTRL)
    QTest.keyClick(view, Qt.Key.Key_V, CTRL | Qt.KeyboardModifier.ShiftModifier)
    (pasted,) = set(graph.nodes) - {1, 2, 3}
    assert graph.link_to(pasted, "clip").src == 1
    QTest.keyClick(view, Qt.Key.Key_D, CTRL)
    assert len(graph.nodes) == 5


def test_drag_number_is_one_undo_step(qtbot, registry):
    view, stack = canvas_with(qtbot, registry, ("KSampler", (100, 0)))
    scene, graph = view.graph_scene, view.graph_scene.graph
    item = scene.nodes[1]
    row = item.layout.editor("steps")
    start = item.mapToScene(row.rect.center())
    before = graph.node(1).params["steps"]
    drag(view, start, start + QPointF(61, 0), steps=8)
    assert graph.node(1).params["steps"] == before + 10
    assert stack.count() == 1
    stack.undo()
    assert graph.node(1).params["steps"] == before
    # A click on the right arrow steps once.
    click(view, item.mapToScene(QPointF(row.rect.right() - 5, row.rect.center().y())))
    assert graph.node(1).params["steps"] == before + 1


def test_slider_drag_is_one_undo_step(qtbot, registry):
    view, stack = canvas_with(qtbot, registry, ("KSampler", (100, 0)))
    scene, graph = view.graph_scene, view.graph_scene.graph
    item = scene.nodes[1]
    row = item.layout.editor("denoise")
    assert row.kind == "slider"
    y = row.rect.center().y()
    drag(
        view,
        item.mapToScene(QPointF(row.rect.right() - 2, y)),
        item.mapToScene(QPointF(row.rect.center().x(), y)),
    )
    assert graph.node(1).params["denoise"] == pytest.approx(0.5, abs=0.02)
    assert stack.count() == 1


def test_toggles_seed_mode_collapse_and_shortcuts(qtbot, registry):
    view, stack = _make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("KSamplerAdvanced", (100, 0), node_id=1))
    item = scene.nodes[1]
    toggle = item.layout.editor("add_noise")
    before = graph.node(1).params["add_noise"]
    click(view, item.mapToScene(toggle.rect.center()))
    assert graph.node(1).params["add_noise"] is (not before)
    seed = item.layout.editor("noise_seed")
    click(view, item.mapToScene(seed.mode_rect.center()))
    assert graph.node(1).ui["control_after_run"]["noise_seed"] == "randomize"
    scene.select_nodes([1])
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_B, CTRL)
    assert graph.node(1).bypassed
    QTest.keyClick(view, Qt.Key.Key_M, CTRL)
    assert graph.node(1).muted
    QTest.mouseDClick(
        view.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view.mapFromScene(title_point(item)),
    )
    assert graph.node(1).collapsed
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert 1 not in graph.nodes


def test_double_click_on_link_adds_reroute(canvas):
    view, stack = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, Connect(1, "CLIP", 2, "clip"))
    mid = scene.links[(2, "clip")].midpoint()
    QTest.mouseDClick(
        view.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view.mapFromScene(mid),
    )
    (reroute,) = set(graph.nodes) - {1, 2}
    assert graph.node(reroute).type_id == "Reroute"
    assert graph.link_to(2, "clip").src == reroute and graph.link_to(reroute, "value").src == 1


def test_typing_a_value_in_the_inline_editor(qtbot, registry):
    view, stack = _make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("KSampler", (100, 0), node_id=1))
    item = scene.nodes[1]
    row = item.layout.editor("cfg")
    QTest.mouseDClick(
        view.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view.mapFromScene(item.mapToScene(row.rect.center())),
    )
    editor = scene.inline_editor
    assert editor is not None
    editor.widget.setText("6.5")
    editor.commit()
    assert graph.node(1).params["cfg"] == 6.5 and scene.inline_editor is None


def test_pan_with_middle_drag_and_space_drag(canvas, qtbot):
    view, stack = canvas
    vp = view.viewport()
    before = view.mapToScene(vp.rect().center())
    QTest.mousePress(
        vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(600, 400)
    )
    QTest.mouseMove(vp, QPoint(500, 350))
    QTest.mouseRelease(
        vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(500, 350)
    )
    after = view.mapToScene(vp.rect().center())
    assert (after - before).x() == pytest.approx(100, abs=2)
    assert (after - before).y() == pytest.approx(50, abs=2)
    view.setFocus()
    QTest.keyPress(view, Qt.Key.Key_Space)
    QTest.mousePress(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(600, 400)
    )
    QTest.mouseMove(vp, QPoint(650, 400))
    QTest.mouseRelease(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(650, 400)
    )
    QTest.keyRelease(view, Qt.Key.Key_Space)
    assert view.mapToScene(vp.rect().center()).x() == pytest.approx(after.x() - 50, abs=2)
    assert stack.count() == 0 and view.graph_scene.selected_node_ids() == []


def test_wheel_zooms_at_the_cursor(canvas):
    view, _ = canvas
    vp = view.viewport()
    cursor = QPoint(300, 200)
    under = view.mapToScene(cursor)
    event = QWheelEvent(
        QPointF(cursor),
        QPointF(vp.mapToGlobal(cursor)),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, event)
    assert view.zoom() == pytest.approx(1.15**2, rel=1e-3)
    moved = view.mapToScene(cursor) - under
    assert abs(moved.x()) < 2 and abs(moved.y()) < 2


def test_minimap_click_centres_the_view(canvas):
    view, _ = canvas
    minimap = view.minimap
    minimap.rebuild()
    target = minimap._to_map(view.graph_scene.nodes[2].sceneBoundingRect()).center()
    QTest.mouseClick(
        minimap, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, target.toPoint()
    )
    centre = view.mapToScene(view.viewport().rect().center())
    node_centre = view.graph_scene.nodes[2].sceneBoundingRect().center()
    assert abs(centre.x() - node_centre.x()) < 40 and abs(centre.y() - node_centre.y()) < 40


def test_tab_opens_palette_and_context_menus_edit(canvas):
    view, _ = canvas
    scene, graph = view.graph_scene, view.graph_scene.graph
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Tab)
    assert view.palette.isVisible()
    QTest.keyClick(view.palette.search, Qt.Key.Key_Escape)
    scene.select_nodes([1, 2])
    gid = view.group_selection()
    item = scene.groups[gid]
    menu = menus.build_menu(scene, item.mapToScene(QPointF(30, 10)))
    labels = [a.text() for a in menu.actions()]
    assert "Ungroup" in labels
    next(a for a in menu.actions() if a.text() == "Ungroup").trigger()
    assert not graph.groups and gid not in scene.groups
    menu = menus.build_menu(scene, scene.nodes[1].mapToScene(QPointF(40, 40)))
    next(a for a in menu.actions() if a.text().startswith("Bypass")).trigger()
    assert graph.node(1).bypassed and graph.node(2).bypassed  # the whole selection
