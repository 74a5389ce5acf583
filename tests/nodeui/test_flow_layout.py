"""Button bars that wrap: side panels ask for the width of their widest control, not of a whole
row of them, so a small screen's side columns leave the canvas room."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolButton, QWidget

from nodeui.history import HistoryCursor
from nodeui.panels.flow import FlowLayout
from nodeui.panels.queue import QueuePanel
from nodeui.panels.sweep import SweepPanel
from nodeui.panels.viewer import ImageViewer
from nodeui.runs import QueuedRun, RunQueue
from tests.nodeui import shell_fakes


def _bar(qtbot, count: int = 4) -> tuple[QWidget, list[QToolButton]]:
    host = QWidget()
    qtbot.addWidget(host)
    layout = FlowLayout(host, spacing=4)
    layout.setContentsMargins(0, 0, 0, 0)
    buttons = []
    for number in range(count):
        button = QToolButton()
        button.setText(f"Button number {number}")
        layout.addWidget(button)
        buttons.append(button)
    return host, buttons


def _rows(buttons) -> set[int]:
    return {button.geometry().y() for button in buttons}


def test_a_wide_bar_is_one_row_and_a_narrow_one_wraps_without_overlap(qtbot):
    host, buttons = _bar(qtbot)
    layout = host.layout()
    widest = max(b.sizeHint().width() for b in buttons)
    assert layout.minimumSize().width() == widest
    assert layout.sizeHint().width() > 3 * widest

    layout.setGeometry(QRect(0, 0, layout.sizeHint().width(), 40))
    assert len(_rows(buttons)) == 1

    narrow = widest + widest // 2
    layout.setGeometry(QRect(0, 0, narrow, layout.heightForWidth(narrow)))
    assert len(_rows(buttons)) == 4
    assert layout.heightForWidth(narrow) > layout.heightForWidth(layout.sizeHint().width())
    for one in buttons:
        assert one.geometry().right() < narrow
        for other in buttons:
            if other is not one:
                assert not one.geometry().intersects(other.geometry())


def test_a_stretching_label_takes_the_rest_of_its_row(qtbot):
    host, buttons = _bar(qtbot, 2)
    layout = host.layout()
    label = QLabel("a hint")
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    layout.addWidget(label)
    layout.setGeometry(QRect(0, 0, 1000, 40))
    assert label.geometry().right() == 999
    assert label.geometry().left() > buttons[1].geometry().right()


def test_hidden_widgets_take_no_room(qtbot):
    host, buttons = _bar(qtbot, 2)
    host.show()
    qtbot.waitExposed(host)
    before = host.layout().sizeHint().width()
    buttons[1].hide()
    assert host.layout().sizeHint().width() < before


@pytest.mark.parametrize("make", ["viewer", "sweep", "queue"])
def test_side_panels_fit_a_column_of_thirty_characters(qtbot, make):
    """A small screen's side column is about a sixth of the window; every panel fits one
    (they asked for 52–62 characters when their buttons stood in single rows)."""
    if make == "viewer":
        panel = ImageViewer()
        panel.set_history(HistoryCursor(shell_fakes.fake_history(20)), node_id=5, title="K")
    elif make == "sweep":
        panel = SweepPanel()
    else:
        panel = QueuePanel(RunQueue())
    qtbot.addWidget(panel)
    limit = 30 * panel.fontMetrics().averageCharWidth()
    assert panel.minimumSizeHint().width() <= limit, (panel.minimumSizeHint(), limit)


def test_the_viewer_at_its_minimum_width_shows_every_button_whole(qtbot):
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer.set_history(HistoryCursor(shell_fakes.fake_history(20)), node_id=5, title="K")
    width = viewer.minimumSizeHint().width()
    viewer.resize(width, 400)
    viewer.show()
    qtbot.waitExposed(viewer)
    for button in viewer.findChildren(QToolButton):
        if button.isVisible():
            box = button.geometry().translated(
                button.parentWidget().mapTo(viewer, button.pos()) - button.pos()
            )
            assert box.left() >= 0 and box.right() < viewer.width(), (button.text(), box)
            assert button.width() >= button.minimumSizeHint().width(), button.text()


def test_the_queue_keeps_its_width_while_a_run_with_a_long_summary_goes(qtbot):
    queue = RunQueue()
    panel = QueuePanel(queue)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    empty = panel.minimumSizeHint().width()
    run = QueuedRun(1, "Untitled (default.json)", {}, None, seeds="seed 1234567890")
    run.changes = "KSampler: steps 20→30, seed 42→43, cfg 5.0→7.5; Positive: text edited"
    queue.add(run)
    queue.take_next()
    panel.refresh()
    qtbot.wait(10)  # the layout takes the new text in
    assert "Running" in panel.current.text() and "text edited" in panel.current.text()
    assert panel.minimumSizeHint().width() == empty
    panel.resize(empty, 600)
    qtbot.wait(10)
    assert panel.current.height() > 2 * panel.current.fontMetrics().height()  # wrapped, not cut
