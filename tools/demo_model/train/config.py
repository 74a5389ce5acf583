"""The recipe's numbers (``TrainConfig``), its learning-rate schedule and the loss log.

Every value of ``TrainConfig`` is the shipped recipe's; ``python -m tools.demo_model.train``
with no options trains the shipped model. The switches that were tried and did not ship come
last, each off by default; what every setting gave when it was varied is in
``tools/demo_model/EXPERIMENTS.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Every number that decides the result; saved next to the model in ``train_log.json``."""

    seed: int = 0
    scenes: int = 20_000
    threads: int = 2

    # Stage 1, the autoencoder.
    ae_steps: int = 700
    ae_batch: int = 32
    ae_lr: float = 1e-3
    ae_kl_weight: float = 1e-6  # LDM paper, appendix G: "KL-reg" models use a weight of ~1e-6
    # Objects cover a few percent of a scene; weighting their pixels up in stage 1 too makes the
    # encoder keep their outline (measured 2026-11-22: shape read back from reconstructions
    # capped at 84 % with the weighting in the decoder stage only).
    ae_object_weight: float = 5.0
    # A learned 1×1 projection of the latent must match the image average-pooled to latent
    # resolution, so the latent→RGB live preview is close to the decoded picture (2026-11-22:
    # least-squares fit RMSE 0.22 without this term, 0.054 with it).
    ae_preview_weight: float = 0.1

    # Stage 2, the decoder fine-tuned with the encoder frozen (as Stability's ft-MSE VAE
    # decoders): objects cover a few percent of a scene, so their pixels weigh object_weight
    # times more.
    decoder_steps: int = 500
    decoder_lr: float = 5e-4
    object_weight: float = 10.0

    # Stage 3, shape codes in the latent (``--shape-code``; 0: off; ``shape_codes.py``). The
    # latent's least-used direction (std 0.14 against 1.0-2.7 for the other three) is set to
    # each object's ``SHAPE_CODES`` value times this over the cells of its box in the latents
    # the UNet learns, and the decoder is fine-tuned for ``shape_code_steps`` more steps to
    # draw from such latents (``shape_code_fraction`` of each batch; the rest keep the
    # encoder's own value, so a user's encoded picture still decodes as before). Without the
    # code a circle and a square of one colour and place lie only 1.7-5 apart in latent space
    # against ~16 for two colours, and every model drew the same shape for both words; with it
    # held-out shape rose from 55.6 to 73.8 % (2026-12-06).
    shape_code: float = 2.5
    shape_code_steps: int = 400
    shape_code_fraction: float = 0.75
    # Of the coded samples, this fraction decodes the latent of the same scene with circles and
    # squares swapped, carrying the drawn scene's code: a decoder that only ever sees agreeing
    # latents draws from the outline and ignores the code. The UNet does not depend on the
    # decoder, so this changes nothing it learns. 0.5 is the shipped value; 1.0 (800 steps)
    # made the decoder obey the code but gave the same held-out shape and a worse autoencoder
    # ceiling (85.6 against 96.2 %).
    shape_code_swap_fraction: float = 0.5

    # Stage 4, the UNet and the jointly trained text encoder: the main phase.
    unet_steps: int = 2800
    unet_batch: int = 64
    unet_lr: float = 6e-4
    text_lr_scale: float = 5.0
    # A penalty on the text encoder's drift (``--text-anchor-weight``): this weight times the
    # mean squared difference between its output and that of a frozen copy of its initial
    # weights. The UNet learns to use the position words late, and until it does, training
    # erases their difference ("left" and "right" 11.9 apart at initialisation, under 0.2
    # after 1,000 steps without the anchor; 2026-11-23); words it uses early (colour) pull
    # harder than the anchor. 0: off.
    text_anchor_weight: float = 10.0
    warmup_steps: int = 150
    final_lr_fraction: float = 0.05
    weight_decay: float = 0.01
    empty_caption_fraction: float = 0.1  # classifier-free guidance (Ho & Salimans 2022)
    # Min-SNR-γ loss weighting (Hang et al. 2023), γ = 5 as in the paper.
    min_snr_gamma: float = 5.0
    # A floor under the x0 weight that the ε-loss puts on each timestep (``--x0-weight-floor``):
    # the ε-loss weighs x0 errors by SNR, under 0.024 for t > 850, the only timesteps where x_t
    # does not yet show where the object is and the position words can lower the loss. 0: off.
    # 1, with the high-noise half-batches below, is what teaches the layout (2026-11-22); 0.1
    # alone left position at chance.
    x0_weight_floor: float = 1.0
    # Offset noise (Guttenberg 2023): a per-channel constant added to the noise, so the mean
    # colour of x_T leaks nothing and the background must come from the prompt.
    offset_noise: float = 0.1
    # A fraction of every batch drawn from the noisiest timesteps only, high_noise_from..999
    # (``--high-noise-fraction``, ``--high-noise-from``), the rest uniformly from 0..999. Only
    # there does the position word lower the loss (x_t shows the place below t ~ 900). 0: off.
    # From 800 the position check placed 35-80 % and lost the background; from 900, 95 % with
    # it (2026-11-22).
    high_noise_fraction: float = 0.5
    high_noise_from: int = 900
    # high_noise_fraction and x0_weight_floor apply to the first ``high_noise_steps`` steps
    # only; after them timesteps are uniform and the loss is plain Min-SNR-γ, for the low-noise
    # detail that a high-noise-heavy batch starves (a frozen-text run trained on the noisy band
    # throughout drew soft blobs, 2026-11-23). 0: every step.
    high_noise_steps: int = 2200
    # Timesteps are drawn from 0 up to (not including) this; 1000: all of them. Only the
    # refining phase draws fewer.
    unet_timestep_below: int = 1000
    # 0.999 is effectively 0.9968 at 2,800 steps (the (1 + n) / (10 + n) warm-up). Against the
    # last weights of the same run (2026-12-03): the same held-out accuracy, but the default
    # prompt's red circle red for 3 of 4 seeds against 1 of 4.
    ema_decay: float = 0.999
    # Weight of the ε-loss of the latent cells within one cell of an object's outline, inside
    # or out (``--unet-outline-weight``; 1: off): where a square's corners and a circle's curve
    # differ. Off in the main phase (with 3 there too, the command's model drew the default
    # prompt's red circle purple for 7 of 8 seeds, 2026-12-04); the polish and the refining
    # phase use ``polish_outline_weight``.
    unet_outline_weight: float = 1.0

    # The polishing phase (``--polish-steps``, ``--polish-lr``; 0 steps: off): the main phase's
    # exported average trained on for this many more steps with a fresh optimizer, its own
    # warm-up and cosine from ``polish_lr``, uniform timesteps under plain Min-SNR-γ, an
    # average of decay ``polish_ema_decay`` and the outline cells weighed
    # ``polish_outline_weight`` times (``unet_phases.polish_config``). The main phase's uniform
    # part runs at the tail of its cosine (1e-4 down to 3e-5); 400 steps from 2e-4 lifted
    # held-out colour from 89.4 to 95.0 % and shape from 41.2 to 46.2 %, and the outline weight
    # shape to 53.1 % (2026-12-03).
    polish_steps: int = 400
    polish_lr: float = 2e-4
    polish_warmup_steps: int = 30
    polish_ema_decay: float = 0.99
    polish_outline_weight: float = 3.0

    # The refining phase after the polish (``--refine-steps``, ``--refine-timestep-below``; 0
    # steps: off): the polish's settings with timesteps drawn only below
    # ``refine_timestep_below``, the nearly clean steps where guidance is off in the default
    # workflow and the UNet alone settles a square's edges (``unet_phases.refine_config``).
    # Held-out shape with 20 DDIM steps 78.1 -> 83.8 % (2026-12-06).
    refine_steps: int = 400
    refine_timestep_below: int = 400

    # bf16 autocast for the UNet and text encoder. The command's ``--precision auto`` (its
    # default) keeps it only where the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX):
    # elsewhere autocast emulates it, and a training step takes ten times as long as in float32
    # (an AMD EPYC with AVX2 only, 2026-12-03: 25.2 against 1.9-2.6 s a step;
    # ``options.precision_for``).
    bf16: bool = True
    checkpoint_every: int = 500
    log_every: int = 25

    # Switches tried and not shipped. Each is off here, as in the shipped recipe, and kept so
    # that the experiments in EXPERIMENTS.md can be rerun; the code of the larger ones is in
    # ``experimental.py``.
    #
    # The text encoder keeps its initial weights for this many first steps
    # (``--text-freeze-steps``). Freezing it kept the position words apart but left colour at
    # 66 %, and training it after a frozen phase erased them again (2026-11-23).
    text_freeze_steps: int = 0
    # The text encoder learns only from the samples with t >= this (``--text-grad-from``; 0: from
    # every sample). It erased the position words further (2026-11-23).
    text_grad_from: int = 0
    # Discount per level of multi-resolution ("pyramid") noise (``--pyramid-noise``): a model
    # trained with it draws blotches from the white noise every sampler starts from
    # (2026-11-22).
    pyramid_noise: float = 0.0
    # Weight of the ε-loss of the latent cells an object touches (``--unet-object-weight``; 1:
    # off). 5, with 5,000 steps of 32, lowered every held-out attribute (2026-11-22).
    unet_object_weight: float = 1.0
    # Weight of the ε-loss of the latent cells at the four corners of each object's box
    # (``--unet-corner-weight``, ``--polish-corner-weight``; 1: off;
    # ``experimental.latent_corner_weights``). 6 in the polish: within noise, no dose response
    # (2026-12-05, 2026-12-06).
    unet_corner_weight: float = 1.0
    polish_corner_weight: float = 1.0
    # A loss in pixel space beside the ε-loss (``--unet-pixel-weight``,
    # ``--polish-pixel-weight``; 0: off; ``experimental.decoded_estimate_loss``): for the
    # samples with t < unet_pixel_below, the UNet's x0 estimate is decoded by the frozen
    # autoencoder and compared with the drawn scene. In the polish: no better shape at 1.5 times
    # its cost (2026-12-05).
    unet_pixel_weight: float = 0.0
    unet_pixel_below: int = 600
    polish_pixel_weight: float = 0.0


def warmup_cosine_lr(
    step: int, progress: float, peak: float, warmup: int, final_fraction: float
) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine from ``peak`` down to
    ``final_fraction`` of it as ``progress`` goes from 0 to 1 (by steps or by time)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def cosine_lr(step: int, total: int, peak: float, warmup: int, final_fraction: float) -> float:
    """Linear warm-up, then cosine decay to ``final_fraction`` of the peak at step ``total``."""
    progress = (step - warmup) / max(1, total - warmup)
    return warmup_cosine_lr(step, progress, peak, warmup, final_fraction)


class LossLog:
    """Losses by stage and step, printed as they come and kept for ``train_log.json``."""

    def __init__(self) -> None:
        self.records: dict[str, list[list[float]]] = {}
        self.start = time.time()

    def add(self, stage: str, step: int, loss: float, **extra: float) -> None:
        self.records.setdefault(stage, []).append([step, round(loss, 5)])
        elapsed = time.time() - self.start
        details = " ".join(f"{k}={v:.3g}" for k, v in extra.items())
        print(
            f"[{elapsed / 60:6.1f} min] {stage} step {step:5d} loss {loss:.5f} {details}",
            flush=True,
        )
