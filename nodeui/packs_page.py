"""The Settings page listing the installed node packs: version, state, node types, and a check
box to switch each one on or off (applied when the dialog is accepted)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from core.graph.packs import ENTRY_POINT_GROUP, PackReport, PackStatus
from nodes.packs import normalized

#: What the page says about running a pack's code: the user should know what enabling means.
TRUST_NOTE = (
    "Node packs are Python packages you installed into LatentLoom's environment that declare "
    f"a <code>{ENTRY_POINT_GROUP}</code> entry point. Loading an enabled pack runs its code "
    "when LatentLoom starts, with your permissions: enable only packs you trust. LatentLoom "
    "never downloads or installs a pack itself. A workflow that uses a node of a disabled or "
    "missing pack opens with a placeholder naming the pack."
)
COLUMNS = ("Pack", "Version", "State", "Node types")


class PackList(QWidget):
    """One row per installed pack; unchecking a pack disables it.

    ``locked`` names packs disabled from outside the editor (``$LATENTLOOM_DISABLED_PACKS``):
    they are shown unchecked and cannot be switched on here."""

    def __init__(
        self,
        reports: Sequence[PackReport],
        disabled: Iterable[str],
        locked: Iterable[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        off, fixed = {normalized(n) for n in disabled}, {normalized(n) for n in locked}
        note = QLabel(TRUST_NOTE)
        note.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.empty = QLabel(
            "No node packs are installed. docs/node-packs.md says how to write or install one."
        )
        self.empty.setVisible(not reports)
        for report in reports:
            self.tree.addTopLevelItem(
                _row(report, normalized(report.name) in off, normalized(report.name) in fixed)
            )
        for column in range(len(COLUMNS) - 1):
            self.tree.resizeColumnToContents(column)
        self.tree.setMinimumWidth(560)
        #: The selected pack in full: its state with the whole error, and its entry points.
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tree.currentItemChanged.connect(lambda row, _: self._show(row))
        failed = [r for r in reports if r.status is PackStatus.FAILED]
        self._show(self.item(failed[0].name) if failed else None)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(note)
        layout.addWidget(self.empty)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.details)

    def _show(self, row: QTreeWidgetItem | None) -> None:
        self.details.setText("" if row is None else row.toolTip(0))

    def item(self, name: str) -> QTreeWidgetItem | None:
        """The row of the pack called ``name``."""
        found = self.tree.findItems(name, Qt.MatchFlag.MatchExactly, 0)
        return found[0] if found else None

    def disabled(self, keep: Iterable[str] = ()) -> tuple[str, ...]:
        """The names of the packs left unchecked. Of ``keep`` (the names disabled so far), those
        this page cannot change stay: packs not installed now, and locked ones."""
        kept = list(keep)
        names = []
        rows = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        listed = {normalized(row.text(0)): row for row in rows}
        for name in kept:
            row = listed.get(normalized(name))
            if row is None or not row.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                names.append(name)
        for row in rows:
            checkable = bool(row.flags() & Qt.ItemFlag.ItemIsUserCheckable)
            if checkable and row.checkState(0) == Qt.CheckState.Unchecked:
                names.append(row.text(0))
        return tuple(names)


def _row(report: PackReport, off: bool, locked: bool) -> QTreeWidgetItem:
    if report.status is PackStatus.OK:
        state = "loaded"
    elif report.status is PackStatus.FAILED:
        state = f"failed: {report.error}"
    else:
        state = "disabled (by $LATENTLOOM_DISABLED_PACKS)" if locked else "disabled"
    row = QTreeWidgetItem([report.name, report.version, state, ", ".join(report.node_types) or "—"])
    row.setCheckState(0, Qt.CheckState.Unchecked if off or locked else Qt.CheckState.Checked)
    if locked:
        row.setFlags(row.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
    tip = "\n".join([report.summary(), *report.entry_points])
    for column in range(len(COLUMNS)):
        row.setToolTip(column, tip)
    if report.status is PackStatus.FAILED:
        row.setForeground(2, Qt.GlobalColor.red)
    return row
