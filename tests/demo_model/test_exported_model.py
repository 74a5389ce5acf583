"""The shipped demo model: a standard diffusers folder within the size budget that loads from
local files and draws what held-out prompts ask for, judged by measurement."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open

from tools.demo_model import components
from tools.demo_model.evaluate import (
    TARGETS,
    WorkflowGenerator,
    accuracy_by_prompt_form,
    evaluate,
    evaluation_prompts,
)
from tools.demo_model.judge import ATTRIBUTES, judge
from tools.demo_model.scenes import evaluation_scenes

MODEL = components.MODEL_DIR
WEIGHTS = {
    "unet": "diffusion_pytorch_model.safetensors",
    "vae": "diffusion_pytorch_model.safetensors",
    "text_encoder": "model.safetensors",
}


@pytest.fixture(scope="module")
def generator() -> WorkflowGenerator:
    """The default workflow run by LatentLoom's executor, as a user's run does."""
    torch.set_num_threads(2)
    return WorkflowGenerator(MODEL)


def test_folder_is_a_standard_float16_diffusers_layout_within_40_mb() -> None:
    index = json.loads((MODEL / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    for name, weights in WEIGHTS.items():
        assert (MODEL / name / "config.json").is_file()
        with safe_open(MODEL / name / weights, framework="pt") as handle:
            dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118
        assert dtypes == {"F16"}, (name, dtypes)
    assert (MODEL / "scheduler" / "scheduler_config.json").is_file()
    assert not (MODEL / "tokenizer").exists()
    size = sum(path.stat().st_size for path in MODEL.rglob("*") if path.is_file())
    assert size <= 40 * 1024 * 1024, f"{size / 2**20:.1f} MiB"


def test_scheduler_is_stable_diffusions_scaled_linear_epsilon_schedule() -> None:
    config = json.loads((MODEL / "scheduler" / "scheduler_config.json").read_text())
    assert config["beta_schedule"] == "scaled_linear"
    assert (config["beta_start"], config["beta_end"]) == (0.00085, 0.012)
    assert config["num_train_timesteps"] == 1000
    assert config["prediction_type"] == "epsilon"


def test_latent_rgb_factors_are_a_4x3_matrix_and_a_bias() -> None:
    factors = json.loads((MODEL / "latent_rgb.json").read_text())
    assert len(factors["factors"]) == 4 and all(len(row) == 3 for row in factors["factors"])
    assert len(factors["bias"]) == 3
    assert all(math.isfinite(v) for row in factors["factors"] for v in row)


def test_scaling_factor_gives_unit_variance_latents() -> None:
    from diffusers import AutoencoderKL

    from tools.demo_model.scenes import render_batch, training_scenes
    from tools.demo_model.train.data import to_model_range

    vae = AutoencoderKL.from_pretrained(MODEL / "vae", local_files_only=True).float()
    images = to_model_range(render_batch(training_scenes(64, seed=99)))
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mean
    std = (latents * vae.config.scaling_factor).std().item()
    assert 0.8 < std < 1.25


def test_default_workflow_prompt_gets_its_background_colour_shape_and_position(
    generator: WorkflowGenerator,
) -> None:
    """The default prompt (a combination seen in training), as a fresh install first runs it."""
    image = generator(["a red circle on the left, blue background"], seed=0)[0]
    result = judge(image)
    assert (result.background, result.colour, result.shape, result.position) == (
        *("blue", "red", "circle", "left"),
    )


def test_evaluation_asks_every_held_out_combination_with_and_without_the_size_word() -> None:
    """The default workflow's prompt leaves the size unsaid; the evaluation must ask that form
    too, in both sizes, for every held-out combination."""
    scenes = evaluation_scenes()
    prompts = evaluation_prompts(scenes)
    forms: dict[tuple, set[tuple[str, bool]]] = {}
    for scene, prompt in zip(scenes, prompts, strict=True):
        [obj] = scene.objects
        said = f"a {obj.size} {obj.colour} {obj.shape}" in prompt
        assert said or f"a {obj.colour} {obj.shape}" in prompt, prompt
        forms.setdefault(obj.triple, set()).add((obj.size, said))
    assert len(forms) == 16
    assert all(len(sizes_and_forms) == 4 for sizes_and_forms in forms.values())
    unsaid = [p for p, scene in zip(prompts, scenes, strict=True) if scene.objects[0].size not in p]
    assert len(unsaid) == len(prompts) // 2


def test_accuracy_is_also_reported_per_prompt_form() -> None:
    right = dict.fromkeys(ATTRIBUTES, True)
    wrong_colour = {**right, "colour": False}
    by_form = accuracy_by_prompt_form([right, right, wrong_colour, wrong_colour, right])
    assert by_form["size said"] == dict.fromkeys(ATTRIBUTES, 1.0)
    assert by_form["size unsaid"] == {**dict.fromkeys(ATTRIBUTES, 1.0), "colour": 0.0}


@pytest.mark.slow
def test_held_out_prompts_meet_the_accuracy_targets(generator: WorkflowGenerator) -> None:
    """Every held-out combination three times (both sizes, 48 pictures) with the default
    workflow's settings: at least floor(target × 48) right, i.e. 2 misses allowed for
    background, 2 for colour, 4 for position and 7 for shape. Eight pictures, as until
    2026-12-06, allowed two shape misses in eight and passed with a model whose 160-prompt
    evaluation draws 73.8 % of shapes right; 48 tell 74 % from 85 % far more often."""
    sample = evaluation_scenes(per_triple=3)
    assert len(sample) == 48
    totals, prompts, _, results = evaluate(generator, sample)
    for name in ATTRIBUTES:
        needed = math.floor(TARGETS[name] * len(sample)) / len(sample)
        wrong = [p for p, r in zip(prompts, results, strict=True) if not r[name]]
        assert totals[name] >= needed, (name, totals[name], wrong)


def test_loads_through_the_latentloom_checkpoint_loader() -> None:
    from core.diffusion.families import ModelFamily
    from core.diffusion.loading import load_checkpoint

    loaded = load_checkpoint(MODEL)
    assert loaded.family is ModelFamily.SD1
    assert loaded.model.latent_rgb is not None
    assert loaded.vae.scaling_factor == pytest.approx(
        json.loads((MODEL / "vae" / "config.json").read_text())["scaling_factor"]
    )


def test_evaluation_runs_the_default_workflow_on_a_model_folder_anywhere(
    generator: WorkflowGenerator, tmp_path
) -> None:
    """A training run's output (not under a ``checkpoints`` folder) is evaluated exactly as the
    shipped copy: same workflow, same prompt and seed, same picture."""
    elsewhere = tmp_path / "run-output"
    elsewhere.symlink_to(MODEL, target_is_directory=True)
    prompt = ["a small green square at the top, black background"]
    shipped, copied = generator(prompt, seed=3), WorkflowGenerator(elsewhere)(prompt, seed=3)
    assert shipped.shape == (1, 64, 64, 3) and shipped.dtype.name == "uint8"
    assert (shipped == copied).all()
    assert generator.settings["steps"] == 20 and generator.settings["sampler"] == "euler"
    # Karras's schedule puts half of the 20 steps below σ = 1.1, where the refining phase
    # trained (measured 2026-12-06: 85.0 and 88.8 % shape for the noise of seeds 0 and 1,
    # against 83.8 and 87.5 % with DDIM's evenly spaced steps).
    assert generator.settings["scheduler"] == "karras"
    assert generator.settings["workflow"] == "resources/workflows/default.json"
    # Guidance stops below σ = 1.1 (the last 10 of the 20 steps): 160 held-out prompts drew
    # 78.1 % of shapes right with it, 73.8 % with guidance at every step (2026-12-06, DDIM).
    assert generator.settings["guidance_sigma_interval"] == [1.1, 1000.0]


@pytest.mark.slow
def test_evaluation_command_writes_its_report_grid_and_trained_triple_scores(tmp_path) -> None:
    """``python -m tools.demo_model.evaluate`` at a small size, on a copy of the model (without
    ``--output`` it writes its report and grid next to the weights)."""
    import shutil

    from tools.demo_model import evaluate as evaluation

    copy = tmp_path / "latentloom-shapes"
    shutil.copytree(MODEL, copy, ignore=shutil.ignore_patterns("samples.png", "evaluation.json"))
    report = evaluation.main(
        [
            *("--model", str(copy), "--per-triple", "1", "--trained-triples", "2"),
            *("--default-prompt-seeds", "2", "--output", str(tmp_path / "report")),
        ]
    )
    assert report["prompts"] == 16  # one per held-out combination
    default = report["default_prompt"]
    assert default["prompt"] == "a red circle on the left, blue background"
    assert [m["seed"] for m in default["measured"]] == [0, 1]
    # The seed-0 picture is the one the default-workflow test judges: same prompt, same seed.
    seed0 = judge(WorkflowGenerator(copy)([default["prompt"]], seed=0)[0])
    assert default["measured"][0]["colour"] == seed0.colour
    assert default["measured"][0]["position"] == seed0.position
    right = sum(m["colour"] == "red" for m in default["measured"]) / 2
    assert default["accuracy"]["colour"] == right
    assert report["trained_triples"]["prompts"] == 6
    for scores in (report["accuracy"], report["trained_triples"]["accuracy"]):
        assert set(scores) == set(ATTRIBUTES) and all(0 <= v <= 1 for v in scores.values())
    assert report["autoencoder_ceiling"]["background"] >= 0.95
    # One held-out prompt per combination: the generated shapes' per-class scores average, by
    # the classes' prompt counts, to the overall shape accuracy.
    by_class = report["shape_by_class"]
    assert set(by_class) == {"generated", "autoencoder"}
    assert set(by_class["generated"]) == {"circle", "square", "triangle"}
    counts = {
        s: sum(sc.objects[0].shape == s for sc in evaluation_scenes(per_triple=1))
        for s in by_class["generated"]
    }
    weighted = sum(by_class["generated"][s] * n for s, n in counts.items()) / sum(counts.values())
    assert weighted == pytest.approx(report["accuracy"]["shape"], abs=1e-3)
    assert set(report["by_prompt_form"]) == {"size said", "size unsaid"}
    for part in (report, report["trained_triples"]):  # every wrong attribute is listed, once
        for name in ATTRIBUTES:
            listed = sum(name in failure["wrong"] for failure in part["failures"])
            assert listed == round((1 - part["accuracy"][name]) * part["prompts"]), name
    written = json.loads((tmp_path / "report" / "evaluation.json").read_text())
    assert written["trained_triples"] == report["trained_triples"]
    assert (tmp_path / "report" / "samples.png").stat().st_size > 0
    # --output keeps the model's own report and grid as they are.
    assert not (copy / "evaluation.json").exists() and not (copy / "samples.png").exists()


def test_default_prompt_check_refuses_a_workflow_asking_something_else(tmp_path) -> None:
    """The check judges against the default prompt's scene, so a workflow whose prompt is
    another one is refused by name rather than judged against the wrong scene."""
    from tools.demo_model import evaluate as evaluation

    workflow = json.loads(evaluation.DEFAULT_WORKFLOW.read_text())
    for node in workflow["nodes"]:
        if node["params"].get("text") == "a red circle on the left, blue background":
            node["params"]["text"] = "a green square at the top, white background"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(workflow))
    generator = WorkflowGenerator(MODEL, changed)
    with pytest.raises(ValueError, match=r"changed\.json asks 'a green square at the top"):
        evaluation.default_prompt_check(generator, seeds=1)


def test_feature_cache_settings_are_read_from_the_command_line() -> None:
    import argparse

    from core.diffusion.feature_cache import FeatureCacheSettings
    from tools.demo_model.evaluate import parse_feature_cache

    assert parse_feature_cache("2,3") == FeatureCacheSettings(2, 3, 0.0, 1.0)
    assert parse_feature_cache("3, 2, 0.25, 1") == FeatureCacheSettings(3, 2, 0.25, 1.0)
    with pytest.raises(argparse.ArgumentTypeError, match=r"'2': give INTERVAL,DEPTH or"):
        parse_feature_cache("2")
    with pytest.raises(argparse.ArgumentTypeError, match=r"'two,3': give INTERVAL,DEPTH"):
        parse_feature_cache("two,3")
    with pytest.raises(argparse.ArgumentTypeError, match="interval must be at least 1, not 0"):
        parse_feature_cache("0,1")
    with pytest.raises(argparse.ArgumentTypeError, match=r"start \(0.5\) and end \(0.2\)"):
        parse_feature_cache("2,1,0.5,0.2")


def test_evaluation_can_sample_through_a_feature_cache(generator: WorkflowGenerator) -> None:
    """With ``feature_cache`` a Feature Cache node sits between the guidance interval and the
    sampler: the same prompt and seed give a picture close to, but not the same as, the
    uncached one, and the report names the settings."""
    from core.diffusion.feature_cache import FeatureCacheSettings

    settings = FeatureCacheSettings(2, 3, 0.25, 1.0)
    cached = WorkflowGenerator(MODEL, feature_cache=settings)
    link = cached.graph.link_to(cached.sampler, "model")
    node = cached.graph.node(link.src)
    assert node.type_id == "FeatureCache"
    assert node.params == {
        "cache_interval": 2,
        "cache_depth": 3,
        "start_percent": 0.25,
        "end_percent": 1.0,
    }
    upstream = cached.graph.link_to(node.id, "model")
    assert cached.graph.node(upstream.src).type_id == "GuidanceInterval"
    assert cached.settings["feature_cache"] == {
        "interval": 2,
        "depth": 3,
        "start": 0.25,
        "end": 1.0,
    }
    assert "feature_cache" not in generator.settings
    prompt = ["a small green square at the top, black background"]
    plain, reused = generator(prompt, seed=3), cached(prompt, seed=3)
    error = ((plain.astype(float) - reused.astype(float)) / 255) ** 2
    assert 0 < error.mean() < 0.01, error.mean()  # different, yet above 20 dB PSNR
