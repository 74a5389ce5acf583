"""The command line and node packs: ``packs`` lists them, ``nodes`` says which pack a node
comes from, a pack that failed is named before a command's work, and
``$LATENTLOOM_DISABLED_PACKS`` switches packs off."""

from __future__ import annotations

import json

import main
from core.graph import workflow as wf
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.node_packs import EXAMPLE_NAME, install_example_pack, install_on_path, pack_site

__all__ = ["pack_site"]  # the fixture, imported for the tests below


def _broken_pack(site) -> None:
    install_on_path(
        site, "broken-pack", "0.1", {"main": "broken_pack:nodes"}, {"broken_pack.py": "1/0\n"}
    )


def _text_flow_through_the_pack(tmp_path):
    """A workflow whose only path to its output goes through a node of the example pack."""
    graph = Graph(build_registry())
    image = graph.add_node("EmptyImage", params={"width": 8, "height": 8}).id
    poster = graph.add_node("ExamplePack.Posterize").id
    preview = graph.add_node("PreviewImage").id
    graph.connect(image, "IMAGE", poster, "image")
    graph.connect(poster, "IMAGE", preview, "images")
    path = tmp_path / "flow.json"
    wf.save_workflow(graph, path)
    return path


def test_packs_lists_each_pack_with_its_version_state_and_nodes(pack_site, capsys):
    install_example_pack(pack_site)
    _broken_pack(pack_site)
    assert main.main(["packs"]) == main.EXIT_NODE_FAILED
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "broken-pack 0.1: failed, skipped (entry point 'main' (broken_pack:nodes) "
        "raised ZeroDivisionError: division by zero)"
    )
    assert out[1] == f"{EXAMPLE_NAME} 0.2.0: ok, 3 node types"
    assert "    ExamplePack.Posterize" in out[2:]


def test_packs_json_and_an_install_without_packs(pack_site, capsys, monkeypatch):
    assert main.main(["packs"]) == main.EXIT_OK
    assert "No node packs installed" in capsys.readouterr().out
    install_example_pack(pack_site)
    monkeypatch.setenv("LATENTLOOM_DISABLED_PACKS", EXAMPLE_NAME)
    assert main.main(["packs", "--json"]) == main.EXIT_OK
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == EXAMPLE_NAME and row["status"] == "disabled"
    assert row["node_types"] == [] and row["entry_points"]


def test_nodes_names_the_pack_of_each_pack_node(pack_site, capsys):
    install_example_pack(pack_site)
    assert main.main(["nodes"]) == main.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    (line,) = [x for x in lines if x.startswith("ExamplePack.Fill ")]
    assert line.endswith(f"(node pack {EXAMPLE_NAME})")
    assert main.main(["nodes", "--json"]) == main.EXIT_OK
    entries = {e["type"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries["ExamplePack.MeanColour"]["pack"] == EXAMPLE_NAME
    assert "pack" not in entries["KSampler"]


def test_a_failed_pack_is_named_at_the_start_of_validate_and_the_rest_works(
    pack_site, tmp_path, capsys
):
    install_example_pack(pack_site)
    path = _text_flow_through_the_pack(tmp_path)
    _broken_pack(pack_site)
    assert main.main(["validate", str(path)]) == main.EXIT_OK
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: node pack 'broken-pack' was skipped: entry point")
    assert "ZeroDivisionError" in captured.err
    assert "valid (3 nodes" in captured.out


def test_a_workflow_needing_a_disabled_pack_is_refused_naming_it(
    pack_site, tmp_path, capsys, monkeypatch
):
    install_example_pack(pack_site)
    path = _text_flow_through_the_pack(tmp_path)
    monkeypatch.setenv("LATENTLOOM_DISABLED_PACKS", EXAMPLE_NAME)
    assert main.main(["run", str(path), "--out", str(tmp_path / "out")]) == main.EXIT_INVALID
    err = capsys.readouterr().err
    assert f"comes from node pack '{EXAMPLE_NAME}', which is disabled" in err
    assert "$LATENTLOOM_DISABLED_PACKS" in err
    assert "Traceback" not in err
