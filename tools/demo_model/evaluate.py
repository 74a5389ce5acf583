"""Evaluate the demo model on held-out prompts, by measurement, and draw the sample grid.

    python -m tools.demo_model.evaluate [--model resources/models/checkpoints/latentloom-shapes]

Every prompt names a (shape, colour, position) combination that no training scene contains
(``scenes.held_out_triples``), on varied backgrounds and in both sizes; half the prompts say
the size, half leave it unsaid as the default workflow's prompt does. Each image is generated
by LatentLoom's own executor running ``resources/workflows/default.json`` (20 Euler steps on
the Karras schedule, classifier-free guidance 5 above σ 1.1) with only its prompt and seed
changed, exactly as a user's run would; each is judged by ``tools.demo_model.judge``. The
accuracy per attribute is printed and saved as ``evaluation.json`` beside the model, and a grid
of samples with their prompts as ``samples.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from core.diffusion.feature_cache import FeatureCacheSettings
from tools.demo_model import components
from tools.demo_model.judge import (
    ATTRIBUTES,
    accuracy,
    fraction_right,
    judge,
    score,
    shape_accuracy_by_class,
)
from tools.demo_model.scenes import (
    IMAGE_SIZE,
    Scene,
    SceneObject,
    canonical_caption,
    evaluation_scenes,
    trained_triple_scenes,
)

DEFAULT_WORKFLOW = components.REPO_ROOT / "resources" / "workflows" / "default.json"
DEFAULT_SEED = 0
TARGETS: dict[str, float] = {"background": 0.95, "colour": 0.95, "position": 0.90, "shape": 0.85}
# What the default workflow's prompt, "a red circle on the left, blue background", asks for (the
# size is unsaid, and the judge does not measure it).
DEFAULT_PROMPT_SCENE = Scene("blue", (SceneObject("circle", "red", "big", "left"),))
DEFAULT_PROMPT_SEEDS = 8


class WorkflowGenerator:
    """Runs a txt2img workflow (the default one unless told otherwise) through LatentLoom's
    executor with ``model`` as its checkpoint, changing only the positive prompt and the seed.

    The loaded model, the negative prompt and the empty latent stay cached between prompts, as
    they would in the editor.
    """

    def __init__(
        self,
        model: Path = components.MODEL_DIR,
        workflow: Path = DEFAULT_WORKFLOW,
        feature_cache: FeatureCacheSettings | None = None,
    ):
        from core.diffusion.model_paths import ModelPaths
        from core.engine import Executor
        from core.graph.workflow import load_workflow
        from nodes import build_registry

        components.offline()
        model = Path(model).resolve()
        if model.parent.name == "checkpoints":
            root = model.parent.parent
        else:  # a folder elsewhere (a training run's output): give it a models root of its own
            self._root = tempfile.TemporaryDirectory(prefix="latentloom_eval_")
            root = Path(self._root.name)
            (root / "checkpoints").mkdir()
            (root / "checkpoints" / model.name).symlink_to(model, target_is_directory=True)
        self.registry = build_registry(ModelPaths.of(root))
        self.workflow = Path(workflow)
        self.graph = load_workflow(workflow, self.registry).graph
        by_type: dict[str, list[int]] = {}
        for node in self.graph:
            by_type.setdefault(node.type_id, []).append(node.id)
        try:
            [loader] = by_type["LoadCheckpoint"]
            [self.sampler] = by_type["KSampler"]
            [self.decode] = by_type["VAEDecode"]
        except (KeyError, ValueError):
            raise ValueError(
                f"{workflow} is not a plain txt2img workflow: it needs exactly one "
                "LoadCheckpoint, KSampler and VAEDecode node"
            ) from None
        positive = self.graph.link_to(self.sampler, "positive")
        if positive is None or self.graph.node(positive.src).type_id != "CLIPTextEncode":
            raise ValueError(f"{workflow}: the KSampler's positive input is not a text prompt")
        self.positive = positive.src
        # The workflow's own prompt, before any call replaces it.
        self.workflow_prompt = self.graph.node(self.positive).params["text"]
        self.graph.set_param(loader, "ckpt_name", model.name)
        self.feature_cache = feature_cache
        if feature_cache is not None:
            self._insert_feature_cache(feature_cache)
        self.executor = Executor(self.registry)

    def _insert_feature_cache(self, settings: FeatureCacheSettings) -> None:
        """A Feature Cache node just before the KSampler, so everything upstream (the guidance
        interval included) is as the workflow has it and only the UNet's passes change."""
        params = {
            "cache_interval": settings.interval,
            "cache_depth": settings.depth,
            "start_percent": settings.start,
            "end_percent": settings.end,
        }
        node = self.graph.add_node("FeatureCache", params=params).id
        link = self.graph.disconnect(self.sampler, "model")
        if link is None:
            raise ValueError(f"{self.workflow}: the KSampler's model input is not connected")
        self.graph.connect(link.src, link.src_output, node, "model")
        self.graph.connect(node, "MODEL", self.sampler, "model")

    @property
    def settings(self) -> dict:
        """The sampler's settings, for the report."""
        params = self.graph.node(self.sampler).params
        settings = {
            "workflow": _shown_path(self.workflow),
            "sampler": params["sampler_name"],
            "scheduler": params["scheduler"],
            "steps": params["steps"],
            "guidance": params["cfg"],
        }
        model = self.graph.link_to(self.sampler, "model")
        if model is not None and self.graph.node(model.src).type_id == "GuidanceInterval":
            interval = self.graph.node(model.src).params
            settings["guidance_sigma_interval"] = [interval["sigma_low"], interval["sigma_high"]]
        if self.feature_cache is not None:
            settings["feature_cache"] = dataclasses.asdict(self.feature_cache)
        return settings

    def __call__(self, prompts: Sequence[str], seed: int = DEFAULT_SEED) -> np.ndarray:
        """Images for ``prompts`` as uint8 ``[N, H, W, 3]``; prompt i uses seed + i."""
        from core.engine import ValidationError

        images = []
        for index, prompt in enumerate(prompts):
            self.graph.set_param(self.positive, "text", prompt)
            self.graph.set_param(self.sampler, "seed", seed + index)
            try:
                report = self.executor.run(self.graph, outputs=[self.decode], device="cpu")
            except ValidationError as exc:
                raise RuntimeError(f"the evaluation workflow does not validate: {exc}") from None
            if report.status_of(self.decode) not in ("ran", "cached"):
                entry = report.entries[self.decode]
                raise RuntimeError(f"generating {prompt!r} failed: {entry.message}")
            [picture] = report.outputs[self.decode]
            images.append((picture[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
        return np.stack(images)


def parse_feature_cache(text: str) -> FeatureCacheSettings:
    """``--feature-cache`` settings: ``interval,depth`` or ``interval,depth,start,end``."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if len(parts) not in (2, 4):
            raise ValueError
        interval, depth = int(parts[0]), int(parts[1])
        start, end = (float(parts[2]), float(parts[3])) if len(parts) == 4 else (0.0, 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--feature-cache {text!r}: give INTERVAL,DEPTH or INTERVAL,DEPTH,START,END, "
            "e.g. 2,3 or 2,3,0.25,1"
        ) from None
    settings = FeatureCacheSettings(interval, depth, start, end)
    problem = settings.problem()
    if problem is not None:
        raise argparse.ArgumentTypeError(f"--feature-cache {text!r}: {problem}")
    return settings


def _shown_path(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(components.REPO_ROOT))
    except ValueError:
        return str(path)


def says_size(index: int) -> bool:
    """Whether the ``index``-th evaluation prompt says the size: two do ("a big ...",
    "a small ..."), the next two do not ("a red circle on the left, blue background", as the
    default workflow asks), and so on. A model of 2026-11-23 drew red as purple only when the
    size was left unsaid, which prompts that always said it could not show."""
    return index // 2 % 2 == 0


def evaluation_prompts(scenes: Sequence[Scene]) -> list[str]:
    """The canonical prompt of each scene, with or without its size word by ``says_size``."""
    return [canonical_caption(scene, size_word=says_size(i)) for i, scene in enumerate(scenes)]


def evaluate(
    generator: WorkflowGenerator, scenes: Sequence[Scene], seed: int = DEFAULT_SEED
) -> tuple[dict[str, float], list[str], np.ndarray, list[dict[str, bool]]]:
    """Generate each single-object scene's canonical prompt (``evaluation_prompts``) and judge
    it; returns the accuracy per attribute, the prompts, the images and the per-image results."""
    prompts = evaluation_prompts(scenes)
    images = generator(prompts, seed=seed)
    totals, results = accuracy(scenes, images)
    return totals, prompts, images, results


def default_prompt_check(
    generator: WorkflowGenerator, seeds: int = DEFAULT_PROMPT_SEEDS
) -> dict[str, object]:
    """The default workflow's own prompt with seeds 0 .. seeds-1, each picture judged: the one
    prompt every user sees first, where a model can fail while the held-out average looks well
    (a run of 2026-12-04 drew its red circle purple for 7 of 8 seeds). Returns the prompt, the
    fraction of seeds right per attribute and what was measured for each seed."""
    prompt = canonical_caption(DEFAULT_PROMPT_SCENE, size_word=False)
    asked = generator.workflow_prompt
    if prompt != asked:
        raise ValueError(
            f"{_shown_path(generator.workflow)} asks {asked!r}, not the default prompt {prompt!r} "
            "that DEFAULT_PROMPT_SCENE describes; check it against the default workflow"
        )
    judgements = [judge(image) for image in generator([prompt] * seeds, seed=0)]  # seed i: i
    results = [score(DEFAULT_PROMPT_SCENE, j) for j in judgements]
    return {
        "prompt": prompt,
        "seeds": seeds,
        "accuracy": {k: round(v, 4) for k, v in fraction_right(results).items()},
        "measured": [
            {"seed": seed, "colour": j.colour, "shape": j.shape, "position": j.position,
             "background": j.background}
            for seed, j in enumerate(judgements)
        ],
    }  # fmt: skip


def accuracy_by_prompt_form(results: Sequence[dict[str, bool]]) -> dict[str, dict[str, float]]:
    """Accuracy per attribute over the prompts that say the size and over those that do not."""
    forms: dict[str, dict[str, float]] = {}
    for name, said in (("size said", True), ("size unsaid", False)):
        chosen = [r for i, r in enumerate(results) if says_size(i) == said]
        if chosen:
            forms[name] = fraction_right(chosen)
    return forms


@torch.no_grad()
def autoencoder_ceiling(
    vae: torch.nn.Module, scenes: Sequence[Scene]
) -> tuple[dict[str, float], list[dict[str, bool]]]:
    """Accuracy of the judge on the autoencoder's reconstructions of the scenes themselves
    (posterior mode): what generation could reach at best with this autoencoder; also the
    per-scene results."""
    from tools.demo_model.scenes import render_batch
    from tools.demo_model.train.data import to_model_range

    images = to_model_range(render_batch(scenes))
    decoded = vae.decode(vae.encode(images).latent_dist.mode()).sample.float()
    pictures = ((decoded.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return accuracy(scenes, pictures.permute(0, 2, 3, 1).numpy())


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
        if wrong:  # on a white band, legible on any background (a red one included)
            label = "wrong: " + ", ".join(wrong)
            draw.rectangle(draw.textbbox((x + 1, y + 1), label, font=font), fill="white")
            draw.text((x + 1, y + 1), label, fill="red", font=font)
    return grid


def failures(
    prompts: Sequence[str], results: Sequence[dict[str, bool]], images: np.ndarray
) -> list[dict]:
    """The prompts with any attribute judged wrong: which ones, and what the judge measured."""
    return [
        {"prompt": prompt, "wrong": [k for k, ok in result.items() if not ok], "measured": vars(j)}
        for prompt, result, image in zip(prompts, results, images, strict=True)
        if not all(result.values())
        for j in [judge(image)]
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=components.MODEL_DIR)
    parser.add_argument("--per-triple", type=int, default=10)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--trained-triples",
        type=int,
        default=16,
        help="also judge this many combinations training shows (3 prompts each); 0 skips them",
    )
    parser.add_argument(
        "--default-prompt-seeds",
        type=int,
        default=DEFAULT_PROMPT_SEEDS,
        help="also judge the default workflow's own prompt with this many seeds; 0 skips it",
    )
    parser.add_argument(
        "--feature-cache",
        type=parse_feature_cache,
        metavar="INTERVAL,DEPTH[,START,END]",
        help="put a Feature Cache node with these settings before the sampler",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="folder for evaluation.json and samples.png (default: beside the model)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    output = args.output or args.model
    output.mkdir(parents=True, exist_ok=True)

    generator = WorkflowGenerator(args.model, args.workflow, args.feature_cache)
    scenes = evaluation_scenes(per_triple=args.per_triple)
    started = time.time()
    totals, prompts, images, results = evaluate(generator, scenes, seed=args.seed)
    seconds = time.time() - started
    for name in ATTRIBUTES:
        verdict = "meets" if totals[name] >= TARGETS[name] else "BELOW"
        print(f"{name:10s} {totals[name]:6.1%}  (target {TARGETS[name]:.0%}: {verdict})")
    print(f"{len(scenes)} held-out prompts in {seconds:.1f} s")
    by_form = accuracy_by_prompt_form(results)
    for form, scores in by_form.items():
        print(f"  {form}: " + ", ".join(f"{k} {v:.1%}" for k, v in scores.items()))
    trained, trained_totals, trained_failures = [], {}, []
    if args.trained_triples:
        trained = trained_triple_scenes(triples=args.trained_triples)
        trained_totals, trained_prompts, trained_images, trained_results = evaluate(
            generator, trained, seed=args.seed
        )
        trained_failures = failures(trained_prompts, trained_results, trained_images)
        print(f"on {len(trained)} prompts of combinations training shows: ", end="")
        print(", ".join(f"{name} {trained_totals[name]:.1%}" for name in ATTRIBUTES))
    default_prompt = None
    if args.default_prompt_seeds:
        default_prompt = default_prompt_check(generator, seeds=args.default_prompt_seeds)
        right = ", ".join(f"{k} {v:.0%}" for k, v in default_prompt["accuracy"].items())
        last = args.default_prompt_seeds - 1
        print(f"the default prompt {default_prompt['prompt']!r}, seeds 0-{last}: {right}")
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(args.model / "vae", local_files_only=True).float().eval()
    ceiling, ceiling_results = autoencoder_ceiling(vae, scenes)
    print("autoencoder ceiling (judged reconstructions of the scenes themselves): ", end="")
    print(", ".join(f"{name} {ceiling[name]:.1%}" for name in ATTRIBUTES))
    # Per shape, since one shape can sit at the autoencoder's own limit while the others do not
    # (measured 2026-12-06: squares 55 of 60 reconstructed square, at fill ratios just above the
    # judge's line; tools/demo_model/EXPERIMENTS.md, "Where the squares are lost").
    shape_by_class = {
        "generated": shape_accuracy_by_class(scenes, results),
        "autoencoder": shape_accuracy_by_class(scenes, ceiling_results),
    }
    for source, scores in shape_by_class.items():
        print(f"shape right by class, {source}: ", end="")
        print(", ".join(f"{shape} {value:.1%}" for shape, value in scores.items()))

    # One sample per held-out combination for the grid, alternating sizes (and, with 10 per
    # combination, prompts that say the size with prompts that do not).
    per = args.per_triple
    picks = [i * per + (i % min(per, 2)) for i in range(len(scenes) // per)][:24]
    grid = sample_grid(images[picks], [prompts[i] for i in picks], [results[i] for i in picks])
    grid.save(output / "samples.png", optimize=True)

    report = {
        "prompts": len(scenes),
        "settings": {**generator.settings, "seed": args.seed},
        "accuracy": {k: round(v, 4) for k, v in totals.items()},
        "by_prompt_form": {
            form: {k: round(v, 4) for k, v in scores.items()} for form, scores in by_form.items()
        },
        "targets": TARGETS,
        "autoencoder_ceiling": {k: round(v, 4) for k, v in ceiling.items()},
        "shape_by_class": {
            source: {k: round(v, 4) for k, v in scores.items()}
            for source, scores in shape_by_class.items()
        },
        "trained_triples": {
            "prompts": len(trained),
            "accuracy": {k: round(v, 4) for k, v in trained_totals.items()},
            "failures": trained_failures,
        },
        "default_prompt": default_prompt,
        "seconds": round(seconds, 1),
        "failures": failures(prompts, results, images),
    }
    from core.files import atomic_write

    text = json.dumps(report, indent=1) + "\n"
    atomic_write(output / "evaluation.json", text.encode())
    return json.loads(text)  # exactly what was written (the judge's tuples as lists)


if __name__ == "__main__":
    main()
