"""The graph view: pan, zoom at the cursor, keyboard shortcuts, the palette and the minimap.

Menu actions of the window call the same public methods the shortcuts call.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsProxyWidget, QGraphicsView, QToolTip, QWidget

from core.graph import types as t
from core.graph.commands import RemoveNodes
from nodeui.canvas import edits, resizing
from nodeui.canvas import style as s
from nodeui.canvas.minimap import Minimap
from nodeui.canvas.palette import NodePalette
from nodeui.canvas.scene import GraphScene

#: What the node library panel drags onto the canvas: a node type id as UTF-8.
NODE_MIME = "application/x-latentloom-node-type"
MIN_ZOOM, MAX_ZOOM = 0.1, 4.0
GRID = 20
GRID_MAJOR_EVERY = 5
_CTRL = Qt.KeyboardModifier.ControlModifier
_SHIFT = Qt.KeyboardModifier.ShiftModifier


def _grid_brush() -> QBrush:
    """A texture of one major grid cell; the painter's transform scales it with the zoom."""
    size = GRID * GRID_MAJOR_EVERY
    pixmap = QPixmap(size, size)
    pixmap.fill(s.BACKGROUND)
    painter = QPainter(pixmap)
    painter.setPen(QPen(s.GRID_MINOR, 1))
    for i in range(1, GRID_MAJOR_EVERY):
        painter.drawLine(i * GRID, 0, i * GRID, size)
        painter.drawLine(0, i * GRID, size, i * GRID)
    painter.setPen(QPen(s.GRID_MAJOR, 1))
    painter.drawLine(0, 0, 0, size)
    painter.drawLine(0, 0, size, 0)
    painter.end()
    return QBrush(pixmap)


class PanView:
    """Middle-drag, or Space + left-drag: scrolls the view with the cursor."""

    def __init__(self, view: GraphView, at: QPoint) -> None:
        self.view, self.last = view, at
        view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def move(self, at: QPoint) -> None:
        delta = at - self.last
        self.last = at
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - delta.x())
        v.setValue(v.value() - delta.y())

    def release(self) -> None:
        self.view.viewport().unsetCursor()


class GraphView(QGraphicsView):
    """Shows a ``GraphScene``; a new document is a new scene given to ``setScene``."""

    def __init__(self, scene: GraphScene, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._grid = _grid_brush()
        self._pan: PanView | None = None
        self._space = False
        self._pending: edits.PendingLink | None = None
        self._palette_pos = QPointF()
        self.palette = NodePalette(self.viewport())
        self.palette.chosen.connect(self._palette_chosen)
        self.palette.closed.connect(self.setFocus)
        self.minimap = Minimap(self)
        self.setScene(scene)

    # --- scene wiring -------------------------------------------------------------------------

    @property
    def graph_scene(self) -> GraphScene:
        scene = self.scene()
        assert isinstance(scene, GraphScene)
        return scene

    def setScene(self, scene: GraphScene) -> None:
        old = self.scene()
        if isinstance(old, GraphScene):
            for signal, slot in self._connections(old):
                signal.disconnect(slot)
        super().setScene(scene)
        for signal, slot in self._connections(scene):
            signal.connect(slot)
        self.minimap.schedule()

    def _connections(self, scene: GraphScene) -> list[tuple[Any, Any]]:
        return [
            (scene.paletteRequested, self._on_palette_requested),
            (scene.refused, self._flash),
            (scene.graphChanged, self.minimap.schedule),
        ]

    # --- painting ----------------------------------------------------------------------------

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        if self.zoom() < 0.5:
            painter.fillRect(rect, s.BACKGROUND)
        else:
            painter.fillRect(rect, self._grid)

    def zoom(self) -> float:
        return self.transform().m11()

    def visible_scene_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def set_zoom(self, zoom: float, at: QPoint | None = None) -> None:
        """Zooms to ``zoom`` (clamped), keeping the scene point under viewport point ``at``
        (default: the viewport's centre) where it is."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        at = at if at is not None else self.viewport().rect().center()
        fixed = self.mapToScene(at)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        factor = zoom / self.zoom()
        self.scale(factor, factor)
        drift = self.mapFromScene(fixed) - at
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + drift.x())
        v.setValue(v.value() + drift.y())
        self.minimap.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        """Zooms at the cursor."""
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom() * (1.15**steps), event.position().toPoint())
        event.accept()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.minimap.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.minimap.place()
        self.minimap.schedule()

    # --- mouse: panning here, everything else in the scene's gestures --------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.palette.dismiss()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan = PanView(self, event.position().toPoint())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self.minimap.pointer_at(self.viewport().mapToParent(event.position().toPoint()))
        if self._pan is not None:
            self._pan.move(event.position().toPoint())
            event.accept()
            return
        if event.buttons() == Qt.MouseButton.NoButton and not self._space:
            self._show_grip_cursor(self.mapToScene(event.position().toPoint()))
        super().mouseMoveEvent(event)

    def _show_grip_cursor(self, scene_pos: QPointF) -> None:
        """A diagonal arrow over a node's or a group's resize grip says it can be dragged."""
        on_grip = resizing.on_grip(self.graph_scene, scene_pos)
        if on_grip:
            self.viewport().setCursor(Qt.CursorShape.SizeFDiagCursor)
        elif self.viewport().cursor().shape() == Qt.CursorShape.SizeFDiagCursor:
            self.viewport().unsetCursor()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan is not None:
            self._pan.release()
            self._pan = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self.minimap.pointer_at(None)
        super().leaveEvent(event)

    # --- keyboard ----------------------------------------------------------------------------

    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # Tab opens the palette instead of moving focus

    def _typing(self) -> bool:
        return isinstance(self.graph_scene.focusItem(), QGraphicsProxyWidget)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._typing():
            super().keyPressEvent(event)
            return
        key, mods = event.key(), event.modifiers()
        ctrl, shift = bool(mods & _CTRL), bool(mods & _SHIFT)
        actions = {
            (Qt.Key.Key_C, True, False): self.copy_selection,
            (Qt.Key.Key_X, True, False): self.cut_selection,
            (Qt.Key.Key_V, True, False): self.paste,
            (Qt.Key.Key_V, True, True): lambda: self.paste(keep_input_links=True),
            (Qt.Key.Key_D, True, False): self.duplicate_selection,
            (Qt.Key.Key_G, True, False): self.group_selection,
            (Qt.Key.Key_B, True, False): self.toggle_bypass_selection,
            (Qt.Key.Key_M, True, False): self.toggle_mute_selection,
            (Qt.Key.Key_A, True, False): self.select_all,
            (Qt.Key.Key_Delete, False, False): self.delete_selection,
            (Qt.Key.Key_Backspace, False, False): self.delete_selection,
            (Qt.Key.Key_Tab, False, False): self.open_palette,
            (Qt.Key.Key_F, False, False): self.frame_selected,
            (Qt.Key.Key_Home, False, False): self.frame_all,
            (Qt.Key.Key_Escape, False, False): self.graph_scene.cancel_gesture,
        }
        action = actions.get((key, ctrl, shift))
        if action is not None:
            action()
            event.accept()
            return
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().unsetCursor()
        super().keyReleaseEvent(event)

    def event(self, event: QEvent) -> bool:
        # Tab must reach keyPressEvent (it opens the palette) instead of moving focus.
        if (
            isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
            and event.key() == Qt.Key.Key_Tab
            and not self._typing()
        ):
            self.keyPressEvent(event)
            return True
        return super().event(event)

    # --- the palette -------------------------------------------------------------------------

    def cursor_scene_pos(self) -> QPointF:
        """Where the cursor is over the canvas, or the view's centre when it is elsewhere."""
        local = self.viewport().mapFromGlobal(self.cursor().pos())
        if self.viewport().rect().contains(local):
            return self.mapToScene(local)
        return self.mapToScene(self.viewport().rect().center())

    def open_palette(self, scene_pos: QPointF | None = None) -> None:
        """Opens the node search palette; the chosen node appears at ``scene_pos``."""
        self._on_palette_requested(
            scene_pos if scene_pos is not None else self.cursor_scene_pos(), None
        )

    def _on_palette_requested(self, scene_pos: QPointF, pending: edits.PendingLink | None) -> None:
        self._pending, self._palette_pos = pending, QPointF(scene_pos)
        specs = list(self.graph_scene.registry)
        heading = ""
        if pending is not None:
            specs = [spec for spec in specs if edits.compatible_socket(spec, pending)]
            side = "take" if pending.from_output else "give"
            heading = f"Nodes that {side} {pending.type}…" if pending.type != t.ANY else ""
        self.palette.open(specs, self.mapFromScene(scene_pos), heading)

    def _palette_chosen(self, type_id: str) -> None:
        pending, self._pending = self._pending, None
        edits.add_node(self.graph_scene, type_id, self._palette_pos, pending)
        self.setFocus()

    def _flash(self, reason: str, scene_pos: QPointF) -> None:
        """Shows a refusal's reason next to where it happened."""
        at = self.viewport().mapToGlobal(self.mapFromScene(scene_pos))
        QToolTip.showText(at, reason, self.viewport(), self.viewport().rect(), 4000)

    # --- drops from the node library ---------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if event.mimeData().hasFormat(NODE_MIME):
            type_id = bytes(event.mimeData().data(NODE_MIME).data()).decode("utf-8")
            self.add_node_at(type_id, self.mapToScene(event.position().toPoint()))
            event.acceptProposedAction()
        else:
            super().dropEvent(event)

    # --- the contract's edit methods (one undo step each) ---------------------------------------

    def add_node_at(self, type_id: str, scene_pos: QPointF) -> int | None:
        return edits.add_node(self.graph_scene, type_id, scene_pos)

    def copy_selection(self) -> None:
        scene = self.graph_scene
        edits.copy(scene, scene.selected_node_ids())

    def cut_selection(self) -> None:
        scene = self.graph_scene
        ids = scene.selected_node_ids()
        if edits.copy(scene, ids):
            scene.push(RemoveNodes(ids))

    def paste(self, keep_input_links: bool = False) -> list[int]:
        at = self.cursor_scene_pos() if self.underMouse() else None
        return edits.paste(self.graph_scene, at, keep_input_links)

    def duplicate_selection(self) -> list[int]:
        scene = self.graph_scene
        return edits.duplicate(scene, scene.selected_node_ids())

    def delete_selection(self) -> None:
        scene = self.graph_scene
        edits.delete(scene, scene.selected_node_ids())

    def select_all(self) -> None:
        scene = self.graph_scene
        scene.select_nodes(list(scene.nodes))

    def toggle_bypass_selection(self) -> None:
        scene = self.graph_scene
        edits.toggle(scene, scene.selected_node_ids(), "bypassed")

    def toggle_mute_selection(self) -> None:
        scene = self.graph_scene
        edits.toggle(scene, scene.selected_node_ids(), "muted")

    def toggle_collapse_selection(self) -> None:
        scene = self.graph_scene
        edits.toggle(scene, scene.selected_node_ids(), "collapsed")

    def group_selection(self) -> int | None:
        scene = self.graph_scene
        return edits.group(scene, scene.selected_node_ids())

    def frame_all(self) -> None:
        self._frame(None)

    def frame_selected(self) -> None:
        ids = self.graph_scene.selected_node_ids()
        self._frame(ids or None)

    def _frame(self, ids: list[int] | None) -> None:
        rect = edits.frame_rect(self.graph_scene, ids)
        if rect.isEmpty():
            return
        # The graph goes where the minimap does not cover it: beside it or above/below it,
        # whichever shows the graph larger.
        areas = self.minimap.clear_areas()

        def fit(area: QRectF) -> float:
            return min(area.width() / rect.width(), area.height() / rect.height())

        area = max(areas, key=fit)
        zoom = min(1.0, max(MIN_ZOOM, fit(area)))
        self.set_zoom(zoom)
        shift = QPointF(self.viewport().rect().center()) - area.center()
        self.centerOn(rect.center() + shift / zoom)
        self.minimap.schedule()

    def view_state(self) -> dict[str, Any]:
        center = self.mapToScene(self.viewport().rect().center())
        return {"center": [center.x(), center.y()], "zoom": self.zoom()}

    def set_view_state(self, state: dict[str, Any]) -> None:
        zoom = state.get("zoom")
        if isinstance(zoom, (int, float)) and zoom > 0:
            self.set_zoom(float(zoom))
        center = state.get("center")
        if isinstance(center, (list, tuple)) and len(center) == 2:
            self.centerOn(QPointF(float(center[0]), float(center[1])))
        self.minimap.schedule()
