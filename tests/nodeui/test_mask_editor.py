"""The Mask Editor, driven with real mouse and key events: strokes, eraser, its own undo,
invert, clear, fill, feather; OK writes the mask file and is one graph undo step; the node's
MASK output is what was painted."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtTest import QTest

from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from nodeui.canvas import GraphScene
from nodeui.mask_editor import MaskEditor, mask_stem, open_mask_editor, read_picture

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NONE = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
W, H = 64, 48


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture
def picture(tmp_path):
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[..., 2] = 200
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    return path


def _editor(qtbot, picture, mask=None) -> MaskEditor:
    editor = MaskEditor(read_picture(picture), mask)
    qtbot.addWidget(editor)
    editor.resize(760, 700)
    editor.show()
    qtbot.waitExposed(editor)
    return editor


def _at(editor: MaskEditor, x: float, y: float) -> QPoint:
    """The canvas point over picture pixel (x, y)'s centre."""
    return editor.canvas.from_picture(QPointF(x + 0.5, y + 0.5)).toPoint()


def _stroke(editor: MaskEditor, points, button=LEFT) -> None:
    canvas = editor.canvas
    QTest.mousePress(canvas, button, NONE, _at(editor, *points[0]))
    for point in points[1:]:
        # QTest's move carries no buttons; the canvas follows its own press state
        QTest.mouseMove(canvas, _at(editor, *point))
    QTest.mouseRelease(canvas, button, NONE, _at(editor, *points[-1]))


def test_a_stroke_paints_a_line_as_wide_as_the_brush(qtbot, picture):
    editor = _editor(qtbot, picture)
    editor.hardness.setValue(100)
    editor.size.setValue(6)
    _stroke(editor, [(10, 20), (20, 20), (30, 20), (40, 20)])
    mask = editor.canvas.mask
    assert mask[20, 10:41].min() == 1.0  # the whole line, between the stamps too
    assert mask[18:23, 25].min() == 1.0  # 6 px wide, give or take the pointer's rounding
    assert mask[:17, 25].max() == 0.0 and mask[25:, 25].max() == 0.0
    assert mask[:, 50:].max() == 0.0 and mask[:10].max() == 0.0


def test_softer_brushes_fade_towards_their_edge(qtbot, picture):
    editor = _editor(qtbot, picture)
    editor.size.setValue(20)
    editor.hardness.setValue(0)
    _stroke(editor, [(32, 24)])
    mask = editor.canvas.mask
    assert mask[24, 32] > 0.9 and 0.0 < mask[24, 39] < 0.5 and mask[24, 43] == 0.0


def test_eraser_and_right_button_erase(qtbot, picture):
    editor = _editor(qtbot, picture)
    editor.hardness.setValue(100)
    editor.size.setValue(8)
    editor.fill_button.click()
    assert editor.canvas.mask.min() == 1.0
    QTest.mouseClick(editor.eraser, LEFT)
    assert editor.eraser.isChecked()
    _stroke(editor, [(10, 10), (20, 10)])
    assert editor.canvas.mask[10, 10:21].max() == 0.0
    QTest.mouseClick(editor.brush, LEFT)
    _stroke(editor, [(40, 30), (50, 30)], button=RIGHT)  # right button erases with the brush on
    assert editor.canvas.mask[30, 40:51].max() == 0.0 and editor.canvas.mask[40, 5] == 1.0


def test_undo_and_redo_inside_the_editor_with_ctrl_z(qtbot, picture):
    editor = _editor(qtbot, picture)
    editor.hardness.setValue(100)
    _stroke(editor, [(10, 10), (20, 10)])
    first = editor.canvas.mask.copy()
    _stroke(editor, [(10, 40), (30, 40)])
    assert editor.canvas.mask[40, 20] == 1.0
    editor.canvas.setFocus()
    QTest.keyClick(editor, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(editor.canvas.mask, first)  # one stroke back, not one stamp
    QTest.keyClick(editor, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert editor.canvas.mask[40, 20] == 1.0
    QTest.keyClick(editor, Qt.Key.Key_Z, CTRL)
    QTest.keyClick(editor, Qt.Key.Key_Z, CTRL)
    assert editor.canvas.mask.max() == 0.0 and not editor.undo_button.isEnabled()


def test_invert_clear_and_fill_are_undoable_steps(qtbot, picture):
    editor = _editor(qtbot, picture)
    editor.hardness.setValue(100)
    _stroke(editor, [(5, 5)])
    painted = editor.canvas.mask.copy()
    QTest.mouseClick(editor.invert_button, LEFT)
    assert np.array_equal(editor.canvas.mask, 1.0 - painted)
    QTest.mouseClick(editor.clear_button, LEFT)
    assert editor.canvas.mask.max() == 0.0
    QTest.mouseClick(editor.fill_button, LEFT)
    assert editor.canvas.mask.min() == 1.0
    for expected in (np.zeros_like(painted), 1.0 - painted, painted):
        QTest.mouseClick(editor.undo_button, LEFT)
        assert np.array_equal(editor.canvas.mask, expected)


def test_feather_softens_the_shown_and_saved_mask(qtbot, picture):
    editor = _editor(qtbot, picture)
    editor.hardness.setValue(100)
    editor.size.setValue(16)
    _stroke(editor, [(32, 24)])
    hard = editor.result_mask()
    assert set(np.unique(hard)) <= {0.0, 1.0}
    assert editor.canvas._overlay.pixelColor(43, 24).alpha() == 0
    editor.feather.setValue(4)
    soft = editor.result_mask()
    edge = soft[24, 38:44]
    assert ((edge > 0.05) & (edge < 0.95)).all() and soft[24, 32] > 0.8
    assert editor.canvas._overlay.pixelColor(43, 24).alpha() > 0  # the preview shows it
    assert np.array_equal(editor.canvas.mask, hard)  # the strokes themselves stay sharp


def test_ok_writes_the_mask_file_and_one_graph_undo_step_restores_the_node(
    qtbot, picture, registry
):
    graph = Graph(registry)
    node = graph.add_node("LoadImage", params={"image": str(picture)})
    stack = QUndoStack()
    scene = GraphScene(graph, registry, stack)

    editor = open_mask_editor(scene, node.id)
    qtbot.addWidget(editor)
    qtbot.waitExposed(editor)
    editor.hardness.setValue(100)
    editor.size.setValue(10)
    _stroke(editor, [(12, 12), (30, 12), (30, 30)])
    painted = editor.result_mask()
    QTest.mouseClick(editor.buttons.button(editor.buttons.StandardButton.Ok), LEFT)

    saved = picture.parent / "photo.mask.png"
    assert graph.node(node.id).params["mask"] == str(saved) and saved.is_file()
    on_disk = np.asarray(Image.open(saved), dtype=np.float32) / 255.0
    assert on_disk.shape == (H, W) and np.array_equal(on_disk, painted)
    assert stack.count() == 1

    # The node's MASK output, through the executor, is the painted mask.
    report = Executor(registry).run(graph, [node.id])
    assert report.status == "ok"
    assert np.array_equal(report.outputs[node.id][1][0].numpy(), painted)

    # A second edit writes a new file, so undoing it finds the first one unchanged.
    second = open_mask_editor(scene, node.id)
    qtbot.addWidget(second)
    assert np.array_equal(second.canvas.mask, painted)  # it starts from the node's mask
    second.invert_button.click()
    second.buttons.button(second.buttons.StandardButton.Ok).click()
    assert graph.node(node.id).params["mask"] == str(picture.parent / "photo.mask_00001.png")
    stack.undo()
    assert graph.node(node.id).params["mask"] == str(saved)
    assert np.array_equal(np.asarray(Image.open(saved), dtype=np.float32) / 255.0, painted)
    stack.undo()
    assert graph.node(node.id).params["mask"] == ""


def test_cancel_changes_nothing(qtbot, picture, registry):
    graph = Graph(registry)
    node = graph.add_node("LoadImage", params={"image": str(picture)})
    stack = QUndoStack()
    editor = open_mask_editor(GraphScene(graph, registry, stack), node.id)
    qtbot.addWidget(editor)
    _stroke(editor, [(5, 5), (20, 20)])
    editor.buttons.button(editor.buttons.StandardButton.Cancel).click()
    assert graph.node(node.id).params["mask"] == "" and stack.count() == 0
    assert not (picture.parent / "photo.mask.png").exists()


def test_load_mask_nodes_get_the_painted_file_as_their_red_channel(qtbot, picture, registry):
    graph = Graph(registry)
    node = graph.add_node("LoadImageMask", params={"image": str(picture), "channel": "alpha"})
    stack = QUndoStack()
    editor = open_mask_editor(GraphScene(graph, registry, stack), node.id)
    qtbot.addWidget(editor)
    editor.fill_button.click()
    editor.buttons.button(editor.buttons.StandardButton.Ok).click()
    params = graph.node(node.id).params
    assert params["image"] == str(picture.parent / "photo.mask.png") and params["channel"] == "red"
    mask = Executor(registry).run(graph, [node.id]).outputs[node.id][0]
    assert mask.min().item() == 1.0
    stack.undo()
    assert graph.node(node.id).params["image"] == str(picture)
    assert graph.node(node.id).params["channel"] == "alpha"


def test_a_missing_picture_is_a_clear_error(registry, tmp_path):
    from nodeui.mask_editor import MaskEditorError

    graph = Graph(registry)
    node = graph.add_node("LoadImage", params={"image": str(tmp_path / "gone.png")})
    with pytest.raises(MaskEditorError, match=r"gone\.png does not exist: choose a picture"):
        open_mask_editor(GraphScene(graph, registry, QUndoStack()), node.id)


def test_mask_names_never_double_the_suffix(tmp_path):
    assert mask_stem(tmp_path / "cat.png") == "cat.mask"
    assert mask_stem(tmp_path / "cat.mask.png") == "cat.mask"
    assert mask_stem(tmp_path / "cat.mask_00003.png") == "cat.mask"
    assert mask_stem(tmp_path / "cat.masking.png") == "cat.masking.mask"
