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

This module is the public face; the work is split by topic: ``workflow_format`` (the format's
constants, ``WorkflowError``, ``Workflow``), ``workflow_json`` (reading bytes and JSON safely),
``workflow_migrations``, ``workflow_read`` (checking and building) and ``workflow_write``.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.graph import png
from core.graph.spec import NodeRegistry
from core.graph.workflow_format import (
    FORMAT,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    PNG_KEY,
    VERSION,
    VERSION_WITHOUT_SUBGRAPHS,
    Workflow,
    WorkflowError,
)
from core.graph.workflow_json import parse_json
from core.graph.workflow_migrations import MIGRATIONS
from core.graph.workflow_read import fill_graph, from_dict
from core.graph.workflow_write import dumps, save_workflow, to_dict

__all__ = [
    "FORMAT",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MIGRATIONS",
    "PNG_KEY",
    "VERSION",
    "VERSION_WITHOUT_SUBGRAPHS",
    "Workflow",
    "WorkflowError",
    "dumps",
    "fill_graph",
    "from_dict",
    "load_workflow",
    "loads",
    "parse_json",
    "read_file",
    "save_workflow",
    "to_dict",
]


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
