"""Number nodes — a float and an int constant, Add (two inputs and a bias) and Show — as the
engine's tests and its benchmark both use them.

Every node function runs its body through ``around(ctx, body)``, so the tests can log which
nodes ran and the benchmark can time what the nodes themselves cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.engine import NodeContext
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

#: Runs a node's body (the callable) for the node of ``ctx`` and returns its result.
Around = Callable[[NodeContext, Callable[[], Any]], Any]

#: Widget limits wide enough for any sum the tests and the benchmark make.
LIMIT = 1e9


def arithmetic_specs(around: Around, category: str = "test") -> list[NodeSpec]:
    """``Const`` (FLOAT), ``Int`` (INT, -100..100), ``Add`` (a + b + bias; b optional) and the
    output node ``Show``, which records its input as a "value"."""

    def const(ctx: NodeContext, value: float) -> float:
        return around(ctx, lambda: value)

    def integer(ctx: NodeContext, value: int) -> int:
        return around(ctx, lambda: value)

    def add(ctx: NodeContext, a: float, b: float = 0.0, bias: float = 0.0) -> float:
        return around(ctx, lambda: a + b + bias)

    def show(ctx: NodeContext, x: Any) -> None:
        around(ctx, lambda: ctx.record("value", x))

    number = WidgetInput("value", t.FLOAT, 0.0, min=-LIMIT, max=LIMIT)
    return [
        NodeSpec("Const", "Const", category, const, (number,), (Output("out", t.FLOAT),)),
        NodeSpec(
            "Int",
            "Int",
            category,
            integer,
            (WidgetInput("value", t.INT, 0, min=-100, max=100),),
            (Output("out", t.INT),),
        ),
        NodeSpec(
            "Add",
            "Add",
            category,
            add,
            (
                SocketInput("a", t.FLOAT),
                SocketInput("b", t.FLOAT, optional=True),
                WidgetInput("bias", t.FLOAT, 0.0, min=-LIMIT, max=LIMIT),
            ),
            (Output("out", t.FLOAT),),
        ),
        NodeSpec(
            "Show", "Show", category, show, (SocketInput("x", t.FLOAT),), (), output_node=True
        ),
    ]
