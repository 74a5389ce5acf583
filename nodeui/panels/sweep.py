"""The Sweep panel: the axes of the sweep being prepared, how they combine, the number of
runs, and one Run for all of it (here, or on the Ray cluster named in the Settings).

The panel holds the axes and shows progress; ``nodeui.sweeps.SweepController`` plans and runs.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.engine.sweep import MAX_RUNS, PRODUCT, ZIP, Axis
from nodeui.panels.flow import FlowLayout, layout_spacing

#: Grid roles of the axes, in order.
ROLES = ("X", "Y", "Z")


class SweepPanel(QWidget):
    """Lists the axes (X, Y, Z…) and starts or stops the sweep."""

    runRequested = Signal()
    cancelRequested = Signal()
    #: The axes changed (added, removed, reordered).
    axesChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axes: list[Axis] = []
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Axis", "Field", "Values"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(self.fontMetrics().height() * 7)
        self.empty = QLabel('Right-click a field in the Inspector and choose "Sweep this field…".')
        self.empty.setObjectName("emptyHint")
        self.empty.setWordWrap(True)
        self.remove = QPushButton("Remove")
        self.remove.setToolTip("Remove the selected axis")
        self.remove.clicked.connect(self._remove_selected)
        self.mode = QComboBox()
        self.mode.addItem("Every combination (X × Y × Z)", PRODUCT)
        self.mode.addItem("Zip (the i-th values together)", ZIP)
        self.mode.currentIndexChanged.connect(self._update)
        # The choices' full text would hold the dock (and the canvas beside it) wide; the open
        # list still shows it whole.
        self.mode.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.mode.setMinimumContentsLength(12)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1000)
        self.batch.setToolTip("Run every combination this many times, with each seed's mode")
        self.batch.valueChanged.connect(self._update)
        self.cluster = QCheckBox("Run on cluster")
        self.cluster.setToolTip("Run on the Ray cluster at the address in Settings")
        self.count = QLabel()
        self.count.setObjectName("sweepCount")
        self.run_button = QPushButton("Run Sweep")
        self.run_button.clicked.connect(self.runRequested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m runs")
        self.steps = QProgressBar()
        self.steps.setFormat("step %v / %m")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Combine", self.mode)
        form.addRow("Batch count", self.batch)
        # Button rows wrap in a narrow dock instead of widening it.
        buttons = FlowLayout(spacing=layout_spacing(self))
        buttons.addWidget(self.remove)
        buttons.addWidget(self.cluster)
        run_row = FlowLayout(spacing=layout_spacing(self))
        self.count.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.steps)
        layout.addWidget(self.status)
        self.set_cluster_address("")
        self._update()

    # --- axes ------------------------------------------------------------------------------

    def add_axis(self, axis: Axis) -> None:
        """Adds ``axis``, replacing one over the same field."""
        for index, old in enumerate(self.axes):
            if old.name == axis.name:
                self.axes[index] = axis
                break
        else:
            self.axes.append(axis)
        self._update()
        self.axesChanged.emit()

    def clear_axes(self) -> None:
        self.axes.clear()
        self._update()
        self.axesChanged.emit()

    def _remove_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        for row in rows:
            del self.axes[row]
        if rows:
            self._update()
            self.axesChanged.emit()

    @property
    def combine(self) -> str:
        return str(self.mode.currentData())

    def run_count(self) -> int:
        """How many runs the sweep will make (0 when zipped axes differ in length)."""
        sizes = [len(axis.values) for axis in self.axes]
        if not sizes:
            return 0
        if self.combine == ZIP:
            combos = sizes[0] if len(set(sizes)) == 1 else 0
        else:
            combos = math.prod(sizes)
        return combos * self.batch.value()

    def set_cluster_address(self, address: str) -> None:
        """Names the Ray address from the Settings in the cluster option's tooltip."""
        if address:
            self.cluster.setToolTip(f"Run on the Ray cluster at {address} (from Settings)")
        else:
            self.cluster.setToolTip("Set the Ray cluster's address in Settings to run there")

    def _update(self) -> None:
        self.table.setRowCount(len(self.axes))
        for row, axis in enumerate(self.axes):
            role = ROLES[row] if row < len(ROLES) and self.combine == PRODUCT else f"{row + 1}"
            shown = ", ".join(axis.label(i) for i in range(min(len(axis.values), 6)))
            if len(axis.values) > 6:
                shown += f", … ({len(axis.values)} values)"
            for column, text in enumerate((role, f"{axis.name} ({axis.title})", shown)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.empty.setVisible(not self.axes)
        count = self.run_count()
        if self.axes and count == 0:
            self.count.setText("Zipped axes need as many values each")
        elif count > MAX_RUNS:
            self.count.setText(f"{count:,} runs: more than {MAX_RUNS:,}")
        else:
            self.count.setText(f"{count} run{'s' if count != 1 else ''}")
        self.run_button.setEnabled(0 < count <= MAX_RUNS and not self.cancel_button.isEnabled())

    # --- running ---------------------------------------------------------------------------

    def set_running(self, running: bool, total: int = 0) -> None:
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setRange(0, max(1, total))
            self.progress.setValue(0)
            self.steps.setRange(0, 1)
            self.steps.setValue(0)
        self._update()

    def set_progress(self, done: int, step: int = 0, steps: int = 0) -> None:
        self.progress.setValue(done)
        if steps:
            self.steps.setRange(0, steps)
            self.steps.setValue(step)

    def show_status(self, text: str) -> None:
        self.status.setText(text)
