"""Copy and paste through the system clipboard, as workflow JSON.

What is copied is a workflow limited to the selection (``to_dict(graph, node_ids=...)``);
the links that fed the selection from outside ride along in ``extra`` so that Ctrl+Shift+V
can keep them. The subgraph definitions that copied instances need ride along (``"subgraphs"``),
so they paste into another workflow too. Pasting turns the text back into a core ``Fragment``
for the ``Paste`` command.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from PySide6.QtGui import QGuiApplication

from core.graph import workflow
from core.graph.commands import Fragment
from core.graph.model import Graph, Link, NodeId
from core.graph.spec import NodeRegistry
from core.graph.subgraph_transfer import definition_entries

EXTERNAL_INPUTS = "external_inputs"


def fragment_text(graph: Graph, node_ids: Iterable[NodeId]) -> str:
    """The selection as workflow JSON, with the links feeding it from outside in ``extra``."""
    ids = set(node_ids)
    outside = [
        [lk.src, lk.src_output, lk.dst, lk.dst_input]
        for nid in sorted(ids)
        for lk in graph.inputs_of(nid)
        if lk.src not in ids
    ]
    data = workflow.to_dict(graph, node_ids=ids, extra={EXTERNAL_INPUTS: outside})
    return json.dumps(data, indent=1)


def parse_fragment(text: str, registry: NodeRegistry) -> Fragment | None:
    """The fragment a clipboard text holds, or None when it is not a LatentLoom workflow."""
    try:
        loaded = workflow.loads(text, registry)
    except workflow.WorkflowError:
        return None
    graph = loaded.graph
    fragment = Fragment.copy_from(graph, list(graph.nodes))
    outside = loaded.extra.get(EXTERNAL_INPUTS, [])
    fragment.definitions = definition_entries(graph, [d.id for d in graph.subgraphs])
    fragment.external_inputs = [
        Link(*entry) for entry in outside if isinstance(entry, list) and len(entry) == 4
    ]
    return fragment


def copy_to_clipboard(graph: Graph, node_ids: Iterable[NodeId]) -> None:
    QGuiApplication.clipboard().setText(fragment_text(graph, node_ids))


def fragment_from_clipboard(registry: NodeRegistry) -> Fragment | None:
    return parse_fragment(QGuiApplication.clipboard().text(), registry)
