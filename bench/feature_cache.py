"""Feature caching: speed and fidelity against the uncached run on the same noise.

``demo``: the default workflow on the shipped demo model through the executor, with and
without a Feature Cache node before the sampler: seconds of the KSampler node and PSNR of the
picture. ``full``: the full-size random SD 1.5 checkpoint (``bench/sd15_checkpoint.py``) in
bfloat16 at 512², Euler with CFG: seconds per step and the PSNR of the final latent (random
weights: the latent PSNR says only how far the sampled trajectories drift, not how a trained
model's pictures look). Runs alternate; min and median are printed.

    python bench/feature_cache.py [--part demo|full|both] [--interval 3] [--depth 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.diffusion import offline  # noqa: E402, F401  (before diffusers/transformers)

# isort: split
import torch  # noqa: E402

DEFAULT = ROOT / "resources" / "workflows" / "default.json"


def _psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}


def demo(interval: int, depth: int, rounds: int) -> dict[str, object]:
    from core.engine import Executor, events
    from core.graph.workflow import load_workflow
    from nodes import build_registry

    registry = build_registry()
    executor = Executor(registry)
    graphs = {}
    for name in ("plain", "cached"):
        graph = load_workflow(DEFAULT, registry).graph
        ids = {node.type_id: node.id for node in graph}
        if name == "cached":
            params = {"cache_interval": interval, "cache_depth": depth}
            node = graph.add_node("FeatureCache", params=params).id
            link = graph.disconnect(ids["KSampler"], "model")
            graph.connect(link.src, link.src_output, node, "model")
            graph.connect(node, "MODEL", ids["KSampler"], "model")
        graphs[name] = graph
    seconds: dict[str, list[float]] = {"plain": [], "cached": []}
    images = {}
    for number in range(rounds):
        for name in ("plain", "cached") if number % 2 == 0 else ("cached", "plain"):
            graph = graphs[name]
            graph.set_param(ids["KSampler"], "seed", 100 + number)  # a miss: the sampler runs
            found: list[float] = []

            def record(event: object, found: list[float] = found) -> None:
                if isinstance(event, events.NodeFinished) and event.node_id == ids["KSampler"]:
                    found.append(event.seconds)

            report = executor.run(graph, [ids["VAEDecode"]], on_event=record, device="cpu")
            seconds[name].append(found[0])
            images[name] = report.outputs[ids["VAEDecode"]][0]
    return {
        "sampler_s": {name: _stats(v) for name, v in seconds.items()},
        "speedup_min": round(min(seconds["plain"]) / min(seconds["cached"]), 2),
        "image_psnr_db_last_seed": round(_psnr(images["cached"], images["plain"]), 2),
    }


def full(interval: int, depth: int, rounds: int, steps: int, size: int) -> dict[str, object]:
    from bench.sd15_checkpoint import checkpoint_path
    from core.diffusion.feature_cache import FeatureCachedUnet, FeatureCacheSettings
    from core.diffusion.loading import LoadOverrides, load_checkpoint
    from core.diffusion.sampling import SamplerSettings, sample
    from core.diffusion.text_encoding import encode_prompt

    loaded = load_checkpoint(checkpoint_path(False), LoadOverrides(dtype=torch.bfloat16))
    cached_unet = FeatureCachedUnet(loaded.model.unet, FeatureCacheSettings(interval, depth))
    models = {
        "plain": loaded.model,
        "cached": dataclasses.replace(loaded.model, unet=cached_unet),
    }
    positive = encode_prompt(loaded.clip, "a photograph of an astronaut riding a horse")
    negative = encode_prompt(loaded.clip, "")
    latent = torch.zeros(1, 4, size // 8, size // 8)
    settings = SamplerSettings("euler", "normal", steps, 7.0, 0)
    seconds: dict[str, list[float]] = {"plain": [], "cached": []}
    outputs = {}
    for number in range(rounds):
        for name in ("plain", "cached") if number % 2 == 0 else ("cached", "plain"):
            start = time.perf_counter()
            outputs[name] = sample(models[name], positive, negative, latent, settings)
            seconds[name].append((time.perf_counter() - start) / steps)
    reference = outputs["plain"]
    peak = float(reference.max() - reference.min())
    return {
        "steps": steps,
        "size": size,
        "s_per_step": {name: _stats(v) for name, v in seconds.items()},
        "speedup_min": round(min(seconds["plain"]) / min(seconds["cached"]), 2),
        "latent_psnr_db": round(_psnr(outputs["cached"], reference, peak), 2),
        "full_and_cached_calls": [cached_unet.state.full_calls, cached_unet.state.cached_calls],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("demo", "full", "both"), default="both")
    parser.add_argument("--interval", type=int, default=3)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    results: dict[str, object] = {
        "interval": args.interval,
        "depth": args.depth,
        "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    if args.part in ("demo", "both"):
        results["demo"] = demo(args.interval, args.depth, args.rounds)
    if args.part in ("full", "both"):
        results["full_size_random"] = full(
            args.interval, args.depth, args.rounds, args.steps, args.size
        )
    results["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
