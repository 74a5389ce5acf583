"""A small picture-making catalogue for sweep tests: a loader, a text encoder, a sampler with
a seed, and a node saving the picture as a PNG with the run's workflow embedded. Pure Python
(Pillow for the PNG), so plans, runners, grids and the Ray runner test in milliseconds per run.
Every function call is counted by node type."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import time
from typing import Any

from PIL import Image, PngImagePlugin

from core.graph import types as t
from core.graph.model import Graph
from core.graph.spec import NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput

#: Calls per node type in this process (Ray workers count their own).
CALLS: collections.Counter[str] = collections.Counter()
SIDE = 8
#: The PNG text chunk LatentLoom reads a picture's workflow from.
WORKFLOW_KEY = "latentloom"
MODEL_BYTES = 1000


class ToyModel:
    """Stands in for a loaded checkpoint: a name and a size the model cache charges."""

    def __init__(self, name: str) -> None:
        self.name = name

    def cache_nbytes(self) -> int:
        return MODEL_BYTES


def _load(ctx: Any, ckpt_name: str, dtype: str = "auto") -> ToyModel:
    CALLS["Load"] += 1
    return ToyModel(ckpt_name)


def _encode(ctx: Any, model: ToyModel, text: str) -> str:
    CALLS["Encode"] += 1
    return f"{model.name}|{text}"


def _sample(
    ctx: Any,
    model: ToyModel,
    positive: str,
    seed: int,
    cfg: float,
    sampler_name: str,
    seconds: float = 0.0,
) -> bytes:
    CALLS["Sample"] += 1
    for step in range(3):
        time.sleep(seconds / 3)
        ctx.progress(step + 1, 3)
    text = f"{model.name}|{positive}|{seed}|{cfg!r}|{sampler_name}"
    return hashlib.sha256(text.encode()).digest()


def _save(ctx: Any, images: bytes, filename_prefix: str) -> tuple[()]:
    from core.files import write_new_output

    CALLS["Save"] += 1
    picture = Image.frombytes("RGB", (SIDE, SIDE), (images * 7)[: SIDE * SIDE * 3])
    info = PngImagePlugin.PngInfo()
    if ctx.workflow:
        info.add_itxt(WORKFLOW_KEY, json.dumps(ctx.workflow))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info)
    path = write_new_output(ctx.output_dir, filename_prefix, ".png", buffer.getvalue())
    ctx.record("file", str(path))
    return ()


def registry() -> NodeRegistry:
    return NodeRegistry(
        [
            NodeSpec(
                "Number",
                "Number",
                "toy",
                lambda ctx, value: value,
                (WidgetInput("value", t.INT, 0),),
                (Output("INT", t.INT),),
            ),
            NodeSpec(
                "Load",
                "Load",
                "toy",
                _load,
                (
                    WidgetInput("ckpt_name", t.COMBO, "a", choices=("a", "b", "c")),
                    WidgetInput("dtype", t.COMBO, "auto", choices=("auto", "float32", "float16")),
                ),
                (Output("MODEL", "MODEL"),),
            ),
            NodeSpec(
                "Encode",
                "Encode",
                "toy",
                _encode,
                (SocketInput("model", "MODEL"), WidgetInput("text", t.STRING, "")),
                (Output("CONDITIONING", "CONDITIONING"),),
            ),
            NodeSpec(
                "Sample",
                "Sample",
                "toy",
                _sample,
                (
                    SocketInput("model", "MODEL"),
                    SocketInput("positive", "CONDITIONING"),
                    WidgetInput("seed", t.INT, 0, min=0, max=1000, control_after_run=True),
                    WidgetInput("cfg", t.FLOAT, 5.0, min=0.0, max=30.0),
                    WidgetInput("sampler_name", t.COMBO, "euler", choices=("euler", "ddim")),
                    WidgetInput("seconds", t.FLOAT, 0.0, min=0.0, max=10.0),
                ),
                (Output("IMAGE", t.IMAGE),),
            ),
            NodeSpec(
                "Save",
                "Save",
                "toy",
                _save,
                (SocketInput("images", t.IMAGE), WidgetInput("filename_prefix", t.STRING, "pic")),
                output_node=True,
            ),
        ]
    )


def pipeline(reg: NodeRegistry | None = None) -> Graph:
    """Load #1 → Encode #2 → Sample #3 → Save #4."""
    graph = Graph(reg or registry())
    load = graph.add_node("Load").id
    encode = graph.add_node("Encode", params={"text": "a red circle"}).id
    sample = graph.add_node("Sample").id
    save = graph.add_node("Save").id
    graph.connect(load, "MODEL", encode, "model")
    graph.connect(load, "MODEL", sample, "model")
    graph.connect(encode, "CONDITIONING", sample, "positive")
    graph.connect(sample, "IMAGE", save, "images")
    return graph


def sum_to_text(word: str, a: int, b: int) -> Graph:
    """IntMath #1 (a + b) → TextJoin #2 (``word`` and the sum) → SaveText #3 (file ``word``),
    in the real node catalogue: a workflow whose runs compute almost nothing."""
    from nodes import build_registry

    graph = Graph(build_registry())
    number = graph.add_node("IntMath", params={"a": a, "b": b, "op": "add"}).id
    join = graph.add_node("TextJoin", params={"a": word}).id
    save = graph.add_node("SaveText", params={"filename": word}).id
    graph.connect(number, "INT", join, "b")
    graph.connect(join, "STRING", save, "text")
    return graph
