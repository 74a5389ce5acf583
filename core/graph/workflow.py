"""Workflow files: versioned JSON, migrations from older versions, atomic saves.

Layout of the current version (2)::

    {"format": "latentloom", "version": 2,
     "nodes": [{"id": 3, "type": "KSampler", "type_version": 1, "params": {...},
                "title": null, "mode": "normal" | "bypassed" | "muted",
                "sockets": {"inputs": [["model", "MODEL"], ...], "outputs": [...]}}],
     "links": [[src_id, "OUTPUT", dst_id, "input"], ...],
     "groups": [{"id": 1, "title": "Prompt", "nodes": [3, 4]}],
     "ui": {"nodes": {"3": {"pos": [x, y], "size": [w, h], "collapsed": false}},
            "groups": {"1": {"color": "#3f5f7f", "rect": [x, y, w, h]}},
            "view": {"center": [x, y], "zoom": 1.0}},
     "extra": {...}}

Params are stored by name. What the graph means (nodes, params, links) is kept apart from how
it looks (``ui``). Each node stores its sockets so that a node type missing from this install
becomes a placeholder that keeps them. Loading never runs node code and never unpickles; a bad
file raises one ``WorkflowError`` naming the file, the node and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.files import atomic_write
from core.graph import png
from core.graph.errors import GraphError
from core.graph.model import Graph, Group
from core.graph.spec import NodeRegistry, NodeSpec, SocketInput, placeholder_spec

FORMAT = "latentloom"
VERSION = 2
#: The PNG text chunk that carries a workflow.
PNG_KEY = "latentloom"


class WorkflowError(Exception):
    """A workflow file that cannot be opened, with where the problem is."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | os.PathLike[str] | None = None,
        node_id: object = None,
        field: str | None = None,
        hint: str = "",
    ) -> None:
        self.problem, self.source, self.node_id, self.field, self.hint = (
            problem,
            source,
            node_id,
            field,
            hint,
        )
        where = [str(source) if source is not None else "workflow"]
        if node_id is not None:
            where.append(f"node {node_id}")
        if field is not None:
            where.append(f"field {field!r}")
        message = f"{', '.join(where)}: {problem}"
        super().__init__(f"{message}. {hint}" if hint else message)


@dataclass
class Workflow:
    """A loaded workflow: the graph plus what only the editor cares about."""

    graph: Graph
    view: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def placeholders(self) -> list[int]:
        """Ids of nodes whose type this install lacks."""
        return [n.id for n in self.graph if n.placeholder is not None]


# --- writing -------------------------------------------------------------------------------


def _sockets(spec: NodeSpec) -> dict[str, list[list[str]]]:
    return {
        "inputs": [[i.name, i.type] for i in spec.inputs if isinstance(i, SocketInput)],
        "outputs": [[o.name, o.type] for o in spec.outputs],
    }


def _mode(bypassed: bool, muted: bool) -> str:
    return "muted" if muted else "bypassed" if bypassed else "normal"


def to_dict(
    graph: Graph,
    view: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    node_ids: set[int] | None = None,
) -> dict[str, Any]:
    """The workflow as JSON-ready data; ``node_ids`` limits it to a selection (copy)."""
    keep = set(graph.nodes) if node_ids is None else node_ids
    nodes, ui_nodes = [], {}
    for node in graph:
        if node.id not in keep:
            continue
        spec = graph.spec(node.id)
        nodes.append(
            {
                "id": node.id,
                "type": node.type_id,
                "type_version": spec.version,
                "params": node.params,
                "title": node.title,
                "mode": _mode(node.bypassed, node.muted),
                "sockets": _sockets(spec),
            }
        )
        ui: dict[str, Any] = {"pos": list(node.pos), "collapsed": node.collapsed}
        if node.size is not None:
            ui["size"] = list(node.size)
        if node.ui:
            ui["extra"] = node.ui
        ui_nodes[str(node.id)] = ui
    links = sorted(
        [lk.src, lk.src_output, lk.dst, lk.dst_input]
        for lk in graph.links
        if lk.src in keep and lk.dst in keep
    )
    groups, ui_groups = [], {}
    for group in graph.groups.values():
        if node_ids is not None and not group.nodes <= keep:
            continue
        groups.append({"id": group.id, "title": group.title, "nodes": sorted(group.nodes)})
        ui_groups[str(group.id)] = {
            "color": group.color,
            "rect": None if group.rect is None else list(group.rect),
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "nodes": nodes,
        "links": links,
        "groups": groups,
        "ui": {"nodes": ui_nodes, "groups": ui_groups, "view": dict(view or {})},
        "extra": dict(extra or {}),
    }


def dumps(graph: Graph, view: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    return json.dumps(to_dict(graph, view, **kwargs), indent=1, sort_keys=False)


def save_workflow(
    graph: Graph, path: str | os.PathLike[str], view: Mapping[str, Any] | None = None
) -> None:
    """Saves the graph as a workflow file, atomically."""
    atomic_write(path, dumps(graph, view).encode("utf-8"))


# --- migrations ----------------------------------------------------------------------------


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 mixed layout into the nodes and named params ``widgets``; links were objects."""
    nodes, ui_nodes = [], {}
    for raw in data.get("nodes", []):
        if not isinstance(raw, dict):
            nodes.append(raw)  # reported by the loader with its position
            continue
        node = dict(raw)
        ui_nodes[str(node.get("id"))] = {"pos": node.pop("pos", [0, 0])}
        node["params"] = node.pop("widgets", {})
        node["mode"] = _mode(bool(node.pop("bypass", False)), bool(node.pop("mute", False)))
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


#: ``MIGRATIONS[n]`` turns version n into version n + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _migrate_1_to_2}


# --- reading -------------------------------------------------------------------------------


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
    if not isinstance(version, int) or version < 1:
        raise WorkflowError(f"bad version {version!r}", source=source, field="version")
    if version > VERSION:
        raise WorkflowError(
            f"made by a newer LatentLoom (format version {version}, this one reads up to "
            f"{VERSION})",
            source=source,
            field="version",
            hint="Update LatentLoom to open it",
        )
    while version < VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return _build(data, registry, source)


def _expect(value: Any, kind: type | tuple[type, ...], what: str, **where: Any) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise WorkflowError(f"{what} should be {names}, found {value!r}", **where)
    return value


def _build(data: dict[str, Any], registry: NodeRegistry, source: Any) -> Workflow:
    graph = Graph(registry)
    ui = data.get("ui") if isinstance(data.get("ui"), dict) else {}
    ui_nodes = ui.get("nodes") if isinstance(ui.get("nodes"), dict) else {}
    for index, raw in enumerate(_expect(data.get("nodes", []), list, "nodes", source=source)):
        where = {"source": source, "node_id": raw.get("id") if isinstance(raw, dict) else index}
        _expect(raw, dict, "a node entry", **where)
        node_id = _expect(raw.get("id"), int, "the node id", field="id", **where)
        type_id = _expect(raw.get("type"), str, "the node type", field="type", **where)
        params = dict(_expect(raw.get("params", {}), dict, "params", field="params", **where))
        mode = raw.get("mode", "normal")
        if mode not in ("normal", "bypassed", "muted"):
            raise WorkflowError(
                f"mode {mode!r} is not normal, bypassed or muted", field="mode", **where
            )
        title = raw.get("title")
        if title is not None:
            _expect(title, str, "the title", field="title", **where)
        placeholder = None
        if type_id in registry:
            spec = registry.get(type_id)
            saved = raw.get("type_version", spec.version)
            _expect(saved, int, "type_version", field="type_version", **where)
            if saved > spec.version:
                raise WorkflowError(
                    f"saved by a newer version ({saved}) of node type {type_id!r} than this "
                    f"install has ({spec.version})",
                    field="type_version",
                    hint="Update LatentLoom to open it",
                    **where,
                )
            if saved < spec.version and spec.upgrade is not None:
                params = spec.upgrade(saved, params)
            for name in params:
                if name not in {w.name for w in spec.widgets}:
                    raise WorkflowError(
                        f"node type {type_id!r} has no parameter {name!r}",
                        field=name,
                        hint="The file may come from another version of this node",
                        **where,
                    )
        else:
            placeholder = placeholder_spec(type_id, *_saved_sockets(raw, where), params)
        node_ui = ui_nodes.get(str(node_id), {})
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
    for index, raw in enumerate(_expect(data.get("links", []), list, "links", source=source)):
        if not (isinstance(raw, list) and len(raw) == 4):
            raise WorkflowError(
                f"link {index} should be [source id, output, target id, input], found {raw!r}",
                source=source,
                field="links",
            )
        src, out, dst, inp = raw
        try:
            graph.connect(src, out, dst, inp)
        except (GraphError, TypeError) as exc:
            raise WorkflowError(
                f"link {index}: {exc}", source=source, node_id=dst, field=str(inp)
            ) from None
    ui_groups = ui.get("groups") if isinstance(ui.get("groups"), dict) else {}
    for raw in _expect(data.get("groups", []), list, "groups", source=source):
        _expect(raw, dict, "a group entry", source=source, field="groups")
        gid = _expect(raw.get("id"), int, "the group id", source=source, field="groups")
        look = ui_groups.get(str(gid), {})
        rect = look.get("rect")
        try:
            graph.add_group(
                Group(
                    gid,
                    str(raw.get("title", "Group")),
                    frozenset(raw.get("nodes", [])),
                    str(look.get("color", "#3f5f7f")),
                    None if rect is None else tuple(float(v) for v in rect),  # type: ignore[arg-type]
                )
            )
        except (GraphError, TypeError, ValueError) as exc:
            raise WorkflowError(f"group {gid}: {exc}", source=source, field="groups") from None
    view = ui.get("view") if isinstance(ui.get("view"), dict) else {}
    extra = data.get("extra") if isinstance(data.get("extra"), dict) else {}
    return Workflow(graph, dict(view), dict(extra), Path(source) if source else None)


def _saved_sockets(
    raw: dict[str, Any], where: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    sockets = raw.get("sockets", {})
    _expect(sockets, dict, "sockets", field="sockets", **where)
    pairs = []
    for key in ("inputs", "outputs"):
        entries = _expect(sockets.get(key, []), list, f"sockets.{key}", field="sockets", **where)
        for entry in entries:
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and all(isinstance(v, str) for v in entry)
            ):
                raise WorkflowError(
                    f"sockets.{key} entries should be [name, type], found {entry!r}",
                    field="sockets",
                    **where,
                )
        pairs.append([tuple(e) for e in entries])
    return pairs[0], pairs[1]


def _pair(value: Any, default: Any) -> Any:
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return (float(value[0]), float(value[1]))
    return default


def loads(
    text: str, registry: NodeRegistry, source: str | os.PathLike[str] | None = None
) -> Workflow:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=source
        ) from None
    return from_dict(data, registry, source)


def load_workflow(path: str | os.PathLike[str], registry: NodeRegistry) -> Workflow:
    """Opens a ``.json`` workflow or a PNG with one embedded. Never runs anything."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WorkflowError(f"cannot be read ({exc.strerror})", source=path) from None
    if raw.startswith(png.SIGNATURE):
        try:
            chunks = png.read_text_chunks(raw)
        except png.PngError as exc:
            raise WorkflowError(f"damaged PNG ({exc})", source=path) from None
        if PNG_KEY not in chunks:
            raise WorkflowError(
                "this PNG has no LatentLoom workflow embedded",
                source=path,
                hint="Only images saved by LatentLoom's Save Image carry one",
            )
        return loads(chunks[PNG_KEY], registry, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkflowError("not a text file (not UTF-8)", source=path) from None
    return loads(text, registry, path)
