"""The training command trains the shipped model: its defaults are the shipped recipe, and the
commands that made the shipped weights (``tools/demo_model/train_log.txt``) still parse to the
configuration recorded beside them (``train_log.json``).

The expected values were read from the single-module ``train.py`` before it became a package
(2026-12-07); a tiny run of every stage gave bit-identical weights before and after that split.
A change here changes what ``python -m tools.demo_model.train`` makes.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest

from tools.demo_model import components
from tools.demo_model.train import TrainConfig, options

SHIPPED_RECIPE = {
    "seed": 0,
    "scenes": 20000,
    "threads": 2,
    "ae_steps": 700,
    "ae_batch": 32,
    "ae_lr": 0.001,
    "ae_kl_weight": 1e-06,
    "ae_object_weight": 5.0,
    "ae_preview_weight": 0.1,
    "decoder_steps": 500,
    "decoder_lr": 0.0005,
    "object_weight": 10.0,
    "shape_code": 2.5,
    "shape_code_steps": 400,
    "shape_code_fraction": 0.75,
    "shape_code_swap_fraction": 0.5,
    "unet_steps": 2800,
    "unet_batch": 64,
    "unet_lr": 0.0006,
    "text_lr_scale": 5.0,
    "text_freeze_steps": 0,
    "text_grad_from": 0,
    "text_anchor_weight": 10.0,
    "warmup_steps": 150,
    "final_lr_fraction": 0.05,
    "weight_decay": 0.01,
    "empty_caption_fraction": 0.1,
    "min_snr_gamma": 5.0,
    "x0_weight_floor": 1.0,
    "offset_noise": 0.1,
    "pyramid_noise": 0.0,
    "high_noise_fraction": 0.5,
    "high_noise_from": 900,
    "high_noise_steps": 2200,
    "unet_timestep_below": 1000,
    "ema_decay": 0.999,
    "unet_object_weight": 1.0,
    "unet_outline_weight": 1.0,
    "unet_corner_weight": 1.0,
    "unet_pixel_weight": 0.0,
    "unet_pixel_below": 600,
    "polish_steps": 400,
    "polish_lr": 0.0002,
    "polish_warmup_steps": 30,
    "polish_ema_decay": 0.99,
    "polish_outline_weight": 3.0,
    "polish_corner_weight": 1.0,
    "polish_pixel_weight": 0.0,
    "refine_steps": 400,
    "refine_timestep_below": 400,
    "bf16": True,
    "checkpoint_every": 500,
    "log_every": 25,
}

# Every option of the command: its default and type ("-" for flags, choices and help).
COMMAND_OPTIONS = {
    "--ae-steps": (700, "int"),
    "--also-export-ema": ([], "float"),
    "--autoencoder": (None, "Path"),
    "--decoder-steps": (500, "int"),
    "--ema-decay": (0.999, "float"),
    "--help": (None, "-"),
    "--high-noise-fraction": (0.5, "float"),
    "--high-noise-from": (900, "int"),
    "--high-noise-steps": (2200, "int"),
    "--min-snr-gamma": (5.0, "float"),
    "--out": (components.MODEL_DIR, "Path"),
    "--polish-corner-weight": (1.0, "float"),
    "--polish-lr": (0.0002, "float"),
    "--polish-pixel-weight": (0.0, "float"),
    "--polish-steps": (400, "int"),
    "--precision": ("auto", "-"),
    "--pyramid-noise": (0.0, "float"),
    "--refine-steps": (400, "int"),
    "--refine-timestep-below": (400, "int"),
    "--resume": (None, "Path"),
    "--scenes": (20000, "int"),
    "--shape-code": (2.5, "float"),
    "--shape-code-steps": (400, "int"),
    "--shape-code-swap-fraction": (0.5, "float"),
    "--skip-eval": (False, "-"),
    "--text-anchor-weight": (10.0, "float"),
    "--text-freeze-steps": (0, "int"),
    "--text-grad-from": (0, "int"),
    "--text-lr-scale": (5.0, "float"),
    "--threads": (2, "int"),
    "--time-limit-min": (None, "float"),
    "--unet-batch": (64, "int"),
    "--unet-corner-weight": (1.0, "float"),
    "--unet-lr": (0.0006, "float"),
    "--unet-object-weight": (1.0, "float"),
    "--unet-outline-weight": (1.0, "float"),
    "--unet-pixel-below": (600, "int"),
    "--unet-pixel-weight": (0.0, "float"),
    "--unet-steps": (2800, "int"),
    "--warmup-steps": (150, "int"),
    "--work": (Path(tempfile.gettempdir()) / "latentloom_demo_model", "Path"),
    "--x0-weight-floor": (1.0, "float"),
}


def _typed(values: dict) -> dict:
    """Values with their type names, so 5 and 5.0 count as different."""
    return {name: (value, type(value).__name__) for name, value in values.items()}


def test_the_default_config_is_the_shipped_recipe() -> None:
    assert _typed(asdict(TrainConfig())) == _typed(SHIPPED_RECIPE)


def test_the_command_has_the_same_options_and_defaults() -> None:
    parser = options.build_parser()
    found = {}
    for action in parser._actions:
        long_name = action.option_strings[-1]
        kind = getattr(action.type, "__name__", "-")
        found[long_name] = (action.default if long_name != "--help" else None, kind)
    assert found == COMMAND_OPTIONS


def test_the_command_with_no_options_trains_the_shipped_recipe(monkeypatch) -> None:
    monkeypatch.setattr(options, "cpu_has_native_bf16", lambda: True)  # as the shipped run's CPU
    config = options.config_from_arguments(options.build_parser().parse_args([]))
    assert _typed(asdict(config)) == _typed(SHIPPED_RECIPE)


# The commands of the shipped weights' runs, as ``tools/demo_model/train_log.txt`` gives them
# (paths shortened): the UNet run on a saved autoencoder, the decoder stage again with swapped
# batches, and the refining phase continuing the shipped folder.
SHIPPED_COMMANDS = {
    "unet": "--autoencoder ae.safetensors --shape-code 2.5 --out out --work work",
    "decoder": "--resume ae.safetensors out --unet-steps 0 --polish-steps 0 --shape-code 2.5 "
    "--shape-code-swap-fraction 0.5 --out shipped --work work",
    "refine": "--resume ae.safetensors shipped --unet-steps 0 --polish-steps 0 --out out "
    "--work work --skip-eval",
}


@pytest.mark.parametrize("run", sorted(SHIPPED_COMMANDS))
def test_the_shipped_runs_commands_still_parse(monkeypatch, run: str) -> None:
    monkeypatch.setattr(options, "cpu_has_native_bf16", lambda: True)
    args = options.build_parser().parse_args(SHIPPED_COMMANDS[run].split())
    config = asdict(options.config_from_arguments(args))
    changed = {name for name in config if config[name] != SHIPPED_RECIPE[name]}
    assert changed <= {"unet_steps", "polish_steps"}


def test_the_refining_run_gives_the_config_recorded_beside_the_shipped_weights(
    monkeypatch,
) -> None:
    """The last run that made the shipped weights recorded its configuration in
    ``train_log.json``; its command parses to exactly that configuration today."""
    monkeypatch.setattr(options, "cpu_has_native_bf16", lambda: True)
    recorded = json.loads((components.MODEL_DIR / "train_log.json").read_text())["config"]
    args = options.build_parser().parse_args(SHIPPED_COMMANDS["refine"].split())
    assert _typed(asdict(options.config_from_arguments(args))) == _typed(recorded)
