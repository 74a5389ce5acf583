"""A newcomer builds the default workflow on an empty canvas with the mouse and the keyboard
only — the library's search and a drag from it, link drags released on empty canvas into the
palette, link drags between sockets, typing in the nodes' fields, the combos' menus, panning and
zooming a canvas that the side panels leave narrow — runs it with Ctrl+Enter and gets a 64×64
picture of the prompt from the shipped demo model.

Nothing here calls the graph to build it: every node, link and value comes from a QTest event
on the window's widgets, or, for the library drag, from the drag events Qt's drag manager would
send the canvas (the offscreen platform ends a drag at once). The test counts the gestures and
prints them.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QMenu, QPlainTextEdit

from core.graph.workflow import load_workflow
from nodes import SHIPPED_MODELS
from nodeui.runs import OK
from tests.nodeui.windows import open_window
from tools.demo_model.judge import judge

LEFT = Qt.MouseButton.LeftButton
NO_MODS = Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier
DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "workflows" / "default.json"
PROMPT = "a red circle on the left, blue background"
STEPS = 10

pytestmark = pytest.mark.skipif(
    not (SHIPPED_MODELS / "checkpoints" / "latentloom-shapes").is_dir(),
    reason="the shipped demo model is not in this checkout",
)


class Hand:
    """Mouse and keyboard on one window, counting each gesture by kind."""

    def __init__(self, qtbot, window) -> None:
        self.qtbot, self.window = qtbot, window
        self.view, self.scene = window.view, window.scene
        self.graph = window.document.graph
        self.count: Counter[str] = Counter()

    def at(self, scene_pos: QPointF) -> QPoint:
        """Where ``scene_pos`` is on the canvas; a user cannot point outside it."""
        point = self.view.mapFromScene(scene_pos)
        assert self.view.viewport().rect().contains(point), f"{scene_pos} is off the canvas"
        return point

    def zoom_out_to_fit(self, *scene_points: QPointF) -> None:
        """Turns the wheel back over the canvas until ``scene_points`` fit on it together."""
        vp = self.view.viewport()
        xs, ys = [p.x() for p in scene_points], [p.y() for p in scene_points]
        width, height = max(xs) - min(xs), max(ys) - min(ys)
        while (
            width * self.view.zoom() > vp.width() - 80
            or height * self.view.zoom() > vp.height() - 80
        ):
            centre = vp.rect().center()
            event = QWheelEvent(
                QPointF(centre),
                QPointF(vp.mapToGlobal(centre)),
                QPoint(),
                QPoint(0, -120),
                Qt.MouseButton.NoButton,
                NO_MODS,
                Qt.ScrollPhase.NoScrollPhase,
                False,
            )
            QApplication.sendEvent(vp, event)
            self.count["wheel (zoom out)"] += 1

    def pan_to(self, *scene_points: QPointF) -> None:
        """Middle-drags the canvas until the middle of ``scene_points`` is at its centre
        (several drags when it is farther than the canvas is wide)."""
        vp = self.view.viewport()
        middle = sum(scene_points, QPointF()) / len(scene_points)
        centre = vp.rect().center()
        while True:
            delta = centre - self.view.mapFromScene(middle)
            if abs(delta.x()) < 20 and abs(delta.y()) < 20:
                break
            reach_x, reach_y = vp.width() // 2 - 10, vp.height() // 2 - 10
            step = QPoint(
                max(-reach_x, min(reach_x, delta.x())), max(-reach_y, min(reach_y, delta.y()))
            )
            start = centre - step / 2
            QTest.mousePress(vp, Qt.MouseButton.MiddleButton, NO_MODS, start)
            QTest.mouseMove(vp, start + step / 2)
            QTest.mouseMove(vp, start + step)
            QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, NO_MODS, start + step)
            self.count["pan (middle-drag)"] += 1

    def node(self, node_id: int):
        return self.scene.nodes[node_id]

    def new_node(self, before: set[int]) -> int:
        (added,) = set(self.graph.nodes) - before
        return added

    # --- the gestures ------------------------------------------------------------------------

    def drag(self, start: QPointF, end: QPointF, kind: str, steps: int = 8) -> None:
        self.zoom_out_to_fit(start, end)
        self.pan_to(start, end)
        vp = self.view.viewport()
        QTest.mousePress(vp, LEFT, NO_MODS, self.at(start))
        for i in range(1, steps + 1):
            QTest.mouseMove(vp, self.at(start + (end - start) * (i / steps)))
        QTest.mouseRelease(vp, LEFT, NO_MODS, self.at(end))
        self.count[kind] += 1

    def link(self, src: int, output: str, dst: int, input_: str) -> None:
        """Drags from an output socket to an input socket."""
        self.drag(
            self.node(src).output_scene_pos(output),
            self.node(dst).input_scene_pos(input_),
            "link drag",
        )
        link = self.graph.link_to(dst, input_)
        assert link is not None and (link.src, link.src_output) == (src, output)

    def pick(self, palette_text: str) -> None:
        """Types into the open palette and takes its first match with Enter."""
        palette = self.view.palette
        assert palette.isVisible()
        QTest.keyClicks(palette.search, palette_text)
        QTest.keyClick(palette.search, Qt.Key.Key_Return)
        self.count["typed in the palette"] += 1
        assert not palette.isVisible()

    def from_socket(self, node_id: int, socket: str, output: bool, to: QPointF, text: str) -> int:
        """Drags a link from a socket to empty canvas and picks a node in the filtered palette:
        the new node is placed there, already linked."""
        item = self.node(node_id)
        start = item.output_scene_pos(socket) if output else item.input_scene_pos(socket)
        before = set(self.graph.nodes)
        self.drag(start, to, "link drag to empty canvas")
        self.pick(text)
        return self.new_node(before)

    def from_empty_canvas(self, to: QPointF, text: str) -> int:
        """Double-clicks empty canvas and picks a node in the palette."""
        before = set(self.graph.nodes)
        self.pan_to(to)
        QTest.mouseDClick(self.view.viewport(), LEFT, NO_MODS, self.at(to))
        self.count["double-click on empty canvas"] += 1
        self.pick(text)
        return self.new_node(before)

    def from_library(self, library, search: str, to: QPointF) -> int:
        """Filters the node library, presses on the best match and drags it onto the canvas.

        The press and the moves are real and start Qt's drag with the library's own data, but
        the offscreen platform ends a drag at once, so the drag's arrival on the canvas is
        delivered as Qt's drag manager delivers it (enter, move, drop)."""
        self.pan_to(to)
        library.search.clear()
        QTest.mouseClick(library.search, LEFT)
        QTest.keyClicks(library.search, search)
        item = library.tree.currentItem()
        start = library.tree.visualItemRect(item).center()
        tree_vp = library.tree.viewport()
        QTest.mousePress(tree_vp, LEFT, NO_MODS, start)
        for dx in (4, 12, 24, 40):
            QTest.mouseMove(tree_vp, start + QPoint(dx, 0))
        QTest.mouseRelease(tree_vp, LEFT, NO_MODS, start + QPoint(40, 0))
        mime = library.tree.mimeData([item])
        point = QPointF(self.at(to))
        vp = self.view.viewport()
        copy = Qt.DropAction.CopyAction
        for event in (
            QDragEnterEvent(point.toPoint(), copy, mime, LEFT, NO_MODS),
            QDragMoveEvent(point.toPoint(), copy, mime, LEFT, NO_MODS),
        ):
            QApplication.sendEvent(vp, event)
            assert event.isAccepted()
        before = set(self.graph.nodes)
        QApplication.sendEvent(vp, QDropEvent(point, copy, mime, LEFT, NO_MODS))
        self.count["drag from the library"] += 1
        added = self.new_node(before)
        x, y = self.graph.node(added).pos
        assert abs(x - to.x()) < 3 and abs(y - to.y()) < 3  # a pixel at this zoom
        return added

    def type_into(self, node_id: int, name: str, text: str) -> None:
        """Double-clicks a field, types over it and ends with Enter; a prompt (several lines)
        ends with a click on empty canvas, since Ctrl+Enter there would also queue a run."""
        item = self.node(node_id)
        row = item.layout.editor(name)
        assert row is not None, f"{name} has no field on node {node_id}"
        self.pan_to(item.mapToScene(row.rect.center()))
        QTest.mouseDClick(
            self.view.viewport(), LEFT, NO_MODS, self.at(item.mapToScene(row.rect.center()))
        )
        editor = self.scene.inline_editor
        assert editor is not None, f"no editor opened on {name}"
        QTest.keyClick(editor.widget, Qt.Key.Key_A, CTRL)
        QTest.keyClicks(editor.widget, text)
        if isinstance(editor.widget, QPlainTextEdit):
            self.click_empty_canvas()
        else:
            QTest.keyClick(editor.widget, Qt.Key.Key_Return)
        self.count["typed in a field"] += 1
        assert self.scene.inline_editor is None

    def click_empty_canvas(self) -> None:
        """Clicks the canvas where no item is (a corner of it)."""
        vp = self.view.viewport()
        for corner in (QPoint(8, 8), QPoint(vp.width() - 8, 8), QPoint(8, vp.height() - 8)):
            if self.scene.itemAt(self.view.mapToScene(corner), self.view.transform()) is None:
                QTest.mouseClick(vp, LEFT, NO_MODS, corner)
                self.count["click on empty canvas"] += 1
                return
        raise AssertionError("no empty corner on the canvas to click")

    def choose(self, node_id: int, name: str, choice: str) -> None:
        """Clicks a combo and picks ``choice`` in its menu with the arrow keys and Enter."""
        item = self.node(node_id)
        row = item.layout.editor(name)
        assert row is not None
        self.pan_to(item.mapToScene(row.rect.center()))
        QTest.mouseClick(
            self.view.viewport(), LEFT, NO_MODS, self.at(item.mapToScene(row.rect.center()))
        )
        menu = self.scene.open_menu
        assert isinstance(menu, QMenu) and menu.isVisible()
        self.qtbot.waitExposed(menu)
        texts = [action.text() for action in menu.actions()]
        assert choice in texts, f"{choice!r} is not among {texts}"
        while menu.activeAction() is None or menu.activeAction().text() != choice:
            QTest.keyClick(menu, Qt.Key.Key_Down)
        QTest.keyClick(menu, Qt.Key.Key_Return)
        self.count["combo menu"] += 1
        assert self.graph.node(node_id).params[name] == choice


def wiring(graph) -> list[tuple[str, str, str, str]]:
    """The links as (source type, output, target type, input), sorted: ids left aside."""

    def kind(node_id: int) -> str:
        return graph.node(node_id).type_id

    return sorted(
        (kind(link.src), link.src_output, kind(link.dst), link.dst_input) for link in graph.links
    )


def picture(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = rgb.width(), rgb.height()
    data = np.frombuffer(rgb.constBits(), np.uint8, rgb.bytesPerLine() * height)
    return data.reshape(height, rgb.bytesPerLine())[:, : width * 3].reshape(height, width, 3)


def test_a_newcomer_builds_the_default_workflow_by_hand_and_it_draws_the_prompt(qtbot, tmp_path):
    with open_window(tmp_path) as window:
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        assert len(window.document.graph) == 0
        hand = Hand(qtbot, window)
        graph = hand.graph
        began = time.monotonic()
        # On the 800-pixel offscreen screen the first start's side panels leave the canvas
        # about a hundred pixels: the newcomer closes the inspector and the image viewer.
        for name in ("inspector", "viewer"):
            dock = window.docks[name]
            close = dock.findChild(QAbstractButton, "qt_dockwidget_closebutton")
            QTest.mouseClick(close, LEFT)
            hand.count["close a panel"] += 1
            assert not dock.isVisible()
        qtbot.waitUntil(lambda: window.view.viewport().width() > 400)

        # The loader from the node library: its search box, then Enter.
        library = window.library
        QTest.mouseClick(library.search, LEFT)
        QTest.keyClicks(library.search, "load checkpoint")
        QTest.keyClick(library.search, Qt.Key.Key_Return)
        hand.count["library search + Enter"] += 1
        (loader,) = graph.nodes
        assert graph.node(loader).type_id == "LoadCheckpoint"
        # Every other node is placed relative to where the loader landed.
        base = hand.node(loader).scenePos()

        def beside(dx: float, dy: float) -> QPointF:
            return base + QPointF(dx, dy)

        hand.choose(loader, "ckpt_name", "latentloom-shapes")

        positive = hand.from_socket(loader, "CLIP", True, beside(350, -250), "clip text encode")
        negative = hand.from_socket(loader, "CLIP", True, beside(350, 150), "clip text encode")
        guidance = hand.from_socket(loader, "MODEL", True, beside(350, -420), "guidance interval")
        sampler = hand.from_socket(positive, "CONDITIONING", True, beside(700, -250), "ksampler")
        hand.link(negative, "CONDITIONING", sampler, "negative")
        hand.link(guidance, "MODEL", sampler, "model")
        latent = hand.from_socket(
            sampler, "latent_image", False, beside(350, 380), "empty latent image"
        )
        decode = hand.from_socket(sampler, "LATENT", True, beside(1020, -250), "vae decode")
        hand.link(loader, "VAE", decode, "vae")
        save = hand.from_library(window.library, "save image", beside(1320, -250))
        hand.link(decode, "IMAGE", save, "images")

        hand.type_into(positive, "text", PROMPT)
        hand.type_into(latent, "width", "64")
        hand.type_into(latent, "height", "64")
        hand.type_into(sampler, "steps", str(STEPS))
        hand.type_into(sampler, "cfg", "5")
        hand.choose(sampler, "scheduler", "karras")

        types = sorted(node.type_id for node in graph)
        assert types == sorted(
            [
                "LoadCheckpoint",
                "CLIPTextEncode",
                "CLIPTextEncode",
                "GuidanceInterval",
                "KSampler",
                "EmptyLatentImage",
                "VAEDecode",
                "SaveImage",
            ]
        )
        assert wiring(graph) == wiring(load_workflow(DEFAULT, window.registry).graph)
        assert graph.node(positive).params["text"] == PROMPT
        assert graph.node(latent).params["width"] == graph.node(latent).params["height"] == 64

        assert not window.runs.busy and not window.runs.queue.history
        window.view.setFocus()
        QTest.keyClick(window.view.viewport(), Qt.Key.Key_Return, CTRL)
        hand.count["Ctrl+Enter"] += 1
        built = time.monotonic() - began
        assert window.runs.busy, "Ctrl+Enter queued no run"
        qtbot.waitUntil(lambda: not window.runs.busy, timeout=240_000)
        assert len(window.runs.queue.history) == 1
        run = window.runs.queue.history[0]
        assert run.status == OK, run
        ran = time.monotonic() - began - built

        (image,) = run.node_images[save]
        assert (image.width(), image.height()) == (64, 64)
        seen = judge(picture(image))
        assert (seen.background, seen.colour, seen.position) == ("blue", "red", "left")
        assert seen.shape == "circle"
        assert list((tmp_path / "out").glob("*.png"))

        total = sum(hand.count.values())
        print(f"\n{total} gestures ({built:.1f} s to build, {ran:.1f} s to run):")
        for kind, n in hand.count.most_common():
            print(f"  {n:3d}  {kind}")
