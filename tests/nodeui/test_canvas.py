"""The scene mirrors the graph: items follow add/remove/undo/redo; run states, images and
previews land on the right node; the palette ranks matches sensibly."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage

from core.graph.commands import (
    AddNode,
    Connect,
    RemoveNodes,
    SetNodeAttribute,
    SetParam,
)
from core.graph.model import Graph
from core.graph.workflow import load_workflow
from nodes import build_registry
from nodeui import undo
from nodeui.canvas import GraphScene
from nodeui.canvas.items.reroute import RerouteItem
from nodeui.canvas.palette import match_score, rank
from nodeui.runstate import NodeRunState, RunStatus
from tests.nodeui.canvas_helpers import make_canvas

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_scene_mirrors_add_remove_undo_redo(qtbot, registry):
    view, stack = make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("LoadCheckpoint", (0, 0), node_id=1))
    undo.push(stack, graph, AddNode("CLIPTextEncode", (300, 0), node_id=2))
    undo.push(stack, graph, Connect(1, "CLIP", 2, "clip"))
    assert set(scene.nodes) == {1, 2} and set(scene.links) == {(2, "clip")}
    assert scene.nodes[1].pos() == QPointF(0, 0)
    undo.push(stack, graph, RemoveNodes([1]))
    assert set(scene.nodes) == {2} and not scene.links
    assert scene.nodes[2].scene() is scene
    stack.undo()
    assert set(scene.nodes) == {1, 2} and set(scene.links) == {(2, "clip")}
    stack.undo()
    assert not scene.links
    stack.undo()
    stack.undo()
    assert not scene.nodes and not [i for i in scene.items() if i.parentItem() is None]
    for _ in range(3):
        stack.redo()
    assert set(scene.nodes) == {1, 2} and set(scene.links) == {(2, "clip")}
    link = scene.links[(2, "clip")]
    assert link.source is scene.nodes[1] and link.target is scene.nodes[2]
    stack.redo()
    assert set(scene.nodes) == {2} and not scene.links


def test_open_default_workflow_builds_every_item(qtbot, registry):
    wf = load_workflow(ROOT / "resources" / "workflows" / "default.json", registry)
    view, _ = make_canvas(qtbot, registry, wf.graph)
    scene = view.graph_scene
    assert set(scene.nodes) == set(wf.graph.nodes)
    assert len(scene.links) == len(wf.graph.links)


def test_changes_touch_only_their_items(qtbot, registry):
    view, stack = make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("KSampler", (0, 0), node_id=1))
    undo.push(stack, graph, AddNode("Int", (-300, 0), node_id=2))
    item = scene.nodes[1]
    assert item.layout.editor("seed") is not None and not item.layout.editor("seed").linked
    undo.push(stack, graph, SetParam(1, "steps", 33))
    assert "33" in item._texts[[r.widget.name for r in item.layout.editors].index("steps")].value
    # A link into a widget turns its editor into an input socket.
    undo.push(stack, graph, Connect(2, "INT", 1, "seed"))
    assert item.layout.editor("seed").linked
    assert scene.links[(1, "seed")].target is item
    stack.undo()
    assert not item.layout.editor("seed").linked
    undo.push(stack, graph, SetNodeAttribute([1], "collapsed", True))
    assert item.layout.collapsed and item.layout.height < 40


def test_reroute_is_a_dot_with_the_type_of_its_feed(qtbot, registry):
    view, stack = make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("EmptyLatentImage", (0, 0), node_id=1))
    undo.push(stack, graph, AddNode("Reroute", (300, 0), node_id=2))
    assert isinstance(scene.nodes[2], RerouteItem)
    undo.push(stack, graph, Connect(1, "LATENT", 2, "value"))
    assert scene.nodes[2].layout.outputs[0].type == "LATENT"


def test_run_states_images_and_preview(qtbot, registry):
    view, stack = make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("KSampler", (0, 0), node_id=1))
    undo.push(stack, graph, AddNode("PreviewImage", (400, 0), node_id=2))
    scene.set_node_state(1, NodeRunState(RunStatus.RUNNING, progress=0.5))
    assert scene.nodes[1].state_item.isVisible()
    scene.set_node_state(1, NodeRunState("failed", message="bad seed", field="seed"))
    assert scene.nodes[1].marked_field == "seed"
    assert scene.nodes[1].state_item.boundingRect().height() > scene.nodes[1].layout.height
    scene.clear_run_states()
    assert not scene.nodes[1].state_item.isVisible() and scene.nodes[1].marked_field is None
    image = QImage(64, 32, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    height = scene.nodes[2].layout.height
    scene.set_node_images(2, [image])
    assert scene.nodes[2].layout.media_rect is not None
    assert scene.nodes[2].layout.height > height
    scene.set_node_preview(1, image)
    preview = scene.nodes[1]._preview
    assert preview is not None and preview.image is image
    assert preview.cacheMode() == preview.CacheMode.NoCache
    scene.set_node_preview(1, None)
    assert scene.nodes[1]._preview is None


def test_placeholder_nodes_draw_as_missing(qtbot, registry, tmp_path):
    path = tmp_path / "w.json"
    path.write_text(
        '{"format": "latentloom", "version": 2, "nodes": [{"id": 1, "type": "FancyUpscaler",'
        ' "params": {"factor": 2}, "sockets": {"inputs": [["image", "IMAGE"]],'
        ' "outputs": [["IMAGE", "IMAGE"]]}}], "links": []}'
    )
    wf = load_workflow(path, registry)
    view, _ = make_canvas(qtbot, registry, wf.graph)
    item = view.graph_scene.nodes[1]
    assert item.title_text.endswith("(missing)")
    assert [s.name for s in item.layout.inputs] == ["image"]
    assert [s.name for s in item.layout.outputs] == ["IMAGE"]
    view.grab()  # paints without error


def test_scene_stops_listening_after_detach(qapp, registry):
    from PySide6.QtGui import QUndoStack

    graph = Graph(registry)
    scene = GraphScene(graph, registry, QUndoStack())
    scene.detach()
    graph.add_node("Int")
    assert not scene.nodes


def test_palette_ranking(registry):
    assert match_score("ks", "KSampler") > match_score("ks", "Masks")
    assert match_score("sam", "KSampler") > 0
    assert match_score("vdc", "VAE Decode") > 0
    assert match_score("zzz", "VAE Decode") == 0
    top = rank("ksampler", registry)
    assert top[0].type_id == "KSampler"
    assert rank("vae dec", registry)[0].type_id == "VAEDecode"
    assert rank("clip text", registry)[0].type_id == "CLIPTextEncode"
    assert {s.type_id for s in rank("latent", registry)[:5]} & {"EmptyLatentImage", "LatentNoise"}


def test_live_preview_is_throttled(qtbot, registry):
    view, stack = make_canvas(qtbot, registry)
    scene, graph = view.graph_scene, view.graph_scene.graph
    undo.push(stack, graph, AddNode("KSampler", (0, 0), node_id=1))
    frames = []
    for shade in range(10):
        image = QImage(8, 8, QImage.Format.Format_RGB32)
        image.fill(QColor(shade * 20, 0, 0))
        frames.append(image)
        scene.set_node_preview(1, image)
    preview = scene.nodes[1]._preview
    assert preview.image is frames[-1]
    assert preview._timer.isActive()  # the burst waits for one throttled repaint
    qtbot.waitUntil(lambda: not preview._timer.isActive(), timeout=1000)
