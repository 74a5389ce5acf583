"""Right-click menus: on a node (bypass, mute, collapse, duplicate, delete; on a sampler with
a step history, continue from the shown step; on a subgraph instance, edit its inputs and
outputs or save it to the library), on a group (rename, colour, ungroup), on a note
(edit, Markdown, delete), on empty canvas (add a node, a note or a group, paste, select all,
fit, arrange). Each edit is one undo step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QMenu

from core.graph.commands import EditGroup, EditNote, RemoveNotes, Ungroup
from nodeui.canvas import edits, inline_edit
from nodeui.canvas.arrange import arrange
from nodeui.canvas.items.group import GroupItem
from nodeui.canvas.items.node import NodeItem
from nodeui.canvas.items.note import NoteItem

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


def build_menu(scene: CanvasScene, pos: QPointF) -> QMenu:
    """The menu for whatever lies at scene point ``pos``."""
    menu = QMenu(scene.views()[0] if scene.views() else None)
    item = scene.item_at(pos)
    if isinstance(item, NodeItem):
        if item.node_id not in scene.selected_node_ids():
            scene.select_nodes([item.node_id])
        ids = scene.selected_node_ids()
        cursor = item.history_cursor
        if cursor is not None:
            nid, step = item.node_id, cursor.step
            menu.addAction(
                f"Continue from step {step}",
                lambda: edits.continue_from_step(scene, nid, step),
            )
            menu.addSeparator()
        type_id = scene.graph.node(item.node_id).type_id
        if type_id in scene.graph.subgraphs:
            ask = scene.subgraphActionRequested
            menu.addAction("Edit Inputs and Outputs…", lambda: ask.emit("sockets", type_id))
            menu.addAction("Save to Library", lambda: ask.emit("save", type_id))
            menu.addSeparator()
        menu.addAction("Bypass\tCtrl+B", lambda: edits.toggle(scene, ids, "bypassed"))
        menu.addAction("Mute\tCtrl+M", lambda: edits.toggle(scene, ids, "muted"))
        menu.addAction("Collapse", lambda: edits.toggle(scene, ids, "collapsed"))
        menu.addSeparator()
        menu.addAction("Duplicate\tCtrl+D", lambda: edits.duplicate(scene, ids))
        menu.addAction("Group\tCtrl+G", lambda: edits.group(scene, ids))
        menu.addAction("Delete\tDel", lambda: edits.delete(scene, ids))
    elif isinstance(item, GroupItem):
        gid = item.group_id
        menu.addAction("Rename…", lambda: inline_edit.rename_group(scene, item))
        colours = menu.addMenu("Colour")
        for colour in edits.GROUP_COLORS:
            colours.addAction(
                _swatch(colour), colour, lambda c=colour: scene.push(EditGroup(gid, color=c))
            )
        menu.addAction("Ungroup", lambda: scene.push(Ungroup(gid)))
    elif isinstance(item, NoteItem):
        note_id = item.note_id
        menu.addAction("Edit Text…", lambda: inline_edit.edit_note(scene, item))
        markdown = menu.addAction("Markdown")
        markdown.setCheckable(True)
        markdown.setChecked(item.markdown)
        markdown.toggled.connect(
            lambda on: (
                scene.push(EditNote(note_id, markdown=on)) if note_id in scene.notes else None
            )
        )
        menu.addAction("Delete", lambda: scene.push(RemoveNotes([note_id])))
    else:
        _canvas_entries(scene, menu, pos)
    return menu


def _canvas_entries(scene: CanvasScene, menu: QMenu, pos: QPointF) -> None:
    """Empty canvas: add, paste, select, fit and arrange."""
    menu.addAction("Add Node…\tTab", lambda: scene.paletteRequested.emit(pos, None))
    menu.addAction("Add Note", lambda: edits.add_note(scene, pos))
    menu.addAction("Add Group", lambda: edits.add_group(scene, pos))
    menu.addSeparator()
    menu.addAction("Paste\tCtrl+V", lambda: edits.paste(scene, pos))
    menu.addAction("Select All\tCtrl+A", lambda: scene.select_nodes(list(scene.nodes)))
    menu.addSeparator()
    view = scene.views()[0] if scene.views() else None
    if view is not None and hasattr(view, "frame_all"):
        menu.addAction("Fit Graph to Window\tHome", view.frame_all)
    menu.addAction("Arrange", lambda: arrange(scene))


def show_menu(scene: CanvasScene, pos: QPointF, screen_pos: QPoint) -> QMenu:
    menu = build_menu(scene, pos)
    scene.open_menu = menu
    menu.popup(screen_pos)
    return menu
