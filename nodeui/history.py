"""Where the user is in a finished sampler run's step history: a step and x_t or x̂₀.

Scrubbing is view state, not an edit: it never touches the graph or its undo stack. One
``HistoryCursor`` per sampler node is shared by the node's scrub row and the image viewer, so
moving either moves both.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from nodeui.images import history_picture

#: ``which`` values, as ``StepHistory.at`` names them.
LATENT, DENOISED = "latent", "denoised"
#: How each reads on screen.
WHICH_LABELS = {LATENT: "x_t", DENOISED: "x̂₀"}


class HistoryCursor(QObject):
    """A position in one ``StepHistory`` (duck-typed: ``steps``, ``total``, ``picture``)."""

    #: The step or the picture kind changed.
    changed = Signal()

    def __init__(self, history: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.steps: list[int] = list(history.steps)
        self.index = max(0, len(self.steps) - 1)
        self.which = DENOISED
        self._picture: tuple[tuple[int, str], QImage | None] | None = None

    @property
    def count(self) -> int:
        return len(self.steps)

    @property
    def total(self) -> int:
        return int(self.history.total)

    @property
    def step(self) -> int:
        """The shown step's index in the whole schedule (1-based, as progress counts)."""
        return self.steps[self.index] if self.steps else 0

    def set_index(self, index: int) -> None:
        """Shows entry ``index`` of the history (clamped)."""
        index = max(0, min(self.count - 1, int(index)))
        if index != self.index:
            self.index = index
            self.changed.emit()

    def set_step(self, step: int) -> None:
        """Shows schedule step ``step``, or the nearest one the history has."""
        if self.steps:
            self.set_index(min(range(self.count), key=lambda i: abs(self.steps[i] - step)))

    def set_which(self, which: str) -> None:
        if which not in WHICH_LABELS:
            raise ValueError(f"which must be one of {tuple(WHICH_LABELS)}, not {which!r}")
        if which != self.which:
            self.which = which
            self.changed.emit()

    def toggle_which(self) -> None:
        self.set_which(LATENT if self.which == DENOISED else DENOISED)

    @property
    def which_label(self) -> str:
        return WHICH_LABELS[self.which]

    def label(self) -> str:
        return f"step {self.step}/{self.total}"

    def picture(self) -> QImage | None:
        """The shown step's picture through the history's projection (made once per step)."""
        key = (self.step, self.which)
        if self._picture is None or self._picture[0] != key:
            self._picture = (key, history_picture(self.history, *key))
        return self._picture[1]
