"""Subgraph definitions in workflow files (format version 3).

A workflow with definitions lists them under ``"subgraphs"``; a file without any is written as
version 2, byte for byte as before. Each entry is a small workflow of its own::

    {"id": "<uuid>", "name": "Prompt block", "description": "",
     "inputs": [["clip", "CLIP"], ...], "outputs": [["LATENT", "LATENT"]],
     "nodes": [...], "links": [[-10, "clip", 3, "clip"], ..., [5, "LATENT", -20, "LATENT"]],
     "groups": [...], "ui": {"nodes": {"-10": {"pos": [x, y]}, ...}, "groups": {...}}}

Links from node -10 are the definition's inputs, links to node -20 its outputs. Instances are
nodes whose ``type`` is a definition's id. Definitions may hold instances of other
definitions (never of themselves); they are built innermost first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from core.graph.errors import GraphError
from core.graph.model import BOUNDARY_IDS, Graph, SubgraphLibrary
from core.graph.subgraph import BoundarySocket, SubgraphDefinition
from core.graph.workflow_format import WorkflowError

#: ``to_dict(graph)`` and ``fill_graph(graph, data, source)`` of ``core.graph.workflow``.
ToDict = Callable[[Graph], dict[str, Any]]
Fill = Callable[[Graph, dict[str, Any], Any], None]


def needed_definitions(library: SubgraphLibrary, type_ids: Iterable[str]) -> set[str]:
    """The definitions that nodes of ``type_ids`` need: the ones they are instances of and
    every definition those hold, however deeply."""
    found: set[str] = set()
    for type_id in type_ids:
        if type_id in library and type_id not in found:
            found.add(type_id)
            found |= library.uses(type_id)
    return found


def definitions_to_list(
    graph: Graph, to_dict: ToDict, only: set[str] | None = None
) -> list[dict[str, Any]]:
    """The workflow's definitions (or those in ``only``) as file entries, in a stable order
    (by name, then id)."""
    entries = []
    for definition in sorted(graph.subgraphs, key=lambda d: (d.name, d.id)):
        if only is not None and definition.id not in only:
            continue
        data = to_dict(definition.graph)
        nodes = [n for n in data["nodes"] if n["id"] not in BOUNDARY_IDS]
        entry: dict[str, Any] = {
            "id": definition.id,
            "name": definition.name,
            "description": definition.description,
            "inputs": [[b.name, b.type] for b in definition.inputs],
            "outputs": [[b.name, b.type] for b in definition.outputs],
            "nodes": nodes,
            "links": data["links"],
            "groups": data["groups"],
            "ui": {"nodes": data["ui"]["nodes"], "groups": data["ui"]["groups"]},
        }
        if "notes" in data:
            entry["notes"] = data["notes"]
        entries.append(entry)
    return entries


def add_definitions(graph: Graph, entries: list[Any], source: Any, fill: Fill) -> None:
    """Builds the file's definitions into ``graph.subgraphs``, innermost first."""
    checked: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(entries):
        entry = _checked_entry(raw, index, source)
        if entry["id"] in checked:
            raise WorkflowError(
                f"two subgraphs have the id {entry['id']!r}", source=source, field="subgraphs"
            )
        checked[entry["id"]] = entry
    for def_id in _innermost_first(checked, source):
        entry = checked[def_id]
        try:
            definition = SubgraphDefinition(
                def_id,
                entry["name"],
                graph.registry,
                graph.subgraphs,
                [BoundarySocket(n, t) for n, t in entry["inputs"]],
                [BoundarySocket(n, t) for n, t in entry["outputs"]],
                entry.get("description", ""),
            )
        except GraphError as exc:
            raise WorkflowError(
                f"subgraph {entry['name']!r}: {exc}", source=source, field="subgraphs"
            ) from None
        graph.subgraphs.add(definition)
        try:
            fill(definition.graph, entry, source)
        except WorkflowError as exc:
            raise WorkflowError(
                f"in subgraph {entry['name']!r}: {exc.problem}",
                source=exc.source,
                node_id=exc.node_id,
                field=exc.field,
                hint=exc.hint,
            ) from None


def _checked_entry(raw: Any, index: int, source: Any) -> dict[str, Any]:
    def bad(what: str) -> WorkflowError:
        return WorkflowError(
            f"subgraph entry {index}: {what}",
            source=source,
            field="subgraphs",
            hint="Fix the entry, or delete the subgraph and the nodes that use it",
        )

    if not isinstance(raw, dict):
        raise bad("should be an object")
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        raise bad("needs an id (text)")
    if not isinstance(raw.get("name"), str):
        raise bad("needs a name (text)")
    if not isinstance(raw.get("description", ""), str):
        raise bad("its description should be text")
    for key in ("inputs", "outputs"):
        sockets = raw.get(key, [])
        if not isinstance(sockets, list) or not all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(v, str) for v in s)
            for s in sockets
        ):
            raise bad(f"{key} should be a list of [name, type]")
    for key, kind in (("nodes", list), ("links", list), ("groups", list), ("ui", dict)):
        if not isinstance(raw.get(key, kind()), kind):
            raise bad(f"{key} should be {'a list' if kind is list else 'an object'}")
    for node in raw.get("nodes", []):
        if isinstance(node, dict) and node.get("id") in BOUNDARY_IDS:
            raise bad(f"node id {node['id']} is kept for the subgraph's inputs and outputs")
    return raw


def _innermost_first(entries: dict[str, dict[str, Any]], source: Any) -> list[str]:
    """Definition ids so that each comes after every definition its nodes use."""
    uses = {
        def_id: {
            n.get("type")
            for n in entry.get("nodes", [])
            if isinstance(n, dict) and n.get("type") in entries
        }
        for def_id, entry in entries.items()
    }
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(entries):
        ready = sorted(d for d in entries if d not in done and uses[d] <= done)
        if not ready:
            names = sorted(entries[d]["name"] for d in entries if d not in done)
            raise WorkflowError(
                f"subgraphs {', '.join(map(repr, names))} hold each other in a loop",
                source=source,
                field="subgraphs",
                hint="A subgraph cannot contain itself; remove one of the instances",
            )
        order += ready
        done.update(ready)
    return order
