"""The Compile Model node: a MODEL whose UNet runs through ``torch.compile``."""

from __future__ import annotations

from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

BACKENDS = ("inductor",)


def _compile_model(ctx: Any, model: Any, backend: str, background: bool) -> Any:
    from dataclasses import replace

    from core.diffusion.compiled import CompiledUnet, CompileSettings
    from core.engine import NodeError

    try:
        settings = CompileSettings(backend, bool(background))
    except ValueError as exc:
        raise NodeError(str(exc), field="backend") from None
    base = model.unet.unet if isinstance(model.unet, CompiledUnet) else model.unet
    return replace(model, unet=CompiledUnet(base, settings))


SPECS = (
    NodeSpec(
        "CompileModel",
        "Compile Model",
        "advanced/model",
        _compile_model,
        inputs=(
            SocketInput("model", t.MODEL),
            WidgetInput(
                "backend",
                t.COMBO,
                "inductor",
                choices=BACKENDS,
                description="torch.compile's backend (inductor: C++/OpenMP code on CPUs, "
                "Triton on GPUs; needs a C++ compiler)",
            ),
            WidgetInput(
                "background",
                t.BOOLEAN,
                True,
                description="compile in a background thread while the sampler goes on "
                "without it (off: the first step of each picture size waits for it)",
            ),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="Runs the UNet through torch.compile. On a CPU compiling takes minutes "
        "per picture size and batch, in every new process (torch does not cache frozen graphs "
        "across processes), so it pays only for long batches and sweeps (see "
        "docs/performance.md). The loaded model is shared, not changed.",
    ),
)
