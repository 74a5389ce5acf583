"""Reading workflow data: checking its shape, migrating older versions, and building the
graph. Loading never runs node code; a bad entry raises one ``WorkflowError`` naming the
file, the node and the field."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from core.graph.errors import GraphError
from core.graph.model import BOUNDARY_IDS, Graph, Group
from core.graph.notes import NoteFormatError, add_notes
from core.graph.packs import missing_pack_reason
from core.graph.spec import NodeRegistry, NodeSpec, placeholder_spec
from core.graph.subgraph_files import add_definitions
from core.graph.workflow_format import (
    FORMAT,
    VERSION,
    Workflow,
    WorkflowError,
    expect,
    show_value,
)
from core.graph.workflow_migrations import MIGRATIONS

#: What each top-level key of a workflow holds, by version (1 had no groups, ui or extra).
_TOP_LEVEL = {
    1: {"nodes": list, "links": list},
    2: {"nodes": list, "links": list, "groups": list, "ui": dict, "extra": dict, "notes": list},
    3: {
        "nodes": list,
        "links": list,
        "groups": list,
        "ui": dict,
        "extra": dict,
        "notes": list,
        "subgraphs": list,
    },
}
#: The node fields of a version 1 file that its migration reads, with their types.
_V1_NODE_FIELDS = {"widgets": dict, "bypass": bool, "mute": bool}


def from_dict(
    data: Any, registry: NodeRegistry, source: str | os.PathLike[str] | None = None
) -> Workflow:
    """Builds a graph from workflow data, migrating older versions first."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WorkflowError(
            'not a LatentLoom workflow (no "format": "latentloom")',
            source=source,
            hint="Open a .json workflow or a PNG made by LatentLoom",
        )
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise WorkflowError(
            f"the format version should be a whole number from 1 to {VERSION}, found "
            f"{show_value(version)}",
            source=source,
            field="version",
            hint=f'Write "version": {VERSION} if the file was made for this LatentLoom',
        )
    if version > VERSION:
        raise WorkflowError(
            f"made by a newer LatentLoom (format version {version}, this one reads up to "
            f"{VERSION})",
            source=source,
            field="version",
            hint="Update LatentLoom to open it",
        )
    _check_shape(data, version, source)
    while version < VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return _build(data, registry, source)


def _check_shape(data: dict[str, Any], version: int, source: Any) -> None:
    """Checks the containers a migration and the loader walk through, before either does."""
    for key, kind in _TOP_LEVEL[version].items():
        if key in data:
            expect(data[key], kind, f"{key!r}", source=source, field=key)
    for index, raw in enumerate(data.get("nodes", [])):
        if not isinstance(raw, dict):
            raise WorkflowError(
                f"node entry {index} should be an object, found {show_value(raw)}",
                source=source,
                field="nodes",
            )
        if version == 1:
            where = {"source": source, "node_id": _node_name(raw, index)}
            for name, kind in _V1_NODE_FIELDS.items():
                if name in raw:
                    expect(raw[name], kind, name, field=name, **where)
    for index, raw in enumerate(data.get("links", [])):
        if not isinstance(raw, (list, dict) if version == 1 else list):
            raise WorkflowError(
                f"link {index} should be [source id, output, target id, input], found "
                f"{show_value(raw)}",
                source=source,
                field="links",
            )


def _node_name(raw: dict[str, Any], index: int) -> object:
    """How messages name a node entry: its id when that is short, else its position."""
    node_id = raw.get("id")
    if isinstance(node_id, (int, str)) and len(str(node_id)) <= 40:
        return node_id
    return f"entry {index}"


def _build(data: dict[str, Any], registry: NodeRegistry, source: Any) -> Workflow:
    graph = Graph(registry)
    add_definitions(graph, data.get("subgraphs", []), source, fill_graph)
    fill_graph(graph, data, source)
    ui = data.get("ui", {})
    view = ui.get("view") if isinstance(ui.get("view"), dict) else {}
    extra = dict(data.get("extra", {}))
    return Workflow(graph, dict(view), extra, Path(source) if source else None)


def fill_graph(graph: Graph, data: dict[str, Any], source: Any) -> None:
    """Adds a file's (or a subgraph entry's) nodes, links, groups and notes to ``graph``."""
    ui = data.get("ui", {})
    ui_nodes = expect(ui.get("nodes", {}), dict, "ui.nodes", source=source, field="ui")
    for index, raw in enumerate(data.get("nodes", [])):
        where = {"source": source, "node_id": _node_name(raw, index)}
        node_id = expect(raw.get("id"), int, "the node id", field="id", **where)
        type_id = expect(raw.get("type"), str, "the node type", field="type", **where)
        params = dict(expect(raw.get("params", {}), dict, "params", field="params", **where))
        mode = raw.get("mode", "normal")
        if mode not in ("normal", "bypassed", "muted"):
            raise WorkflowError(
                f"mode {show_value(mode)} is not normal, bypassed or muted", field="mode", **where
            )
        title = raw.get("title")
        if title is not None:
            expect(title, str, "the title", field="title", **where)
        output_node = expect(
            raw.get("output_node", False), bool, "output_node", field="output_node", **where
        )
        pack = raw.get("pack")
        if pack is not None:
            expect(pack, str, "the node pack", field="pack", **where)
        placeholder = None
        if graph.knows_type(type_id):
            params = _current_params(graph.type_spec(type_id), raw, params, where)
        else:
            inputs, outputs = _saved_sockets(raw, where)
            report = None if pack is None else graph.registry.pack_report(pack)
            why = "" if pack is None else missing_pack_reason(pack, report)
            placeholder = placeholder_spec(
                type_id, inputs, outputs, params, output_node, pack=pack, why_missing=why
            )
        node_ui = expect(
            ui_nodes.get(str(node_id), {}), dict, f"ui.nodes.{node_id}", field="ui", **where
        )
        try:
            graph.add_node(
                type_id,
                node_id,
                params,
                _pair(node_ui.get("pos"), (0.0, 0.0)),
                size=_pair(node_ui.get("size"), None),
                title=title,
                bypassed=mode == "bypassed",
                muted=mode == "muted",
                collapsed=bool(node_ui.get("collapsed", False)),
                ui=node_ui.get("extra") if isinstance(node_ui.get("extra"), dict) else None,
                placeholder=placeholder,
            )
        except GraphError as exc:
            raise WorkflowError(str(exc), **where) from None
    for index, raw in enumerate(data.get("links", [])):
        _add_link(graph, index, raw, source)
    _add_groups(graph, data.get("groups", []), ui, source)
    try:
        add_notes(graph, data.get("notes", []))
    except NoteFormatError as exc:
        raise WorkflowError(str(exc), source=source, field="notes") from None
    if graph.definition is not None:  # where the boundary nodes were drawn
        for boundary in BOUNDARY_IDS:
            look = ui_nodes.get(str(boundary))
            pos = _pair(look.get("pos"), None) if isinstance(look, dict) else None
            if pos is not None:
                graph.set_node_attribute(boundary, "pos", pos)


def _current_params(
    spec: NodeSpec, raw: dict[str, Any], params: dict[str, Any], where: dict[str, Any]
) -> dict[str, Any]:
    """The saved params, upgraded from an older version of the node type when needed."""
    saved = raw.get("type_version", spec.version)
    expect(saved, int, "type_version", field="type_version", **where)
    if saved > spec.version:
        raise WorkflowError(
            f"saved by a newer version ({saved}) of node type {spec.type_id!r} than this "
            f"install has ({spec.version})",
            field="type_version",
            hint="Update LatentLoom to open it",
            **where,
        )
    if saved < spec.version and spec.upgrade is not None:
        try:
            params = dict(spec.upgrade(saved, params))
        except Exception as exc:  # an upgrade meets whatever an old file holds
            raise WorkflowError(
                f"its params could not be upgraded from version {saved} of node type "
                f"{spec.type_id!r} ({type(exc).__name__}: {exc})",
                field="params",
                hint="Fix the params in the file, or delete the node and add it again",
                **where,
            ) from None
    names = {w.name for w in spec.widgets}
    for name in params:
        if name not in names:
            raise WorkflowError(
                f"node type {spec.type_id!r} has no parameter {name!r}",
                field=name,
                hint="The file may come from another version of this node",
                **where,
            )
    return params


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _add_link(graph: Graph, index: int, raw: Any, source: Any) -> None:
    """Connects link ``index`` of the file; a link naming a node the file lacks is an error
    pinned to the input it would feed, never dropped."""
    if not (
        isinstance(raw, list)
        and len(raw) == 4
        and _is_id(raw[0])
        and _is_id(raw[2])
        and isinstance(raw[1], str)
        and isinstance(raw[3], str)
    ):
        raise WorkflowError(
            f"link {index} should be [source id, output name, target id, input name], found "
            f"{show_value(raw)}",
            source=source,
            field="links",
        )
    src, out, dst, inp = raw
    if dst not in graph:
        raise WorkflowError(
            f"link {index} leads to node {dst}, which is not in the file",
            source=source,
            field="links",
            hint="Delete the link from the file, or add the node back",
        )
    if src not in graph:
        raise WorkflowError(
            f"link {index} feeds it from node {src}, which is not in the file",
            source=source,
            node_id=dst,
            field=inp,
            hint=f"Link {inp!r} to an output of a node in the file, or delete the link",
        )
    try:
        graph.connect(src, out, dst, inp)
    except GraphError as exc:
        raise WorkflowError(
            f"link {index}: {exc}",
            source=source,
            node_id=dst,
            field=inp,
            hint="Reconnect the input in the editor, or delete the link from the file",
        ) from None


def _add_groups(graph: Graph, groups: list[Any], ui: dict[str, Any], source: Any) -> None:
    ui_groups = ui.get("groups") if isinstance(ui.get("groups"), dict) else {}
    for raw in groups:
        expect(raw, dict, "a group entry", source=source, field="groups")
        gid = expect(raw.get("id"), int, "the group id", source=source, field="groups")
        members = expect(
            raw.get("nodes", []), list, f"group {gid}'s nodes", source=source, field="groups"
        )
        for member in members:
            expect(member, int, f"group {gid}'s node ids", source=source, field="groups")
        look = ui_groups.get(str(gid), {})
        look = look if isinstance(look, dict) else {}
        rect = look.get("rect")
        try:
            graph.add_group(
                Group(
                    gid,
                    str(raw.get("title", "Group")),
                    frozenset(members),
                    str(look.get("color", "#3f5f7f")),
                    None if rect is None else tuple(float(v) for v in rect),  # type: ignore[arg-type]
                )
            )
        except (GraphError, TypeError, ValueError, OverflowError) as exc:
            raise WorkflowError(f"group {gid}: {exc}", source=source, field="groups") from None


def _saved_sockets(
    raw: dict[str, Any], where: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    sockets = raw.get("sockets", {})
    expect(sockets, dict, "sockets", field="sockets", **where)
    pairs = []
    for key in ("inputs", "outputs"):
        entries = expect(sockets.get(key, []), list, f"sockets.{key}", field="sockets", **where)
        for entry in entries:
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and all(isinstance(v, str) for v in entry)
            ):
                raise WorkflowError(
                    f"sockets.{key} entries should be [name, type], found {show_value(entry)}",
                    field="sockets",
                    **where,
                )
        pairs.append([tuple(e) for e in entries])
    return pairs[0], pairs[1]


def _pair(value: Any, default: Any) -> Any:
    """``value`` as a pair of finite floats (a position, a size), else ``default``."""
    if not (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return default
    try:
        pair = (float(value[0]), float(value[1]))
    except OverflowError:  # an integer too large for a float
        return default
    return pair if all(map(math.isfinite, pair)) else default
