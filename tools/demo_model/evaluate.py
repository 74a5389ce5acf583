"""Evaluate the demo model on held-out prompts, by measurement, and draw the sample grid.

    python -m tools.demo_model.evaluate [--model resources/models/checkpoints/latentloom-shapes]

Every prompt names a (shape, colour, position) combination that no training scene contains
(``scenes.held_out_triples``), on varied backgrounds and in both sizes. Each image is generated
with the default workflow's settings (20 DDIM steps, classifier-free guidance 5) and judged by
``tools.demo_model.judge``; the accuracy per attribute is printed and saved as
``evaluation.json`` beside the model, and a grid of samples with their prompts as
``samples.png``.

Generation goes through ``generate`` only, a thin wrapper over a diffusers pipeline, so it can be
switched to LatentLoom's own executor once that exists.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from PIL import Image, ImageDraw, ImageFont
from transformers import CLIPTextModel

from tools.demo_model import components
from tools.demo_model.judge import ATTRIBUTES, accuracy, judge
from tools.demo_model.scenes import IMAGE_SIZE, Scene, canonical_caption, evaluation_scenes

DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 5.0
DEFAULT_SEED = 0
TARGETS: dict[str, float] = {"background": 0.95, "colour": 0.95, "position": 0.90, "shape": 0.85}


def load_pipeline(model: Path = components.MODEL_DIR) -> StableDiffusionPipeline:
    """The exported folder as a float32 Stable Diffusion pipeline, from local files only, with
    the project's CLIP tokenizer (the folder deliberately carries none)."""
    components.offline()
    options = {"local_files_only": True, "torch_dtype": torch.float32}
    pipeline = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(model / "vae", **options),
        text_encoder=CLIPTextModel.from_pretrained(model / "text_encoder", **options),
        tokenizer=components.load_tokenizer(),
        unet=UNet2DConditionModel.from_pretrained(model / "unet", **options),
        scheduler=DDIMScheduler.from_pretrained(model / "scheduler", local_files_only=True),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@torch.no_grad()
def generate(
    pipeline: StableDiffusionPipeline,
    prompts: Sequence[str],
    seed: int = DEFAULT_SEED,
    steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE,
    batch_size: int = 32,
) -> np.ndarray:
    """Images for ``prompts`` as uint8 ``[N, 64, 64, 3]``; prompt i always uses seed + i, so an
    image does not depend on which other prompts share its batch."""
    images = []
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start : start + batch_size])
        generators = [torch.Generator().manual_seed(seed + start + i) for i in range(len(batch))]
        result = pipeline(
            batch,
            height=IMAGE_SIZE,
            width=IMAGE_SIZE,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
            output_type="np",
        )
        images.append((np.clip(result.images, 0, 1) * 255).round().astype(np.uint8))
    return np.concatenate(images)


def evaluate(
    pipeline: StableDiffusionPipeline,
    scenes: Sequence[Scene],
    seed: int = DEFAULT_SEED,
    steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE,
) -> tuple[dict[str, float], list[str], np.ndarray, list[dict[str, bool]]]:
    """Generate each single-object scene's canonical prompt and judge it; returns the accuracy
    per attribute, the prompts, the images and the per-image results."""
    prompts = [canonical_caption(scene) for scene in scenes]
    images = generate(pipeline, prompts, seed=seed, steps=steps, guidance=guidance)
    totals, results = accuracy(scenes, images)
    return totals, prompts, images, results


def sample_grid(
    images: np.ndarray,
    prompts: Sequence[str],
    results: Sequence[dict[str, bool]],
    columns: int = 6,
    zoom: int = 2,
) -> Image.Image:
    """Images with their prompts underneath; attributes the judge found wrong are listed in red."""
    font = ImageFont.load_default()
    cell_w, text_h = IMAGE_SIZE * zoom, 44
    rows = (len(images) + columns - 1) // columns
    grid = Image.new("RGB", (columns * (cell_w + 6) + 6, rows * (cell_w + text_h + 6) + 6), "white")
    draw = ImageDraw.Draw(grid)
    for index, (image, prompt, result) in enumerate(zip(images, prompts, results, strict=True)):
        x = 6 + (index % columns) * (cell_w + 6)
        y = 6 + (index // columns) * (cell_w + text_h + 6)
        tile = Image.fromarray(image).resize((cell_w, cell_w), Image.Resampling.NEAREST)
        grid.paste(tile, (x, y))
        lines = textwrap.wrap(prompt, width=21)[:3]
        draw.multiline_text((x, y + cell_w + 1), "\n".join(lines), fill="black", font=font)
        wrong = [name for name in ATTRIBUTES if not result[name]]
        if wrong:
            draw.text((x + 1, y + 1), "wrong: " + ", ".join(wrong), fill="red", font=font)
    return grid


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=components.MODEL_DIR)
    parser.add_argument("--per-triple", type=int, default=10)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    pipeline = load_pipeline(args.model)
    scenes = evaluation_scenes(per_triple=args.per_triple)
    started = time.time()
    totals, prompts, images, results = evaluate(
        pipeline, scenes, seed=args.seed, steps=args.steps, guidance=args.guidance
    )
    seconds = time.time() - started
    for name in ATTRIBUTES:
        verdict = "meets" if totals[name] >= TARGETS[name] else "BELOW"
        print(f"{name:10s} {totals[name]:6.1%}  (target {TARGETS[name]:.0%}: {verdict})")
    print(f"{len(scenes)} held-out prompts in {seconds:.1f} s")

    # One sample per held-out combination for the grid, alternating sizes.
    per = args.per_triple
    picks = [i * per + (i % min(per, 2)) for i in range(len(scenes) // per)][:24]
    grid = sample_grid(images[picks], [prompts[i] for i in picks], [results[i] for i in picks])
    grid.save(args.model / "samples.png", optimize=True)

    failures = [
        {"prompt": prompt, "wrong": [k for k, ok in result.items() if not ok], "measured": vars(j)}
        for prompt, result, image in zip(prompts, results, images, strict=True)
        if not all(result.values())
        for j in [judge(image)]
    ]
    report = {
        "prompts": len(scenes),
        "settings": {
            "sampler": "DDIM",
            "steps": args.steps,
            "guidance": args.guidance,
            "seed": args.seed,
        },
        "accuracy": {k: round(v, 4) for k, v in totals.items()},
        "targets": TARGETS,
        "seconds": round(seconds, 1),
        "failures": failures,
    }
    (args.model / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
