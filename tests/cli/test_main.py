from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import main
from core.graph import png
from core.graph import workflow as wf
from core.graph.model import Graph
from nodes import build_registry
from tests.graph.test_workflow import _tiny_png

ROOT = Path(main.__file__).parent


def _write(tmp_path: Path, build) -> Path:
    graph = Graph(build_registry())
    build(graph)
    path = tmp_path / "flow.json"
    wf.save_workflow(graph, path)
    return path


def _text_flow(graph: Graph, *, b: int = 2, op: str = "add") -> None:
    m = graph.add_node("IntMath", params={"a": 40, "b": b, "op": op}).id
    j = graph.add_node("TextJoin", params={"a": "answer"}).id
    s = graph.add_node("SaveText", params={"filename": "answer"}).id
    graph.connect(m, "INT", j, "b")
    graph.connect(j, "STRING", s, "text")


def test_run_writes_outputs_report_and_exits_0(tmp_path, capsys):
    path = _write(tmp_path, _text_flow)
    out, report = tmp_path / "out", tmp_path / "report.json"
    code = main.main(["run", str(path), "--out", str(out), "--report", str(report)])
    assert code == 0
    assert (out / "answer.txt").read_text() == "answer, 42"
    printed = capsys.readouterr().out
    assert f"wrote {out / 'answer.txt'}" in printed
    data = json.loads(report.read_text())
    statuses = {str(n["id"]): n["status"] for n in data["nodes"]}
    assert statuses == {"1": "ran", "2": "ran", "3": "ran"}
    assert all("seconds" in n for n in data["nodes"])


def test_set_overrides_a_param_by_its_type(tmp_path):
    path = _write(tmp_path, _text_flow)
    out = tmp_path / "out"
    assert main.main(["run", str(path), "--out", str(out), "--set", "1.b=-40"]) == 0
    assert (out / "answer.txt").read_text() == "answer, 0"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("1.b=lots", "is not a whole number"),
        ("9.b=1", "has no node 9"),
        ("1.c=1", "has no parameter 'c' (it has: a, b, op)"),
        ("b=1", "NODE_ID.PARAM=VALUE"),
    ],
)
def test_bad_overrides_exit_2_with_a_message(tmp_path, capsys, override, message):
    path = _write(tmp_path, _text_flow)
    assert main.main(["run", str(path), "--out", str(tmp_path / "o"), "--set", override]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_invalid_workflow_lists_every_problem_and_writes_nothing(tmp_path, capsys):
    def build(graph: Graph) -> None:
        graph.add_node("SaveText")  # required input 'text' missing
        m = graph.add_node("IntMath", params={"op": "add"}).id
        graph.set_param(m, "op", "cube")  # not a choice
        s = graph.add_node("SaveText").id
        j = graph.add_node("TextJoin").id
        graph.connect(m, "INT", j, "a")
        graph.connect(j, "STRING", s, "text")

    path = _write(tmp_path, build)
    out = tmp_path / "out"
    assert main.main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and "#1" in err and "'text'" in err and "cube" in err
    assert not out.exists()
    assert main.main(["validate", str(path)]) == 2


def test_node_failure_exits_1_naming_the_node(tmp_path, capsys):
    path = _write(tmp_path, lambda g: _text_flow(g, b=0, op="floor_divide"))
    assert main.main(["run", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "node 1 (Math (Integer)) failed" in err and "by zero" in err


def test_unreadable_workflow_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert main.main(["run", str(bad)]) == 2
    assert "bad.json: not valid JSON" in capsys.readouterr().err


def test_validate_and_nodes(tmp_path, capsys):
    path = _write(tmp_path, _text_flow)
    assert main.main(["validate", str(path)]) == 0
    assert "valid (3 nodes, 2 links; a run computes 3 of the nodes)" in capsys.readouterr().out
    assert main.main(["nodes", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    save = next(e for e in listing if e["type"] == "SaveImage")
    assert save["output_node"] and save["inputs"][0] == {
        "name": "images",
        "type": "IMAGE",
        "optional": False,
    }
    assert main.main(["nodes"]) == 0
    assert "IntMath  [primitives]  Math (Integer)" in capsys.readouterr().out


def test_validate_says_how_many_nodes_a_run_would_compute(tmp_path, capsys):
    def build(graph: Graph) -> None:
        _text_flow(graph)
        graph.add_node("IntMath")  # feeds nothing that is saved: not computed

    assert main.main(["validate", str(_write(tmp_path, build))]) == 0
    assert "(4 nodes, 2 links; a run computes 3 of the nodes)" in capsys.readouterr().out


def test_no_arguments_without_display_runs_default_workflow_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "headless" in result.stdout
    written = [
        line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("wrote ")
    ]
    assert written and Path(written[0]).is_file()
    assert written[0].startswith(str(tmp_path / "output"))


def test_models_flag_adds_a_model_root(tmp_path, capsys):
    (tmp_path / "mine" / "checkpoints").mkdir(parents=True)
    (tmp_path / "mine" / "checkpoints" / "custom.safetensors").write_bytes(b"")
    assert main.main(["nodes", "--json", "--models", str(tmp_path / "mine")]) == 0
    listing = json.loads(capsys.readouterr().out)
    loader = next(e for e in listing if e["type"] == "LoadCheckpoint")
    assert "custom.safetensors" in loader["inputs"][0]["choices"]
    assert loader["inputs"][0]["choices_from"] == "checkpoints"


def _doc(nodes, links=(), **top) -> str:
    return json.dumps({"format": "latentloom", "version": 2, "nodes": nodes, "links": links} | top)


def _node(nid, type_id, **params) -> dict:
    return {"id": nid, "type": type_id, "params": params}


_SAVE = [_node(1, "String", value="hi"), _node(2, "SaveText", filename="t")]
_SAVE_LINKS = [[1, "STRING", 2, "text"]]
_FLOW = _doc(_SAVE, _SAVE_LINKS)

#: (file name, content, words the error must contain)
_BAD_FILES = [
    ("empty.json", "", ["empty.json", "empty"]),
    ("list.json", "[1, 2]", ["list.json", "not a workflow"]),
    ("binary.json", bytes(range(256)) * 4, ["binary.json", "UTF-8"]),
    ("v1.json", '{"format":"latentloom","version":1,"nodes":5}', ["v1.json", "'nodes'"]),
    ("vtrue.json", _FLOW.replace('"version": 2', '"version": true'), ["field 'version'"]),
    ("vfloat.json", _FLOW.replace('"version": 2', '"version": 2.0'), ["field 'version'"]),
    ("deep.json", "[" * 3000 + "]" * 3000, ["deep.json", "nests deeper"]),
    ("params.json", _doc([{"id": 1, "type": "String", "params": [1]}]), ["node 1", "params"]),
    ("arity.json", _doc(_SAVE, [[1, "STRING", 2]]), ["arity.json", "field 'links'"]),
    ("ids.json", _doc(_SAVE, [["1", "STRING", 2, "text"]]), ["field 'links'"]),
    ("dup.json", _doc([*_SAVE, _node(2, "String")]), ["node 2", "already exists"]),
    ("ghost.json", _doc(_SAVE, [[7, "STRING", 2, "text"]]), ["node 2", "'text'", "node 7"]),
    ("nan.json", _FLOW.replace('"value": "hi"', '"value": NaN'), ["nodes[0].params.value"]),
    ("inf.json", _FLOW.replace('"hi"', "1e400"), ["nodes[0].params.value"]),
    ("digits.json", _FLOW.replace('"hi"', "9" * 5000), ["digits.json", "not a workflow"]),
    ("no_nodes.json", _doc([]), ["no nodes", "nothing would run"]),
    ("no_output.json", _doc([_node(1, "IntMath")]), ["#1", "no output node"]),
    ("unknown.json", _doc([_node(1, "FancySave")]), ["FancySave", "nothing would run"]),
    (
        "text.json",
        _doc([_SAVE[0], _node(2, "SaveText", filename=5)], _SAVE_LINKS),
        ["'filename'"],
    ),
    (
        "size.json",
        _doc(
            [_node(1, "EmptyLatentImage", width=17, height=24), _node(2, "PreviewLatent")],
            [[1, "LATENT", 2, "samples"]],
        ),
        ["'width'", "not a multiple of 8"],
    ),
    (
        "api.json",
        json.dumps({"1": {"class_type": "KSampler", "inputs": {"model": ["7", 0]}}}),
        ["KSampler #1", "no output node"],
    ),
]


@pytest.mark.parametrize(("name", "content", "words"), _BAD_FILES, ids=[c[0] for c in _BAD_FILES])
def test_bad_workflows_exit_2_with_one_clear_message(tmp_path, capsys, name, content, words):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out"
    for command in (["validate", str(path)], ["run", str(path), "--out", str(out)]):
        assert main.main(command) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert all(word in err for word in words), err
    assert not out.exists()


def test_a_folder_a_missing_file_and_a_png_without_workflow_exit_2(tmp_path, capsys):
    plain = tmp_path / "plain.png"
    plain.write_bytes(png.add_text_chunk(_tiny_png(), "Software", "paint"))
    cases = [(tmp_path, "is a folder"), (tmp_path / "nope.json", "cannot be read")]
    for path, words in [*cases, (plain, "carries no workflow")]:
        assert main.main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}") and words in err and "Traceback" not in err


def test_deep_json_gives_no_traceback_from_the_command_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"format": "latentloom", "version": 2, "nodes": ' + "[" * 50_000)
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}: not a workflow" in result.stderr


@pytest.mark.parametrize(
    ("flag", "target", "words"),
    [
        ("--report", "folder", "this is a folder"),
        ("--report", "missing/r.json", "does not exist"),
        ("--out", "file.txt", "this is a file"),
        ("--previews", "file.txt", "this is a file"),
    ],
)
def test_unwritable_destinations_are_refused_before_the_run(tmp_path, capsys, flag, target, words):
    path = _write(tmp_path, _text_flow)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("x")
    args = ["run", str(path), "--out", str(tmp_path / "out"), flag, str(tmp_path / target)]
    assert main.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} {tmp_path / target}") and words in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target", ["nowhere", "file.txt"])
def test_a_models_root_that_is_not_a_folder_is_refused(tmp_path, capsys, target):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SystemExit) as info:
        main.main(["nodes", "--models", str(tmp_path / target)])
    assert info.value.code == 2
    assert "give a models folder" in capsys.readouterr().err


_WITH_TEARDOWN_PROBE = """
import atexit, runpy, sys
atexit.register(lambda: print("teardown ran"))
sys.argv = ["main.py", *sys.argv[1:]]
runpy.run_path({main!r}, run_name="__main__")
"""


@pytest.mark.parametrize(("command", "teardown"), [("run", False), ("validate", True)])
def test_a_run_ends_without_the_interpreter_teardown(tmp_path, command, teardown):
    """``run`` ends with os._exit once its outputs are written (tearing torch down costs a
    second of CPU); other commands end normally."""
    path = _write(tmp_path, _text_flow)
    extra = ["--out", str(tmp_path / "out")] if command == "run" else []
    script = _WITH_TEARDOWN_PROBE.format(main=str(ROOT / "main.py"))
    result = subprocess.run(
        [sys.executable, "-c", script, command, str(path), *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert ("teardown ran" in result.stdout) is teardown
    if command == "run":
        assert (tmp_path / "out" / "answer.txt").is_file()
        assert "wrote " in result.stdout  # flushed before the process ended
