"""Workflow files: versioned JSON, migrations from older versions, atomic saves.

Layout of version 2 (version 3 adds ``"subgraphs"``, see ``core.graph.subgraph_files``;
a file without subgraphs is still written as version 2)::

    {"format": "latentloom", "version": 2,
     "nodes": [{"id": 3, "type": "KSampler", "type_version": 1, "params": {...},
                "title": null, "mode": "normal" | "bypassed" | "muted",
                "sockets": {"inputs": [["model", "MODEL"], ...], "outputs": [...]},
                "output_node": true,            (only on output nodes)
                "pack": "latentloom-example-pack"}],  (only on node types from a node pack)
     "links": [[src_id, "OUTPUT", dst_id, "input"], ...],
     "groups": [{"id": 1, "title": "Prompt", "nodes": [3, 4]}],
     "notes": [{"id": 1, "text": "…", "markdown": false, "pos": [x, y], "size": [w, h]}],
                                                 (optional, only when there are notes)
     "ui": {"nodes": {"3": {"pos": [x, y], "size": [w, h], "collapsed": false}},
            "groups": {"1": {"color": "#3f5f7f", "rect": [x, y, w, h]}},
            "view": {"center": [x, y], "zoom": 1.0}},
     "extra": {...}}

Params are stored by name. What the graph means (nodes, params, links) is kept apart from how
it looks (``ui``). Each node stores its sockets, and output nodes say so, so that a node type
missing from this install becomes a placeholder that keeps them (and that validation knows
was an output). Loading never runs node code and never unpickles; a bad
file raises one ``WorkflowError`` naming the file, the node and the field.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.files import atomic_write
from core.graph import png
from core.graph.errors import GraphError
from core.graph.model import BOUNDARY_IDS, Graph, Group
from core.graph.notes import NoteFormatError, add_notes, notes_to_list
from core.graph.packs import missing_pack_reason
from core.graph.spec import NodeRegistry, NodeSpec, SocketInput, placeholder_spec
from core.graph.subgraph_files import add_definitions, definitions_to_list

FORMAT = "latentloom"
VERSION = 3
#: The version written for a workflow without subgraphs: older LatentLoom reads it.
VERSION_WITHOUT_SUBGRAPHS = 2
#: The PNG text chunk that carries a workflow.
PNG_KEY = "latentloom"
#: The largest workflow file read: workflows are kilobytes, so a bigger file is not one.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: How deeply a workflow's JSON may nest; real ones (LatentLoom's, ComfyUI's) stay under 20.
MAX_DEPTH = 100


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
        if spec.output_node:  # kept so that a placeholder still knows it was an output
            nodes[-1]["output_node"] = True
        if spec.pack is not None:  # kept so that a placeholder can name the pack to install
            nodes[-1]["pack"] = spec.pack
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
    data = {
        "format": FORMAT,
        "version": VERSION_WITHOUT_SUBGRAPHS,
        "nodes": nodes,
        "links": links,
        "groups": groups,
        "ui": {"nodes": ui_nodes, "groups": ui_groups, "view": dict(view or {})},
        "extra": dict(extra or {}),
    }
    if graph.notes and node_ids is None:  # copying a selection of nodes leaves notes out
        data["notes"] = notes_to_list(graph)
    if graph.definition is None and len(graph.subgraphs):
        data["version"] = VERSION
        data["subgraphs"] = definitions_to_list(graph, to_dict)
    return data


def dumps(graph: Graph, view: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    return json.dumps(to_dict(graph, view, **kwargs), indent=1, sort_keys=False)


def save_workflow(
    graph: Graph, path: str | os.PathLike[str], view: Mapping[str, Any] | None = None
) -> None:
    """Saves the graph as a workflow file, atomically."""
    atomic_write(path, dumps(graph, view).encode("utf-8"))


# --- migrations ----------------------------------------------------------------------------


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 mixed layout into the nodes and named params ``widgets``; links were objects.

    ``_check_shape`` has checked the version 1 layout, so every entry has the expected type."""
    nodes, ui_nodes = [], {}
    for raw in data.get("nodes", []):
        node = dict(raw)
        ui_nodes[str(node.get("id"))] = {"pos": node.pop("pos", [0, 0])}
        node["params"] = node.pop("widgets", {})
        node["mode"] = _mode(node.pop("bypass", False), node.pop("mute", False))
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


#: ``MIGRATIONS[n]`` turns version n into version n + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
}


# --- reading -------------------------------------------------------------------------------

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
            f"{_show(version)}",
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
            _expect(data[key], kind, f"{key!r}", source=source, field=key)
    for index, raw in enumerate(data.get("nodes", [])):
        if not isinstance(raw, dict):
            raise WorkflowError(
                f"node entry {index} should be an object, found {_show(raw)}",
                source=source,
                field="nodes",
            )
        if version == 1:
            where = {"source": source, "node_id": _node_name(raw, index)}
            for name, kind in _V1_NODE_FIELDS.items():
                if name in raw:
                    _expect(raw[name], kind, name, field=name, **where)
    for index, raw in enumerate(data.get("links", [])):
        if not isinstance(raw, (list, dict) if version == 1 else list):
            raise WorkflowError(
                f"link {index} should be [source id, output, target id, input], found {_show(raw)}",
                source=source,
                field="links",
            )


def _node_name(raw: dict[str, Any], index: int) -> object:
    """How messages name a node entry: its id when that is short, else its position."""
    node_id = raw.get("id")
    if isinstance(node_id, (int, str)) and len(str(node_id)) <= 40:
        return node_id
    return f"entry {index}"


_KIND_NAMES = {
    dict: "an object",
    list: "a list",
    int: "a whole number",
    str: "text",
    bool: "true or false",
    float: "a number",
}


def _show(value: Any, limit: int = 60) -> str:
    """``value`` as JSON, shortened to ``limit`` characters for a message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _expect(value: Any, kind: type | tuple[type, ...], what: str, **where: Any) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise WorkflowError(f"{what} should be {names}, found {_show(value)}", **where)
    return value


def _build(data: dict[str, Any], registry: NodeRegistry, source: Any) -> Workflow:
    graph = Graph(registry)
    add_definitions(graph, data.get("subgraphs", []), source, _fill)
    _fill(graph, data, source)
    ui = data.get("ui", {})
    view = ui.get("view") if isinstance(ui.get("view"), dict) else {}
    extra = dict(data.get("extra", {}))
    return Workflow(graph, dict(view), extra, Path(source) if source else None)


def _fill(graph: Graph, data: dict[str, Any], source: Any) -> None:
    """Adds a file's (or a subgraph entry's) nodes, links, groups and notes to ``graph``."""
    ui = data.get("ui", {})
    ui_nodes = _expect(ui.get("nodes", {}), dict, "ui.nodes", source=source, field="ui")
    for index, raw in enumerate(data.get("nodes", [])):
        where = {"source": source, "node_id": _node_name(raw, index)}
        node_id = _expect(raw.get("id"), int, "the node id", field="id", **where)
        type_id = _expect(raw.get("type"), str, "the node type", field="type", **where)
        params = dict(_expect(raw.get("params", {}), dict, "params", field="params", **where))
        mode = raw.get("mode", "normal")
        if mode not in ("normal", "bypassed", "muted"):
            raise WorkflowError(
                f"mode {_show(mode)} is not normal, bypassed or muted", field="mode", **where
            )
        title = raw.get("title")
        if title is not None:
            _expect(title, str, "the title", field="title", **where)
        output_node = _expect(
            raw.get("output_node", False), bool, "output_node", field="output_node", **where
        )
        pack = raw.get("pack")
        if pack is not None:
            _expect(pack, str, "the node pack", field="pack", **where)
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
        node_ui = _expect(
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
    _expect(saved, int, "type_version", field="type_version", **where)
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
            f"{_show(raw)}",
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
        _expect(raw, dict, "a group entry", source=source, field="groups")
        gid = _expect(raw.get("id"), int, "the group id", source=source, field="groups")
        members = _expect(
            raw.get("nodes", []), list, f"group {gid}'s nodes", source=source, field="groups"
        )
        for member in members:
            _expect(member, int, f"group {gid}'s node ids", source=source, field="groups")
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
                    f"sockets.{key} entries should be [name, type], found {_show(entry)}",
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


def parse_json(text: str, source: str | os.PathLike[str] | None = None) -> Any:
    """Parses a workflow's JSON; anything that is not plain, finite, reasonably nested JSON
    raises ``WorkflowError`` naming the file and, where it can, the field."""
    if not text.strip():
        raise WorkflowError(
            "empty: there is no workflow in it",
            source=source,
            hint="Open a .json workflow or a PNG carrying one",
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=source
        ) from None
    except RecursionError:
        raise WorkflowError(
            f"not a workflow: its JSON nests deeper than {MAX_DEPTH} levels", source=source
        ) from None
    except ValueError:  # an integer with more digits than Python converts (4,300)
        raise WorkflowError(
            f"not a workflow: it holds a number of more than {sys.get_int_max_str_digits():,} "
            "digits",
            source=source,
            hint="Write numbers of a usual size",
        ) from None
    _check_values(data, source)
    return data


def _check_values(data: Any, source: Any) -> None:
    """Refuses NaN, infinities (JSON has neither; 1e400 reads as one) and deep nesting."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(data, 0, ())]
    while stack:
        value, depth, trail = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise WorkflowError(
                f"{value} is not a number a workflow can hold",
                source=source,
                field=_trail_name(trail),
                hint="Write a finite number",
            )
        if isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise WorkflowError(
                    f"not a workflow: its JSON nests deeper than {MAX_DEPTH} levels",
                    source=source,
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((child, depth + 1, (trail, key)) for key, child in items)


def _trail_name(trail: tuple[Any, ...]) -> str:
    """``(((), "nodes"), 0), "params")`` as ``nodes[0].params``."""
    keys = []
    while trail:
        trail, key = trail
        keys.append(key)
    text = ""
    for key in reversed(keys):
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "(the whole file)"


def loads(
    text: str, registry: NodeRegistry, source: str | os.PathLike[str] | None = None
) -> Workflow:
    return from_dict(parse_json(text, source), registry, source)


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A workflow file's bytes; a folder, a missing or unreadable file, or one larger than
    ``MAX_FILE_BYTES`` (a PNG's picture data excepted) raises ``WorkflowError``."""
    path = Path(path)
    if path.is_dir():
        raise WorkflowError(
            "is a folder, not a file", source=path, hint="Open a .json workflow or a PNG"
        )
    try:
        with path.open("rb") as file:
            head = file.read(len(png.SIGNATURE))
            if head == png.SIGNATURE:  # its picture data is skipped, never held in memory
                return png.text_chunks_only(file)
            raw = head + file.read(MAX_FILE_BYTES + 1 - len(head))
    except png.PngError as exc:
        raise WorkflowError(f"damaged PNG ({exc})", source=path) from None
    except OSError as exc:
        raise WorkflowError(
            f"cannot be read ({exc.strerror or exc})",
            source=path,
            hint="Check the path and that you may read the file",
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise WorkflowError(
            f"is larger than {MAX_FILE_BYTES // 2**20} MB, far more than any workflow",
            source=path,
            hint="Open a .json workflow or a PNG carrying one",
        )
    return raw


def load_workflow(path: str | os.PathLike[str], registry: NodeRegistry) -> Workflow:
    """Opens a ``.json`` workflow or a PNG with one embedded. Never runs anything."""
    path = Path(path)
    raw = read_file(path)
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
