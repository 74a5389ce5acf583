"""A tiny node catalogue for engine tests: plain Python functions, numpy arrays for sized
values, and a log of which nodes ran."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.engine import NodeContext, NodeError
from core.graph import types as t
from core.graph.model import Graph, Link, NodeId
from core.graph.spec import NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput
from tests.helpers.arithmetic import arithmetic_specs


class FakeModel:
    """Stands in for a loaded model: it knows its own size."""

    def __init__(self, nbytes: int) -> None:
        self.size = nbytes

    def cache_nbytes(self) -> int:
        return self.size


class Toy:
    """A registry of toy nodes whose functions log ``ctx.node_id`` to ``calls``."""

    def __init__(self) -> None:
        self.calls: list[NodeId] = []
        self.hooks: dict[str, Any] = {}
        self.registry = NodeRegistry(self._specs())

    def graph(self) -> Graph:
        return Graph(self.registry)

    def reset(self) -> None:
        self.calls.clear()

    def _log(self, ctx: NodeContext) -> None:
        self.calls.append(ctx.node_id)
        hook = self.hooks.get("on_call")
        if hook is not None:
            hook(ctx)

    def _logged(self, ctx: NodeContext, body: Callable[[], Any]) -> Any:
        self._log(ctx)
        return body()

    def _specs(self) -> list[NodeSpec]:
        log = self._log

        def array(ctx: NodeContext, size: int, value: float) -> np.ndarray:
            log(ctx)
            return np.full(size, value, dtype=np.float32)

        def total(ctx: NodeContext, x: np.ndarray) -> float:
            log(ctx)
            return float(x.sum())

        def fail(ctx: NodeContext, x: float) -> float:
            log(ctx)
            raise ZeroDivisionError("division by zero")

        def model(ctx: NodeContext, megabytes: int) -> FakeModel:
            log(ctx)
            return FakeModel(megabytes * 1024 * 1024)

        def steps(ctx: NodeContext, x: float, count: int) -> float:
            log(ctx)
            for step in range(count):
                ctx.progress(step + 1, count)
                ctx.preview(f"step {step + 1}")
            return x

        def load(ctx: NodeContext, path: str) -> str:
            log(ctx)
            return Path(path).read_text()

        def check_path(params: Mapping[str, Any]) -> list[tuple[str, str]]:
            if not Path(params["path"]).is_file():
                return [("path", f"file {params['path']} not found; choose an existing file")]
            return []

        def fingerprint_path(params: Mapping[str, Any]) -> str:
            return Path(params["path"]).read_text()

        def pair(ctx: NodeContext, x: float) -> tuple[float, float]:
            log(ctx)
            return x, -x

        def picky(ctx: NodeContext, x: float) -> float:
            log(ctx)
            if x < 0:
                raise NodeError("x must not be negative; raise the input", field="x")
            return x

        return [
            *arithmetic_specs(self._logged),
            NodeSpec(
                "Array",
                "Array",
                "test",
                array,
                (WidgetInput("size", t.INT, 4, min=0), WidgetInput("value", t.FLOAT, 1.0)),
                (Output("out", t.LATENT),),
            ),
            NodeSpec(
                "Total",
                "Total",
                "test",
                total,
                (SocketInput("x", t.LATENT),),
                (Output("out", t.FLOAT),),
            ),
            NodeSpec(
                "Fail",
                "Fail",
                "test",
                fail,
                (SocketInput("x", t.FLOAT),),
                (Output("out", t.FLOAT),),
            ),
            NodeSpec(
                "Model",
                "Model",
                "test",
                model,
                (WidgetInput("megabytes", t.INT, 1, min=0),),
                (Output("model", t.MODEL),),
            ),
            NodeSpec(
                "Steps",
                "Steps",
                "test",
                steps,
                (SocketInput("x", t.FLOAT), WidgetInput("count", t.INT, 3, min=1, max=100)),
                (Output("out", t.FLOAT),),
            ),
            NodeSpec(
                "Load",
                "Load",
                "test",
                load,
                (WidgetInput("path", t.STRING, ""),),
                (Output("text", t.STRING),),
                check=check_path,
                fingerprint=fingerprint_path,
            ),
            NodeSpec(
                "Pair",
                "Pair",
                "test",
                pair,
                (SocketInput("x", t.FLOAT),),
                (Output("pos", t.FLOAT), Output("neg", t.FLOAT)),
            ),
            NodeSpec(
                "Picky",
                "Picky",
                "test",
                picky,
                (SocketInput("x", t.FLOAT),),
                (Output("out", t.FLOAT),),
            ),
        ]


def force_link(graph: Graph, src: NodeId, src_output: str, dst: NodeId, dst_input: str) -> Link:
    """Adds a link without the model's checks, as a workflow file with a stale link can."""
    link = Link(src, src_output, dst, dst_input)
    graph._links[(dst, dst_input)] = link
    graph._out.setdefault(src, set()).add(link)
    graph._in.setdefault(dst, set()).add(link)
    return link
