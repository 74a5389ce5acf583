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
        #: The picture a VAE Decode made of the sampler's output, shown at the last step in
        #: place of the latent projection (which is coarser: one colour per latent cell).
        self.final: QImage | None = None

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

    def set_final(self, image: QImage | None) -> None:
        """The decoded picture of the run's result (None: there is none)."""
        if image is not self.final:
            self.final = image
            self.changed.emit()

    @property
    def shows_final(self) -> bool:
        """Whether the decoded picture stands for the shown step: the last one, as x_t (the
        latent the sampler returned), or as x̂₀ once the schedule has run to its end, where
        x̂₀ is the result too."""
        if self.final is None or not self.steps or self.index != self.count - 1:
            return False
        return self.which == LATENT or self.step >= self.total

    def label(self) -> str:
        decoded = " · decoded" if self.shows_final else ""
        return f"step {self.step}/{self.total}{decoded}"

    def picture(self) -> QImage | None:
        """The shown step's picture: the decoded result at the last step when there is one,
        else the step through the history's projection (made once per step)."""
        if self.shows_final:
            return self.final
        key = (self.step, self.which)
        if self._picture is None or self._picture[0] != key:
            self._picture = (key, history_picture(self.history, *key))
        return self._picture[1]
