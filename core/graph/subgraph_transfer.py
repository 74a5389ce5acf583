"""Moving subgraph definitions between workflows: through the clipboard, and through the
user's library of saved definitions (one JSON file per definition).

Definitions travel as the entries workflow files use (``core.graph.subgraph_files``), nested
definitions included. A definition whose id the receiving workflow already has is not copied:
the workflow's own one is kept, so pasting an instance twice never duplicates its definition.

A library file::

    {"format": "latentloom-subgraph", "version": 1, "id": "<uuid>", "name": "Prompt block",
     "subgraphs": [<entry>, ...]}        (the definition and every one it uses, innermost first)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.files import atomic_write
from core.graph.commands import AddNode, Command, Macro
from core.graph.errors import GraphError
from core.graph.model import Graph
from core.graph.spec import NodeRegistry
from core.graph.subgraph import SubgraphDefinition
from core.graph.subgraph_files import (
    add_definitions,
    definitions_to_list,
    needed_definitions,
)
from core.graph.workflow_format import MAX_FILE_BYTES, WorkflowError
from core.graph.workflow_json import parse_json
from core.graph.workflow_read import fill_graph
from core.graph.workflow_write import to_dict

LIBRARY_FORMAT = "latentloom-subgraph"
LIBRARY_VERSION = 1
#: The file name ending of a saved definition.
SUFFIX = ".json"


def definition_entries(graph: Graph, def_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Workflow-file entries of the definitions ``def_ids`` and those they hold."""
    return definitions_to_list(graph, to_dict, needed_definitions(graph.subgraphs, def_ids))


class ImportDefinitions(Command):
    """Adds definitions from file entries to the workflow, nested ones included, skipping any
    the workflow already has. Undo removes what it added; redo adds the same objects back."""

    text = "Add Subgraph Definitions"

    def __init__(self, entries: list[dict[str, Any]], source: str | None = None) -> None:
        self.entries, self.source = entries, source
        self.added: list[SubgraphDefinition] | None = None

    def do(self, graph: Graph) -> None:
        library = graph.subgraphs
        if self.added is not None:
            for definition in self.added:
                library.add(definition)
            return
        before = {d.id for d in library}
        fresh = [e for e in self.entries if e.get("id") not in before]
        try:
            add_definitions(graph, fresh, self.source, fill_graph)
        except WorkflowError as exc:
            for definition in list(library):
                if definition.id not in before:
                    library.remove(definition.id)
            raise GraphError(str(exc)) from None
        order = [e["id"] for e in fresh]
        self.added = sorted(
            (d for d in library if d.id not in before), key=lambda d: order.index(d.id)
        )

    def undo(self, graph: Graph) -> None:
        for definition in reversed(self.added or []):
            graph.subgraphs.remove(definition.id)


# --- the user's library --------------------------------------------------------------------


@dataclass(frozen=True)
class SavedDefinition:
    """A definition saved in the user's library: what adding it to a workflow needs."""

    path: Path
    def_id: str
    name: str
    description: str
    entries: list[dict[str, Any]]

    def add_instance(self, pos: tuple[float, float]) -> Macro:
        """One undo step: copy the definitions into the workflow, then add an instance."""
        return Macro(
            "Add Subgraph",
            [ImportDefinitions(self.entries, str(self.path)), AddNode(self.def_id, pos)],
        )


def library_text(graph: Graph, def_id: str) -> str:
    """A library file for definition ``def_id`` of ``graph``'s workflow."""
    definition = graph.subgraphs.get(def_id)
    data = {
        "format": LIBRARY_FORMAT,
        "version": LIBRARY_VERSION,
        "id": definition.id,
        "name": definition.name,
        "subgraphs": definition_entries(graph, [def_id]),
    }
    return json.dumps(data, indent=1)


def file_name(name: str, taken: Iterable[str] = ()) -> str:
    """A file name for a definition called ``name``: letters, digits, spaces, ``-`` and ``_``
    kept, never one of ``taken``."""
    stem = "".join(c if c.isalnum() or c in " -_" else "_" for c in name).strip() or "subgraph"
    stem = stem[:80]
    taken = set(taken)
    candidate, n = stem + SUFFIX, 2
    while candidate in taken:
        candidate, n = f"{stem} {n}{SUFFIX}", n + 1
    return candidate


def save_to_library(graph: Graph, def_id: str, folder: str | os.PathLike[str]) -> Path:
    """Saves definition ``def_id`` (with those it uses) into ``folder``, atomically. A file
    that already holds this definition is replaced; otherwise a new file is named after it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = next((s.path for s in list_library(folder, None) if s.def_id == def_id), None)
    if path is None:
        name = graph.subgraphs.get(def_id).name
        path = folder / file_name(name, (p.name for p in folder.iterdir()))
    atomic_write(path, library_text(graph, def_id).encode("utf-8"))
    return path


def read_library_file(path: str | os.PathLike[str], registry: NodeRegistry) -> SavedDefinition:
    """Reads and checks one library file; a bad one raises ``WorkflowError`` naming it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise WorkflowError("is far larger than any subgraph", source=path)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"cannot be read ({exc})", source=path) from None
    data = parse_json(text, path)
    if not isinstance(data, dict) or data.get("format") != LIBRARY_FORMAT:
        raise WorkflowError(
            f'not a saved subgraph (no "format": "{LIBRARY_FORMAT}")',
            source=path,
            hint="The subgraph library folder holds only subgraphs saved by LatentLoom",
        )
    version = data.get("version")
    if version != LIBRARY_VERSION:
        raise WorkflowError(
            f"saved subgraph version {version!r} is not one this LatentLoom reads "
            f"({LIBRARY_VERSION})",
            source=path,
            field="version",
        )
    entries, def_id = data.get("subgraphs"), data.get("id")
    if not isinstance(entries, list) or not isinstance(def_id, str):
        raise WorkflowError("needs an id and a list of subgraphs", source=path, field="subgraphs")
    scratch = Graph(registry)  # checks every entry without touching any workflow
    add_definitions(scratch, entries, path, fill_graph)
    if def_id not in scratch.subgraphs:
        raise WorkflowError(f"holds no subgraph with its id {def_id!r}", source=path, field="id")
    definition = scratch.subgraphs.get(def_id)
    return SavedDefinition(path, def_id, definition.name, definition.description, entries)


def list_library(
    folder: str | os.PathLike[str], registry: NodeRegistry | None
) -> list[SavedDefinition]:
    """The definitions saved in ``folder``, by name. Without a registry the files are only
    read for their id and name (enough to find one); unreadable files are left out."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if registry is not None:
            try:
                found.append(read_library_file(path, registry))
            except WorkflowError:
                continue
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            found.append(SavedDefinition(path, data["id"], str(data.get("name", "")), "", []))
    return sorted(found, key=lambda s: (s.name.lower(), s.path.name))


def library_problems(folder: str | os.PathLike[str], registry: NodeRegistry) -> list[str]:
    """One line per library file that cannot be used, naming the file and the problem."""
    problems = []
    for path in sorted(Path(folder).glob(f"*{SUFFIX}")) if Path(folder).is_dir() else []:
        try:
            read_library_file(path, registry)
        except WorkflowError as exc:
            problems.append(str(exc))
    return problems
