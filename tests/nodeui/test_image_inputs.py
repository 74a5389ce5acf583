"""Pictures into the graph through the window: the file chooser on a Load Image node, a
picture dropped on the node, Ctrl+V with a picture on the clipboard, the picture shown on the
node and the node menu's Mask Editor entry. Real mouse and key events where it is a gesture."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QContextMenuEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from nodes import build_registry
from tests.nodeui.windows import open_window

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture
def window(qtbot, tmp_path, registry):
    with open_window(tmp_path, registry) as made:
        made.resize(1400, 900)
        made.show()
        qtbot.waitExposed(made)
        made.document.undo_stack.clear()
        yield made


def _picture(path, colour=(200, 30, 30), size=(40, 30)):
    Image.new("RGB", size, colour).save(path)
    return path


def _load_image_node(window, params):
    window.view.set_view_state({"center": [100, 100], "zoom": 1.0})
    node_id = window.add_node("LoadImage", QPointF(0, 0), params)
    window.document.undo_stack.clear()
    return node_id


def _viewport_point(window, node_id, local: QPointF) -> QPoint:
    item = window.scene.nodes[node_id]
    return window.view.mapFromScene(item.mapToScene(local))


def test_clicking_the_picture_field_opens_the_file_chooser(qtbot, window, tmp_path, monkeypatch):
    first = _picture(tmp_path / "first.png")
    chosen = _picture(tmp_path / "second.png", (20, 200, 20))
    node_id = _load_image_node(window, {"image": str(first), "mask": str(first)})
    asked = []

    def pick(parent, caption, folder, filters):
        asked.append(folder)
        return str(chosen), filters

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(pick))
    row = window.scene.nodes[node_id].layout.editor("image")
    QTest.mouseClick(
        window.view.viewport(), LEFT, NONE, _viewport_point(window, node_id, row.rect.center())
    )
    params = window.document.graph.node(node_id).params
    assert asked == [str(tmp_path)]  # it starts where the current picture is
    assert params["image"] == str(chosen) and params["mask"] == ""  # the old mask went too
    window.document.undo_stack.undo()  # one step puts both back
    params = window.document.graph.node(node_id).params
    assert params["image"] == str(first) and params["mask"] == str(first)


def test_the_node_shows_its_picture_with_the_painted_mask(qtbot, window, tmp_path):
    picture = _picture(tmp_path / "p.png", (0, 0, 255), (40, 30))
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[:, 20:] = 255
    Image.fromarray(mask, "L").save(tmp_path / "p.mask.png")
    node_id = _load_image_node(window, {"image": str(picture)})
    shown = window.scene.nodes[node_id]._images
    assert shown is not None and shown._images[0].size().width() == 40
    assert shown._images[0].pixelColor(30, 10) == QColor(0, 0, 255)
    window.document.graph.set_param(node_id, "mask", str(tmp_path / "p.mask.png"))
    tinted = window.scene.nodes[node_id]._images._images[0]
    assert tinted.pixelColor(5, 10) == QColor(0, 0, 255)
    assert tinted.pixelColor(30, 10).red() > 100  # the mask's colour over the masked half


def _drop(window, paths, scene_pos: QPointF):
    viewport = window.view.viewport()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    point = QPointF(window.view.mapFromScene(scene_pos))
    drop = QDropEvent(point, Qt.DropAction.CopyAction, mime, LEFT, NONE)
    assert window.drops.eventFilter(viewport, drop)


def test_a_picture_dropped_on_a_load_image_node_replaces_its_picture(qtbot, window, tmp_path):
    old = _picture(tmp_path / "old.png")
    new = _picture(tmp_path / "new.png", (0, 255, 0))
    node_id = _load_image_node(window, {"image": str(old)})
    item = window.scene.nodes[node_id]
    _drop(window, [new], item.mapToScene(QPointF(item.layout.width / 2, 40)))
    graph = window.document.graph
    assert graph.node(node_id).params["image"] == str(new)
    assert [n.type_id for n in graph].count("LoadImage") == 1
    # Dropped on empty canvas, it is a new node as before.
    _drop(window, [old], QPointF(900, 700))
    assert [n.type_id for n in graph].count("LoadImage") == 2


def test_ctrl_v_with_a_picture_adds_a_load_image_node_saved_in_the_input_folder(
    qtbot, window, tmp_path
):
    picture = QImage(24, 16, QImage.Format.Format_RGB32)
    picture.fill(QColor(10, 120, 250))
    QGuiApplication.clipboard().setImage(picture)
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    loaders = [n for n in window.document.graph if n.type_id == "LoadImage"]
    assert len(loaders) == 1
    path = tmp_path / "input" / "pasted_00001.png"  # beside the output folder: unsaved
    assert loaders[0].params["image"] == str(path) and path.is_file()
    saved = np.asarray(Image.open(path).convert("RGB"))
    assert saved.shape == (16, 24, 3) and tuple(saved[0, 0]) == (10, 120, 250)

    saved_as = tmp_path / "work" / "flow.json"
    saved_as.parent.mkdir()
    window.files.save_as(saved_as)
    text = saved_as.read_text()
    assert "base64" not in text and "iVBOR" not in text  # a path, never the picture's bytes
    assert json.loads(text)["nodes"][0]["params"]["image"] == str(path)
    QTest.keyClick(window.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    second = tmp_path / "work" / "input" / "pasted_00001.png"  # a saved workflow's own folder
    assert second.is_file()
    window.document.undo_stack.undo()
    assert len([n for n in window.document.graph if n.type_id == "LoadImage"]) == 1


def test_ctrl_v_with_copied_nodes_still_pastes_nodes(qtbot, window, tmp_path):
    node_id = _load_image_node(window, {"image": str(_picture(tmp_path / "a.png"))})
    window.scene.select_nodes([node_id])
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(window.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert len(window.document.graph) == 2
    assert not (tmp_path / "input").exists()


def test_the_node_menu_opens_the_mask_editor(qtbot, window, tmp_path):
    node_id = _load_image_node(window, {"image": str(_picture(tmp_path / "m.png"))})
    point = _viewport_point(window, node_id, QPointF(30, 12))
    event = QContextMenuEvent(
        QContextMenuEvent.Reason.Mouse, point, window.view.viewport().mapToGlobal(point)
    )
    QApplication.sendEvent(window.view.viewport(), event)
    menu = window.scene.open_menu
    texts = [a.text() for a in menu.actions()]
    assert texts[:2] == ["Open in Mask Editor…", "Choose Image…"] and "Bypass\tCtrl+B" in texts
    menu.actions()[0].trigger()
    editor = window.image_inputs.editor
    assert editor is not None and editor.isVisible()
    editor.fill_button.click()
    editor.buttons.button(editor.buttons.StandardButton.Ok).click()
    mask = tmp_path / "m.mask.png"
    assert window.document.graph.node(node_id).params["mask"] == str(mask) and mask.is_file()
    assert window.document.undo_stack.count() == 1
    menu.close()


def test_the_inspector_has_the_picture_buttons(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QPushButton

    first = _picture(tmp_path / "one.png")
    other = _picture(tmp_path / "two.png", (0, 0, 0))
    node_id = _load_image_node(window, {"image": str(first)})
    window.scene.select_nodes([node_id])
    buttons = {
        b.text(): b
        for b in window.inspector.findChildren(QPushButton)
        if b.parent().objectName() == "pictureButtons"
    }
    assert set(buttons) == {"Choose Image…", "Open in Mask Editor…"}
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *args: (str(other), ""))
    )
    QTest.mouseClick(buttons["Choose Image…"], LEFT)
    assert window.document.graph.node(node_id).params["image"] == str(other)
    QTest.mouseClick(buttons["Open in Mask Editor…"], LEFT)
    editor = window.image_inputs.editor
    assert editor is not None and editor.isVisible()
    assert editor.windowTitle() == "Mask Editor — two.png"
    editor.reject()

    window.add_node("EmptyImage", QPointF(400, 0))
    window.scene.select_nodes([max(window.document.graph.nodes)])
    assert not [
        b
        for b in window.inspector.findChildren(QPushButton)
        if b.text() == "Choose Image…" and b.isVisible()
    ]


def test_the_node_shows_the_file_name_not_the_folders(qtbot, window, tmp_path):
    picture = _picture(tmp_path / "holiday.png")
    node_id = _load_image_node(window, {"image": str(picture)})
    item = window.scene.nodes[node_id]
    names = [row.widget.name for row in item.layout.editors]
    assert item._texts[names.index("image")].value == "holiday.png"
    window.scene.select_nodes([node_id])
    assert window.inspector.editors["image"].value() == str(picture)  # the whole path there


def test_double_clicking_the_picture_on_the_node_opens_the_mask_editor(qtbot, window, tmp_path):
    node_id = _load_image_node(window, {"image": str(_picture(tmp_path / "d.png"))})
    item = window.scene.nodes[node_id]
    media = item.layout.media_rect
    assert media is not None
    QTest.mouseDClick(
        window.view.viewport(), LEFT, NONE, _viewport_point(window, node_id, media.center())
    )
    editor = window.image_inputs.editor
    assert editor is not None and editor.isVisible()
    assert editor.windowTitle() == "Mask Editor — d.png"
    editor.reject()
    # A double-click on the title still collapses the node, as on any node.
    title = item.layout.title_rect.center()
    QTest.mouseDClick(window.view.viewport(), LEFT, NONE, _viewport_point(window, node_id, title))
    assert window.document.graph.node(node_id).collapsed


def test_a_load_image_node_inside_a_subgraph_shows_its_picture(qtbot, window, tmp_path):
    from core.graph.subgraph_commands import ConvertToSubgraph

    picture = _picture(tmp_path / "inside.png", (0, 200, 0), (40, 30))
    node_id = _load_image_node(window, {"image": str(picture)})
    convert = ConvertToSubgraph([node_id], "Pictures")
    assert window.scene.push(convert)
    window.subgraphs.enter(window.document.graph.node(convert.instance_id).type_id)
    assert window.scene.graph is not window.document.graph
    inner = next(n.id for n in window.scene.graph if n.type_id == "LoadImage")
    shown = window.scene.nodes[inner]._images
    assert shown is not None and shown._images[0].pixelColor(10, 10) == QColor(0, 200, 0)
    # A new picture chosen inside is shown at once.
    other = _picture(tmp_path / "other.png", (200, 0, 0), (40, 30))
    window.scene.graph.set_param(inner, "image", str(other))
    assert window.scene.nodes[inner]._images._images[0].pixelColor(10, 10) == QColor(200, 0, 0)
