"""A small registry of typed test nodes, and a graph over it, shared by the graph tests."""

from __future__ import annotations

from core.graph import types as t
from core.graph.model import Graph
from core.graph.spec import NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput


def _fn(ctx, **kwargs):  # pragma: no cover - graph tests never run nodes
    return None


def make_registry() -> NodeRegistry:
    return NodeRegistry(
        [
            NodeSpec(
                "Number",
                "Number",
                "test",
                _fn,
                inputs=(WidgetInput("value", t.INT, 1, min=-100, max=100),),
                outputs=(Output("INT", t.INT),),
            ),
            NodeSpec(
                "Scale",
                "Scale",
                "test",
                _fn,
                inputs=(
                    SocketInput("x", t.FLOAT),
                    WidgetInput("factor", t.FLOAT, 1.0, min=0, max=10),
                    WidgetInput("mode", t.COMBO, "a", choices=("a", "b")),
                ),
                outputs=(Output("FLOAT", t.FLOAT),),
            ),
            NodeSpec(
                "Latent",
                "Latent",
                "test",
                _fn,
                inputs=(WidgetInput("width", t.INT, 64, min=8, max=4096),),
                outputs=(Output("LATENT", t.LATENT),),
            ),
            NodeSpec(
                "Sampler",
                "Sampler",
                "test",
                _fn,
                inputs=(
                    SocketInput("latent", t.LATENT),
                    SocketInput("strength", t.FLOAT, optional=True),
                    WidgetInput("seed", t.INT, 0, min=0, max=2**63 - 1),
                ),
                outputs=(Output("LATENT", t.LATENT),),
            ),
            NodeSpec(
                "Save",
                "Save",
                "test",
                _fn,
                inputs=(SocketInput("latent", t.LATENT), WidgetInput("name", t.STRING, "out")),
                output_node=True,
            ),
        ]
    )


def sampler_chain(**latent_params: object) -> Graph:
    """Latent (1) → Sampler (2, seed 5) → Sampler (3, seed 6) → Save (4), left to right, over
    ``make_registry()``; ``latent_params`` set the Latent's widgets."""
    graph = Graph(make_registry())
    graph.add_node("Latent", pos=(0, 0), params=dict(latent_params))
    graph.add_node("Sampler", pos=(200, 0), params={"seed": 5})
    graph.add_node("Sampler", pos=(400, 0), params={"seed": 6})
    graph.add_node("Save", pos=(600, 0))
    graph.connect(1, "LATENT", 2, "latent")
    graph.connect(2, "LATENT", 3, "latent")
    graph.connect(3, "LATENT", 4, "latent")
    return graph
