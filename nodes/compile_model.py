"""The Compile Model node: a MODEL whose UNet runs through ``torch.compile``."""

from __future__ import annotations

from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

BACKENDS = ("inductor",)


def _compile_model(
    ctx: Any, model: Any, backend: str, background: bool, freeze_weights: bool = False
) -> Any:
    from dataclasses import replace

    from core.diffusion.compiled import CompiledUnet, CompileSettings
    from core.engine import NodeError

    try:
        settings = CompileSettings(backend, bool(background), bool(freeze_weights))
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
            WidgetInput(
                "freeze_weights",
                t.BOOLEAN,
                False,
                description="fold the weights into the compiled code: faster steps (1.9× "
                "eager on the demo model, against 1.4×), but compiled again in every new "
                "process; off, a compiled shape is cached on disk for later runs",
            ),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="Runs the UNet through torch.compile for faster steps. The first run "
        "of each picture size and batch compiles (a minute or more on a CPU, in the "
        "background by default); the result is cached on disk, so a later session gets it "
        "in a fraction of that (demo model: 71 s, then 7 s), unless freeze_weights is on. "
        "On a CPU large models gain little: SD 1.5's steps were 6 % faster frozen and no "
        "faster unfrozen (docs/performance.md). The loaded model is shared, not changed.",
    ),
)
