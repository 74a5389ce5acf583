"""The run queue and history: pending runs (reorder, remove), the one running, finished ones."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from nodeui.panels.flow import FlowLayout, layout_spacing
from nodeui.runs import QueuedRun, RunQueue

_RUN_ROLE = Qt.ItemDataRole.UserRole

_STATUS_TEXT = {
    "queued": "queued",
    "running": "running",
    "ok": "done",
    "failed": "failed",
    "cancelled": "cancelled",
    "invalid": "invalid",
}


class QueuePanel(QWidget):
    """Observes a ``RunQueue``; emits what the user asks for."""

    cancelRequested = Signal()
    #: (QueuedRun) a finished run was activated: show its images.
    historyActivated = Signal(object)

    def __init__(self, queue: RunQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.current = QLabel("Idle")
        # "Running …" names the run's seeds and changes: it wraps rather than widen the dock
        # (and narrow the canvas) while a run is going.
        self.current.setWordWrap(True)
        self.current.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.cancelRequested)
        self.cancel_button = cancel
        self.pending = QListWidget()
        self.up, self.down, self.remove = QPushButton("Up"), QPushButton("Down"), QPushButton()
        self.remove.setText("Remove")
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(1))
        self.remove.clicked.connect(self._remove)
        self.history = QListWidget()
        self.history.itemActivated.connect(
            lambda item: self.historyActivated.emit(item.data(_RUN_ROLE))
        )

        running = QHBoxLayout()
        running.addWidget(self.current, 1)
        running.addWidget(cancel)
        # The buttons wrap in a narrow dock instead of widening it.
        buttons = FlowLayout(spacing=layout_spacing(self))
        for button in (self.up, self.down, self.remove):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(running)
        layout.addWidget(self.progress)
        layout.addWidget(QLabel("Queued"))
        layout.addWidget(self.pending, 1)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("History"))
        layout.addWidget(self.history, 2)
        queue.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        selected = self.selected_run_id()
        self.pending.clear()
        for run in self.queue.pending:
            item = QListWidgetItem(_pending_text(run), self.pending)
            item.setData(_RUN_ROLE, run.run_id)
            item.setToolTip(run.summary())
            if run.run_id == selected:
                self.pending.setCurrentItem(item)
        current = self.queue.current
        self.current.setText(f"Running {_pending_text(current)}" if current else "Idle")
        self.current.setToolTip(current.summary() if current else "")
        self.cancel_button.setEnabled(current is not None)
        if current is None:
            self.progress.setValue(0)
        self.history.clear()
        for run in self.queue.history:
            item = QListWidgetItem(_history_text(run), self.history)
            item.setData(_RUN_ROLE, run)
            status = run.message or _STATUS_TEXT.get(run.status, run.status)
            item.setToolTip(f"{status}\n{run.summary()}" if run.summary() else status)
        has_pending = bool(self.queue.pending)
        for button in (self.up, self.down, self.remove):
            button.setEnabled(has_pending)

    def set_progress(self, run: QueuedRun, fraction: float) -> None:
        if run is self.queue.current:
            self.progress.setValue(round(1000 * max(0.0, min(1.0, fraction))))

    def selected_run_id(self) -> int | None:
        item = self.pending.currentItem()
        return None if item is None else int(item.data(_RUN_ROLE))

    def _move(self, delta: int) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.queue.move(run_id, delta)

    def _remove(self) -> None:
        run_id = self.selected_run_id()
        if run_id is not None:
            self.queue.remove(run_id)


def _stamp(run: QueuedRun) -> str:
    return time.strftime("%H:%M:%S", time.localtime(run.queued_at))


def _with_summary(text: str, run: QueuedRun) -> str:
    summary = run.summary()
    return f"{text}  ·  {summary}" if summary else text


def _pending_text(run: QueuedRun) -> str:
    """ "14:02:11  default.json  ·  seed 43  ·  KSampler: seed 42→43": when it was queued,
    its seeds and what changed, so that runs of one file can be told apart."""
    return _with_summary(f"{_stamp(run)}  {run.label}", run)


def _history_text(run: QueuedRun) -> str:
    status = _STATUS_TEXT.get(run.status, run.status)
    seconds = f" in {run.seconds:.2f} s" if run.seconds is not None else ""
    return _with_summary(f"{_stamp(run)}  {run.label}: {status}{seconds}", run)
