from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from core.graph import png
from core.graph import workflow as wf
from core.graph.model import Graph, Group
from core.graph.spec import NodeRegistry
from tests.graph.registry import make_registry

FIXTURES = Path(__file__).parent / "fixtures"


def _graph() -> Graph:
    graph = Graph(make_registry())
    lat = graph.add_node("Latent", params={"width": 256}, pos=(5, 6), title="Start").id
    samp = graph.add_node("Sampler", pos=(200, 0), size=(180, 90)).id
    graph.set_node_attribute(samp, "ui", {"control_after_run": {"seed": "increment"}})
    save = graph.add_node("Save", pos=(400, 0), muted=True).id
    rr = graph.add_node("Reroute", pos=(300, 40)).id
    graph.connect(lat, "LATENT", samp, "latent")
    graph.connect(samp, "LATENT", rr, "value")
    graph.connect(rr, "value", save, "latent")
    graph.add_group(Group(1, "Sampling", frozenset({samp}), "#aa3333", (190, -10, 220, 120)))
    return graph


def test_save_and_load_round_trip(tmp_path):
    graph = _graph()
    path = tmp_path / "flow.json"
    wf.save_workflow(graph, path, view={"zoom": 1.5, "center": [3, 4]})
    loaded = wf.load_workflow(path, make_registry())
    assert loaded.graph.state() == graph.state()
    assert loaded.view == {"zoom": 1.5, "center": [3, 4]}
    data = json.loads(path.read_text())
    assert data["format"] == "latentloom" and data["version"] == wf.VERSION
    # Params by name; layout kept apart from meaning.
    assert data["nodes"][0]["params"] == {"width": 256}
    assert "pos" not in data["nodes"][0] and data["ui"]["nodes"]["1"]["pos"] == [5.0, 6.0]
    assert data["ui"]["nodes"]["2"]["extra"] == {"control_after_run": {"seed": "increment"}}
    assert data["nodes"][0]["type_version"] == 1


def test_version_1_file_migrates(tmp_path):
    loaded = wf.load_workflow(FIXTURES / "workflow_v1.json", make_registry())
    g = loaded.graph
    assert g.node(1).params["width"] == 128 and g.node(1).pos == (10.0, 20.0)
    assert g.node(2).bypassed and g.node(2).params["seed"] == 42
    assert g.link_to(3, "latent").src == 2
    # Saving writes the current version, which loads to the same graph.
    wf.save_workflow(g, tmp_path / "new.json")
    assert wf.load_workflow(tmp_path / "new.json", make_registry()).graph.state() == g.state()


def test_unknown_node_type_becomes_placeholder_keeping_everything(tmp_path):
    graph = _graph()
    path = tmp_path / "flow.json"
    wf.save_workflow(graph, path)
    smaller = NodeRegistry(s for s in make_registry() if s.type_id not in ("Sampler", "Reroute"))
    loaded = wf.load_workflow(path, smaller)
    assert sorted(loaded.placeholders) == [2]
    spec = loaded.graph.spec(2)
    assert spec.placeholder and spec.input("latent").type == "LATENT"
    assert loaded.graph.node(2).params == {"seed": 0}
    assert loaded.graph.link_to(2, "latent").src == 1
    # Saving again with the smaller registry loses nothing.
    wf.save_workflow(loaded.graph, tmp_path / "again.json")
    back = wf.load_workflow(tmp_path / "again.json", make_registry())
    assert back.graph.state() == graph.state()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(format="other"), "not a LatentLoom workflow"),
        (lambda d: d.update(version=99), "newer LatentLoom"),
        (lambda d: d["nodes"][0].update(id="one"), "node one, field 'id'"),
        (lambda d: d["nodes"][1]["params"].update(bogus=1), "node 2, field 'bogus'"),
        (lambda d: d["nodes"][1].update(mode="sleepy"), "node 2, field 'mode'"),
        (lambda d: d["links"].append([1, "LATENT", 3, "name"]), "node 3, field 'name'"),
        (lambda d: d["links"].append([1, "LATENT"]), "field 'links'"),
        (lambda d: d["nodes"][0].update(type_version=7), "newer version (7)"),
        (lambda d: d["nodes"].append(dict(d["nodes"][0])), "already exists"),
    ],
)
def test_bad_files_give_one_clear_message(tmp_path, mutate, expected):
    data = wf.to_dict(_graph())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(wf.WorkflowError) as info:
        wf.load_workflow(path, make_registry())
    assert str(path) in str(info.value) and expected in str(info.value)


def test_not_json_and_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "latentloom",\n "version": ')
    with pytest.raises(wf.WorkflowError, match=r"broken.json: not valid JSON \(line 2"):
        wf.load_workflow(path, make_registry())
    with pytest.raises(wf.WorkflowError, match="cannot be read"):
        wf.load_workflow(tmp_path / "missing.json", make_registry())


def _tiny_png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        png.SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0\0"))
        + chunk(b"IEND", b"")
    )


def test_workflow_embedded_in_png_opens(tmp_path):
    graph = _graph()
    data = png.add_text_chunk(_tiny_png(), wf.PNG_KEY, wf.dumps(graph))
    path = tmp_path / "image.png"
    path.write_bytes(data)
    assert wf.load_workflow(path, make_registry()).graph.state() == graph.state()
    plain = tmp_path / "plain.png"
    plain.write_bytes(_tiny_png())
    with pytest.raises(wf.WorkflowError, match="no LatentLoom workflow"):
        wf.load_workflow(plain, make_registry())
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data[:40])
    with pytest.raises(wf.WorkflowError, match="damaged PNG"):
        wf.load_workflow(truncated, make_registry())


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "flow.json"
    wf.save_workflow(_graph(), path)
    old = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(wf.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        wf.save_workflow(Graph(make_registry()), path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["flow.json"]  # no temporary left behind
