"""Sampler benchmark: LatentLoom's loop against diffusers' StableDiffusionPipeline.

Builds a random UNet and VAE at the full SD 1.5 configuration (shipped in ``resources``; the
UNet has ~860 M parameters), then times seconds per step with CFG at batch 1 for both, measured
alternately in the same run, in float32 and bfloat16, plus a VAE decode and the peak RSS.
Prints one JSON object. Timings on a shared machine are noisy: compare the ratios.

    python bench/sampling.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.diffusion import offline  # noqa: F401  (before diffusers/transformers)

# isort: split
import torch

from core.diffusion.conditioning import Conditioning, ConditioningEntry
from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.models import DiffusionModel, VaeModel
from core.diffusion.resources import CLIP_TOKENIZER, load_component_config
from core.diffusion.sampling import SamplerSettings, sample, seeded_noise
from core.diffusion.schedulers import make_scheduler
from core.diffusion.vae_ops import decode


def _build(dtype: torch.dtype) -> tuple[object, object]:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(load_component_config("sd15", "unet"))
    vae = AutoencoderKL.from_config(load_component_config("sd15", "vae"))
    return unet.to(dtype).eval(), vae.to(dtype).eval()


def _pipeline(unet: object, vae: object, sampler: str, dtype: torch.dtype) -> object:
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # The prompt embeddings are given, so the text encoder only has to exist.
    encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1
        )
    ).to(dtype)  # the pipeline casts the given embeddings to its dtype
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=encoder,
        tokenizer=CLIPTokenizer.from_pretrained(str(CLIP_TOKENIZER)),
        unet=unet,
        scheduler=make_scheduler(sampler, "normal", {})[1],
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _time(fn, steps: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / steps


def _measure(
    dtype: torch.dtype, sizes: list[int], steps: int, repeats: int, sampler: str
) -> dict[str, object]:
    """Seconds per step for both loops at each size, alternating, and one VAE decode."""
    name = str(dtype).removeprefix("torch.")
    unet, vae = _build(dtype)
    model = DiffusionModel(unet, ModelFamily.SD1, PredictionType.EPSILON, {})
    pipe = _pipeline(unet, vae, sampler, dtype)
    embeds = torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1))
    positive = Conditioning((ConditioningEntry(embeds),))
    negative = Conditioning((ConditioningEntry(torch.zeros_like(embeds)),))
    results: dict[str, object] = {}
    for size in sizes:
        shape = (1, 4, size // 8, size // 8)
        settings = SamplerSettings(sampler, "normal", steps, 7.0, 0)

        def ours(shape: tuple[int, ...] = shape, settings: SamplerSettings = settings) -> None:
            sample(model, positive, negative, torch.zeros(shape), settings)

        def theirs(shape: tuple[int, ...] = shape) -> None:
            with torch.inference_mode():
                pipe(
                    prompt_embeds=embeds.to(dtype),
                    negative_prompt_embeds=torch.zeros_like(embeds).to(dtype),
                    latents=seeded_noise(0, shape).to(dtype),
                    num_inference_steps=steps,
                    guidance_scale=7.0,
                    output_type="latent",
                )

        # Alternate which loop goes first: the first call at a new shape pays one-off costs
        # (oneDNN primitive creation, allocator growth) that must not land on one side only.
        ours_times, theirs_times = [], []
        for repeat in range(repeats):
            if repeat % 2 == 0:
                ours_times.append(_time(ours, steps))
                theirs_times.append(_time(theirs, steps))
            else:
                theirs_times.append(_time(theirs, steps))
                ours_times.append(_time(ours, steps))
        best_ours, best_theirs = min(ours_times), min(theirs_times)
        results[f"{name}_{size}"] = {
            "latentloom_s_per_step": round(best_ours, 3),
            "diffusers_s_per_step": round(best_theirs, 3),
            "ratio": round(best_ours / best_theirs, 3),
        }
    size = sizes[-1]
    start = time.perf_counter()
    decode(VaeModel(vae, 0.18215), torch.randn(1, 4, size // 8, size // 8))
    results[f"{name}_vae_decode_{size}_s"] = round(time.perf_counter() - start, 3)
    return results


def run(quick: bool) -> dict[str, object]:
    sizes = [256] if quick else [256, 512]
    steps, repeats, sampler = (2, 2, "euler") if quick else (3, 2, "euler")
    results: dict[str, object] = {
        "threads": torch.get_num_threads(),
        "steps_per_measure": steps,
        "sampler": sampler,
        "note": "shared 2-core CPU under other load: compare ratios, not absolutes",
    }
    for dtype in (torch.float32, torch.bfloat16):
        results.update(_measure(dtype, sizes, steps, repeats, sampler))
    for size in sizes:
        fp32, bf16 = results[f"float32_{size}"], results[f"bfloat16_{size}"]
        results[f"bf16_speedup_{size}"] = round(
            fp32["latentloom_s_per_step"] / bf16["latentloom_s_per_step"],  # type: ignore[index]
            2,
        )
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256² only, fewer steps")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
