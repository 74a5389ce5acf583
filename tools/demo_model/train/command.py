"""``python -m tools.demo_model.train``: every stage in order, with fixed seeds.

The stages are in their own modules (see the package's docstring); this module only runs them,
saves what a later run may start from in the work folder (``vae.safetensors``,
``vae_decoder_tuned.safetensors``, ``vae_shape_codes.safetensors``, the phases' exports and the
checkpoints) and writes the model, its ``train_log.json`` and, unless ``--skip-eval``, its
evaluation.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict

import numpy as np
import torch
from safetensors.torch import save_file

from core.diffusion.devices import cpu_has_native_bf16
from tools.demo_model import components
from tools.demo_model.scenes import render_batch, training_scenes
from tools.demo_model.train.autoencoder import (
    autoencoder_psnr,
    encode_all,
    finetune_decoder,
    load_autoencoder,
    train_autoencoder,
)
from tools.demo_model.train.config import LossLog
from tools.demo_model.train.data import held_back
from tools.demo_model.train.export import ModelExport, fit_latent_rgb, write_training_log
from tools.demo_model.train.options import build_parser, config_from_arguments
from tools.demo_model.train.shape_codes import shape_code_stage
from tools.demo_model.train.unet_phases import train_unet_phases


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume is not None and args.autoencoder is not None:
        parser.error("--resume and --autoencoder both name an autoencoder; give one of them")
    if args.autoencoder is not None and not args.autoencoder.is_file():
        parser.error(
            f"--autoencoder {args.autoencoder} is not a file; give a run's "
            "<work>/vae_decoder_tuned.safetensors"
        )

    components.offline()
    config = config_from_arguments(args)
    torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    log = LossLog()
    print(f"config: {asdict(config)}", flush=True)
    print(
        f"precision: {'bf16 autocast' if config.bf16 else 'float32'} (--precision "
        f"{args.precision}; native bfloat16 on this CPU: {cpu_has_native_bf16()})",
        flush=True,
    )

    # The data: a fixed set of captioned scenes (``tools.demo_model.scenes``).
    scenes = training_scenes(config.scenes, config.seed)
    images = render_batch(scenes)
    backgrounds = [scene.background for scene in scenes]
    print(f"rendered {len(scenes)} scenes in {time.time() - log.start:.0f} s", flush=True)

    # Stages 1-2: the autoencoder and its decoder fine-tune, or an earlier run's result.
    autoencoder = args.autoencoder if args.resume is None else args.resume[0]
    if autoencoder is None:
        vae, first_psnr = train_autoencoder(images, backgrounds, config, log)
        save_file(vae.state_dict(), args.work / "vae.safetensors")
        print(f"autoencoder PSNR {first_psnr:.2f} dB", flush=True)
        finetune_decoder(vae, images, backgrounds, config, log)
        save_file(vae.state_dict(), args.work / "vae_decoder_tuned.safetensors")
    else:
        vae = load_autoencoder(autoencoder)
        first_psnr = float("nan")
    held = held_back(len(images))  # the last scenes, which no stage trains on
    ae_psnr = autoencoder_psnr(vae, images[-held:])
    ae_minutes = (time.time() - log.start) / 60
    print(f"autoencoder PSNR after decoder fine-tuning {ae_psnr:.2f} dB", flush=True)

    # Stage 3: every scene encoded once, shape codes written in, the decoder taught to read them.
    means, stds = encode_all(vae, images)
    shape_codes = None
    if config.shape_code:
        means, direction, ae_psnr = shape_code_stage(
            vae, images, scenes, means, config, log, args.work
        )
        shape_codes = (direction, config.shape_code)
    sample = means + stds * torch.randn(means.shape, generator=torch.Generator().manual_seed(0))
    scale = 1.0 / sample.std().item()  # LDM appendix G: unit-variance latents
    vae.register_to_config(scaling_factor=scale)
    print(f"latent std {sample.std().item():.4f} -> scaling factor {scale:.4f}", flush=True)
    export = ModelExport(vae, fit_latent_rgb(vae, (sample[:256] * scale), scale), shape_codes)

    # Stage 4: the UNet and the text encoder, main phase, polish and refining phase.
    unet, text_encoder, steps_done = train_unet_phases(
        means,
        stds,
        scale,
        images,
        scenes,
        config,
        log,
        export,
        args.work,
        None if args.time_limit_min is None else args.time_limit_min * 60,
        None if args.resume is None else args.resume[1],
        tuple(args.also_export_ema),
    )
    total_minutes = (time.time() - log.start) / 60

    # Stage 5: the model folder and its training log.
    export.write(args.out, unet, text_encoder)
    write_training_log(
        args.out,
        {
            "command": "python -m tools.demo_model.train",
            "resumed_from": None if args.resume is None else [str(p) for p in args.resume],
            "autoencoder_from": None if autoencoder is None else str(autoencoder),
            "config": asdict(config),
            "precision": {"asked": args.precision, "cpu_native_bf16": cpu_has_native_bf16()},
            "unet_steps_done": steps_done["unet"],
            "polish_steps_done": steps_done["polish"],
            "refine_steps_done": steps_done["refine"],
            "autoencoder_psnr_db": {
                "before_decoder_tuning": round(first_psnr, 2),
                "final": round(ae_psnr, 2),
            },
            "scaling_factor": scale,
            "parameters": {
                "vae": components.parameter_count(vae),
                "unet": components.parameter_count(unet),
                "text_encoder": components.parameter_count(text_encoder),
            },
            "minutes": {"autoencoder": round(ae_minutes, 1), "total": round(total_minutes, 1)},
            "losses": log.records,
        },
    )
    print(f"exported to {args.out} after {total_minutes:.1f} min", flush=True)

    # Stage 6: held-out prompts through the default workflow, and the sample grid.
    if not args.skip_eval:
        from tools.demo_model import evaluate

        evaluate.main(["--model", str(args.out)])
