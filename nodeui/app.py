"""Starting the editor: the application object, the theme, the window, and the scripted mode
(``--run`` and ``--screenshot``) used for the README, docs and smoke tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Window size for scripted screenshots, in device-independent pixels.
SCREENSHOT_SIZE = (1600, 900)
#: A scripted run that has not finished after this long gives up (exit code 1).
SCRIPT_TIMEOUT_MS = 600_000


def _ensure_platform(headless: bool) -> None:
    """Scripted runs work without a display: fall back to the offscreen platform."""
    if headless and not os.environ.get("QT_QPA_PLATFORM"):
        has_display = sys.platform in ("win32", "darwin") or bool(
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        )
        if not has_display:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"


def run_app(
    path: Path | None,
    *,
    run: bool = False,
    screenshot: Path | None = None,
    settings_path: Path | None = None,
) -> int:
    """Opens the editor on ``path`` (a workflow or a PNG with one).

    With ``run`` the graph is queued once the window shows; with ``screenshot`` the window is
    saved to that PNG (after the run, when there is one) and the application quits. A scripted
    run exits with 0 when the run succeeded, 1 when it did not, 2 when the file is invalid.
    """
    _ensure_platform(headless=screenshot is not None)
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from core.graph.workflow import WorkflowError
    from nodes.interop import open_workflow
    from nodeui.settings import open_settings
    from nodeui.theme import apply_dark_theme
    from nodeui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("LatentLoom")
    app.setApplicationName("LatentLoom")
    apply_dark_theme(app)
    scripted = screenshot is not None
    window = MainWindow(open_settings(settings_path))
    if scripted and path is not None:
        try:  # a scripted run reports a bad file and exits instead of showing a dialog
            open_workflow(path, window.registry)
        except WorkflowError as exc:
            print(f"error: {exc}", file=sys.stderr)
            window.shutdown(persist=False)
            return 2
    if scripted:
        window.setWindowState(Qt.WindowState.WindowNoState)  # not maximised: a fixed size
        window.resize(*SCREENSHOT_SIZE)
    recovered = [] if scripted else window.recover_left_behind()
    if path is not None and not recovered:
        window.files.open(Path(path), ask=False)
    window.show()
    outcome = {"code": 0}

    def finish() -> None:
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(screenshot), "PNG"):
                print(f"could not write {screenshot}", file=sys.stderr)
                outcome["code"] = 1
            window.shutdown(persist=False)
            app.quit()

    def after_run() -> None:
        history = window.runs.queue.history
        if not history or history[0].status != "ok":
            outcome["code"] = 1  # the screenshot still shows what went wrong
        QTimer.singleShot(400, finish)  # let the last states and images paint

    def start() -> None:
        if scripted:
            _select_showcase_node(window)
        if run:
            window.runs.idle.connect(after_run)
            window.run_graph()
        elif scripted:
            QTimer.singleShot(400, finish)

    def give_up() -> None:
        print("the scripted run did not finish in time", file=sys.stderr)
        outcome["code"] = 1
        finish()

    QTimer.singleShot(0, start)
    if scripted:
        QTimer.singleShot(SCRIPT_TIMEOUT_MS, give_up)
    code = app.exec()
    return outcome["code"] or int(code)


def _select_showcase_node(window: object) -> None:
    """Selects the node with the most parameters (a sampler, in a diffusion graph) so that a
    screenshot shows the inspector at work."""
    graph = window.document.graph  # type: ignore[attr-defined]
    nodes = sorted(graph, key=lambda n: (len(graph.spec(n.id).widgets), -n.id), reverse=True)
    if nodes:
        window.scene.select_nodes([nodes[0].id])  # type: ignore[attr-defined]
