"""Measure the silhouette ControlNet on held-out silhouettes, through LatentLoom's executor.

    python -m tools.demo_model.evaluate_controlnet [--count 96] [--baseline]
        [--controlnet DIR] [--model DIR] [--seed 0]

Each held-out scene (``silhouettes.control_scenes(..., held_out=True)``: one object at a place in
a tile training never used) gives a silhouette and a prompt naming only colour, shape and
background ("a red circle, blue background"). ``resources/workflows/controlnet.json`` runs with
that silhouette and prompt (seed + i for scene i), and the project's judge
(``tools.demo_model.judge``) measures the picture: the object's centroid must lie within
``CENTROID_PX`` of the silhouette's own (the judge's centroid of each), its shape class must be
the silhouette's and its colour the prompt's. ``--baseline`` also runs every prompt with the
ControlNet's strength at 0, the demo model alone, to show what the silhouette adds. The report
goes to ``evaluation.json`` and a grid of silhouettes and results to ``samples.png`` in the
ControlNet's folder.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from tools.demo_model import components
from tools.demo_model.controlnet_workflow import OUTPUT as WORKFLOW
from tools.demo_model.judge import judge
from tools.demo_model.scenes import Scene
from tools.demo_model.silhouettes import control_prompt, control_scenes, silhouette
from tools.demo_model.train_controlnet import CONTROLNET_DIR, CONTROLNET_NAME

#: How far (pixels) the object's centroid may lie from the silhouette's.
CENTROID_PX = 4.0
TARGETS = {"centroid": 0.90, "shape": 0.85, "colour": 0.95}
EVALUATION_SEED = 2026
SAMPLES = 16


class ControlGenerator:
    """Runs the ControlNet workflow through LatentLoom's executor with ``model`` as its
    checkpoint and the ControlNet folder ``controlnet``, changing only the silhouette, the
    positive prompt, the seed and (optionally) the steps and the strength."""

    def __init__(
        self,
        model: Path = components.MODEL_DIR,
        controlnet: Path = CONTROLNET_DIR,
        workflow: Path = WORKFLOW,
    ) -> None:
        from core.diffusion.model_paths import ModelPaths
        from core.engine import Executor
        from core.graph.workflow import load_workflow
        from nodes import build_registry

        components.offline()
        self._folder = tempfile.TemporaryDirectory(prefix="latentloom_controlnet_eval_")
        root = Path(self._folder.name)
        for kind, name, target in (
            ("checkpoints", model.name, model),
            ("controlnet", CONTROLNET_NAME, controlnet),
        ):
            (root / kind).mkdir(exist_ok=True)
            (root / kind / name).symlink_to(Path(target).resolve(), target_is_directory=True)
        self.registry = build_registry(ModelPaths.of(root))
        self.graph = load_workflow(workflow, self.registry).graph
        nodes = {node.type_id: node.id for node in self.graph}
        for needed in ("LoadCheckpoint", "LoadImage", "KSampler", "VAEDecode"):
            if needed not in nodes:
                raise ValueError(f"{workflow} has no {needed} node; it is not the ControlNet one")
        self.graph.set_param(nodes["LoadCheckpoint"], "ckpt_name", model.name)
        self.image, self.sampler, self.decode = (
            nodes["LoadImage"],
            nodes["KSampler"],
            nodes["VAEDecode"],
        )
        self.apply = nodes["ControlNetApplyAdvanced"]
        apply_input = self.graph.link_to(self.apply, "positive")
        self.positive = apply_input.src
        self.executor = Executor(self.registry)

    def __call__(
        self,
        prompts: Sequence[str],
        hints: np.ndarray,
        seed: int = 0,
        strength: float = 1.0,
        steps: int | None = None,
    ) -> np.ndarray:
        """Pictures (uint8 ``[N, 64, 64, 3]``) for ``prompts`` steered by ``hints`` (uint8
        ``[N, 64, 64]``); prompt i uses seed + i."""
        self.graph.set_param(self.apply, "strength", strength)
        if steps is not None:
            self.graph.set_param(self.sampler, "steps", steps)
        images = []
        for index, (prompt, hint) in enumerate(zip(prompts, hints, strict=True)):
            path = Path(self._folder.name) / f"hint_{index}.png"
            Image.fromarray(hint, mode="L").save(path)
            self.graph.set_param(self.image, "image", str(path))
            self.graph.set_param(self.positive, "text", prompt)
            self.graph.set_param(self.sampler, "seed", seed + index)
            report = self.executor.run(self.graph, outputs=[self.decode], device="cpu")
            if report.status_of(self.decode) not in ("ran", "cached"):
                entry = report.entries[self.decode]
                raise RuntimeError(f"generating {prompt!r} failed: {entry.message}")
            [picture] = report.outputs[self.decode]
            images.append((picture[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
        return np.stack(images)


def silhouette_centroid(hint: np.ndarray) -> tuple[float, float]:
    """The judge's centroid of a silhouette (white object on black)."""
    centroid = judge(np.repeat(hint[..., None], 3, axis=2)).centroid
    if centroid is None:
        raise ValueError("the silhouette is empty")
    return centroid


def score(scene: Scene, hint: np.ndarray, image: np.ndarray) -> dict:
    """What the judge finds in ``image`` against the scene its silhouette and prompt ask for."""
    found = judge(image)
    target = silhouette_centroid(hint)
    obj = scene.objects[0]
    distance = math.dist(found.centroid, target) if found.centroid is not None else math.inf
    return {
        "centroid": distance <= CENTROID_PX,
        "shape": found.shape == obj.shape,
        "colour": found.colour == obj.colour,
        "distance": round(distance, 2),
        "found_shape": found.shape,
        "found_colour": found.colour,
    }


def summarise(results: Sequence[dict]) -> dict[str, float]:
    """The fraction right of each measured attribute, and the median centroid distance."""
    summary = {name: sum(r[name] for r in results) / max(len(results), 1) for name in TARGETS}
    summary["median_distance_px"] = float(np.median([r["distance"] for r in results]))
    return summary


def sample_grid(hints: np.ndarray, images: np.ndarray, results: Sequence[dict], path: Path) -> None:
    """A grid of silhouettes (top of each pair) over the pictures drawn from them, each marked
    with what the judge found wrong, at twice the size."""
    scale, columns = 2, 8
    tile = 64 * scale
    rows = math.ceil(len(images) / columns)
    label = 12
    grid = Image.new("RGB", (columns * tile, rows * (2 * tile + label)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for index, (hint, image, result) in enumerate(zip(hints, images, results, strict=True)):
        x, y = (index % columns) * tile, (index // columns) * (2 * tile + label)
        grid.paste(Image.fromarray(hint, mode="L").convert("RGB").resize((tile, tile)), (x, y))
        grid.paste(
            Image.fromarray(image).resize((tile, tile), Image.Resampling.NEAREST), (x, y + tile)
        )
        wrong = [name for name in TARGETS if not result[name]]
        draw.text(
            (x + 3, y + 2 * tile),
            "ok" if not wrong else "wrong: " + ", ".join(wrong),
            fill=(0, 0, 0),
        )
    grid.save(path, optimize=True)


def evaluate(
    generator: ControlGenerator, count: int, seed: int, strength: float = 1.0
) -> tuple[list[Scene], np.ndarray, np.ndarray, list[dict]]:
    """Generate and judge ``count`` held-out scenes; returns scenes, hints, pictures, scores."""
    scenes = control_scenes(count, EVALUATION_SEED, held_out=True)
    hints = np.stack([silhouette(scene) for scene in scenes])
    images = generator([control_prompt(s) for s in scenes], hints, seed, strength)
    results = [score(s, h, i) for s, h, i in zip(scenes, hints, images, strict=True)]
    return scenes, hints, images, results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo_model.evaluate_controlnet",
        description="Judge the silhouette ControlNet on held-out silhouettes.",
    )
    parser.add_argument("--count", type=int, default=96, help="held-out scenes")
    parser.add_argument("--controlnet", type=Path, default=CONTROLNET_DIR)
    parser.add_argument("--model", type=Path, default=components.MODEL_DIR)
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the first scene")
    parser.add_argument(
        "--baseline", action="store_true", help="also judge the demo model alone (strength 0)"
    )
    args = parser.parse_args(argv)
    started = time.time()
    generator = ControlGenerator(args.model, args.controlnet)
    scenes, hints, images, results = evaluate(generator, args.count, args.seed)
    report: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "scenes": len(scenes),
        "held_out": "places in held-out 8-px tiles (tools/demo_model/silhouettes.py)",
        "centroid_tolerance_px": CENTROID_PX,
        "seed": args.seed,
        "targets": TARGETS,
        "controlnet": summarise(results),
        "by_shape": {
            shape: summarise(
                [r for s, r in zip(scenes, results, strict=True) if s.objects[0].shape == shape]
            )
            for shape in ("circle", "square", "triangle")
        },
        "by_size": {
            size: summarise(
                [r for s, r in zip(scenes, results, strict=True) if s.objects[0].size == size]
            )
            for size in ("big", "small")
        },
    }
    if args.baseline:
        _, _, _, alone = evaluate(generator, args.count, args.seed, strength=0.0)
        report["demo_model_alone"] = summarise(alone)
    report["minutes"] = round((time.time() - started) / 60, 1)
    report["results"] = [
        {"prompt": control_prompt(s), "size": s.objects[0].size, **r}
        for s, r in zip(scenes, results, strict=True)
    ]
    args.controlnet.mkdir(parents=True, exist_ok=True)
    (args.controlnet / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    sample_grid(
        hints[:SAMPLES], images[:SAMPLES], results[:SAMPLES], args.controlnet / "samples.png"
    )
    print(json.dumps({k: v for k, v in report.items() if k != "results"}, indent=1))
    return report


if __name__ == "__main__":
    main()
