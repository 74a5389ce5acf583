"""Feature caching: speed and fidelity against the uncached run on the same noise.

``demo``: the default workflow on the shipped demo model through the executor, with and
without a Feature Cache node before the sampler: seconds of the KSampler node and PSNR of the
picture. ``full``: the full-size random SD 1.5 checkpoint (``bench/sd15_checkpoint.py``) in
bfloat16 at 512², Euler with CFG: seconds per step and the PSNR of the final latent (random
weights: the latent PSNR says only how far the sampled trajectories drift, not how a trained
model's pictures look). Runs alternate; min and median are printed. ``passes``: what one
cached pass costs relative to a full one, at every depth: timed on the demo model (8×8 latent,
batch 2 and 1, passes alternating) and counted in FLOPs on meta tensors for SD 1.5 at 512²
and for the demo model.

    python bench/feature_cache.py [--part demo|full|both|passes] [--interval 3] [--depth 3]
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


def _cached_pass(unet: torch.nn.Module, depth: int, x: torch.Tensor, context: torch.Tensor):
    """A function running one cached pass at ``depth``, with the deep feature of a full pass."""
    from core.diffusion.feature_cache import FeatureCachedUnet, FeatureCacheSettings

    cached = FeatureCachedUnet(unet, FeatureCacheSettings(2, depth))
    timestep = torch.tensor(500.0)
    handle = cached._hook.register_forward_hook(cached._keep)
    try:
        unet(x, timestep, encoder_hidden_states=context)
    finally:
        handle.remove()
    kept = cached.__dict__["_kept"]
    return lambda: cached._shallow(x, timestep, kept, encoder_hidden_states=context)


@torch.no_grad()
def pass_flops(unet: torch.nn.Module, size: int, batch: int = 2) -> dict[str, float]:
    """Work of a cached pass at each depth as a fraction of a full pass's (``unet`` may live on
    the meta device, so SD 1.5 at 512² is counted without its weights)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(unet.parameters()).device
    x = torch.randn(batch, unet.config.in_channels, size, size, device=device)
    context = torch.randn(batch, 77, unet.config.cross_attention_dim, device=device)
    with FlopCounterMode(display=False) as counter:
        unet(x, torch.tensor(500.0), encoder_hidden_states=context)
    full = counter.get_total_flops()
    found = {"full_gflop": round(full / 1e9, 2)}
    for depth in range(1, len(unet.down_blocks)):
        run = _cached_pass(unet, depth, x, context)
        with FlopCounterMode(display=False) as counter:
            run()
        found[f"depth_{depth}"] = round(counter.get_total_flops() / full, 3)
    return found


@torch.no_grad()
def pass_times(unet: torch.nn.Module, size: int, batch: int, repeats: int) -> dict[str, object]:
    """Seconds of a full pass and of a cached pass at each depth, alternating, after two
    warm-ups; and each cached pass's min and median relative to the full pass's."""
    dtype = next(unet.parameters()).dtype
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, unet.config.in_channels, size, size, generator=generator, dtype=dtype)
    context = torch.randn(batch, 77, unet.config.cross_attention_dim, generator=generator)
    context = context.to(dtype)
    runs = {"full": lambda: unet(x, torch.tensor(500.0), encoder_hidden_states=context)}
    for depth in range(1, len(unet.down_blocks)):
        runs[f"depth_{depth}"] = _cached_pass(unet, depth, x, context)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for number in range(repeats + 2):
        order = list(runs) if number % 2 == 0 else list(reversed(runs))
        for name in order:
            start = time.perf_counter()
            runs[name]()
            if number >= 2:
                seconds[name].append(time.perf_counter() - start)
    full = seconds["full"]
    return {
        "s": {name: _stats(values) for name, values in seconds.items()},
        "relative": {
            name: {
                "min": round(min(values) / min(full), 3),
                "median": round(statistics.median(values) / statistics.median(full), 3),
            }
            for name, values in seconds.items()
            if name != "full"
        },
    }


def passes(repeats: int) -> dict[str, object]:
    from diffusers import UNet2DConditionModel

    from core.diffusion.loading import load_checkpoint
    from core.diffusion.resources import load_component_config
    from tools.demo_model import components

    unet = load_checkpoint(components.MODEL_DIR).model.unet
    with torch.device("meta"):
        sd15 = UNet2DConditionModel.from_config(load_component_config("sd15", "unet"))
    return {
        "demo_timed_batch_2": pass_times(unet, 8, 2, repeats),
        "demo_timed_batch_1": pass_times(unet, 8, 1, repeats),
        "demo_flops": pass_flops(unet, 8),
        "sd15_512_flops": pass_flops(sd15, 64),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("demo", "full", "both", "passes"), default="both")
    parser.add_argument("--interval", type=int, default=3)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=200, help="timed passes (--part passes)")
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
    if args.part == "passes":
        torch.set_num_threads(1)  # as sampler runs use for latents this small
        results["passes"] = passes(args.repeats)
    results["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
