"""A small overview of the whole graph in a corner of the view: every node as a coloured box,
the visible rectangle on top. Click or drag in it to move the view there.

It stays out of the graph's way: drag its top strip to another corner, close it with its ×
(or View ▸ Show Minimap), and it turns see-through while the pointer works near it on the
canvas. Where it sits and whether it shows are kept in the settings store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QPoint, QPointF, QRectF, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QColor,
    QEnterEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QWidget

from nodeui.canvas import style as s

if TYPE_CHECKING:
    from nodeui.canvas.protocols import CanvasScene

SIZE = (200, 156)
MARGIN = 12
#: The strip along the top that moves the minimap (and holds its close button).
HEADER = 16
CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
#: Viewport pixels around the minimap within which the pointer makes it see-through.
NEAR = 48
FADED_OPACITY = 0.25
SHOWN_KEY, CORNER_KEY = "view/minimap_shown", "view/minimap_corner"


class OverviewedView(Protocol):
    """What the minimap uses of the view it sits in (a ``GraphView``, which creates it: a
    protocol, so the import goes from the view to the minimap only)."""

    graph_scene: CanvasScene

    def viewport(self) -> QWidget: ...

    def visible_scene_rect(self) -> QRectF: ...

    def centerOn(self, pos: QPointF) -> None: ...


class Minimap(QWidget):
    """The overview. The node boxes are drawn once into a pixmap (redrawn, debounced, when the
    graph changes); each paint only adds the visible rectangle."""

    def __init__(self, view: OverviewedView) -> None:
        super().__init__(view)  # a GraphView, so a QWidget: the minimap is its child
        self.view = view
        self.resize(*SIZE)
        self.corner = CORNERS[0]
        self.faded = False
        self._store: QSettings | None = None
        self._pixmap = QPixmap()
        self._world = QRectF()
        self._scale = 1.0
        self._offset = QPointF()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.rebuild)
        self._frame_pen = QPen(QColor("#f0c674"), 1.0)
        self._grab: tuple[QPointF, QPoint] | None = None  # a header drag: pointer, start pos
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.toggle_action = QAction("Show &Minimap", self)
        self.toggle_action.setObjectName("action_minimap")
        self.toggle_action.setCheckable(True)
        self.toggle_action.setChecked(True)
        self.toggle_action.toggled.connect(self.set_shown)

    # --- settings ----------------------------------------------------------------------------

    def use_settings(self, store: QSettings) -> None:
        """Shows the minimap where, and if, the store says; later changes are saved there."""
        self._store = store
        corner = store.value(CORNER_KEY, CORNERS[0])
        self.corner = corner if corner in CORNERS else CORNERS[0]
        shown = store.value(SHOWN_KEY, True)
        self.set_shown(shown not in (False, "false", "0", 0))
        self.place()

    def _save(self) -> None:
        if self._store is not None:
            self._store.setValue(SHOWN_KEY, self.toggle_action.isChecked())
            self._store.setValue(CORNER_KEY, self.corner)
            self._store.sync()

    def set_shown(self, shown: bool) -> None:
        """Shows or hides the minimap (the × and View ▸ Show Minimap both come here)."""
        if self.toggle_action.isChecked() != shown:
            self.toggle_action.setChecked(shown)  # comes back here through ``toggled``
            return
        self.setVisible(shown)
        if shown:
            self.place()
            self.schedule()
        else:
            self._timer.stop()
        self._save()

    def set_corner(self, corner: str) -> None:
        if corner not in CORNERS:
            raise ValueError(f"minimap corner {corner!r}: expected one of {', '.join(CORNERS)}")
        self.corner = corner
        self.place()
        self._save()

    # --- placement and fading ----------------------------------------------------------------

    def schedule(self) -> None:
        """Redraws the node boxes soon; a closed minimap waits until it is shown again."""
        if not self.isHidden() and not self._timer.isActive():
            self._timer.start()

    def place(self) -> None:
        """Keeps the minimap in its corner of the viewport."""
        vp = self.view.viewport().geometry()
        left = vp.left() + MARGIN
        right = vp.right() - self.width() - MARGIN
        top = vp.top() + MARGIN
        bottom = vp.bottom() - self.height() - MARGIN
        x = left if self.corner.endswith("left") else right
        y = top if self.corner.startswith("top") else bottom
        self.move(x, y)

    def clear_areas(self) -> list[QRectF]:
        """The parts of the viewport (its coordinates) the minimap leaves free: the band
        beside it and the band above or below it; the whole viewport when it is hidden."""
        whole = QRectF(self.view.viewport().rect())
        if not self.isVisible():
            return [whole]
        side = self.width() + 2 * MARGIN
        band = self.height() + 2 * MARGIN
        left, top = self.corner.endswith("left"), self.corner.startswith("top")
        beside = whole.adjusted(side, 0, 0, 0) if left else whole.adjusted(0, 0, -side, 0)
        under = whole.adjusted(0, band, 0, 0) if top else whole.adjusted(0, 0, 0, -band)
        return [beside, under]

    def nearest_corner(self) -> str:
        """The viewport corner closest to where the minimap is now."""
        centre = self.geometry().center()
        middle = self.view.viewport().geometry().center()
        vertical = "top" if centre.y() < middle.y() else "bottom"
        horizontal = "left" if centre.x() < middle.x() else "right"
        return f"{vertical}-{horizontal}"

    def pointer_at(self, at: QPoint | None) -> None:
        """The pointer is at ``at`` (view coordinates; None: it left the canvas). Near the
        minimap, or over it while dragging on the canvas, the minimap turns see-through so
        the nodes under it show."""
        near = at is not None and self.geometry().adjusted(-NEAR, -NEAR, NEAR, NEAR).contains(at)
        if near != self.faded:
            self.faded = near
            self.update()

    def enterEvent(self, event: QEnterEvent) -> None:
        self.faded = False  # the pointer came to use it
        self.update()
        super().enterEvent(event)

    # --- drawing -----------------------------------------------------------------------------

    def _map_area(self) -> QRectF:
        return QRectF(4, HEADER + 2, self.width() - 8, self.height() - HEADER - 6)

    def close_rect(self) -> QRectF:
        return QRectF(self.width() - HEADER - 2, 0, HEADER, HEADER)

    def header_rect(self) -> QRectF:
        return QRectF(0, 0, self.width(), HEADER)

    def rebuild(self) -> None:
        scene = self.view.graph_scene
        world = scene.nodes_rect()
        visible = self.view.visible_scene_rect()
        world = (world.united(visible) if not world.isNull() else visible).adjusted(
            -50, -50, 50, 50
        )
        self._world = world
        area = self._map_area()
        w, h = area.width(), area.height()
        self._scale = min(w / max(world.width(), 1.0), h / max(world.height(), 1.0))
        self._offset = QPointF(
            area.left() + (w - world.width() * self._scale) / 2,
            area.top() + (h - world.height() * self._scale) / 2,
        )
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(int(self.width() * ratio), int(self.height() * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(24, 25, 28, 220))
        painter.drawRoundedRect(QRectF(0, 0, self.width(), self.height()), 6, 6)
        self._paint_header(painter)
        for item in scene.nodes.values():
            box = self._to_map(item.sceneBoundingRect())
            painter.setBrush(s.category_color(item.spec.category))
            painter.drawRect(box)
        painter.end()
        self._pixmap = pixmap
        self.update()

    def _paint_header(self, painter: QPainter) -> None:
        painter.setBrush(QColor(40, 42, 47, 230))
        painter.drawRoundedRect(self.header_rect(), 6, 6)
        painter.setBrush(s.TEXT_DIM)
        for i in range(4):  # a row of dots: "grab here"
            painter.drawEllipse(QPointF(self.width() / 2 - 9 + 6 * i, HEADER / 2), 1.4, 1.4)
        painter.setPen(s.TEXT)
        painter.setFont(s.font(10.0, True))
        painter.drawText(self.close_rect(), Qt.AlignmentFlag.AlignCenter, "×")
        painter.setPen(Qt.PenStyle.NoPen)

    def _to_map(self, rect: QRectF) -> QRectF:
        return QRectF(
            self._offset.x() + (rect.x() - self._world.x()) * self._scale,
            self._offset.y() + (rect.y() - self._world.y()) * self._scale,
            max(rect.width() * self._scale, 1.5),
            max(rect.height() * self._scale, 1.5),
        )

    def to_scene(self, point: QPointF) -> QPointF:
        return QPointF(
            self._world.x() + (point.x() - self._offset.x()) / self._scale,
            self._world.y() + (point.y() - self._offset.y()) / self._scale,
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._pixmap.isNull():
            self.rebuild()
        painter = QPainter(self)
        painter.setOpacity(FADED_OPACITY if self.faded else 1.0)
        painter.drawPixmap(0, 0, self._pixmap)
        painter.setPen(self._frame_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setClipRect(self._map_area())
        painter.drawRect(self._to_map(self.view.visible_scene_rect()))

    # --- mouse: the header moves or closes it, the map pans the view -------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        at = event.position()
        if self.close_rect().contains(at):
            self.set_shown(False)
        elif self.header_rect().contains(at):
            self._grab = (event.globalPosition(), self.pos())
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        else:
            self.view.centerOn(self.to_scene(at))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._grab is not None:
            pointer, start = self._grab
            delta = (event.globalPosition() - pointer).toPoint()
            self.move(start + delta)
        elif event.buttons() & Qt.MouseButton.LeftButton:
            self.view.centerOn(self.to_scene(event.position()))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._grab is not None:
            self._grab = None
            self.setCursor(Qt.CursorShape.PointingHandCursor)
            self.set_corner(self.nearest_corner())
        event.accept()
