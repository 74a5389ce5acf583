"""When a run ends and a VAE Decode turned the sampler's result into a picture, the sampler's
last step shows that picture instead of the coarse latent projection; earlier steps still
show their own pictures."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage

from core.graph.model import Graph
from nodeui.documents import Document
from nodeui.final_preview import decoded_shown_by
from nodeui.history import LATENT
from nodeui.images import first_image
from tests.nodeui import decode_fakes
from tests.nodeui.canvas_helpers import drag
from tests.nodeui.windows import open_window


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(tmp_path, decode_fakes.registry()) as made:
        made.resize(1200, 800)
        made.show()
        yield made


def _graph(registry, decoded: bool = True) -> tuple[Graph, int]:
    graph = Graph(registry)
    sampler = graph.add_node("FakeSampler", params={"steps": 4, "delay": 0.0}, pos=(0, 0)).id
    reroute = graph.add_node("Reroute", pos=(250, 0)).id
    graph.connect(sampler, "INT", reroute, "value")
    show = graph.add_node("ShowNumber", pos=(400, 200)).id
    graph.connect(reroute, "value", show, "value")
    if decoded:
        decode = graph.add_node("VAEDecode", pos=(400, 0)).id
        preview = graph.add_node("PreviewImage", pos=(650, 0)).id
        graph.connect(reroute, "value", decode, "samples")
        graph.connect(decode, "IMAGE", preview, "images")
    return graph, sampler


def _size(image: QImage | None) -> tuple[int, int] | None:
    return None if image is None else (image.width(), image.height())


def _run(qtbot, window) -> None:
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=30_000)


def test_the_last_step_shows_the_decoded_picture_and_earlier_steps_their_own(qtbot, window):
    graph, sampler = _graph(window.registry)
    window.set_document(Document(graph))
    window.view.frame_all()
    _run(qtbot, window)

    item = window.scene.nodes[sampler]
    cursor = window.scene.history_cursor(sampler)
    assert cursor is not None and cursor.step == 4
    assert _size(item.preview_image) == decode_fakes.DECODED_SIZE
    assert item.preview_image.pixelColor(3, 3).red() == 255
    assert cursor.label() == "step 4/4 · decoded"
    window.scene.select_nodes([sampler])
    assert _size(window.viewer.history.cursor.picture()) == decode_fakes.DECODED_SIZE

    # Scrubbing back to the first step shows that step's own (latent-sized) picture.
    rect = item.layout.scrub_rect
    right = item.mapToScene(QPointF(rect.right() - 2, rect.center().y()))
    left = item.mapToScene(QPointF(rect.left() + 2, rect.center().y()))
    drag(window.view, right, left)
    assert cursor.step == 1 and cursor.label() == "step 1/4"
    history = window.runs.histories(window.document)[sampler]
    step_one = first_image(history.picture(1, "denoised"))
    assert item.preview_image.convertToFormat(step_one.format()) == step_one
    # And forward again to the last step: the decoded picture, as x_t too.
    rect = item.layout.scrub_rect
    start = item.mapToScene(QPointF(rect.left() + rect.width() / 8, rect.center().y()))
    drag(window.view, start, right)
    assert cursor.step == 4 and _size(item.preview_image) == decode_fakes.DECODED_SIZE
    cursor.set_which(LATENT)
    assert _size(item.preview_image) == decode_fakes.DECODED_SIZE


def test_without_a_decode_the_last_step_keeps_the_latent_picture(qtbot, window):
    graph, sampler = _graph(window.registry, decoded=False)
    window.set_document(Document(graph))
    _run(qtbot, window)
    cursor = window.scene.history_cursor(sampler)
    assert cursor is not None and cursor.final is None and cursor.label() == "step 4/4"
    assert _size(window.scene.nodes[sampler].preview_image) == (8, 6)


def test_a_new_sampler_run_without_its_decode_has_no_decoded_picture(qtbot, window):
    graph, sampler = _graph(window.registry)
    window.set_document(Document(graph))
    _run(qtbot, window)
    assert sampler in window.runs.final_pictures(window.document)
    decode = next(n.id for n in graph if n.type_id == "VAEDecode")
    graph.set_node_attribute(decode, "muted", True)
    graph.set_param(sampler, "seed", 5)
    _run(qtbot, window)
    assert window.scene.history_cursor(sampler).final is None
    assert sampler not in window.runs.final_pictures(window.document)


def test_decodes_are_found_through_reroutes_only_from_the_samples_input():
    workflow = {
        "nodes": [
            {"id": 1, "type": "KSampler"},
            {"id": 2, "type": "Reroute"},
            {"id": 3, "type": "VAEDecode"},
            {"id": 4, "type": "SaveImage"},
            {"id": 5, "type": "LatentUpscale"},
            {"id": 6, "type": "VAEDecode"},
            {"id": 7, "type": "PreviewImage"},
        ],
        "links": [
            [1, "LATENT", 2, "value"],
            [2, "value", 3, "samples"],
            [3, "IMAGE", 4, "images"],
            [1, "LATENT", 5, "samples"],
            [5, "LATENT", 6, "samples"],
            [6, "IMAGE", 7, "images"],
        ],
    }
    assert decoded_shown_by(workflow, 1) == [(3, 4)]
    assert decoded_shown_by(workflow, 5) == [(6, 7)]


def test_definition_data_follows_instances_into_nested_definitions():
    from nodeui.final_preview import definition_data

    inner = {"id": "inner", "nodes": [{"id": 3, "type": "KSampler"}], "links": []}
    outer = {"id": "outer", "nodes": [{"id": 2, "type": "inner"}], "links": []}
    workflow = {"nodes": [{"id": 1, "type": "outer"}], "subgraphs": [inner, outer]}
    assert definition_data(workflow, ()) is workflow
    assert definition_data(workflow, (1,)) is outer
    assert definition_data(workflow, (1, 2)) is inner
    assert definition_data(workflow, (1, 3)) is None


def test_the_shipped_workflow_ends_on_its_decoded_picture(qtbot, tmp_path):
    """On the demo model: the KSampler's last step is the Save Image's picture, at full size,
    not the latent projection (one colour per latent cell)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with open_window(tmp_path) as made:
        made.show()
        made.open_path(root / "resources" / "workflows" / "default.json", ask=False)
        made.run_graph()
        qtbot.waitUntil(lambda: not made.runs.busy, timeout=300_000)
        assert made.runs.queue.history[0].status == "ok", made.runs.queue.history[0].message
        graph = made.document.graph
        sampler = next(n.id for n in graph if n.type_id == "KSampler")
        save = next(n.id for n in graph if n.type_id == "SaveImage")
        saved = made.runs.queue.history[0].node_images[save][0]
        cursor = made.scene.history_cursor(sampler)
        assert cursor is not None and cursor.label().endswith("· decoded")
        shown = made.scene.nodes[sampler].preview_image
        latent_width = cursor.history.latents[-1].shape[-1]
        assert shown is saved and shown.width() == cursor.history.downscale * latent_width > 16
