"""Migrations of workflow files: ``MIGRATIONS[n]`` turns a version n file into version n + 1.

Each runs after the reader has checked the containers it walks through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.graph.workflow_format import FORMAT, mode_name


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 mixed layout into the nodes and named params ``widgets``; links were objects.

    ``_check_shape`` has checked the version 1 layout, so every entry has the expected type."""
    nodes, ui_nodes = [], {}
    for raw in data.get("nodes", []):
        node = dict(raw)
        ui_nodes[str(node.get("id"))] = {"pos": node.pop("pos", [0, 0])}
        node["params"] = node.pop("widgets", {})
        node["mode"] = mode_name(node.pop("bypass", False), node.pop("mute", False))
        node.setdefault("type_version", 1)
        nodes.append(node)
    links = []
    for raw in data.get("links", []):
        if isinstance(raw, dict):
            links.append(
                [
                    raw.get("from_node"),
                    raw.get("from_output"),
                    raw.get("to_node"),
                    raw.get("to_input"),
                ]
            )
        else:
            links.append(raw)
    return {
        "format": FORMAT,
        "version": 2,
        "nodes": nodes,
        "links": links,
        "groups": [],
        "ui": {"nodes": ui_nodes, "groups": {}, "view": {}},
        "extra": {},
    }


def _migrate_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 only adds the optional ``subgraphs`` list: a version 2 file is one as is."""
    return {**data, "version": 3}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
}
