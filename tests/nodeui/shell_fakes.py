"""Node types for the shell's tests: a slow, cancellable counter, an image output, and a fake
sampler that previews every step and records a small hand-built step history."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from core.diffusion.previews import StepHistory, StepPreview
from core.engine import NodeError
from core.graph import types as t
from core.graph.model import Graph
from core.graph.spec import NodeRegistry, NodeSpec, Output, SocketInput, WidgetInput


def _slow_count(ctx: Any, steps: int, delay: float, seed: int) -> int:
    """Sleeps ``steps`` times ``delay`` seconds, reporting progress (and checking cancel)."""
    for step in range(1, steps + 1):
        time.sleep(delay)
        ctx.preview(StepPreview(step, steps, np.full((1, 8, 8, 3), step / steps, np.float32)))
        ctx.progress(step, steps)
    return steps + seed


def fake_history(steps: int, first: int = 1) -> StepHistory:
    """A ``StepHistory`` of ``steps`` steps of 1×4×6×8 latents: x_t brightens step by step in
    channel 0, x̂₀ in channel 1, so every (step, which) has its own picture."""
    history = StepHistory(total=first - 1 + steps, downscale=8)
    for step in range(first, first + steps):
        latent, denoised = torch.zeros(1, 4, 6, 8), torch.zeros(1, 4, 6, 8)
        latent[:, 0] = step / steps
        denoised[:, 1] = step / steps
        history.append(step, latent, denoised)
    return history


def _fake_sampler(ctx: Any, steps: int, delay: float, seed: int) -> int:
    """Previews a ``StepPreview`` after every step (a grey rising with the step) and records
    the run's step history, as KSampler does."""
    every = ctx.preview_vae_every
    for step in range(1, steps + 1):
        time.sleep(delay)
        image = torch.full((1, 6, 8, 3), step / steps)
        if not every:
            ctx.preview(StepPreview(step, steps, image))
        elif step % every == 0:  # as KSampler: with VAE previews, only every k-th step
            ctx.preview(StepPreview(step, steps, image, source="vae"))
        ctx.progress(step, steps)
    ctx.record("history", fake_history(steps))
    return seed


def _show(ctx: Any, value: int) -> tuple[()]:
    shade = (value % 256) / 255.0
    ctx.record("images", np.full((1, 16, 24, 3), shade, dtype=np.float32))
    return ()


def _fail(ctx: Any, value: int) -> int:
    raise NodeError("this node always fails", field="value")


SPECS = (
    NodeSpec(
        "SlowCount",
        "Slow Count",
        "test",
        _slow_count,
        inputs=(
            WidgetInput("steps", t.INT, 5, min=1, max=100_000),
            WidgetInput("delay", t.FLOAT, 0.01, min=0.0, max=10.0, step=0.01),
            WidgetInput("seed", t.INT, 0, min=0, max=2**64 - 1, control_after_run=True),
        ),
        outputs=(Output("INT", t.INT),),
    ),
    NodeSpec(
        "FakeSampler",
        "Fake Sampler",
        "sampling",
        _fake_sampler,
        inputs=(
            WidgetInput("steps", t.INT, 6, min=1, max=1000),
            WidgetInput("delay", t.FLOAT, 0.05, min=0.0, max=10.0, step=0.01),
            WidgetInput("seed", t.INT, 0, min=0, max=2**64 - 1),
        ),
        outputs=(Output("INT", t.INT),),
    ),
    NodeSpec(
        "ShowNumber",
        "Show Number",
        "test",
        _show,
        inputs=(SocketInput("value", t.INT),),
        output_node=True,
    ),
    NodeSpec(
        "Fail",
        "Fail",
        "test",
        _fail,
        inputs=(SocketInput("value", t.INT),),
        outputs=(Output("INT", t.INT),),
    ),
)


def registry() -> NodeRegistry:
    return NodeRegistry(SPECS)


def slow_graph(reg: NodeRegistry, steps: int = 5, delay: float = 0.01, seed: int = 0) -> Graph:
    graph = Graph(reg)
    count = graph.add_node(
        "SlowCount", params={"steps": steps, "delay": delay, "seed": seed}, pos=(0, 0)
    ).id
    show = graph.add_node("ShowNumber", pos=(300, 0)).id
    graph.connect(count, "INT", show, "value")
    return graph
