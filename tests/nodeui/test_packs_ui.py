"""Node packs in the editor: a pack that failed is named in the status bar, Settings → Node
packs lists every pack and switches one off, and the open graph's nodes of a pack switched off
become placeholders naming it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from core.graph.packs import PackStatus
from nodeui.settings import SettingsDialog
from tests.helpers.node_packs import EXAMPLE_NAME, install_example_pack, install_on_path, pack_site
from tests.nodeui.windows import window_maker

__all__ = ["pack_site"]  # the fixture, imported for the tests below

SHOTS = (
    Path(os.environ.get("LATENTLOOM_TEST_SHOTS", ""))
    if "LATENTLOOM_TEST_SHOTS" in os.environ
    else None
)


@pytest.fixture
def packs_installed(pack_site):
    install_example_pack(pack_site)
    install_on_path(
        pack_site, "broken-pack", "0.1", {"main": "broken_pack:nodes"}, {"broken_pack.py": "1/0\n"}
    )
    return pack_site


@pytest.fixture
def make_window(qtbot, tmp_path):
    with window_maker(tmp_path) as make:
        yield make


def test_a_failed_pack_is_named_in_the_status_bar_and_the_rest_loads(packs_installed, make_window):
    window = make_window()
    message = window.statusBar().currentMessage()
    assert message.startswith("node pack 'broken-pack' was skipped: entry point 'main'")
    assert "ZeroDivisionError" in message and "Settings → Node packs" in message
    assert "ExamplePack.Posterize" in window.registry


def _in_settings_dialog(qtbot, act) -> None:
    """Runs ``act(dialog)`` on the Settings dialog once ``exec`` shows it."""

    def step() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, SettingsDialog):
            QTimer.singleShot(20, step)
            return
        act(dialog)

    QTimer.singleShot(0, step)


def test_switching_a_pack_off_in_settings_turns_its_nodes_into_placeholders(
    qtbot, packs_installed, make_window, tmp_path
):
    window = make_window()
    node = window.add_node("ExamplePack.Posterize", None)
    seen = {}

    def untick_and_accept(dialog: SettingsDialog) -> None:
        dialog.tabs.setCurrentWidget(dialog.packs)
        tree = dialog.packs.tree
        row = dialog.packs.item(EXAMPLE_NAME)
        seen["broken"] = dialog.packs.item("broken-pack").text(2)
        seen["checked"] = row.checkState(0)
        seen["details"] = dialog.packs.details.text()  # the failed pack's whole error
        name_cell = QPoint(  # the pack's name, in the column holding the check box
            tree.columnViewportPosition(0) + tree.columnWidth(0) // 2,
            tree.visualItemRect(row).center().y(),
        )
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=name_cell)
        qtbot.keyClick(tree, Qt.Key.Key_Space)
        seen["after"] = row.checkState(0)
        if SHOTS is not None:
            dialog.grab().save(str(SHOTS / "settings_node_packs.png"))
        ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)

    _in_settings_dialog(qtbot, untick_and_accept)
    window.edit_settings()
    assert seen["checked"] == Qt.CheckState.Checked
    assert seen["broken"].startswith("failed: entry point 'main' (broken_pack:nodes) raised")
    assert "raised ZeroDivisionError: division by zero" in seen["details"]
    assert seen["after"] == Qt.CheckState.Unchecked
    assert window.settings.disabled_packs == (EXAMPLE_NAME,)
    assert "ExamplePack.Posterize" not in window.registry
    assert window.registry.pack_report(EXAMPLE_NAME).status is PackStatus.DISABLED
    spec = window.document.graph.spec(node)
    assert spec.placeholder and spec.title == f"ExamplePack.Posterize (missing: {EXAMPLE_NAME})"
    assert "which is disabled" in spec.description
    assert window.scene.nodes[node].toolTip() == spec.description
    qtbot.mouseClick(
        window.view.viewport(),
        Qt.MouseButton.LeftButton,
        pos=window.view.mapFromScene(window.scene.nodes[node].sceneBoundingRect().center()),
    )
    assert (
        f"comes from node pack '{EXAMPLE_NAME}', which is disabled" in window.inspector.hint.text()
    )
    if SHOTS is not None:
        window.resize(1200, 700)
        window.view.frame_all()
        window.grab().save(str(SHOTS / "placeholder_of_disabled_pack.png"))
    again = make_window()  # the choice is stored and read at start
    assert again.settings.disabled_packs == (EXAMPLE_NAME,)
    assert "ExamplePack.Posterize" not in again.registry


def test_a_pack_disabled_by_the_environment_cannot_be_switched_on_here(
    qtbot, packs_installed, make_window, monkeypatch
):
    monkeypatch.setenv("LATENTLOOM_DISABLED_PACKS", EXAMPLE_NAME)
    window = make_window()
    assert "ExamplePack.Posterize" not in window.registry
    dialog = SettingsDialog(window.settings, window, window.registry.packs, (EXAMPLE_NAME,))
    qtbot.addWidget(dialog)
    row = dialog.packs.item(EXAMPLE_NAME)
    assert row.text(2) == "disabled (by $LATENTLOOM_DISABLED_PACKS)"
    assert not row.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert dialog.result_settings().disabled_packs == ()  # not written into the settings
    assert "runs its code" in dialog.packs.findChild(type(dialog.packs.empty)).text()
