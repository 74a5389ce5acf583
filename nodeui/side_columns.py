"""The window's side columns: where the panels go on a first start, and how wide they are.

Without a saved layout the columns follow the window's width so the canvas keeps
``CANVAS_SHARE`` of it (two columns where they fit, else one on the right), until the user drags
a column's edge or moves a panel; a saved layout is restored as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDockWidget, QStyle

if TYPE_CHECKING:
    pass

#: The least share of the window's width the canvas keeps on a first start: the side panels
#: start narrower (or some of them hidden) on a small screen rather than squeeze the graph.
CANVAS_SHARE = 0.58


class SideColumns:
    """Mixed into the main window (a ``QMainWindow``) before ``QMainWindow`` itself."""

    docks: dict[str, QDockWidget]
    store: QSettings
    preferred_side_widths: tuple[int, int]
    _fitting: bool
    _arranging: bool
    _single_column: bool

    def _size_rows(self) -> None:
        """The left column's heights: the Library above the Queue."""
        line = self.fontMetrics().height()
        self.resizeDocks(
            [self.docks["library"], self.docks["queue"]],
            [30 * line, 18 * line],
            Qt.Orientation.Vertical,
        )

    def _restore_layout(self) -> None:
        geometry = self.store.value("window/geometry")
        state = self.store.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:  # the first start: the whole screen, so the canvas is wide enough to read
            self.resize(self.screen().availableGeometry().size() * 0.9)
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)
        if state is not None:
            self.restoreState(state)
        # Without a saved layout the side columns follow the window's width until the user
        # arranges them: the window manager maximises the window some time after it shows.
        self._fitting = state is None
        for dock in self.docks.values():
            dock.topLevelChanged.connect(self._user_arranged)
            dock.dockLocationChanged.connect(self._user_arranged)

    def _user_arranged(self) -> None:
        if not self._arranging:
            self._fitting = False

    def _column(self, area: Qt.DockWidgetArea) -> list[QDockWidget]:
        """The visible docks in ``area`` (of tabbed ones, the tab in front)."""
        return [d for d in self.docks.values() if d.isVisible() and self.dockWidgetArea(d) == area]

    def _column_width(self, area: Qt.DockWidgetArea) -> tuple[int, int]:
        """(width, minimum width) of the column of docks in ``area``, as the layout has them."""
        docks = self._column(area)
        width = max((d.width() for d in docks), default=0)
        return width, max((d.minimumSizeHint().width() for d in docks), default=0)

    def _fit_side_columns(self) -> None:
        """Arranges the side panels so that the canvas keeps ``CANVAS_SHARE`` of the window:
        two columns at their preferred widths where they fit; else one column on the right,
        the Library, Queue and Sweep tabbed with the Inspector above the Image Viewer (two
        columns of a few characters each would show neither readably); when even that column's
        minimum does not fit, the Queue and Sweep start hidden (View → Panels shows them).
        Stops once the user drags a column's edge or moves a panel."""
        if not self._fitting or not shiboken6.isValid(self):
            return
        left_area = Qt.DockWidgetArea.LeftDockWidgetArea
        right_area = Qt.DockWidgetArea.RightDockWidgetArea
        separator = self.style().pixelMetric(QStyle.PixelMetric.PM_DockWidgetSeparatorExtent)
        budget = int(self.width() * (1 - CANVAS_SHARE)) - 2 * max(separator, 1)
        want_left, want_right = self.preferred_side_widths
        if want_left + want_right <= budget:
            self._arrange_columns(single=False)
            self._size_columns({left_area: want_left, right_area: want_right})
        else:
            self._arrange_columns(single=True)
            if self._column_width(right_area)[1] > budget:
                for name in ("queue", "sweep"):
                    if name in self.docks:
                        self.docks[name].hide()
            least = self._column_width(right_area)[1]
            self._size_columns({right_area: max(least, min(budget, want_left + want_right))})

    #: The docks that leave the left column for the right one on a narrow window, in tab order.
    _MOVABLE = ("library", "queue", "sweep")

    def _arrange_columns(self, *, single: bool) -> None:
        """One column on the right (``single``) or the two columns of ``_build_docks``."""
        if single == self._single_column:
            return
        self._single_column = single
        self._arranging = True
        try:
            self._move_docks(single=single)
        finally:
            self._arranging = False

    def _move_docks(self, *, single: bool) -> None:
        docks = self.docks
        movable = [docks[name] for name in self._MOVABLE if name in docks]
        if single:
            for dock in movable:
                self.tabifyDockWidget(docks["inspector"], dock)
            docks["library"].raise_()  # a newcomer's way to add nodes
            return
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        self.addDockWidget(left, docks["library"])
        self.addDockWidget(left, docks["queue"], Qt.Orientation.Vertical)
        if "sweep" in docks:
            self.tabifyDockWidget(docks["queue"], docks["sweep"])
            docks["queue"].raise_()
        self._size_rows()

    def _size_columns(self, widths: dict[Qt.DockWidgetArea, int]) -> None:
        """Sets each area's column to its width (the first visible dock there stands for it)."""
        columns = [(self._column(area), width) for area, width in widths.items()]
        columns = [(docks[0], width) for docks, width in columns if docks]
        self.resizeDocks(
            [dock for dock, _ in columns],
            [width for _, width in columns],
            Qt.Orientation.Horizontal,
        )

    def save_layout(self) -> None:
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/state", self.saveState())
        self.store.sync()
