"""How close bfloat16 VAE decodes and text encodings come to float32, and what they save.

``demo``: the default workflow on the shipped demo model through the executor, with the VAE and
text encoder in float32 against bfloat16 (the UNet in bfloat16 in both), for several seeds:
PSNR of the whole run's picture and of the decode alone from the same latent. ``full``: the
VAE and text encoder of the full-size random SD 1.5 checkpoint (``bench/sd15_checkpoint.py``):
PSNR of a 512² decode of a unit-variance latent, relative error of the prompt embeddings, and
decode seconds in both precisions, alternating. Random weights make these PSNRs pessimistic:
nothing in a random decoder keeps its activations in the range a trained one learns.

    python bench/half_precision.py [--part demo|full|both] [--seeds 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
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


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in 0..1."""
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def demo(seeds: int) -> dict[str, object]:
    from core.diffusion.vae_ops import decode
    from core.engine import Executor
    from core.graph.workflow import load_workflow
    from nodes import build_registry

    registry = build_registry()
    whole, decode_only = [], []
    for seed in range(seeds):
        runs = {}
        for aux in ("float32", "bfloat16"):
            graph = load_workflow(DEFAULT, registry).graph
            ids = {node.type_id: node.id for node in graph}
            graph.set_param(ids["LoadCheckpoint"], "dtype", "bfloat16")
            graph.set_param(ids["LoadCheckpoint"], "vae_clip_dtype", aux)
            graph.set_param(ids["KSampler"], "seed", seed)
            wanted = [ids["LoadCheckpoint"], ids["KSampler"], ids["VAEDecode"]]
            runs[aux] = Executor(registry).run(graph, wanted, device="cpu").outputs
        image32 = runs["float32"][ids["VAEDecode"]][0]
        image16 = runs["bfloat16"][ids["VAEDecode"]][0]
        whole.append(psnr(image16, image32))
        latent = runs["float32"][ids["KSampler"]][0]["samples"]
        vae32, vae16 = (
            runs["float32"][ids["LoadCheckpoint"]][2],
            runs["bfloat16"][ids["LoadCheckpoint"]][2],
        )
        decode_only.append(psnr(decode(vae16, latent), decode(vae32, latent)))
    return {
        "seeds": seeds,
        "whole_run_psnr_db": {
            "min": round(min(whole), 2),
            "median": round(statistics.median(whole), 2),
        },
        "decode_psnr_db": {
            "min": round(min(decode_only), 2),
            "median": round(statistics.median(decode_only), 2),
        },
    }


def full(rounds: int, size: int) -> dict[str, object]:
    from bench.sd15_checkpoint import checkpoint_path
    from core.diffusion.loading import LoadOverrides, load_checkpoint
    from core.diffusion.text_encoding import encode_prompt
    from core.diffusion.vae_ops import decode

    path = checkpoint_path(quick=False)
    loaded = {
        name: load_checkpoint(
            path, LoadOverrides(dtype=torch.bfloat16, text_dtype=dtype, vae_dtype=dtype)
        )
        for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16))
    }
    latent = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    seconds: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    images = {}
    for number in range(rounds):
        order = ("float32", "bfloat16") if number % 2 == 0 else ("bfloat16", "float32")
        for name in order:
            start = time.perf_counter()
            images[name] = decode(loaded[name].vae, latent)
            seconds[name].append(time.perf_counter() - start)
    prompt = "a photograph of an astronaut riding a horse"
    embeds = {name: encode_prompt(loaded[name].clip, prompt)[0].embeds.float() for name in loaded}
    error = float((embeds["bfloat16"] - embeds["float32"]).norm() / embeds["float32"].norm())
    return {
        "size": size,
        "decode_psnr_db": round(psnr(images["bfloat16"], images["float32"]), 2),
        "decode_s": {
            name: {"min": round(min(v), 3), "median": round(statistics.median(v), 3)}
            for name, v in seconds.items()
        },
        "text_embedding_relative_error": round(error, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("demo", "full", "both"), default="both")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    results: dict[str, object] = {"loadavg_start": " ".join(loadavg)}
    if args.part in ("demo", "both"):
        results["demo"] = demo(args.seeds)
    if args.part in ("full", "both"):
        results["full_size_random"] = full(args.rounds, args.size)
    results["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
