"""A layout that lays its widgets out in a row and wraps them onto further rows when the row is
too narrow, so a bar of buttons asks for the width of its widest button, not of all of them.

Side panels use it for their button bars: a dock is only as narrow as its widest row allows,
and the canvas beside it gets what the docks leave.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QStyle, QWidget


def layout_spacing(widget: QWidget) -> int:
    """The style's gap between widgets in a row (what a ``QHBoxLayout`` would use)."""
    spacing = widget.style().pixelMetric(QStyle.PixelMetric.PM_LayoutHorizontalSpacing)
    return spacing if spacing >= 0 else 6


class FlowLayout(QLayout):
    """Left-to-right rows that wrap; an item with a horizontal stretch policy (``Expanding`` or
    ``Ignored``) takes the rest of its row. Its height follows its width (``heightForWidth``)."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 2) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self.setSpacing(spacing)

    # --- QLayout's item list -----------------------------------------------------------------

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    # --- sizes ---------------------------------------------------------------------------------

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), place=False)

    def sizeHint(self) -> QSize:
        """All items in one row."""
        visible = self._visible()
        left, top, right, bottom = self.getContentsMargins()
        width = sum(item.sizeHint().width() for item in visible)
        width += self.spacing() * max(0, len(visible) - 1)
        height = max((item.sizeHint().height() for item in visible), default=0)
        return QSize(width + left + right, height + top + bottom)

    def minimumSize(self) -> QSize:
        """One item a row: the widest item's minimum (a stretching item may shrink to its
        own minimum, its text cut short)."""
        left, top, right, bottom = self.getContentsMargins()
        size = QSize(0, 0)
        for item in self._visible():
            size = size.expandedTo(item.minimumSize())
        return size + QSize(left + right, top + bottom)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, place=True)

    # --- placing -------------------------------------------------------------------------------

    def _visible(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    @staticmethod
    def _stretches(item: QLayoutItem) -> bool:
        widget = item.widget()
        if widget is None:
            return False
        policy = widget.sizePolicy().horizontalPolicy()
        return policy in (QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)

    def _rows(self, width: int) -> list[list[QLayoutItem]]:
        """The items split into rows no wider than ``width`` (an item wider than that gets a
        row of its own). A stretching item stays on its row while the rest of the row holds
        its size hint or half the width, whichever is less; else it starts a row of its own."""
        rows: list[list[QLayoutItem]] = [[]]
        used = 0
        for item in self._visible():
            want = item.sizeHint().width()
            if self._stretches(item):
                want = max(item.minimumSize().width(), min(want, width // 2))
            need = want if not rows[-1] else used + self.spacing() + want
            if rows[-1] and need > width:
                rows.append([])
                need = want
            rows[-1].append(item)
            used = need
        return [row for row in rows if row]

    def _widths(self, row: list[QLayoutItem], width: int) -> list[int]:
        """Each item's width in a row ``width`` wide: its size hint, a stretching last item
        the rest of the row, none past the row's end."""
        widths, x = [], 0
        for index, item in enumerate(row):
            want = item.sizeHint().width()
            if self._stretches(item) and index == len(row) - 1:
                want = max(item.minimumSize().width(), width - x)
            want = min(want, max(0, width - x))
            widths.append(want)
            x += want + self.spacing()
        return widths

    @staticmethod
    def _height(item: QLayoutItem, width: int) -> int:
        """An item's height at ``width`` (a word-wrapped label's grows as it narrows)."""
        if item.hasHeightForWidth():
            return max(item.heightForWidth(width), item.minimumSize().height())
        return item.sizeHint().height()

    def _arrange(self, rect: QRect, *, place: bool) -> int:
        """Places the items in ``rect`` (when ``place``); returns the height the rows take."""
        left, top, right, bottom = self.getContentsMargins()
        inner = rect.adjusted(left, top, -right, -bottom)
        y = inner.y()
        rows = self._rows(max(1, inner.width()))
        for number, row in enumerate(rows):
            widths = self._widths(row, inner.width())
            height = max(self._height(item, w) for item, w in zip(row, widths, strict=True))
            if place:
                x = inner.x()
                for item, width in zip(row, widths, strict=True):
                    item.setGeometry(QRect(QPoint(x, y), QSize(width, height)))
                    x += width + self.spacing()
            y += height + (self.spacing() if number < len(rows) - 1 else 0)
        return y - rect.y() + bottom
