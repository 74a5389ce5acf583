"""Live previews and the step history in the editor: previews reach the node and the viewer,
the node's scrub row and the viewer's history bar move one shared cursor, and "Continue from
step k" branches a new sampler in one undo step."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from core.graph.model import Graph
from nodeui.canvas import menus
from nodeui.history import DENOISED, LATENT
from nodeui.images import PreviewFrame, first_image
from nodeui.panels.viewer import HISTORY, IMAGES, LIVE, ImageViewer
from tests.nodeui import shell_fakes
from tests.nodeui.canvas_helpers import click, drag, make_canvas
from tests.nodeui.windows import new_window


def _picture(history, step: int, which: str) -> QImage:
    return first_image(history.picture(step, which))


def _same(a: QImage | None, b: QImage | None) -> bool:
    return a is not None and b is not None and a.convertToFormat(b.format()) == b


@pytest.fixture
def window(qtbot, tmp_path):
    win = new_window(tmp_path, shell_fakes.registry())
    qtbot.addWidget(win)
    yield win
    win.shutdown(persist=False)
    win.close()


def test_a_run_previews_on_the_node_and_in_the_following_viewer_then_leaves_a_history(
    qtbot, window, monkeypatch
):
    graph = window.document.graph
    sampler = graph.add_node("FakeSampler", params={"steps": 6, "delay": 0.15}, pos=(0, 0)).id
    show = graph.add_node("ShowNumber", pos=(300, 0)).id
    graph.connect(sampler, "INT", show, "value")
    captions, live = [], []
    node_preview = window.scene.set_node_preview
    monkeypatch.setattr(
        window.scene,
        "set_node_preview",
        lambda nid, image, caption="": (
            captions.append(caption),
            node_preview(nid, image, caption),
        ),
    )
    window.viewer.follow.setChecked(True)
    original_show_live = window.viewer.show_live

    def show_live(frame, title=""):
        shown = original_show_live(frame, title)
        live.append((shown, window.viewer.mode, window.viewer.shown_image()))
        return shown

    monkeypatch.setattr(window.viewer, "show_live", show_live)
    window.run_graph()
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=20_000)

    assert any(c.startswith("step ") and c.endswith("/6") for c in captions), (captions, live)
    assert live and all(shown and mode == LIVE for shown, mode, _ in live)
    assert live[-1][2] is not None and live[-1][2].width() == 8  # the frame, at its own size
    assert window.viewer.mode == IMAGES  # the run ended: live mode gave way
    # After the run the node shows its history, at the last step's x̂₀.
    cursor = window.scene.history_cursor(sampler)
    history = window.runs.histories(window.document)[sampler]
    assert cursor is not None and cursor.history is history
    assert (cursor.step, cursor.total, cursor.which) == (6, 6, DENOISED)
    item = window.scene.nodes[sampler]
    assert item.layout.scrub_rect is not None and _same(
        item.preview_image, _picture(history, 6, DENOISED)
    )
    # Selecting the sampler offers its history in the viewer, sharing the node's cursor.
    window.scene.select_nodes([sampler])
    assert window.viewer.history.isVisibleTo(window.viewer)
    assert window.viewer.history.cursor is cursor


def test_the_viewer_ignores_live_previews_when_not_following(qtbot):
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer.follow.setChecked(False)
    image = QImage(8, 8, QImage.Format.Format_RGB888)
    assert not viewer.show_live(PreviewFrame(image, 1, 4))
    assert viewer.mode == IMAGES and viewer.shown_image() is None
    viewer.follow.setChecked(True)
    assert viewer.show_live(PreviewFrame(image, 2, 4)) and viewer.mode == LIVE
    assert "step 2/4" in viewer.info.text()


def test_the_node_slider_scrubs_and_the_chip_switches_x_t_and_x0(qtbot):
    reg = shell_fakes.registry()
    graph = Graph(reg)
    sampler = graph.add_node("FakeSampler", pos=(0, 0)).id
    view, stack = make_canvas(qtbot, reg, graph)
    scene = view.graph_scene
    history = shell_fakes.fake_history(10)
    cursor = scene.set_node_history(sampler, history)
    item = scene.nodes[sampler]
    assert cursor is not None and cursor.step == 10
    assert _same(item.preview_image, _picture(history, 10, DENOISED))

    rect = item.layout.scrub_rect
    left = item.mapToScene(QPointF(rect.left() + 2, rect.center().y()))
    third = item.mapToScene(QPointF(rect.left() + rect.width() * 3 / 9, rect.center().y()))
    drag(view, left, third)
    assert cursor.step == 4  # index 3 of steps 1..10
    assert _same(item.preview_image, _picture(history, 4, DENOISED))

    chip = item.mapToScene(item.layout.which_rect.center())
    click(view, chip)
    assert cursor.which == LATENT
    assert _same(item.preview_image, _picture(history, 4, LATENT))
    assert not _same(item.preview_image, _picture(history, 4, DENOISED))
    # Scrubbing is view state: no edit, no undo step, the node did not move.
    assert stack.count() == 0 and graph.node(sampler).pos == (0, 0)


def test_the_viewer_history_bar_moves_the_same_cursor_as_the_node(qtbot):
    reg = shell_fakes.registry()
    graph = Graph(reg)
    sampler = graph.add_node("FakeSampler", pos=(0, 0)).id
    view, _ = make_canvas(qtbot, reg, graph)
    history = shell_fakes.fake_history(8)
    cursor = view.graph_scene.set_node_history(sampler, history)
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    viewer.set_history(cursor, sampler, "Fake Sampler")
    bar = viewer.history

    bar.slider.setValue(2)  # the viewer's slider moves the node's picture…
    item = view.graph_scene.nodes[sampler]
    assert cursor.step == 3 and _same(item.preview_image, _picture(history, 3, DENOISED))
    assert viewer.mode == HISTORY and _same(viewer.shown_image(), _picture(history, 3, DENOISED))
    cursor.set_step(6)  # …and the node's cursor moves the viewer's
    assert bar.slider.value() == 5 and bar.step_label.text() == "step 6/8"
    bar.which_button.click()
    assert cursor.which == LATENT and _same(viewer.shown_image(), _picture(history, 6, LATENT))
    with qtbot.waitSignal(viewer.continueRequested) as asked:
        bar.continue_button.click()
    assert asked.args == [sampler, 6]
    bar.show_button.click()  # back to the outputs
    assert viewer.mode == IMAGES


def test_continue_from_step_adds_a_linked_branch_in_one_undo_step(qtbot):
    """The branch sits beside the old one (covering no node), ends in a copy of the old
    sampler's decode and save, and is selected."""
    from nodes import build_registry

    reg = build_registry()
    graph = Graph(reg)
    ckpt = graph.add_node("LoadCheckpoint", pos=(-600, 0)).id
    pos = graph.add_node("CLIPTextEncode", params={"text": "a red circle"}, pos=(-300, 0)).id
    neg = graph.add_node("CLIPTextEncode", pos=(-300, 200)).id
    empty = graph.add_node("EmptyLatentImage", pos=(-300, 400)).id
    sampler = graph.add_node("KSampler", params={"steps": 10, "cfg": 5.5}, pos=(0, 0)).id
    graph.connect(ckpt, "CLIP", pos, "clip")
    graph.connect(ckpt, "CLIP", neg, "clip")
    graph.connect(ckpt, "MODEL", sampler, "model")
    graph.connect(pos, "CONDITIONING", sampler, "positive")
    graph.connect(neg, "CONDITIONING", sampler, "negative")
    graph.connect(empty, "LATENT", sampler, "latent_image")
    decode = graph.add_node("VAEDecode", pos=(300, 0)).id
    save = graph.add_node("SaveImage", params={"filename_prefix": "x"}, pos=(600, 0)).id
    graph.connect(sampler, "LATENT", decode, "samples")
    graph.connect(ckpt, "VAE", decode, "vae")
    graph.connect(decode, "IMAGE", save, "images")
    view, stack = make_canvas(qtbot, reg, graph)
    scene = view.graph_scene
    before = set(graph.nodes)
    cursor = scene.set_node_history(sampler, shell_fakes.fake_history(10))
    cursor.set_step(4)

    menu = menus.build_menu(scene, scene.nodes[sampler].mapToScene(QPointF(20, 10)))
    action = next(a for a in menu.actions() if a.text() == "Continue from step 4")
    action.trigger()

    assert stack.count() == 1
    added = set(graph.nodes) - before
    types = {graph.node(n).type_id: n for n in added}
    assert sorted(types) == ["KSamplerAdvanced", "LatentFromHistory", "SaveImage", "VAEDecode"]
    new_decode, new_save = types["VAEDecode"], types["SaveImage"]
    assert graph.link_to(new_decode, "samples").src == types["KSamplerAdvanced"]
    assert graph.link_to(new_decode, "vae").src == ckpt
    assert graph.link_to(new_save, "images").src == new_decode
    assert graph.node(new_save).params["filename_prefix"] == "x"
    for new in added:
        box = scene.nodes[new].sceneBoundingRect()
        covered = [n for n in before if scene.nodes[n].sceneBoundingRect().intersects(box)]
        assert covered == [], (graph.node(new).type_id, covered)
    pick, branch = types["LatentFromHistory"], types["KSamplerAdvanced"]
    params = graph.node(branch).params
    assert params["start_at_step"] == 4 and params["steps"] == 10 and params["cfg"] == 5.5
    assert not params["add_noise"] and graph.node(pick).params["step"] == 4
    assert graph.link_to(pick, "history").src == sampler
    assert graph.link_to(branch, "latent_image").src == pick
    for name, src in (("model", ckpt), ("positive", pos), ("negative", neg)):
        assert graph.link_to(branch, name).src == src
    assert scene.selected_node_ids() == sorted(added)
    stack.undo()
    assert set(graph.nodes) == before


def test_the_viewer_fits_a_narrow_dock_with_its_history_bar_and_hint(qtbot):
    """The viewer's controls must not force the right dock wide (the canvas would shrink):
    its minimum width (the zoom/save/follow buttons) stays within 64 average characters with
    the history bar shown and a long hint (it was 190 with both in one row each)."""
    viewer = ImageViewer()
    qtbot.addWidget(viewer)
    from nodeui.history import HistoryCursor

    cursor = HistoryCursor(shell_fakes.fake_history(20))
    viewer.set_history(cursor, node_id=5, title="KSampler")
    viewer.info.setText("No image yet: run the graph (Ctrl+Enter). " * 3)
    limit = 64 * viewer.fontMetrics().averageCharWidth()
    assert viewer.history.isVisibleTo(viewer)
    assert viewer.minimumSizeHint().width() <= limit, (viewer.minimumSizeHint(), limit)


def test_the_slider_caption_gives_way_to_a_long_step_label(qtbot):
    from PySide6.QtGui import QFontMetricsF

    from nodeui.canvas import style
    from nodeui.canvas.items.preview import scrub_texts

    metrics = QFontMetricsF(style.font())
    label = "step 20/20 · decoded"
    both = metrics.horizontalAdvance("history  " + label)
    assert scrub_texts(metrics, both + 4, label) == ("history", label)
    # Narrower: the caption goes rather than being drawn under the label.
    caption, shown = scrub_texts(metrics, both - 10, label)
    assert caption == "" and shown == label
    # Narrower than the label itself: the label is cut, never wider than the room.
    caption, shown = scrub_texts(metrics, metrics.horizontalAdvance(label) / 2, label)
    assert caption == "" and shown.endswith("…")
    assert metrics.horizontalAdvance(shown) <= metrics.horizontalAdvance(label) / 2
