"""One class per mouse gesture on the canvas.

The scene asks ``for_press`` which gesture a press starts and forwards the following moves
and the release to it; no gesture logic lives in the scene's mouse handlers. Drags that edit
(moving nodes, a number or slider drag) push one command per move with one gesture token, so
the whole drag merges into one undo step. Scrubbing a sampler's step history is view state:
its gestures move a ``HistoryCursor`` and never touch the graph or the undo stack.

The gestures live by kind in ``base``, ``moves``, ``links`` and ``controls``; this module
picks one for a press or a double-click.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsProxyWidget, QGraphicsSceneMouseEvent

from core.graph.commands import SetNodeAttribute
from nodeui.canvas import edits, inline_edit, resizing
from nodeui.canvas.gestures.base import DRAG_THRESHOLD, FollowPointer, Gesture
from nodeui.canvas.gestures.controls import (
    ClickControl,
    DragNumber,
    DragSlider,
    ScrubHistory,
    ToggleHistoryPicture,
)
from nodeui.canvas.gestures.links import DragLink
from nodeui.canvas.gestures.moves import MoveGroup, MoveNote, MoveSelection, RubberBandSelect
from nodeui.canvas.items.group import GroupItem
from nodeui.canvas.items.link import LinkItem
from nodeui.canvas.items.node import Hit, NodeItem
from nodeui.canvas.items.note import NoteItem
from nodeui.canvas.layout import MULTILINE, NUMBER, SLIDER, TEXT

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene


__all__ = [
    "DRAG_THRESHOLD",
    "ClickControl",
    "DragLink",
    "DragNumber",
    "DragSlider",
    "FollowPointer",
    "Gesture",
    "MoveGroup",
    "MoveNote",
    "MoveSelection",
    "RubberBandSelect",
    "ScrubHistory",
    "ToggleHistoryPicture",
    "double_click",
    "for_press",
]


def for_press(scene: CanvasScene, event: QGraphicsSceneMouseEvent) -> Gesture | None:
    """The gesture a press starts, or None to let Qt handle it (an inline editor)."""
    if event.button() != Qt.MouseButton.LeftButton:
        return None
    pos = event.scenePos()
    top = scene.itemAt(pos, scene.views()[0].transform()) if scene.views() else None
    if isinstance(top, QGraphicsProxyWidget):
        return None
    item = scene.item_at(pos)
    if isinstance(item, NodeItem):
        hit = item.hit(item.mapFromScene(pos))
        return _node_gesture(scene, item, hit)
    if isinstance(item, LinkItem) and event.modifiers() & Qt.KeyboardModifier.AltModifier:
        return ClickControl(scene, item, Hit("reroute"))
    if isinstance(item, NoteItem):
        return MoveNote(scene, item)
    if isinstance(item, GroupItem) and item.grip_rect().contains(item.mapFromScene(pos)):
        return resizing.ResizeGroup(scene, item)
    if isinstance(item, GroupItem) and item.title_rect().contains(item.mapFromScene(pos)):
        return MoveGroup(scene, item)
    return RubberBandSelect(scene)


def _node_gesture(scene: CanvasScene, item: NodeItem, hit: Hit) -> Gesture:
    if hit.kind == "output":
        return DragLink(scene, item, hit.name, from_output=True)
    if hit.kind == "input":
        link = scene.links.get((item.node_id, hit.name))
        if link is not None:
            return DragLink.pick_up(scene, link)
        return DragLink(scene, item, hit.name, from_output=False)
    if hit.kind == "editor":
        row = item.layout.editor(hit.name)
        if row is not None and row.kind == NUMBER:
            return DragNumber(scene, item, hit.name)
        if row is not None and row.kind == SLIDER:
            return DragSlider(scene, item, hit.name)
        return ClickControl(scene, item, hit)
    if hit.kind in ("mode", "collapse"):
        return ClickControl(scene, item, hit)
    if hit.kind == "scrub":
        return ScrubHistory(scene, item)
    if hit.kind == "which":
        return ToggleHistoryPicture(scene, item)
    if hit.kind == "resize":
        return resizing.ResizeNode(scene, item)
    return MoveSelection(scene, item)


def double_click(scene: CanvasScene, event: QGraphicsSceneMouseEvent) -> bool:
    """Double-click actions: title collapses, an editor opens for typing, a link gets a
    reroute dot, a group title is renamed, a note's text opens for editing, empty canvas
    opens the palette."""
    if event.button() != Qt.MouseButton.LeftButton:
        return False
    pos = event.scenePos()
    item = scene.item_at(pos)
    if isinstance(item, NodeItem):
        hit = item.hit(item.mapFromScene(pos))
        if hit.kind == "title":
            node = scene.graph.node(item.node_id)
            scene.push(SetNodeAttribute([item.node_id], "collapsed", not node.collapsed))
        elif hit.kind == "editor":
            row = item.layout.editor(hit.name)
            local_x = item.mapFromScene(pos).x()
            on_arrow = row is not None and (
                local_x < row.rect.left() + 16 or local_x > row.rect.right() - 16
            )
            if row is not None and row.kind == NUMBER and on_arrow:
                stepper = DragNumber(scene, item, hit.name)
                stepper.press(event)
                stepper.release(event)  # a quick second click on an arrow steps again
            elif row is not None and row.kind in (NUMBER, SLIDER, TEXT, MULTILINE):
                inline_edit.open_text(scene, item, row)
        return True
    if isinstance(item, LinkItem):
        edits.insert_reroute(scene, item.link, pos)
        return True
    if isinstance(item, NoteItem):
        inline_edit.edit_note(scene, item)
        return True
    if isinstance(item, GroupItem) and item.title_rect().contains(item.mapFromScene(pos)):
        inline_edit.rename_group(scene, item)
        return True
    scene.paletteRequested.emit(pos, None)
    return True
