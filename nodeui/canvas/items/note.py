"""A text note on the canvas: a pale card with its text (Markdown notes formatted)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSizeF, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.graph.model import Graph
from nodeui.canvas import style as s

NOTE_TYPE = QGraphicsItem.UserType + 6
#: The strip at the top that names the card; the text starts below it.
HEADER_HEIGHT = 18.0
PADDING = 8.0
_FILL = QColor("#4a4433")
_HEADER = QColor("#6b6040")
_BORDER = QColor("#7d7150")
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


class NoteItem(QGraphicsItem):
    """Draws one model note. It is never a node: no sockets, nothing to run."""

    def __init__(self, graph: Graph, note_id: int) -> None:
        super().__init__()
        self.graph = graph
        self.note_id = note_id
        self._rect = QRectF()
        self.document = QTextDocument()
        self.document.setDocumentMargin(0.0)
        self.document.setDefaultFont(s.font(9.5))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(-0.5)  # above group frames, below nodes and links
        self.refresh()

    def type(self) -> int:
        return NOTE_TYPE

    def refresh(self) -> None:
        """Re-reads the note: text, position and size."""
        note = self.graph.notes[self.note_id]
        self.prepareGeometryChange()
        self.setPos(*note.pos)
        width, height = max(note.size[0], 80.0), max(note.size[1], HEADER_HEIGHT + 24.0)
        self._rect = QRectF(0.0, 0.0, width, height)
        if note.markdown:
            self.document.setMarkdown(note.text)
        else:
            self.document.setPlainText(note.text)
        self.document.setTextWidth(width - 2 * PADDING)
        self.update()

    @property
    def markdown(self) -> bool:
        return self.graph.notes[self.note_id].markdown

    def text_rect(self) -> QRectF:
        """Where the text lies, in item coordinates (the editor opens over it)."""
        return self._rect.adjusted(PADDING, HEADER_HEIGHT + 4.0, -PADDING, -PADDING)

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-2, -2, 2, 2)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = self.isSelected()
        painter.setPen(s.pen(s.SELECTED if selected else _BORDER.name(), 2.0 if selected else 1.0))
        painter.setBrush(_FILL)
        painter.drawRoundedRect(self._rect, 5, 5)
        header = QRectF(0.0, 0.0, self._rect.width(), HEADER_HEIGHT)
        painter.setPen(s.NO_PEN)
        painter.setBrush(_HEADER)
        painter.drawRoundedRect(header, 5, 5)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < s.LOD_SIMPLE:
            return
        painter.setPen(s.TEXT_DIM)
        painter.setFont(s.font(8.5, True))
        label = "Markdown note" if self.markdown else "Note"
        painter.drawText(header.adjusted(PADDING, 0, -PADDING, 0), _LEFT, label)
        area = self.text_rect()
        painter.save()
        painter.translate(area.topLeft())
        painter.setClipRect(QRectF(0.0, 0.0, area.width(), area.height()))
        context = QAbstractTextDocumentLayout.PaintContext()
        context.palette.setColor(QPalette.ColorRole.Text, s.TEXT)
        context.clip = QRectF(0.0, 0.0, area.width(), area.height())
        self.document.documentLayout().draw(painter, context)
        painter.restore()

    def text_size(self) -> QSizeF:
        """How much room the laid-out text takes (tests and auto-sizing read it)."""
        return self.document.size()
