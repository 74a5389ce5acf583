"""Save Image and Save Text write only inside the output folder and never replace a file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.engine import Executor, validate
from core.graph.model import Graph
from nodes import build_registry

ESCAPES = ["../../X", "a/../../X", "/abs/X", "a\0b", "n" * 300, "CON", ""]


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _save_image(registry, prefix: str | None = None, *, linked: bool = False) -> Graph:
    g = Graph(registry)
    grad = g.add_node("GradientImage", params={"width": 8, "height": 8}).id
    save = g.add_node("SaveImage").id
    g.connect(grad, "IMAGE", save, "images")
    if prefix is not None:
        _set_name(g, save, "filename_prefix", prefix, linked)
    return g


def _save_text(registry, filename: str, *, linked: bool = False) -> Graph:
    g = Graph(registry)
    text = g.add_node("String", params={"value": "hello"}).id
    save = g.add_node("SaveText").id
    g.connect(text, "STRING", save, "text")
    _set_name(g, save, "filename", filename, linked)
    return g


def _set_name(g: Graph, save: int, field: str, name: str, linked: bool) -> None:
    if linked:
        source = g.add_node("String", params={"value": name}).id
        g.connect(source, "STRING", save, field)
    else:
        g.set_param(save, field, name)


def _saver(g: Graph) -> int:
    return next(n.id for n in g if n.type_id in ("SaveImage", "SaveText"))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("build", [_save_image, _save_text])
@pytest.mark.parametrize("name", ESCAPES)
def test_a_bad_name_in_the_widget_is_a_validation_problem(registry, build, name):
    g = build(registry, name)
    [problem] = validate(g)
    field = "filename_prefix" if build is _save_image else "filename"
    assert problem.node_id == _saver(g) and problem.field == field
    assert f"'{field}'" in problem.message and "\n" not in problem.message


@pytest.mark.parametrize("build", [_save_image, _save_text])
@pytest.mark.parametrize("name", ESCAPES)
def test_a_bad_name_arriving_by_link_fails_the_node_and_writes_nothing(
    registry, tmp_path, build, name
):
    g = build(registry, name, linked=True)
    out = tmp_path / "a" / "b" / "out"
    report = Executor(registry).run(g, output_dir=out)
    field = "filename_prefix" if build is _save_image else "filename"
    entry = report.entries[_saver(g)]
    assert entry.status == "failed" and entry.field == field
    assert entry.message.startswith(f"'{field}': ") and "\n" not in entry.message
    assert "Error:" not in entry.message  # our sentence, not an exception's text
    assert _files(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_a_linked_subfolder_leading_outside_fails_the_save(registry, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "shared").symlink_to(elsewhere)
    g = _save_image(registry, "shared/X")
    report = Executor(registry).run(g, output_dir=out)
    entry = report.entries[_saver(g)]
    assert entry.status == "failed" and entry.field == "filename_prefix"
    assert "outside the output folder" in entry.message
    assert list(elsewhere.iterdir()) == []


def test_save_image_in_a_subfolder_numbers_on_each_run(registry, tmp_path):
    g = _save_image(registry, "shots/cat [1]")
    assert validate(g) == []
    for _ in range(2):
        Executor(registry).run(g, output_dir=tmp_path)  # a fresh cache: the node runs again
    assert [p.relative_to(tmp_path).as_posix() for p in _files(tmp_path)] == [
        "shots/cat [1]_00001.png",
        "shots/cat [1]_00002.png",
    ]


def test_save_text_keeps_an_existing_file_and_takes_the_next_number(registry, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "answer.txt").write_text("mine")
    g = _save_text(registry, "notes/answer", linked=True)
    for _ in range(2):
        report = Executor(registry).run(g, output_dir=tmp_path)
        assert report.status == "ok"
    assert (tmp_path / "notes" / "answer.txt").read_text() == "mine"
    assert (tmp_path / "notes" / "answer_00001.txt").read_text() == "hello"
    assert (tmp_path / "notes" / "answer_00002.txt").read_text() == "hello"
    [record] = [r for r in report.entries[_saver(g)].records if r.kind == "file"]
    assert record.value == str(tmp_path / "notes" / "answer_00002.txt")


def test_a_stale_widget_value_under_a_link_is_not_checked(registry, tmp_path):
    """The name a linked String gives is what the run uses: the widget's old value, left in
    the file from before the link, must not block validation."""
    g = _save_image(registry)
    save = next(n.id for n in g if n.type_id == "SaveImage")
    g.set_param(save, "filename_prefix", "../stale")
    assert [p.field for p in validate(g)] == ["filename_prefix"]
    name = g.add_node("String", params={"value": "fresh"}).id
    g.connect(name, "STRING", save, "filename_prefix")
    assert validate(g) == []
    Executor(registry).run(g, output_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["fresh_00001.png"]


def test_a_stale_image_path_under_a_link_is_not_checked(registry, tmp_path):
    g = Graph(registry)
    load = g.add_node("LoadImage", params={"image": str(tmp_path / "gone.png")}).id
    preview = g.add_node("PreviewImage").id
    g.connect(load, "IMAGE", preview, "images")
    assert [p.field for p in validate(g)] == ["image"]
    path = g.add_node("String", params={"value": str(tmp_path / "here.png")}).id
    g.connect(path, "STRING", load, "image")
    assert validate(g) == []
