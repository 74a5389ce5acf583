"""The graph model: socket types, node specs, the graph, its edit commands and files.

No Qt and no torch here: the editor, the CLI and the tests all drive the same model.
"""

from core.graph.errors import GraphError
from core.graph.model import Graph, Group, Link, Node
from core.graph.spec import NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput
from core.graph.workflow import Workflow, WorkflowError, load_workflow, save_workflow

__all__ = [
    "Graph",
    "GraphError",
    "Group",
    "Link",
    "Node",
    "NodeRegistry",
    "NodeSpec",
    "Output",
    "SocketInput",
    "WidgetInput",
    "Workflow",
    "WorkflowError",
    "load_workflow",
    "save_workflow",
]
