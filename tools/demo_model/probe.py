"""How much does each word of the prompt move the demo model? A quick check of a model folder or a
training checkpoint, seconds instead of the evaluation's minutes.

    python -m tools.demo_model.probe [--model resources/models/checkpoints/latentloom-shapes]

For pairs of prompts that differ in one attribute ("... on the left ..." / "... on the right ..."),
it prints how far apart the text encoder puts them (norm of the difference of the final hidden
states, 77 × 128) and how far apart the UNet's classifier-free-guided estimate of the clean latent
is after one step from the same noise (norm over 4 × 16 × 16) at a few noise levels. An attribute
the model follows moves both; in the first models (2026-11-22) colour moved them 15-70 times more
than position, which was not learned. The input embeddings of the pair's distinguishing words are
compared too: a word that training never used stays near its random initial embedding, as "zebra" /
"piano" do. Beside them stands the autoencoder's own latent distance between the two prompts'
scenes, drawn exactly (zero offset): how far apart the clean latents really are, so ``x0_share``
(the estimate's distance at the last noise level over it) says how much of the real difference the
UNet draws. Measured 2026-12-04 on the model of 2026-12-03: colour, size, position and background
1.8-2.7, shape 1.1; and a small circle and square lie only 1.65 apart, a third of the big ones' 5.0
and a tenth of red / green's 15.7 (the reason for the shape codes).

It also noises real scenes whose object sits on one side and prompts for the opposite side, and
measures how far the centroid of the one-step estimate moves toward the object in the image
(positive: the model reads the place from x_t) or toward the prompt's place (negative). This
shows down to which noise level the image itself tells the model where the object is, so above
which level alone the prompt's position word can matter in training. The same measurement with an
empty prompt shows how much of the place x_t alone gives away at each level.

Last, ``shape_kept_from_noise`` noises held-out scenes to a few levels and lets the model
finish them with their own prompts by DDIM (20 steps, CFG 5; the default workflow's sampler
until 2026-12-06, when it moved to Euler on the Karras schedule), judging the shape of what
comes out. Where a trained denoiser keeps the drawn shape, from low noise at least, it tells how
much of the shortfall is the low-noise denoising itself rather than the prompt (measured
2026-12-03: from t = 200 the model of that day rounded 42 % of the squares).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel

from tools.demo_model import components
from tools.demo_model.judge import judge
from tools.demo_model.scenes import (
    COLOURS,
    SHAPES,
    Scene,
    SceneObject,
    all_single_object_scenes,
    canonical_caption,
    evaluation_scenes,
    render_batch,
)
from tools.demo_model.train.data import TokenCache, to_model_range
from tools.demo_model.train.shape_codes import read_shape_codes, shape_code_maps, with_shape_codes

BASE_PROMPT = "a big red circle on the left, blue background"
# attribute -> (the base prompt's word, the other prompt's word, the other prompt)
CONTRASTS: dict[str, tuple[str, str, str]] = {
    "position": ("left", "right", "a big red circle on the right, blue background"),
    "colour": ("red", "green", "a big green circle on the left, blue background"),
    "shape": ("circle", "square", "a big red square on the left, blue background"),
    "size": ("big", "small", "a small red circle on the left, blue background"),
    "background": ("blue", "white", "a big red circle on the left, white background"),
}
UNUSED_WORDS = ("zebra", "piano")
TIMESTEPS = (951, 801, 651)
GUIDANCE = 5.0
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
SHIFT_TIMESTEPS = (999, 951, 901, 851, 751, 651)
# Noise levels ``shape_kept_from_noise`` starts from; each runs the 20-step schedule's remaining
# steps from the first timestep at or below it.
KEEP_FROM = (51, 101, 201, 301, 501, 701)
SAMPLER_STEPS = 20


@torch.no_grad()
def probe(model: Path, seed: int = 0) -> dict:
    """Distances between the model's responses to prompts that differ in one attribute."""
    unet, text_encoder, tokens = _load(Path(model))
    alphas_cumprod = components.new_scheduler().alphas_cumprod

    prompts = [BASE_PROMPT, *(other for _, _, other in CONTRASTS.values()), ""]
    context = text_encoder(tokens(prompts)).last_hidden_state
    embeddings = text_encoder.get_input_embeddings().weight

    def embedding_distance(first: str, second: str) -> float:
        first_id, second_id = (tokens.tokenizer(word).input_ids[1] for word in (first, second))
        return round((embeddings[first_id] - embeddings[second_id]).norm().item(), 3)

    conditioned = len(prompts) - 1
    noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(seed))
    x0_by_t = {}
    for t in TIMESTEPS:
        alpha = alphas_cumprod[t]
        noisy = noise.expand(len(prompts), -1, -1, -1)  # x_t of the same noise for every prompt
        eps = unet(noisy, torch.full((len(prompts),), t), context).sample
        guided = eps[conditioned:] + GUIDANCE * (eps[:conditioned] - eps[conditioned:])
        x0_by_t[t] = (noisy[:conditioned] - (1 - alpha).sqrt() * guided) / alpha.sqrt()

    latents = scene_latents(model, prompts[:conditioned])
    report: dict = {"model": str(model), "attributes": {}}
    for index, (attribute, (word, other_word, _)) in enumerate(CONTRASTS.items(), start=1):
        x0_distance = {
            str(t): round((x0[0] - x0[index]).norm().item(), 2) for t, x0 in x0_by_t.items()
        }
        latent_distance = round((latents[0] - latents[index]).norm().item(), 2)
        last = x0_distance[str(TIMESTEPS[-1])]
        report["attributes"][attribute] = {
            "words": [word, other_word],
            "embedding_distance": embedding_distance(word, other_word),
            "context_distance": round((context[0] - context[index]).norm().item(), 2),
            "x0_distance": x0_distance,
            "latent_distance": latent_distance,
            "x0_share": round(last / latent_distance, 2) if latent_distance else None,
        }
    report["unused_words_embedding_distance"] = embedding_distance(*UNUSED_WORDS)
    return report


@torch.no_grad()
def scene_latents(model: Path, prompts: list[str]) -> torch.Tensor:
    """The model's scaled autoencoder latents (posterior mean) of the scenes that canonical
    single-object ``prompts`` describe, drawn at zero offset; ``[len(prompts), 4, 16, 16]``."""
    by_caption = {canonical_caption(scene): scene for scene in all_single_object_scenes()}
    unknown = [prompt for prompt in prompts if prompt not in by_caption]
    if unknown:
        raise ValueError(
            f"no single-object scene has the canonical caption {unknown[0]!r}; write contrast "
            'prompts as "a big red circle on the left, blue background" is written'
        )
    vae = AutoencoderKL.from_pretrained(Path(model) / "vae").float().eval()
    images = to_model_range(render_batch([by_caption[prompt] for prompt in prompts]))
    return vae.encode(images).latent_dist.mean * vae.config.scaling_factor


def _load(model: Path) -> tuple[UNet2DConditionModel, CLIPTextModel, TokenCache]:
    """The model folder's UNet and text encoder in float32, and the CLIP tokenizer."""
    components.offline()
    for part in ("unet", "text_encoder", "vae"):
        if not (model / part).is_dir():
            raise FileNotFoundError(
                f"{model} has no {part}/ folder; give a demo-model folder or a training checkpoint"
            )
    unet = UNet2DConditionModel.from_pretrained(model / "unet").float().eval()
    text_encoder = CLIPTextModel.from_pretrained(model / "text_encoder").float().eval()
    return unet, text_encoder, TokenCache(components.load_tokenizer())


@torch.no_grad()
def image_versus_prompt(model: Path, seed: int = 1, prompted: bool = True) -> dict[str, float]:
    """Mean shift (pixels) of the one-step estimate's centroid toward the object drawn in the
    noised image, for prompts that name the opposite place, per timestep (positive: toward the
    image, negative: toward the prompt). With ``prompted=False`` the prompt is empty, so only
    the image can place the object: how much of the place x_t still shows at each level."""
    model = Path(model)
    unet, text_encoder, tokens = _load(model)
    vae = AutoencoderKL.from_pretrained(model / "vae").float().eval()
    alphas_cumprod = components.new_scheduler().alphas_cumprod

    background = "blue"
    scenes, prompts = [], []
    for colour in ("red", "yellow", "green"):
        for place, opposite in OPPOSITE.items():
            scenes.append(Scene(background, (SceneObject("circle", colour, "big", place),)))
            asked = SceneObject("circle", colour, "big", opposite)
            prompts.append(canonical_caption(Scene(background, (asked,))))
    images = to_model_range(render_batch(scenes))
    scale = vae.config.scaling_factor
    latents = vae.encode(images).latent_dist.mean * scale
    unconditioned = text_encoder(tokens([""] * len(prompts))).last_hidden_state
    conditioned = text_encoder(tokens(prompts)).last_hidden_state if prompted else unconditioned
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
    size = images.shape[-1]
    ys, xs = np.mgrid[0:size, 0:size] - (size - 1) / 2
    shifts = {}
    for t in SHIFT_TIMESTEPS:
        alpha = alphas_cumprod[t]
        noisy = alpha.sqrt() * latents + (1 - alpha).sqrt() * noise
        steps = torch.full((len(scenes),), t)
        eps_u = unet(noisy, steps, unconditioned).sample
        eps = eps_u + GUIDANCE * (unet(noisy, steps, conditioned).sample - eps_u)
        x0 = (noisy - (1 - alpha).sqrt() * eps) / alpha.sqrt()
        decoded = vae.decode(x0 / scale).sample.clamp(-1, 1).add(1).mul(127.5).numpy()
        toward_image = []
        for picture, scene in zip(decoded, scenes, strict=True):
            weight = np.abs(picture.transpose(1, 2, 0) - np.array(COLOURS[background])).sum(-1)
            weight = weight / weight.sum()
            cx, cy = float((weight * xs).sum()), float((weight * ys).sum())
            place = scene.objects[0].position
            toward_image.append({"left": -cx, "right": cx, "top": -cy, "bottom": cy}[place])
        shifts[str(t)] = round(float(np.mean(toward_image)), 2)
    return shifts


@torch.no_grad()
def shape_kept_from_noise(
    model: Path, starts: tuple[int, ...] | None = None, per_triple: int = 2, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Shape accuracy, overall and by shape, of held-out scenes (``evaluation_scenes``) that are
    encoded, noised to each of ``starts`` and denoised with their own canonical prompts by DDIM (the
    schedule of a 20-step run from t = 999, continued from the first timestep at or below the start)
    with CFG 5, then decoded and judged. Where the model records shape codes
    (``train.shape_codes.write_shape_codes``), the encoded latents get them, as in its training. At
    a low start the object is plain in x_t; a model that still changes its shape there has not
    learned to denoise it."""
    model = Path(model)
    unet, text_encoder, tokens = _load(model)
    vae = AutoencoderKL.from_pretrained(model / "vae").float().eval()
    scale = vae.config.scaling_factor
    scheduler = components.new_scheduler()
    scheduler.set_timesteps(SAMPLER_STEPS)
    scenes = evaluation_scenes(per_triple=per_triple)
    images = to_model_range(render_batch(scenes))
    latents = vae.encode(images).latent_dist.mean
    shape_codes = read_shape_codes(model)
    if shape_codes is not None:  # as the model's training latents carry them
        direction, code = shape_codes
        maps = code * shape_code_maps(scenes, latents.shape[-1], images.shape[-1])
        latents = with_shape_codes(latents, maps, direction)
    latents = latents * scale
    unconditioned = text_encoder(tokens([""] * len(scenes))).last_hidden_state
    conditioned = text_encoder(tokens([canonical_caption(s) for s in scenes])).last_hidden_state
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
    report = {}
    for start in KEEP_FROM if starts is None else starts:
        timesteps = [t for t in scheduler.timesteps.tolist() if t <= start]
        if not timesteps:
            raise ValueError(f"start t = {start} is below the {SAMPLER_STEPS}-step schedule")
        x = scheduler.add_noise(latents, noise, torch.tensor([timesteps[0]]))
        for t in timesteps:
            steps = torch.full((len(scenes),), t)
            eps_u = unet(x, steps, unconditioned).sample
            eps = eps_u + GUIDANCE * (unet(x, steps, conditioned).sample - eps_u)
            x = scheduler.step(eps, t, x).prev_sample
        decoded = vae.decode(x / scale).sample.clamp(-1, 1).add(1).mul(127.5)
        right = [
            judge(picture).shape == scene.objects[0].shape
            for picture, scene in zip(decoded.permute(0, 2, 3, 1).numpy(), scenes, strict=True)
        ]
        row = {"all": round(float(np.mean(right)), 3)}
        for shape in SHAPES:
            mine = [r for r, s in zip(right, scenes, strict=True) if s.objects[0].shape == shape]
            row[shape] = round(float(np.mean(mine)), 3)
        report[str(timesteps[0])] = row
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=components.MODEL_DIR)
    args = parser.parse_args(argv)
    report = probe(args.model)
    report["image_versus_prompt_shift_px"] = image_versus_prompt(args.model)
    report["image_alone_shift_px"] = image_versus_prompt(args.model, prompted=False)
    report["shape_kept_from_noise"] = shape_kept_from_noise(args.model)
    print(f"{'attribute':<11} {'words':<15} {'embedding':>9} {'context':>8}  x0 at t = ", end="")
    print(", ".join(str(t) for t in TIMESTEPS), " latent  x0 share")
    for attribute, row in report["attributes"].items():
        words = " / ".join(row["words"])
        x0 = ", ".join(f"{v:.2f}" for v in row["x0_distance"].values())
        share = "-" if row["x0_share"] is None else f"{row['x0_share']:.2f}"
        print(
            f"{attribute:<11} {words:<15} {row['embedding_distance']:>9.3f} "
            f"{row['context_distance']:>8.2f}  {x0}  {row['latent_distance']:>6.2f}  {share:>8}"
        )
    unused = " / ".join(UNUSED_WORDS)
    distance = report["unused_words_embedding_distance"]
    print(f"untrained words {unused}: embedding distance {distance}")
    for key, prompt in (
        ("image_versus_prompt_shift_px", "prompt naming the other side"),
        ("image_alone_shift_px", "empty prompt"),
    ):
        shifts = ", ".join(f"t={t}: {v:+.2f}" for t, v in report[key].items())
        print(f"estimate's shift toward the noised image's object, {prompt}: {shifts}")
    print("shape kept when held-out scenes are noised to t and finished with their own prompt:")
    for t, row in report["shape_kept_from_noise"].items():
        print(f"  from t = {t:>3}: " + ", ".join(f"{k} {v:.0%}" for k, v in row.items()))
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
