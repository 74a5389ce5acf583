"""The training command's options, and the UNet-recipe options it shares with ``position_check``.

Every option defaults to its ``TrainConfig`` field, so the command with no options trains the
shipped model. The switches that were tried and not shipped are listed together under their own
heading in ``--help``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core.diffusion.devices import cpu_has_native_bf16
from tools.demo_model import components
from tools.demo_model.train.config import TrainConfig

DESCRIPTION = (
    "Train the shipped demo model from scratch: autoencoder, then UNet with a joint text encoder."
)

# The UNet-stage settings that experiments vary, as command-line options of both ``train`` and
# ``position_check`` (``--unet-lr`` for ``unet_lr`` and so on), with their help texts.
SHIPPED_RECIPE_OPTIONS: dict[str, str] = {
    "unet_lr": "peak learning rate of the UNet",
    "text_lr_scale": "the text encoder's learning rate as a multiple of the UNet's",
    "text_anchor_weight": "weight of the text encoder's squared drift from its initial output "
    "(0 = off)",
    "warmup_steps": "linear learning-rate warm-up steps",
    "ema_decay": "decay of the exported exponential moving average of the weights",
    "unet_outline_weight": "weight of the latent cells within one cell of an object's outline "
    "in the ε-loss (1 = off)",
    "x0_weight_floor": "lowest x0 weight the ε-loss gives a timestep (0 = plain Min-SNR-γ)",
    "high_noise_fraction": "fraction of each batch drawn from timesteps --high-noise-from..999",
    "high_noise_from": "lowest timestep of the high-noise part of each batch",
    "high_noise_steps": "apply --high-noise-fraction and --x0-weight-floor to this many first "
    "steps only, then uniform timesteps and plain Min-SNR-γ (0 = every step)",
    "min_snr_gamma": "Min-SNR-γ: a sample's ε-loss weight is min(SNR, γ) / SNR, which weighs "
    "the low-noise timesteps down (a large γ: the plain ε-loss of DDPM)",
}
# The switches that were tried and not shipped (``experimental.py``), each off by default.
UNSHIPPED_RECIPE_OPTIONS: dict[str, str] = {
    "text_freeze_steps": "keep the text encoder at its initial weights for this many first steps",
    "text_grad_from": "the text encoder learns only from samples with t >= this (0 = all)",
    "unet_object_weight": "weight of the latent cells an object touches in the ε-loss (1 = off)",
    "unet_corner_weight": "weight of the latent cells at the corners of each object's box in "
    "the ε-loss (1 = off)",
    "unet_pixel_weight": "weight of the pixel-space loss of the decoded x0 estimate (0 = off)",
    "unet_pixel_below": "the pixel-space loss covers the samples with t below this",
    "pyramid_noise": "discount per level of multi-resolution noise (0 = white noise, as shipped)",
}
RECIPE_OPTIONS: dict[str, str] = {**SHIPPED_RECIPE_OPTIONS, **UNSHIPPED_RECIPE_OPTIONS}

UNSHIPPED_TITLE = "switches tried and not shipped"
UNSHIPPED_DESCRIPTION = "each off by default; tools/demo_model/EXPERIMENTS.md says what it gave"

PRECISIONS = ("auto", "bf16", "fp32")


def precision_for(choice: str) -> bool:
    """Whether the UNet stage trains under bf16 autocast (``TrainConfig.bf16``) for a
    ``--precision`` choice: "auto" asks the CPU, since only AVX512-BF16 / AMX compute bfloat16
    in hardware and emulated bfloat16 is ten times slower than float32 here. The two
    precisions train numerically different models: a run reproduces another's weights only in
    the same precision."""
    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r}; choose one of {', '.join(PRECISIONS)}")
    return cpu_has_native_bf16() if choice == "auto" else choice == "bf16"


def add_recipe_arguments(
    parser: argparse.ArgumentParser, unshipped: argparse._ArgumentGroup | None = None
) -> None:
    """Add an option for every ``RECIPE_OPTIONS`` field, defaulting to ``TrainConfig``'s value,
    and ``--precision``; the ``UNSHIPPED_RECIPE_OPTIONS`` go under the heading ``unshipped``
    (a new one when not given)."""
    defaults = TrainConfig()
    if unshipped is None:
        unshipped = parser.add_argument_group(UNSHIPPED_TITLE, UNSHIPPED_DESCRIPTION)
    for name, help_text in RECIPE_OPTIONS.items():
        default = getattr(defaults, name)
        target = unshipped if name in UNSHIPPED_RECIPE_OPTIONS else parser
        target.add_argument(
            "--" + name.replace("_", "-"), type=type(default), default=default, help=help_text
        )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="UNet and text-encoder arithmetic: bf16 autocast or float32; auto (the default): "
        "bf16 where the CPU has native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere. The "
        "shipped model was trained in bf16; float32 gives a different model",
    )


def recipe_from_arguments(args: argparse.Namespace) -> dict:
    """The ``RECIPE_OPTIONS`` fields of parsed arguments and the precision they resolve to, as
    ``TrainConfig`` keyword arguments."""
    recipe = {name: getattr(args, name) for name in RECIPE_OPTIONS}
    recipe["bf16"] = precision_for(args.precision)
    return recipe


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m tools.demo_model.train``."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--out", type=Path, default=components.MODEL_DIR)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "latentloom_demo_model"
    )
    parser.add_argument("--scenes", type=int, default=TrainConfig.scenes)
    parser.add_argument("--ae-steps", type=int, default=TrainConfig.ae_steps)
    parser.add_argument("--decoder-steps", type=int, default=TrainConfig.decoder_steps)
    parser.add_argument(
        "--shape-code",
        type=float,
        default=TrainConfig.shape_code,
        help="put each object's shape code, this large, into the latent's least-used "
        "direction over its box and fine-tune the decoder to draw from it (0: off)",
    )
    parser.add_argument("--shape-code-steps", type=int, default=TrainConfig.shape_code_steps)
    parser.add_argument(
        "--shape-code-swap-fraction",
        type=float,
        default=TrainConfig.shape_code_swap_fraction,
        help="of the coded samples of the shape-code fine-tune, the fraction that decodes the "
        "scene's latent with circles and squares swapped under the scene's own code",
    )
    parser.add_argument("--unet-steps", type=int, default=TrainConfig.unet_steps)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument(
        "--time-limit-min",
        type=float,
        default=None,
        help="stop UNet training after this many minutes in all and export (breaks exact "
        "reproducibility, which then depends on machine speed)",
    )
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument(
        "--resume",
        type=Path,
        nargs=2,
        metavar=("AUTOENCODER", "MODEL_FOLDER"),
        help="skip stages 1-2: take the autoencoder from a run's vae_decoder_tuned.safetensors "
        "(or vae.safetensors) and continue UNet and text encoder from an exported folder",
    )
    parser.add_argument(
        "--autoencoder",
        type=Path,
        metavar="AUTOENCODER",
        help="skip stages 1-2 and take the autoencoder from a run's "
        "vae_decoder_tuned.safetensors, then train UNet and text encoder from scratch; with the "
        "same settings this gives exactly what the full command gives, since stages 1-2 are "
        "deterministic",
    )
    parser.add_argument("--unet-batch", type=int, default=TrainConfig.unet_batch)
    parser.add_argument(
        "--polish-steps",
        type=int,
        default=TrainConfig.polish_steps,
        help="steps of the polishing phase after the main one (0: none; give 0 with --resume "
        "to continue a folder only as the other options say)",
    )
    parser.add_argument(
        "--refine-steps",
        type=int,
        default=TrainConfig.refine_steps,
        help="steps of the refining phase after the polish, on low-noise timesteps only (0: none)",
    )
    parser.add_argument(
        "--refine-timestep-below",
        type=int,
        default=TrainConfig.refine_timestep_below,
        help="the refining phase draws its timesteps from 0 up to this",
    )
    parser.add_argument(
        "--polish-lr",
        type=float,
        default=TrainConfig.polish_lr,
        help="peak learning rate of the polishing phase",
    )
    unshipped = parser.add_argument_group(UNSHIPPED_TITLE, UNSHIPPED_DESCRIPTION)
    add_recipe_arguments(parser, unshipped)
    unshipped.add_argument(
        "--polish-pixel-weight",
        type=float,
        default=TrainConfig.polish_pixel_weight,
        help="weight of the pixel-space loss in the polishing phase (0: off)",
    )
    unshipped.add_argument(
        "--polish-corner-weight",
        type=float,
        default=TrainConfig.polish_corner_weight,
        help="weight of the latent cells at the corners of each object's box in the polishing "
        "phase's ε-loss (1: off)",
    )
    unshipped.add_argument(
        "--also-export-ema",
        type=float,
        nargs="+",
        default=[],
        metavar="DECAY",
        help="also export the weights averaged with these EMA decays to <work>/ema-<decay> "
        "(0: the last weights), from the same run, for comparison with --ema-decay's",
    )
    return parser


def config_from_arguments(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` that parsed ``build_parser`` arguments ask for."""
    return TrainConfig(
        scenes=args.scenes,
        ae_steps=args.ae_steps,
        decoder_steps=args.decoder_steps,
        shape_code=args.shape_code,
        shape_code_steps=args.shape_code_steps,
        shape_code_swap_fraction=args.shape_code_swap_fraction,
        unet_steps=args.unet_steps,
        threads=args.threads,
        unet_batch=args.unet_batch,
        polish_steps=args.polish_steps,
        refine_steps=args.refine_steps,
        refine_timestep_below=args.refine_timestep_below,
        polish_lr=args.polish_lr,
        polish_pixel_weight=args.polish_pixel_weight,
        polish_corner_weight=args.polish_corner_weight,
        **recipe_from_arguments(args),
    )
