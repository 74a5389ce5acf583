"""Documents, autosave and recovery, and what a dropped file means."""

from __future__ import annotations

import os
import time

from core.graph.commands import SetParam
from core.graph.model import Graph
from core.graph.workflow import save_workflow
from nodes import build_registry
from nodeui.documents import Autosaver, Document, RecoveryStore, classify_drop
from nodeui.undo import push
from tests.nodeui import shell_fakes
from tests.nodeui.crash import crash_leaving_recovery


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


def test_each_window_has_its_own_recovery_file_and_a_clean_one_leaves_the_others(qtbot, tmp_path):
    reg = shell_fakes.registry()
    folder = tmp_path / "data"
    edited, clean = Document(shell_fakes.slow_graph(reg)), Document(shell_fakes.slow_graph(reg))
    push(edited.undo_stack, edited.graph, SetParam(1, "steps", 42))
    first, second = RecoveryStore(folder), RecoveryStore(folder)
    assert first.path != second.path and first.path.parent == second.path.parent == folder
    first_saver = Autosaver(first, lambda: edited, interval_ms=60_000)
    second_saver = Autosaver(second, lambda: clean, interval_ms=60_000)
    assert first_saver.save_now()
    assert not second_saver.save_now()  # a clean window's tick drops only its own file
    second.discard()  # and so does its clean exit
    assert first.path.is_file()
    # The first window is alive: nobody offers its file, not even a window of this process.
    assert second.left_behind() == [] and RecoveryStore(folder).left_behind() == []
    first_saver.timer.stop()
    second_saver.timer.stop()
    first.discard()
    assert list(folder.iterdir()) == []


def test_files_left_by_crashed_processes_are_found_newest_first_and_claimed(tmp_path):
    folder = tmp_path / "data"
    older = crash_leaving_recovery(folder, edits=[(1, "text", "older")])
    newer = crash_leaving_recovery(folder, edits=[(1, "text", "newer")])
    os.utime(older, (time.time() - 60, time.time() - 60))
    live = RecoveryStore(folder)
    live.write(Document(Graph(build_registry())))
    found = RecoveryStore(folder).left_behind()
    assert [store.path for store in found] == [newer, older]
    assert RecoveryStore(folder).left_behind() == []  # claimed: offered by one window only
    texts = [store.read(build_registry()).workflow.graph.node(1).params["text"] for store in found]
    assert texts == ["newer", "older"]
    for store in found:
        store.discard()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [live.path.name, f"{live.path.name}.lock"]
    )


def test_a_webp_or_jpeg_carrying_a_workflow_opens_as_one(tmp_path):
    """ComfyUI's WebP outputs keep the workflow in EXIF; a plain photo is a picture."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = 'workflow:{"last_node_id": 0, "nodes": [], "links": []}'
    carrying, plain = tmp_path / "shot.webp", tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(carrying, "WEBP", exif=exif)
    Image.new("RGB", (8, 8)).save(plain, "JPEG")
    assert classify_drop(carrying) == "workflow"
    assert classify_drop(plain) == "image"
