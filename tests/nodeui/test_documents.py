"""Documents, autosave and recovery, and what a dropped file means."""

from __future__ import annotations

import os
import time

from core.graph.commands import SetParam
from core.graph.workflow import save_workflow
from nodes import build_registry
from nodeui.documents import Autosaver, Document, RecoveryStore, classify_drop
from nodeui.undo import push
from tests.nodeui import shell_fakes


def test_autosave_writes_only_when_dirty_and_recovery_restores(qtbot, tmp_path):
    reg = shell_fakes.registry()
    path = tmp_path / "flow.json"
    save_workflow(shell_fakes.slow_graph(reg), path)
    document = Document.open(path, reg)
    store = RecoveryStore(tmp_path / "data")
    saver = Autosaver(store, lambda: document, interval_ms=20)
    assert not saver.save_now() and not store.path.exists()
    push(document.undo_stack, document.graph, SetParam(1, "steps", 42))
    with qtbot.waitSignal(saver.saved, timeout=2000):
        pass  # the timer fired on its own
    saver.timer.stop()
    os.utime(path, (time.time() - 60, time.time() - 60))
    assert store.pending()
    recovered = store.read(reg)
    assert recovered.source == path
    assert recovered.workflow.graph.node(1).params["steps"] == 42
    assert "recovery" not in recovered.workflow.extra


def test_recovery_older_than_its_document_is_not_offered(tmp_path):
    reg = shell_fakes.registry()
    path = tmp_path / "flow.json"
    save_workflow(shell_fakes.slow_graph(reg), path)
    document = Document.open(path, reg)
    store = RecoveryStore(tmp_path / "data")
    store.write(document)
    os.utime(store.path, (time.time() - 60, time.time() - 60))
    assert not store.pending()
    store.discard()
    assert not store.path.exists()


def test_save_marks_clean_and_png_documents_save_as_new_json(qtbot, tmp_path):
    reg = shell_fakes.registry()
    document = Document(shell_fakes.slow_graph(reg))
    push(document.undo_stack, document.graph, SetParam(1, "steps", 7))
    assert document.dirty
    document.save(tmp_path / "a.json", {"center": [1, 2], "zoom": 1.5})
    assert not document.dirty and document.title == "a.json"
    again = Document.open(tmp_path / "a.json", reg)
    assert again.graph.state() == document.graph.state()
    assert again.view == {"center": [1, 2], "zoom": 1.5}


def test_classify_drop(tmp_path):
    from core.diffusion import images
    from core.graph.model import Graph

    graph = Graph(build_registry())
    graph.add_node("GradientImage")
    picture = images.gradient(8, 8, (0, 0, 0), (1, 1, 1), "diagonal")[0]
    plain, carrying = tmp_path / "plain.png", tmp_path / "carrying.png"
    plain.write_bytes(images.png_bytes(picture))
    from core.graph.workflow import dumps

    carrying.write_bytes(images.png_bytes(picture, {"latentloom": dumps(graph)}))
    assert classify_drop(carrying) == "workflow"
    assert classify_drop(plain) == "image"
    assert classify_drop(tmp_path / "photo.JPG") == "image"
    assert classify_drop(tmp_path / "flow.json") == "workflow"
    assert classify_drop(tmp_path / "notes.txt") == "unknown"
