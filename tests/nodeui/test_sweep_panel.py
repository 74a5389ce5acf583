"""The Sweep panel with real gestures: right-click a field's label in the Inspector, choose
"Sweep this field…", type the values; Run Sweep runs every combination; the grid shows in the
image viewer, and a click on a cell opens that run's graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QInputDialog, QLabel, QMenu

from core.graph.png import read_text_chunks
from core.graph.workflow import save_workflow
from nodeui.settings import open_settings
from tests.nodeui.windows import new_window
from tests.sweep import toy

SCREENSHOT = Path("/tmp/latentloom_sweep_panel.png")


@pytest.fixture
def window(qtbot, tmp_path):
    registry = toy.registry()
    path = tmp_path / "toy.json"
    save_workflow(toy.pipeline(registry), path)
    made = new_window(tmp_path, registry)
    qtbot.addWidget(made)
    made.resize(1400, 900)
    made.show()
    assert made.open_path(path, ask=False)
    yield made
    made.shutdown(persist=False)


def _label(inspector, text: str) -> QLabel:
    return next(w for w in inspector.findChildren(QLabel) if w.text() == text)


def _sweep_field(qtbot, window, node_id: int, field: str, values: str) -> None:
    """Right-click the field's label, choose the menu entry, type the values, press Enter."""
    window.inspector.show_node(node_id)
    label = _label(window.inspector, field.replace("_", " "))

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, QInputDialog)
        editor = dialog.findChild(type(window.inspector.title_edit))
        editor.selectAll()
        qtbot.keyClicks(editor, values)
        qtbot.keyClick(editor, Qt.Key.Key_Return)

    # A right click: the press, then the context-menu event the window system sends with it
    # (QTest's mouse events go to the widget directly, so Qt does not make that one itself).
    qtbot.mousePress(label, Qt.MouseButton.RightButton, pos=QPoint(4, 4))
    QApplication.sendEvent(
        label,
        QContextMenuEvent(
            QContextMenuEvent.Reason.Mouse, QPoint(4, 4), label.mapToGlobal(QPoint(4, 4))
        ),
    )
    qtbot.mouseRelease(label, Qt.MouseButton.RightButton, pos=QPoint(4, 4))
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu))
    menu = QApplication.activePopupWidget()
    assert [a.text() for a in menu.actions()] == ["Sweep this field…"]
    QTimer.singleShot(50, answer)
    qtbot.keyClick(menu, Qt.Key.Key_Down)
    qtbot.keyClick(menu, Qt.Key.Key_Return)


def test_sweep_fields_run_the_grid_and_open_a_cell(qtbot, window):
    controller = window.sweeps
    panel = controller.panel
    _sweep_field(qtbot, window, 3, "seed", "0..2")
    qtbot.waitUntil(lambda: len(panel.axes) == 1)
    _sweep_field(qtbot, window, 3, "cfg", "3, 7")
    qtbot.waitUntil(lambda: len(panel.axes) == 2)
    assert [a.name for a in panel.axes] == ["3.seed", "3.cfg"]
    assert panel.count.text() == "6 runs"
    qtbot.mouseClick(panel.batch, Qt.MouseButton.LeftButton)
    panel.batch.selectAll()
    qtbot.keyClicks(panel.batch, "2")
    assert panel.count.text() == "12 runs"
    panel.batch.selectAll()
    qtbot.keyClicks(panel.batch, "1")

    with qtbot.waitSignal(controller.finished, timeout=60_000) as finished:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    result = finished.args[0]
    assert not result.failed and len(result.files) == 6
    assert panel.progress.value() == 6
    index = json.loads(result.index.read_text())
    assert [r["status"] for r in index["runs"]] == ["ok"] * 6

    # The grid is in the viewer; click the cell of seed 2, cfg 7 (column 2, row 1).
    viewer = window.viewer
    assert len(viewer.images) == 1
    cell = next(c for c in result.grids[0].cells if (c[1], c[2]) == (2, 1))
    x, y, w, h = cell[3]
    view = viewer.view
    scene_point = view.item.mapToScene(QPointF(x + w / 2, y + h / 2))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SCREENSHOT))
    opened = window.document
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(scene_point))
    qtbot.waitUntil(lambda: window.document is not opened)
    assert window.statusBar().currentMessage().endswith(cell[4])
    params = window.document.graph.node(3).params
    assert (params["seed"], params["cfg"]) == (2, 7.0)


def test_a_bad_value_is_refused_in_the_panel(qtbot, window):
    _sweep_field(qtbot, window, 3, "cfg", "3, lots")
    panel = window.sweeps.panel
    qtbot.waitUntil(lambda: bool(panel.status.text()))
    assert panel.status.text() == "axis 3.cfg: 'lots' is not a number"
    assert panel.axes == [] and not panel.run_button.isEnabled()


def test_run_on_cluster_without_an_address_says_where_to_set_it(qtbot, window):
    controller = window.sweeps
    assert controller.add_axis(3, "seed", "0,1")
    qtbot.mouseClick(controller.panel.cluster, Qt.MouseButton.LeftButton)
    assert controller.panel.cluster.isChecked()
    qtbot.mouseClick(controller.panel.run_button, Qt.MouseButton.LeftButton)
    assert "Ray cluster's address in Settings" in controller.panel.status.text()


def test_the_ray_address_is_a_setting_kept_between_sessions(qtbot, tmp_path):
    from nodeui.settings import EditorSettings, SettingsDialog

    dialog = SettingsDialog(EditorSettings())
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.ray_address, " ray://head:10001 ")
    chosen = dialog.result_settings()
    assert chosen.ray_address == "ray://head:10001"
    store = open_settings(tmp_path / "settings.ini")
    chosen.save(store)
    assert EditorSettings.load(open_settings(tmp_path / "settings.ini")).ray_address == (
        "ray://head:10001"
    )


def test_the_sweep_uses_the_precision_from_the_settings(qtbot, window):
    controller = window.sweeps
    assert controller.add_axis(3, "seed", "0,1")
    window.runs.dtype = "float16"
    with qtbot.waitSignal(controller.finished, timeout=60_000) as finished:
        qtbot.mouseClick(controller.panel.run_button, Qt.MouseButton.LeftButton)
    picture = finished.args[0].files[0]
    embedded = json.loads(read_text_chunks(picture.read_bytes())[toy.WORKFLOW_KEY])
    loader = next(n for n in embedded["nodes"] if n["type"] == "Load")
    assert loader["params"]["dtype"] == "float16"
    assert window.document.graph.node(1).params["dtype"] == "auto"  # the document is unchanged
