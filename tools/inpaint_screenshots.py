"""Takes the README's inpainting screenshots: the editor after running
``resources/workflows/inpaint.json``, and the Mask Editor open on its picture.

    python -m tools.inpaint_screenshots [OUT_FOLDER]   # default: resources/screenshots

Runs offscreen when there is no display, with the shipped dark theme and the demo model.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "resources" / "workflows" / "inpaint.json"
WINDOW_SIZE = (1600, 900)
EDITOR_SIZE = (900, 760)


def main(out: Path) -> int:
    from nodeui.app import _ensure_platform

    _ensure_platform(headless=True)
    from PySide6.QtCore import QPointF, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from nodeui.documents import RecoveryStore
    from nodeui.mask_editor import MaskEditor
    from nodeui.settings import open_settings
    from nodeui.theme import apply_dark_theme
    from nodeui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_dark_theme(app)
    scratch = Path(tempfile.mkdtemp(prefix="latentloom-shots-"))
    window = MainWindow(
        open_settings(scratch / "settings.ini"),
        recovery=RecoveryStore(scratch / "recovery"),
        output_dir=scratch / "output",
    )
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.resize(*WINDOW_SIZE)
    window.docks["library"].hide()  # the canvas gets the room the graph needs
    window.files.open(WORKFLOW, ask=False)
    window.show()
    out.mkdir(parents=True, exist_ok=True)
    outcome = {"code": 0}

    def mask_editor() -> None:
        load = next(n.id for n in window.document.graph if n.type_id == "LoadImage")
        editor = window.image_inputs.open_mask_editor(load)
        if editor is None:
            outcome["code"] = 1
            app.quit()
            return
        editor.resize(*EDITOR_SIZE)
        editor.size.setValue(10)
        canvas = editor.canvas
        # A pointer over the picture shows the brush outline, as it does while painting.
        canvas._hover = canvas.from_picture(QPointF(40, 22))
        QTimer.singleShot(300, lambda: grab_editor(editor))

    def grab_editor(editor: MaskEditor) -> None:
        editor.grab().save(str(out / "mask_editor.png"), "PNG")
        editor.reject()
        window.shutdown(persist=False)
        app.quit()

    def after_run() -> None:
        history = window.runs.queue.history
        if not history or history[0].status != "ok":
            outcome["code"] = 1
        window.view.frame_all()
        sampler = next(n.id for n in window.document.graph if n.type_id == "KSampler")
        window.scene.select_nodes([sampler])
        QTimer.singleShot(500, lambda: (grab_window(), mask_editor()))

    def grab_window() -> None:
        window.grab().save(str(out / "inpaint.png"), "PNG")

    window.runs.idle.connect(after_run, Qt.ConnectionType.SingleShotConnection)
    QTimer.singleShot(300, window.run_graph)
    app.exec()
    return outcome["code"]


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "resources" / "screenshots"
    sys.exit(main(target))
