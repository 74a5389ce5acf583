"""The node item: title, type-coloured sockets and painted inline editors.

The body is static between edits, so it is cached (``DeviceCoordinateCache``) and only
re-rendered when the node changes; run states and live previews live in child items that
repaint on their own without invalidating this cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFont, QImage, QPainter, QPainterPath, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.graph.model import Graph, NodeId
from core.graph.spec import NodeSpec
from nodeui.canvas import style as s
from nodeui.canvas.items.editors import EditorTexts, make_texts, paint_editor
from nodeui.canvas.items.grip import paint_grip
from nodeui.canvas.items.preview import HistoryScrubItem, ImagesItem, PreviewItem
from nodeui.canvas.items.runstate import RunStateItem
from nodeui.canvas.layout import NodeLayout, SocketSlot, compute_layout
from nodeui.runstate import NodeRunState, control_mode

if TYPE_CHECKING:
    from nodeui.history import HistoryCursor

NODE_TYPE = QGraphicsItem.UserType + 1
SOCKET_HIT = 9.0
_CENTER = Qt.AlignmentFlag.AlignCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class Attached(Protocol):
    """An item drawn from a node's sockets (a ``LinkItem``), which the node redraws when it
    moves or changes size. A protocol, so that links know nodes and nodes not links."""

    def update_path(self) -> None: ...


@dataclass(frozen=True)
class Hit:
    """What a point on a node is: ``title``, ``collapse``, ``input``, ``output``, ``editor``,
    ``mode`` (a seed's after-run chip), ``scrub`` (the step-history slider), ``which`` (its
    x_t/x̂₀ chip), ``resize`` (the grip in the bottom-right corner) or ``body``; ``name`` is
    the socket or param."""

    kind: str
    name: str = ""
    socket_type: str = ""


class NodeItem(QGraphicsItem):
    """Draws one graph node; reads the model, never writes it."""

    def __init__(self, graph: Graph, node_id: NodeId) -> None:
        super().__init__()
        self.graph = graph
        self.node_id = node_id
        self.links: set[Attached] = set()
        self.connected_inputs: set[str] = set()
        self.connected_outputs: set[str] = set()
        self.highlight: frozenset[str] = frozenset()
        self.marked_field: str | None = None
        self._images: ImagesItem | None = None
        self._preview: PreviewItem | None = None
        self._scrub: HistoryScrubItem | None = None
        self._live = False
        self.state_item = RunStateItem(self)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1.0)
        self.layout: NodeLayout
        self._texts: list[EditorTexts] = []
        self.refresh()

    # --- model → item ------------------------------------------------------------------------

    @property
    def spec(self) -> NodeSpec:
        return self.graph.spec(self.node_id)

    def type(self) -> int:
        return NODE_TYPE

    def refresh(self) -> None:
        """Re-reads the node (after any change but a move) and repaints the body."""
        node = self.graph.node(self.node_id)
        spec = self.spec
        linked = frozenset(
            lk.dst_input for lk in self.graph.inputs_of(self.node_id) if spec.input(lk.dst_input)
        )
        media = self._images is not None or self._preview is not None
        self.prepareGeometryChange()
        self.layout = compute_layout(spec, node, linked, media, scrub=self._scrub is not None)
        self._texts = [
            make_texts(
                row,
                node.params.get(row.widget.name, row.widget.default),
                control_mode(self.graph, self.node_id, row.widget.name)
                if row.widget.control_after_run
                else "",
            )
            for row in self.layout.editors
        ]
        self._build_paths()
        # Shortened in the middle: "CLIP Text…(Prompt)" still says which kind of node it is.
        self.title_text = s.metrics(9.5, True).elidedText(
            node.title or spec.title, Qt.TextElideMode.ElideMiddle, self.layout.width - 40
        )
        self.subtitle_text = s.metrics(8.0).elidedText(
            self.layout.subtitle, Qt.TextElideMode.ElideRight, self.layout.width - 32
        )
        # A placeholder's title is often cut short: its tooltip says which pack it needs.
        self.setToolTip(spec.description if spec.placeholder else "")
        self.setPos(QPointF(*node.pos))
        self._place_media()
        self.state_item.relayout()
        self.update()
        self.update_links()

    def refresh_position(self) -> None:
        self.setPos(QPointF(*self.graph.node(self.node_id).pos))
        self.update_links()

    def update_links(self) -> None:
        for link in self.links:
            link.update_path()

    def set_highlight(self, names: frozenset[str]) -> None:
        """Marks the sockets a dragged link may connect to (empty: none)."""
        if names != self.highlight:
            self.highlight = names
            self.update()

    def set_run_state(self, state: NodeRunState) -> None:
        self.state_item.set_state(state)
        field = state.field if state.message else None
        if field != self.marked_field:
            self.marked_field = field
            self.update()

    def set_images(self, images: list[QImage]) -> None:
        if not images:
            if self._images is not None:
                self._images.setParentItem(None)
                if self.scene() is not None:
                    self.scene().removeItem(self._images)
                self._images = None
                self.refresh()
            return
        if self._images is None:
            self._images = ImagesItem(self)
            self._images.set_images(images)
            self.refresh()
        else:
            self._images.set_images(images)

    @property
    def history_cursor(self) -> HistoryCursor | None:
        """The step-history cursor of a finished sampler run shown on this node, if any."""
        return self._scrub.cursor if self._scrub is not None else None

    @property
    def preview_image(self) -> QImage | None:
        return self._preview.image if self._preview is not None else None

    def set_preview(self, image: QImage | None, caption: str = "") -> None:
        """A live sampler frame (None: the run's frames are over); while frames come the
        history row hides, and without them the history's picture shows again."""
        if image is None:
            self._live = False
            if self._scrub is not None:
                self._scrub.setVisible(not self.layout.collapsed)
                self._show_history()
            elif self._preview is not None:
                self._drop_child(self._preview)
                self._preview = None
                self.refresh()
            return
        self._live = True
        if self._scrub is not None:
            self._scrub.setVisible(False)
        if self._preview is None:
            self._preview = PreviewItem(self)
            self.refresh()
        self._preview.set_image(image, caption)

    def set_history(self, cursor: HistoryCursor | None) -> None:
        """Shows a finished run's step history (None: removes it): its picture in the image
        area and the scrub row under it."""
        if self._scrub is not None:
            self._scrub.cursor.changed.disconnect(self._show_history)
            self._drop_child(self._scrub)
            self._scrub = None
        if cursor is None:
            if self._preview is not None and not self._live:
                self._drop_child(self._preview)
                self._preview = None
            self.refresh()
            return
        self._live = False
        self._scrub = HistoryScrubItem(self, cursor)
        cursor.changed.connect(self._show_history)
        if self._preview is None:
            self._preview = PreviewItem(self)
        self.refresh()
        self._show_history()

    def _show_history(self) -> None:
        cursor = self.history_cursor
        if cursor is None or self._live or self._preview is None:
            return
        picture = cursor.picture()
        if picture is not None:
            self._preview.set_image(picture)

    def _drop_child(self, child: QGraphicsItem) -> None:
        child.setParentItem(None)
        if self.scene() is not None:
            self.scene().removeItem(child)

    def _place_media(self) -> None:
        rect = self.layout.media_rect
        for item in (self._images, self._preview):
            if item is not None and rect is not None:
                item.set_rect(rect)
                item.setVisible(not self.layout.collapsed)
        lay = self.layout
        if self._scrub is not None and lay.scrub_rect is not None and lay.which_rect is not None:
            self._scrub.set_rects(lay.scrub_rect, lay.which_rect)
            self._scrub.setVisible(not lay.collapsed and not self._live)

    # --- geometry ----------------------------------------------------------------------------

    def _build_paths(self) -> None:
        lay = self.layout
        r = s.NODE_RADIUS
        body = QPainterPath()
        body.addRoundedRect(QRectF(0, 0, lay.width, lay.height), r, r)
        title = QPainterPath()
        title.addRoundedRect(lay.title_rect, r, r)
        if not lay.collapsed:
            square = QPainterPath()
            square.addRect(QRectF(0, r, lay.width, lay.title_rect.height() - r))
            title = title.united(square)
        self._body_path, self._title_path = body, title
        self._hit_path = QPainterPath()
        self._hit_path.addRect(QRectF(-SOCKET_HIT, 0, lay.width + 2 * SOCKET_HIT, lay.height))
        c = lay.collapse_rect.center()
        if lay.collapsed:
            points = [
                QPointF(c.x() - 3, c.y() - 4),
                QPointF(c.x() + 4, c.y()),
                QPointF(c.x() - 3, c.y() + 4),
            ]
        else:
            points = [
                QPointF(c.x() - 4, c.y() - 3),
                QPointF(c.x() + 4, c.y() - 3),
                QPointF(c.x(), c.y() + 4),
            ]
        self._arrow = QPolygonF(points)

    def boundingRect(self) -> QRectF:
        margin = SOCKET_HIT + 1
        return QRectF(-margin, -2, self.layout.width + 2 * margin, self.layout.height + 4)

    def shape(self) -> QPainterPath:
        """The body plus a margin left and right, so sockets on the edge can be grabbed."""
        return self._hit_path

    def input_scene_pos(self, name: str) -> QPointF:
        local = self.layout.input_center(name) or QPointF(0.0, s.TITLE_HEIGHT / 2)
        return self.mapToScene(local)

    def output_scene_pos(self, name: str) -> QPointF:
        local = self.layout.output_center(name) or QPointF(self.layout.width, s.TITLE_HEIGHT / 2)
        return self.mapToScene(local)

    def hit(self, local: QPointF) -> Hit:
        """What lies under ``local`` (node coordinates)."""
        lay = self.layout
        for slot in lay.outputs:
            if _near(local, slot.center):
                return Hit("output", slot.name, slot.type)
        for slot in lay.inputs:
            if _near(local, slot.center):
                return Hit("input", slot.name, slot.type)
        grip = lay.grip_rect
        if grip is not None and grip.adjusted(-2, -2, 0, 0).contains(local):
            return Hit("resize")
        if lay.collapsed:
            return (
                Hit("collapse")
                if lay.collapse_rect.adjusted(-4, -4, 4, 4).contains(local)
                else Hit("title")
            )
        if self._scrub is not None and self._scrub.isVisible():
            if lay.scrub_rect is not None and lay.scrub_rect.contains(local):
                return Hit("scrub")
            if lay.which_rect is not None and lay.which_rect.contains(local):
                return Hit("which")
        for row in lay.editors:
            if _near(local, row.socket) or (row.linked and row.rect.contains(local)):
                return Hit("input", row.widget.name, row.widget.link_type)
            if row.rect.contains(local):
                return Hit("editor", row.widget.name)
            if row.mode_rect is not None and row.mode_rect.contains(local):
                return Hit("mode", row.widget.name)
        if lay.collapse_rect.adjusted(-4, -4, 4, 4).contains(local):
            return Hit("collapse")
        if lay.title_rect.contains(local):
            return Hit("title")
        return Hit("body")

    # --- painting ----------------------------------------------------------------------------

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        lay = self.layout
        node = self.graph.node(self.node_id)
        spec = self.spec
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        selected = self.isSelected()
        missing = spec.placeholder
        title_color = s.ERROR if missing else s.category_color(spec.category)
        painter.setPen(s.pen(s.SELECTED, 2.0) if selected else s.pen("#3a3d43"))
        painter.setBrush(s.NODE_BODY)
        painter.drawPath(self._body_path)
        painter.setPen(s.NO_PEN)
        painter.setBrush(title_color)
        painter.drawPath(self._title_path)
        if lod < s.LOD_SIMPLE:
            if node.bypassed or node.muted:
                painter.setBrush(s.BYPASS_TINT if node.bypassed else s.MUTE_TINT)
                painter.drawPath(self._body_path)
            self._paint_far_title(painter, lod, node.title or spec.title)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(s.TEXT)
        painter.drawPolygon(self._arrow)
        painter.setFont(s.font(9.5, True))
        painter.setPen(s.TEXT)
        title_line = QRectF(24, 0, lay.width - 32, s.TITLE_HEIGHT)
        painter.drawText(title_line, _LEFT, self.title_text)
        if self.subtitle_text:
            painter.setFont(s.font(8.0))
            painter.setPen(s.SUBTITLE)
            subtitle_line = QRectF(24, s.TITLE_HEIGHT - 6, lay.width - 32, s.SUBTITLE_HEIGHT)
            painter.drawText(subtitle_line, _LEFT, self.subtitle_text)
        if not lay.collapsed:
            self._paint_rows(painter)
            self._paint_grip(painter)
        self._paint_sockets(painter, lay.inputs, lay.outputs)
        if node.bypassed or node.muted:
            painter.setPen(s.NO_PEN)
            painter.setBrush(s.BYPASS_TINT if node.bypassed else s.MUTE_TINT)
            painter.drawPath(self._body_path)
        if missing:
            painter.setPen(s.pen("#e05252", 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(self._body_path)

    def _paint_far_title(self, painter: QPainter, lod: float, title: str) -> None:
        """Zoomed far out, the node is a coloured box whose title stays legible: drawn at a
        size that stays about ``FAR_TITLE_PX`` on screen, wrapped over the node's body."""
        lay = self.layout
        pixels = min(s.FAR_TITLE_PX / max(lod, 0.01), lay.width / 4)
        font = QFont(s.font(9.5, True))
        font.setPixelSize(max(1, round(pixels)))
        painter.save()
        painter.setClipPath(self._body_path)
        painter.setFont(font)
        painter.setPen(s.TEXT)
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop) | int(
            Qt.TextFlag.TextWordWrap
        )
        margin = pixels / 4
        painter.drawText(QRectF(margin, margin, lay.width - 2 * margin, lay.height), flags, title)
        painter.restore()

    def _paint_rows(self, painter: QPainter) -> None:
        painter.setFont(s.font())
        painter.setPen(s.TEXT_DIM)
        for slot in self.layout.inputs:
            painter.drawText(slot.label_rect, _LEFT, slot.name.replace("_", " "))
        for slot in self.layout.outputs:
            painter.drawText(slot.label_rect, _RIGHT, slot.name.replace("_", " "))
        for row, texts in zip(self.layout.editors, self._texts, strict=True):
            paint_editor(painter, row, texts)
            if row.widget.name == self.marked_field:
                painter.setPen(s.pen("#e05252", 1.5))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(row.rect.adjusted(-2, -1, 2, 1), 8, 8)
        if self.marked_field and not self.layout.editor(self.marked_field):
            for slot in self.layout.inputs:
                if slot.name == self.marked_field:
                    painter.setPen(s.pen("#e05252", 1.5))
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                    painter.drawRoundedRect(slot.label_rect.adjusted(-6, 1, 0, -1), 6, 6)

    def _paint_grip(self, painter: QPainter) -> None:
        grip = self.layout.grip_rect
        if grip is not None:
            paint_grip(painter, grip)

    def _paint_sockets(
        self, painter: QPainter, inputs: list[SocketSlot], outputs: list[SocketSlot]
    ) -> None:
        r = s.SOCKET_RADIUS
        collapsed = self.layout.collapsed
        for slot in inputs:
            if collapsed and slot.name not in self.connected_inputs:
                continue
            self._socket(
                painter,
                slot.center,
                slot.type,
                slot.name in self.connected_inputs,
                slot.name in self.highlight,
                r,
            )
        for row in self.layout.editors:
            if row.linked or row.widget.name in self.highlight:
                if collapsed and not row.linked:
                    continue
                kind = row.widget.link_type
                self._socket(
                    painter, row.socket, kind, row.linked, row.widget.name in self.highlight, r
                )
        for slot in outputs:
            if collapsed and slot.name not in self.connected_outputs:
                continue
            self._socket(
                painter,
                slot.center,
                slot.type,
                slot.name in self.connected_outputs,
                slot.name in self.highlight,
                r,
            )

    @staticmethod
    def _socket(
        painter: QPainter, center: QPointF, kind: str, connected: bool, lit: bool, r: float
    ) -> None:
        painter.setPen(s.pen("#ffffff", 2.0) if lit else s.pen("#1e1f22", 1.0))
        painter.setBrush(s.socket_color(kind))
        painter.drawEllipse(center, r + (1.5 if lit else 0.0), r + (1.5 if lit else 0.0))
        if not connected:
            painter.setPen(s.NO_PEN)
            painter.setBrush(s.NODE_BODY)
            painter.drawEllipse(center, r / 2.4, r / 2.4)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.update()
        return super().itemChange(change, value)


def _near(a: QPointF, b: QPointF) -> bool:
    return abs(a.x() - b.x()) <= SOCKET_HIT and abs(a.y() - b.y()) <= SOCKET_HIT
