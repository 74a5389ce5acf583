"""Demo-model training benchmark: seconds per UNet + text-encoder training step.

Runs ``tools.demo_model.train.unet.train_unet`` (the shipped recipe's loop: bf16 autocast,
anchored text encoder, EMA) for a few steps at the full batch of 64 on random latents, once with
the attention kernels that ``unet.training_attention`` picks and once with torch's own choice
(the CPU flash kernel, the baseline), alternately in the same run; then once in float32, so the
output also says which precision is the faster on this CPU and whether ``--precision auto``
(``options.precision_for``) picked it: bf16 only pays where the CPU computes it natively
(AVX512-BF16 / AMX; measured 2026-12-03 on an AVX2-only AMD EPYC: 25 s a bf16 step against 2 s
in float32).
Prints one JSON object. Timings on a shared machine are noisy: compare the ratio, and the best
of the rounds.

    python bench/demo_model_training.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from tools.demo_model import components
from tools.demo_model.scenes import training_scenes
from tools.demo_model.train import unet
from tools.demo_model.train.config import LossLog, TrainConfig
from tools.demo_model.train.options import precision_for


class _StepClock(LossLog):
    """A loss log that keeps the time each step ended instead of printing it."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[float] = []

    def add(self, *args, **kwargs) -> None:
        self.ends.append(time.perf_counter())


def seconds_per_step(
    attention, steps: int, scenes, latents: torch.Tensor, bf16: bool = True
) -> float:
    """Mean seconds of ``steps`` training steps with ``attention`` in place of
    ``unet.training_attention``, after one untimed warm-up step."""
    config = TrainConfig(unet_steps=steps + 1, log_every=1, bf16=bf16)
    clock = _StepClock()
    chosen, unet.training_attention = unet.training_attention, attention
    try:
        unet.train_unet(
            latents, latents.abs() * 0.1, torch.ones(len(latents), 1, *latents.shape[-2:]), 1.0,
            scenes, config, clock, lambda *_: None, None,
        )  # fmt: skip
    finally:
        unet.training_attention = chosen
    return (clock.ends[-1] - clock.ends[0]) / steps


def run(quick: bool) -> dict[str, object]:
    components.offline()
    torch.set_num_threads(2)
    steps, rounds = (3, 1) if quick else (8, 2)
    scenes = training_scenes(256, seed=0)
    latents = torch.randn(len(scenes), 4, 16, 16, generator=torch.Generator().manual_seed(0))
    timings: dict[str, list[float]] = {"chosen": [], "torch_default": [], "float32": []}
    for _ in range(rounds):
        for name, attention in (
            ("torch_default", lambda bf16: contextlib.nullcontext()),
            ("chosen", unet.training_attention),
        ):
            timings[name].append(seconds_per_step(attention, steps, scenes, latents))
    # float32 uses torch's own kernels (training_attention leaves them alone there); once is
    # enough to tell a tenfold difference from a close one.
    fp32 = seconds_per_step(unet.training_attention, steps, scenes, latents, bf16=False)
    timings["float32"].append(fp32)
    best = {name: min(values) for name, values in timings.items()}
    auto_bf16 = precision_for("auto")
    return {
        "batch": TrainConfig.unet_batch,
        "steps_timed": steps,
        "threads": torch.get_num_threads(),
        "seconds_per_step": {
            name: [round(v, 3) for v in values] for name, values in timings.items()
        },
        "best": {name: round(v, 3) for name, v in best.items()},
        "speed_up_over_torch_default": round(best["torch_default"] / best["chosen"], 2),
        "bf16_speed_up_over_float32": round(best["float32"] / best["chosen"], 2),
        "precision_auto_picks": "bf16" if auto_bf16 else "fp32",
        "precision_auto_picks_the_faster": auto_bf16 == (best["chosen"] < best["float32"]),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 steps, one round")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
