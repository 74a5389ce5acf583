from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from core.graph import png
from core.graph import types as t
from core.graph import workflow as wf
from core.graph.model import Graph, Group
from core.graph.spec import NodeRegistry, NodeSpec, WidgetInput
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
    assert data["format"] == "latentloom" and data["version"] == wf.VERSION_WITHOUT_SUBGRAPHS
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


def _load_data(tmp_path, data, text: str | None = None):
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(data) if text is None else text)
    return wf.load_workflow(path, make_registry())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"format": "latentloom", "version": 1, "nodes": 5}, "field 'nodes': 'nodes' should be"),
        ({"format": "latentloom", "version": 1, "nodes": [5]}, "node entry 0 should be an object"),
        (
            {"format": "latentloom", "version": 1, "nodes": [{"id": 1, "widgets": [1]}]},
            "node 1, field 'widgets'",
        ),
        (
            {"format": "latentloom", "version": 1, "nodes": [{"id": 1, "bypass": "no"}]},
            "node 1, field 'bypass'",
        ),
        ({"format": "latentloom", "version": 1, "links": [7]}, "link 0 should be"),
        ({"format": "latentloom", "version": 2, "links": {}}, "field 'links'"),
        ({"format": "latentloom", "version": 2, "ui": []}, "field 'ui'"),
        ({"format": "latentloom", "version": 2, "extra": 3}, "field 'extra'"),
        ({"format": "latentloom", "version": 2, "ui": {"nodes": []}}, "ui.nodes should be"),
        (
            {"format": "latentloom", "version": 2, "groups": [{"id": 1, "nodes": "ab"}]},
            "group 1's nodes should be a list",
        ),
    ],
)
def test_the_document_shape_is_checked_before_migrating(tmp_path, data, expected):
    with pytest.raises(wf.WorkflowError) as info:
        _load_data(tmp_path, data)
    assert expected in str(info.value) and "flow.json" in str(info.value)


@pytest.mark.parametrize("version", [True, 1.0, "2", 0, None])
def test_versions_that_are_not_whole_numbers_are_refused(tmp_path, version):
    data = wf.to_dict(_graph())
    data["version"] = version
    with pytest.raises(wf.WorkflowError, match="field 'version': the format version should be"):
        _load_data(tmp_path, data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 5000 + "]" * 5000, "nests deeper than 100 levels"),
        ("[" * 150 + "]" * 150, "nests deeper than 100 levels"),
        ("", "empty"),
        ("  \n", "empty"),
        ('{"version": 1' + "0" * 5000 + "}", "not a workflow"),
    ],
)
def test_json_that_cannot_be_a_workflow_is_one_clear_error(tmp_path, text, expected):
    with pytest.raises(wf.WorkflowError, match=expected):
        _load_data(tmp_path, None, text)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_refused_naming_the_field(tmp_path, number):
    text = json.dumps(wf.to_dict(_graph())).replace('"width": 256', f'"width": {number}')
    with pytest.raises(wf.WorkflowError, match=r"field 'nodes\[0\]\.params\.width'"):
        _load_data(tmp_path, None, text)


def test_a_position_too_large_for_a_float_falls_back_to_the_origin(tmp_path):
    data = wf.to_dict(_graph())
    data["ui"]["nodes"]["1"]["pos"] = [10**400, 3]
    assert _load_data(tmp_path, data).graph.node(1).pos == (0.0, 0.0)


def test_a_link_from_a_node_not_in_the_file_is_pinned_to_its_input(tmp_path):
    data = wf.to_dict(_graph())
    data["nodes"] = [n for n in data["nodes"] if n["id"] != 1]
    with pytest.raises(wf.WorkflowError) as info:
        _load_data(tmp_path, data)
    message = str(info.value)
    assert (
        "node 2, field 'latent'" in message and "from node 1, which is not in the file" in message
    )
    assert "delete the link" in message


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ([1, "LATENT", 9, "latent"], "leads to node 9, which is not in the file"),
        (["1", "LATENT", 2, "latent"], "should be [source id, output name, target id, input"),
        ([True, "LATENT", 2, "latent"], "should be [source id"),
        ([1, 5, 2, "latent"], "should be [source id"),
    ],
)
def test_bad_links_name_the_links_field(tmp_path, link, expected):
    data = wf.to_dict(_graph())
    data["links"] = [link]
    with pytest.raises(wf.WorkflowError) as info:
        _load_data(tmp_path, data)
    assert "field 'links'" in str(info.value) and expected in str(info.value)


def test_a_folder_and_a_huge_file_are_refused(tmp_path, monkeypatch):
    with pytest.raises(wf.WorkflowError, match="is a folder, not a file"):
        wf.load_workflow(tmp_path, make_registry())
    monkeypatch.setattr(wf, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(" " * 1001)
    with pytest.raises(wf.WorkflowError, match=r"big\.json: is larger than"):
        wf.load_workflow(path, make_registry())


def test_a_png_larger_than_the_file_limit_still_opens(tmp_path, monkeypatch):
    graph = _graph()
    picture = _tiny_png()
    iend = picture.rfind(b"IEND") - 4
    pixels = bytes(5000)
    big_idat = struct.pack(">I", len(pixels)) + b"IDAT" + pixels + b"\0\0\0\0"
    data = png.add_text_chunk(
        picture[:iend] + big_idat + picture[iend:], wf.PNG_KEY, wf.dumps(graph)
    )
    path = tmp_path / "big.png"
    path.write_bytes(data)
    monkeypatch.setattr(wf, "MAX_FILE_BYTES", 1000)
    assert wf.load_workflow(path, make_registry()).graph.state() == graph.state()


def test_an_unknown_output_node_stays_an_output_placeholder(tmp_path):
    path = tmp_path / "flow.json"
    wf.save_workflow(_graph(), path)
    assert [n.get("output_node") for n in json.loads(path.read_text())["nodes"]] == [
        None,
        None,
        True,
        None,
    ]
    smaller = NodeRegistry(s for s in make_registry() if s.type_id not in ("Save", "Reroute"))
    loaded = wf.load_workflow(path, smaller)
    assert loaded.graph.spec(3).placeholder and loaded.graph.spec(3).output_node
    assert not loaded.graph.spec(2).output_node


def test_an_upgrade_that_fails_is_a_workflow_error(tmp_path):
    def upgrade(version, params):
        return {"value": params["count"] + 1}

    registry = NodeRegistry(
        [
            NodeSpec(
                "Counter",
                "Counter",
                "test",
                lambda ctx, **kw: None,
                inputs=(WidgetInput("value", t.INT, 1),),
                version=2,
                upgrade=upgrade,
            )
        ]
    )
    node = {"id": 4, "type": "Counter", "type_version": 1, "params": {"count": "x"}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": "latentloom", "version": 2, "nodes": [node]}))
    with pytest.raises(wf.WorkflowError, match="node 4, field 'params': its params could not"):
        wf.load_workflow(path, registry)


def test_a_node_id_that_is_not_short_is_named_by_its_position(tmp_path):
    data = wf.to_dict(_graph())
    data["nodes"][1]["id"] = [list(range(500))]
    with pytest.raises(wf.WorkflowError) as info:
        _load_data(tmp_path, data)
    message = str(info.value)
    assert "node entry 1, field 'id'" in message and len(message) < 300
