"""One measured run of a text-to-image workflow, in its own process, printed as JSON.

``latentloom``: the app's real path — a graph (Load Checkpoint → two CLIP Text Encodes →
Empty Latent Image → KSampler → VAE Decode) run by the executor, the checkpoint resolved from a
model folder. ``diffusers``: ``StableDiffusionPipeline.from_single_file`` on the same file, with
the config folder written beside it (offline), then the same prompt, steps, CFG and size.
Times come from inside the process; the peak RSS is the process's own (``ru_maxrss``).

``--device cuda`` runs both on the GPU (LatentLoom's executor with ``device="cuda"``, the
diffusers pipeline moved there with ``.to("cuda")``), waits for the GPU
(``torch.cuda.synchronize``) before every time stamp, so queued kernels are counted where they
run, and adds the peak VRAM (``torch.cuda.max_memory_allocated``).

    python bench/sampling_worker.py SYSTEM CHECKPOINT --dtype bfloat16 --size 512 --steps 4
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "a photograph of an astronaut riding a horse"
CFG, SEED = 7.0, 0


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _clock(device: str) -> Callable[[], float]:
    """``time.perf_counter`` that first waits for the work queued on ``device`` to finish."""
    if device == "cpu":
        return time.perf_counter
    import torch

    def synchronised() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()

    return synchronised


def _peak_vram_mib() -> float:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def _steps(stamps: list[float]) -> dict[str, float]:
    """The mean time of the steps after the first (which pays one-off costs)."""
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    return {
        "per_step_s": round(sum(intervals) / max(len(intervals), 1), 3),
        "steps_s": [round(interval, 2) for interval in intervals],  # to see a trend
    }


def run_latentloom(
    checkpoint: Path,
    dtype: str,
    size: int,
    steps: int,
    aux_dtype: str,
    feature_cache: str,
    device: str = "cpu",
) -> dict[str, object]:
    # The loader node imports these itself; importing them first keeps load_s comparable with
    # diffusers' (whose import_s holds the same libraries).
    import core.diffusion.loading
    import core.diffusion.sampling  # noqa: F401
    from core.diffusion.model_paths import ModelPaths
    from core.engine import Executor, events
    from core.graph.model import Graph
    from nodes import build_registry

    imported = time.perf_counter()
    root = ROOT / "tmp" / "cache" / "bench" / f"models_{checkpoint.stem}"
    link = root / "checkpoints" / checkpoint.name
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(checkpoint)
    registry = build_registry(ModelPaths.of(root))
    graph = Graph(registry)
    params = {"ckpt_name": checkpoint.name, "dtype": dtype, "vae_clip_dtype": aux_dtype}
    load = graph.add_node("LoadCheckpoint", params=params).id
    positive = graph.add_node("CLIPTextEncode", params={"text": PROMPT}).id
    negative = graph.add_node("CLIPTextEncode", params={"text": ""}).id
    latent = graph.add_node("EmptyLatentImage", params={"width": size, "height": size}).id
    sampler_params = {"seed": SEED, "steps": steps, "cfg": CFG, "sampler_name": "euler"}
    sampler = graph.add_node("KSampler", params=sampler_params).id
    decode = graph.add_node("VAEDecode").id
    model_out = load
    if feature_cache:
        interval, depth = (int(v) for v in feature_cache.split(","))
        cache_params = {"cache_interval": interval, "cache_depth": depth}
        model_out = graph.add_node("FeatureCache", params=cache_params).id
        graph.connect(load, "MODEL", model_out, "model")
    graph.connect(load, "CLIP", positive, "clip")
    graph.connect(load, "CLIP", negative, "clip")
    graph.connect(model_out, "MODEL", sampler, "model")
    graph.connect(positive, "CONDITIONING", sampler, "positive")
    graph.connect(negative, "CONDITIONING", sampler, "negative")
    graph.connect(latent, "LATENT", sampler, "latent_image")
    graph.connect(sampler, "LATENT", decode, "samples")
    graph.connect(load, "VAE", decode, "vae")
    clock = _clock(device)
    started: dict[int, float] = {}
    seconds: dict[int, float] = {}
    stamps: list[float] = []

    def record(event: object) -> None:
        # Events come from the running thread between nodes and steps, so a stamp taken here
        # (after the device has caught up) bounds exactly one node's or one step's work.
        if isinstance(event, events.NodeStarted):
            started[event.node_id] = clock()
        elif isinstance(event, events.NodeFinished):
            ran = not event.cached
            seconds[event.node_id] = clock() - started[event.node_id] if ran else 0.0
        elif isinstance(event, events.Progress) and event.node_id == sampler:
            stamps.append(clock())

    start = clock()
    report = Executor(registry).run(graph, [decode], on_event=record, device=device)
    finished = clock()
    [image] = report.outputs[decode]
    return {
        "import_s": round(imported - STARTED, 3),
        "load_s": round(seconds[load], 3),
        "encode_s": round(seconds[positive] + seconds[negative], 3),
        "sample_s": round(seconds[sampler], 3),
        **_steps(stamps),
        "decode_s": round(seconds[decode], 3),
        "run_s": round(finished - start, 3),
        "image_mean": round(float(image.float().mean()), 4),
    }


def run_diffusers(
    checkpoint: Path, dtype: str, size: int, steps: int, device: str = "cpu"
) -> dict[str, object]:
    from core.diffusion import offline  # noqa: F401  (before diffusers/transformers)

    # isort: split
    import torch
    from diffusers import StableDiffusionPipeline

    clock = _clock(device)
    imported = time.perf_counter()
    start = clock()
    pipe = StableDiffusionPipeline.from_single_file(
        str(checkpoint),
        config=str(checkpoint.with_suffix(".diffusers")),
        local_files_only=True,
        torch_dtype=getattr(torch, dtype),
        safety_checker=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    if device != "cpu":
        pipe.to(device)  # part of loading: LatentLoom's load and first use move weights too
    loaded = clock()
    with torch.inference_mode():
        positive, negative = pipe.encode_prompt(PROMPT, device, 1, True, negative_prompt="")
        encoded = clock()
        stamps: list[float] = []

        def stamp(pipeline: object, step: int, timestep: object, kwargs: dict) -> dict:
            stamps.append(clock())
            return kwargs

        latents = pipe(
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
            num_inference_steps=steps,
            guidance_scale=CFG,
            height=size,
            width=size,
            generator=torch.Generator().manual_seed(SEED),
            output_type="latent",
            callback_on_step_end=stamp,
        ).images
        sampled = clock()
        image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
        decoded = clock()
    return {
        "import_s": round(imported - STARTED, 3),
        "load_s": round(loaded - start, 3),
        "encode_s": round(encoded - loaded, 3),
        "sample_s": round(sampled - encoded, 3),
        **_steps(stamps),
        "decode_s": round(decoded - sampled, 3),
        "run_s": round(decoded - start, 3),
        "image_mean": round(float(image.float().mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=("latentloom", "diffusers"))
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--aux-dtype", default="auto", help="LatentLoom's VAE/text encoder dtype")
    parser.add_argument("--feature-cache", default="", help="LatentLoom: 'interval,depth'")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    if args.device == "cuda":
        from bench.sampling import cuda_problem

        if (problem := cuda_problem()) is not None:
            parser.exit(2, f"{parser.prog}: {problem}\n")
    if args.system == "latentloom":
        result = run_latentloom(
            args.checkpoint,
            args.dtype,
            args.size,
            args.steps,
            args.aux_dtype,
            args.feature_cache,
            args.device,
        )
    else:
        result = run_diffusers(args.checkpoint, args.dtype, args.size, args.steps, args.device)
    result["peak_rss_mib"] = _peak_rss_mib()
    if args.device != "cpu":
        result["peak_vram_mib"] = _peak_vram_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
