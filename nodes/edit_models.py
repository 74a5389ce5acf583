"""Instruction-editing models (InstructPix2Pix, Brooks et al. 2023; CosXL Edit): the picture to
edit rides with the conditioning, and the UNet sees its latent beside the noisy one. ComfyUI's
node name and sockets (InstructPixToPixConditioning), so its edit workflows import and run."""

from __future__ import annotations

from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput
from nodes.placement import place


def _instruct_pix2pix_conditioning(
    ctx: Any, positive: Any, negative: Any, vae: Any, pixels: Any
) -> tuple[Any, Any, dict[str, Any]]:
    import torch

    from core.diffusion import vae_ops
    from core.diffusion.conditioning import set_concat_latent
    from core.engine import NodeError

    place(ctx, vae.vae)
    try:
        scaled = vae_ops.encode(vae, pixels)
    except ValueError as exc:
        raise NodeError(str(exc), field="pixels") from None
    # The UNet was trained on the encoder's own latent (the posterior's mode, unscaled);
    # the sampler scales it where a model wants it scaled.
    picture = scaled / vae.scaling_factor
    latent = {"samples": torch.zeros_like(scaled), "downscale": vae_ops.latent_factor(vae)}
    return set_concat_latent(positive, picture), set_concat_latent(negative, picture), latent


SPECS: tuple[NodeSpec, ...] = (
    NodeSpec(
        "InstructPixToPixConditioning",
        "InstructPixToPixConditioning",
        "conditioning/instructpix2pix",
        _instruct_pix2pix_conditioning,
        inputs=(
            SocketInput("positive", t.CONDITIONING, description="the edit instruction"),
            SocketInput("negative", t.CONDITIONING),
            SocketInput("vae", t.VAE),
            SocketInput("pixels", t.IMAGE, description="the picture to edit"),
        ),
        outputs=(
            Output("positive", t.CONDITIONING),
            Output("negative", t.CONDITIONING),
            Output("latent", t.LATENT, description="an empty latent of the picture's size"),
        ),
        description="Prepares an edit for an instruction-editing model (InstructPix2Pix, "
        "CosXL Edit): the picture is encoded and travels with both prompts, and the latent "
        "to sample is an empty one of its size. Write the positive prompt as an instruction "
        '("make it winter"). For the image guidance of the paper, sample with Dual CFG '
        "Guider: cond1 this positive, cond2 this negative, negative the plain negative.",
    ),
)
