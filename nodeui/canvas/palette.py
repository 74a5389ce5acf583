"""The node search palette: fuzzy search over every node type, fully usable from the keyboard.

Opened by Tab, a double-click on empty canvas, or a link released on empty canvas (then only
node types with a socket that can take the link are offered). Type to filter, Up/Down to move,
Enter to add, Escape to close.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from core.graph.spec import NodeSpec

# How much a match in each field counts; the title matters most.
_FIELD_WEIGHTS = (("title", 1.0), ("type_id", 0.9), ("category", 0.5), ("description", 0.3))
_STYLE = """
QFrame#palette { background: #25272b; border: 1px solid #3a3d43; border-radius: 6px; }
QLineEdit { background: #1b1c1f; color: #e6e8eb; border: 1px solid #3a3d43; border-radius: 4px;
            padding: 4px 6px; font-size: 10pt; }
QListWidget { background: transparent; color: #dcdfe4; border: none; font-size: 9pt; }
QListWidget::item { padding: 3px 4px; }
QListWidget::item:selected { background: #3b5b7c; border-radius: 3px; }
"""


def match_score(query: str, text: str) -> float:
    """How well ``query`` matches ``text``: 0 for no match; a prefix beats a word-start match,
    which beats a substring, which beats a subsequence (tighter subsequences score higher)."""
    q, s = query.lower().strip(), text.lower()
    if not q:
        return 1.0
    if not s:
        return 0.0
    if s.startswith(q):
        # Shorter names rank first, but a trailing "(…)" only clarifies a name: "CLIP Text
        # Encode (Prompt)" is the plain encoder and should come before "… SDXL".
        name = s.split(" (", 1)[0] if s.endswith(")") else s
        return 100.0 - min(max(len(name), len(q)) - len(q), 20) * 0.1
    words = _word_starts(text)
    if any(s.startswith(q, i) for i in words):
        return 80.0
    if q in s:
        return 60.0
    initials = "".join(s[i] for i in words)
    if initials.startswith(q):
        return 70.0
    # Subsequence: every query letter in order; fewer gaps score higher.
    pos, gaps, last = 0, 0, -1
    for ch in q:
        pos = s.find(ch, pos)
        if pos < 0:
            return 0.0
        if last >= 0 and pos != last + 1:
            gaps += 1
        last = pos
        pos += 1
    return max(1.0, 40.0 - 3.0 * gaps)


def _word_starts(text: str) -> list[int]:
    """Indices where words start: after a space, _ , / or -, and at camelCase humps."""
    starts = []
    for i, ch in enumerate(text):
        prev = text[i - 1] if i else " "
        if (
            i == 0
            or prev in " _/-."
            or (ch.isupper() and prev.islower())
            or (ch.isdigit() and not prev.isdigit())
        ):
            starts.append(i)
    return starts


def rank(query: str, specs: Iterable[NodeSpec]) -> list[NodeSpec]:
    """The specs that match ``query`` (all words), best first; ties by title."""
    words = query.split()
    scored = []
    for spec in specs:
        total = 0.0
        for word in words or [""]:
            best = max(match_score(word, getattr(spec, f)) * w for f, w in _FIELD_WEIGHTS)
            if best <= 0:
                break
            total += best
        else:
            scored.append((-total, spec.title.lower(), spec))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [spec for _, _, spec in scored]


class NodePalette(QFrame):
    """The palette popup (a child of the view, above the canvas)."""

    #: The type id the user chose.
    chosen = Signal(str)
    closed = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("palette")
        self.setStyleSheet(_STYLE)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search nodes…")
        self.list = QListWidget(self)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setUniformItemSizes(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(320, 340)
        self._specs: list[NodeSpec] = []
        self.search.textChanged.connect(self._refilter)
        self.search.installEventFilter(self)
        self.list.itemClicked.connect(lambda _item: self.accept())
        self.hide()

    def open(self, specs: Iterable[NodeSpec], at: QPoint, heading: str = "") -> None:
        """Shows the palette at ``at`` (parent coordinates) over ``specs``."""
        self._specs = [spec for spec in specs if not spec.placeholder]
        self.search.setPlaceholderText(heading or "Search nodes…")
        self.search.clear()
        self._refilter()
        parent = self.parentWidget()
        x = min(max(0, at.x()), max(0, parent.width() - self.width()))
        y = min(max(0, at.y()), max(0, parent.height() - self.height()))
        self.move(x, y)
        self.show()
        self.raise_()
        self.search.setFocus()

    def _refilter(self) -> None:
        self.list.clear()
        for spec in rank(self.search.text(), self._specs):
            item = QListWidgetItem(f"{spec.title}    ·  {spec.category}")
            item.setData(Qt.ItemDataRole.UserRole, spec.type_id)
            item.setToolTip(spec.description)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def current_type(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def accept(self) -> None:
        type_id = self.current_type()
        self.dismiss()
        if type_id is not None:
            self.chosen.emit(type_id)

    def dismiss(self) -> None:
        if self.isVisible():
            self.hide()
            self.closed.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                step = 1 if key == Qt.Key.Key_Down else -1
                count = self.list.count()
                if count:
                    self.list.setCurrentRow((self.list.currentRow() + step) % count)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.accept()
                return True
            if key == Qt.Key.Key_Escape:
                self.dismiss()
                return True
        elif event.type() == QEvent.Type.FocusOut and not self.list.underMouse():
            self.dismiss()
        return False


__all__ = ["NodePalette", "match_score", "rank"]
