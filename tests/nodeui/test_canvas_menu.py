"""The empty canvas's right-click menu: add a node, a note or a group, paste, select all, fit,
and arrange the graph in columns that follow its links."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from core.graph.model import Graph
from nodes import build_registry
from tests.nodeui.canvas_helpers import at, make_canvas


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _right_click(view, scene_pos: QPointF):
    """Right-clicks at ``scene_pos`` and returns the menu that opened."""
    point = at(view, scene_pos)
    event = QContextMenuEvent(
        QContextMenuEvent.Reason.Mouse, point, view.viewport().mapToGlobal(point)
    )
    QApplication.sendEvent(view.viewport(), event)
    return view.graph_scene.open_menu


def _choose(qtbot, menu, text: str) -> None:
    action = next(a for a in menu.actions() if a.text().split("\t")[0] == text)
    qtbot.waitExposed(menu)
    QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())


def test_the_empty_canvas_menu_offers_what_a_comfyui_user_looks_for(qtbot, registry):
    view, _ = make_canvas(qtbot, registry)
    menu = _right_click(view, QPointF(500, 300))
    texts = [a.text().split("\t")[0] for a in menu.actions() if a.text()]
    assert texts == [
        "Add Node…",
        "Add Note",
        "Add Group",
        "Paste",
        "Select All",
        "Fit Graph to Window",
        "Arrange",
    ]
    menu.close()


def test_add_group_from_the_menu_frames_an_empty_group_there(qtbot, registry):
    view, stack = make_canvas(qtbot, registry)
    _choose(qtbot, _right_click(view, QPointF(400, 200)), "Add Group")
    [group] = view.graph_scene.graph.groups.values()
    assert group.rect[:2] == (400.0, 200.0) and not group.nodes
    assert stack.count() == 1


def test_arrange_lays_out_columns_whose_links_all_run_forward(qtbot, registry):
    graph = Graph(registry)
    add = graph.add_node
    # Built back to front and piled up, as a hand-built graph often is.
    save = add("SaveImage", pos=(0, 0)).id
    decode = add("VAEDecode", pos=(20, 20)).id
    sampler = add("KSampler", pos=(40, 40)).id
    empty = add("EmptyLatentImage", pos=(60, 60)).id
    prompt = add("CLIPTextEncode", pos=(80, 80)).id
    ckpt = add("LoadCheckpoint", pos=(100, 100)).id
    for src, out, dst, inp in (
        (ckpt, "CLIP", prompt, "clip"),
        (ckpt, "MODEL", sampler, "model"),
        (prompt, "CONDITIONING", sampler, "positive"),
        (prompt, "CONDITIONING", sampler, "negative"),
        (empty, "LATENT", sampler, "latent_image"),
        (sampler, "LATENT", decode, "samples"),
        (ckpt, "VAE", decode, "vae"),
        (decode, "IMAGE", save, "images"),
    ):
        graph.connect(src, out, dst, inp)
    view, stack = make_canvas(qtbot, registry, graph)
    scene = view.graph_scene
    _choose(qtbot, _right_click(view, QPointF(900, 600)), "Arrange")
    assert stack.count() == 1
    for link in graph.links:
        assert scene.nodes[link.src].sceneBoundingRect().right() < graph.node(link.dst).pos[0]
    rects = {nid: item.sceneBoundingRect() for nid, item in scene.nodes.items()}
    for a in rects:
        for b in rects:
            assert a == b or not rects[a].intersects(rects[b]), (a, b)
    # The empty latent sits in the column just left of its sampler, not beside the loader.
    assert graph.node(empty).pos[0] == graph.node(prompt).pos[0]
    stack.undo()
    assert graph.node(ckpt).pos == (100, 100)
