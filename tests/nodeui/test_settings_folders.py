"""Settings → Model folders lists the user's folders and, after them, the roots searched by
default, each marked as a default with whether it exists; defaults cannot be removed."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

import nodes
from nodeui.settings import EditorSettings, SettingsDialog


def _click_row(qtbot, dialog: SettingsDialog, row: int) -> None:
    view = dialog.folders
    rect = view.visualItemRect(view.item(row))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_the_default_model_roots_are_listed_marked_and_not_removable(qtbot, tmp_path, monkeypatch):
    mine = tmp_path / "my models"
    mine.mkdir()
    extra, absent = tmp_path / "env models", tmp_path / "gone"
    extra.mkdir()
    monkeypatch.setenv(nodes.ROOTS_ENVIRONMENT, os.pathsep.join([str(extra), str(absent)]))
    monkeypatch.chdir(tmp_path)  # ./models does not exist here

    dialog = SettingsDialog(EditorSettings(model_folders=(str(mine),)))
    qtbot.addWidget(dialog)
    dialog.show()
    texts = [dialog.folders.item(i).text() for i in range(dialog.folders.count())]

    assert texts[0] == str(mine)  # the user's folder first, as it is searched first
    assert dialog.default_folders() == [
        str(extra),
        str(absent),
        str(tmp_path / "models"),
        str(nodes.SHIPPED_MODELS),
    ]
    defaults = texts[1:]
    assert all("default" in text for text in defaults)
    assert f"${nodes.ROOTS_ENVIRONMENT}" in defaults[0] and "; found" in defaults[0]
    assert "not found" in defaults[1] and "not found" in defaults[2]
    assert "demo model" in defaults[3] and "; found" in defaults[3]

    # A default root cannot be removed: selecting it disables Remove.
    _click_row(qtbot, dialog, 4)
    assert not dialog.remove_folder_button.isEnabled()
    qtbot.mouseClick(dialog.remove_folder_button, Qt.MouseButton.LeftButton)
    assert dialog.folders.count() == 5
    # The user's own folder can, and only the user's folders are saved.
    _click_row(qtbot, dialog, 0)
    assert dialog.remove_folder_button.isEnabled()
    assert dialog.result_settings().model_folders == (str(mine),)
    qtbot.mouseClick(dialog.remove_folder_button, Qt.MouseButton.LeftButton)
    assert dialog.folders.count() == 4
    assert dialog.result_settings().model_folders == ()


def test_a_missing_folder_of_the_user_says_so_and_is_saved_as_typed(qtbot, tmp_path):
    missing = str(tmp_path / "nowhere")
    dialog = SettingsDialog(EditorSettings(model_folders=(missing,)), default_folders=())
    qtbot.addWidget(dialog)
    assert dialog.folders.item(0).text() == f"{missing}  (not found)"
    assert dialog.result_settings().model_folders == (missing,)


def test_default_model_roots_follow_the_listed_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv(nodes.ROOTS_ENVIRONMENT, str(tmp_path))
    listed = [root for root, _ in nodes.builtin_model_roots()]
    assert nodes.default_model_roots(["mine"])[1:] == listed
    assert listed[0] == tmp_path and listed[-1] == nodes.SHIPPED_MODELS
