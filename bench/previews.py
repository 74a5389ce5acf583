"""Preview benchmark: what live previews and the step history cost the sampler.

Builds a mid-size random UNet (SD-like blocks, 64/128/256 channels, cross-attention) and runs
the same CFG sampling at 32×32 latents three ways, alternating in one process: with no
callback; with the KSampler's callback (x̂₀ through the latent→RGB projection, x_t and x̂₀
appended to a ``StepHistory``, a ``StepPreview`` made); and with that callback plus the
editor's conversion of every preview to a ``QImage`` (an upper bound: the editor converts at
most 8 a second). Reports the median seconds per step of each and the overheads in %, and,
because a loaded machine's run-to-run noise is far larger than 2 %, also the time measured
inside the callback as a share of the step time (precise whatever the load). Prints one JSON
object; the target is ≤ 2 % for the KSampler's callback.

    python bench/previews.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.diffusion import offline  # noqa: F401  (before diffusers/transformers)

# isort: split
import torch

from core.diffusion.conditioning import Conditioning, ConditioningEntry
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.models import DiffusionModel
from core.diffusion.previews import SD1_LATENT_RGB, StepHistory, StepPreview
from core.diffusion.sampling import SamplerSettings, SamplerStep, sample

#: The budget: previews and history may slow sampling by at most this much.
TARGET_OVERHEAD_PERCENT = 2.0
CONTEXT_DIM = 256


def build_model() -> DiffusionModel:
    """A random SD-like UNet small enough that one CFG step takes tens of milliseconds."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(64, 128, 256),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=CONTEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    ).eval()
    return DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON, {})


def ksampler_callback(steps: int, sink: list[object], spent: list[float], to_qimage: bool = False):
    """The callback ``nodes.sampling`` gives the sampler (the engine's ``ctx.preview`` reduced
    to keeping the payload); ``to_qimage`` adds the editor's conversion of every preview.
    Each call's own seconds go to ``spent``."""
    projection = SD1_LATENT_RGB
    history = StepHistory(steps, 8, projection)
    convert = None
    if to_qimage:
        from nodeui.images import preview_to_qimage

        convert = preview_to_qimage

    def report(step: SamplerStep) -> None:
        start = time.perf_counter()
        history.append(step.step, step.latent, step.denoised)
        preview = StepPreview(step.step, steps, projection.project(step.denoised))
        sink.append(convert(preview) if convert is not None else preview)
        spent.append(time.perf_counter() - start)

    return report, history


def run(quick: bool) -> dict[str, object]:
    steps, repeats = (4, 3) if quick else (10, 7)
    model = build_model()
    embeds = torch.randn(1, 77, CONTEXT_DIM, generator=torch.Generator().manual_seed(1))
    positive = Conditioning((ConditioningEntry(embeds),))
    negative = Conditioning((ConditioningEntry(torch.zeros_like(embeds)),))
    settings = SamplerSettings("euler", "normal", steps, 7.0, 0)
    latent = torch.zeros(1, 4, 32, 32)

    inside: dict[str, list[float]] = {"ksampler": [], "qimage": []}

    def timed(mode: str) -> float:
        sink: list[object] = []
        callback = None
        if mode != "none":
            callback, _ = ksampler_callback(steps, sink, inside[mode], mode == "qimage")
        start = time.perf_counter()
        sample(model, positive, negative, latent, settings, callback=callback)
        seconds = (time.perf_counter() - start) / steps
        if mode != "none" and len(sink) != steps:
            raise RuntimeError(f"the callback heard {len(sink)} of {steps} steps")
        return seconds

    modes = ("none", "ksampler", "qimage")
    for mode in modes:  # warm-up: first-call allocations, lazy imports
        timed(mode)
    for spent in inside.values():
        spent.clear()
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for repeat in range(repeats):
        order = modes if repeat % 2 == 0 else tuple(reversed(modes))
        for mode in order:
            times[mode].append(timed(mode))
    median = {mode: statistics.median(values) for mode, values in times.items()}

    def overhead(mode: str) -> float:
        return round(100.0 * (median[mode] - median["none"]) / median["none"], 2)

    def share(mode: str) -> float:
        return round(100.0 * statistics.median(inside[mode]) / median["none"], 3)

    ksampler = overhead("ksampler")
    measured = share("ksampler")
    return {
        "threads": torch.get_num_threads(),
        "latent": [1, 4, 32, 32],
        "steps": steps,
        "repeats": repeats,
        "cfg": 7.0,
        "unet_parameters_m": round(sum(p.numel() for p in model.unet.parameters()) / 1e6, 1),
        "median_s_per_step": {mode: round(value, 5) for mode, value in median.items()},
        "all_s_per_step": {mode: [round(v, 5) for v in values] for mode, values in times.items()},
        "median_callback_s": {m: round(statistics.median(v), 6) for m, v in inside.items()},
        "overhead_percent": {"ksampler_callback": ksampler, "with_qimage": overhead("qimage")},
        "callback_share_of_step_percent": {
            "ksampler_callback": measured,
            "with_qimage": share("qimage"),
        },
        "targets": {"overhead_percent_max": TARGET_OVERHEAD_PERCENT},
        "pass": {
            "ab_median_overhead": ksampler <= TARGET_OVERHEAD_PERCENT,
            "callback_share": measured <= TARGET_OVERHEAD_PERCENT,
        },
        "note": "shared 2-core CPU under other load: runs alternate, medians reported",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 steps, 3 repeats")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
