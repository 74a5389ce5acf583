"""The VAE and text encoder in bfloat16 keep the demo model's pictures within PSNR 35 dB of
float32: the default workflow through the engine, and the VAE decode alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.engine import Executor
from core.graph.workflow import load_workflow
from nodes import build_registry
from tests.sampling.harness import psnr

DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "workflows" / "default.json"
PSNR_BAR_DB = 35.0


def _node(graph, type_id: str):
    return next(node.id for node in graph if node.type_id == type_id)


def _default_run(vae_clip_dtype: str, seed: int) -> tuple[torch.Tensor, object, object]:
    registry = build_registry()
    graph = load_workflow(DEFAULT, registry).graph
    load, sampler, decode = (_node(graph, t) for t in ("LoadCheckpoint", "KSampler", "VAEDecode"))
    graph.set_param(load, "dtype", "bfloat16")
    graph.set_param(load, "vae_clip_dtype", vae_clip_dtype)
    graph.set_param(sampler, "seed", seed)
    report = Executor(registry).run(graph, [load, sampler, decode], device="cpu")
    [image] = report.outputs[decode]
    latent = report.outputs[sampler][0]
    return image, latent, report.outputs[load][2]


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_vae_and_text_encoder_keep_the_default_picture(seed):
    reference, latent, vae32 = _default_run("float32", seed)
    image, _, vae16 = _default_run("bfloat16", seed)

    assert next(vae16.vae.parameters()).dtype == torch.bfloat16
    assert next(vae32.vae.parameters()).dtype == torch.float32
    assert psnr(image, reference) >= PSNR_BAR_DB
    # The decode alone, from the very same latent.
    from core.diffusion.vae_ops import decode

    assert psnr(decode(vae16, latent["samples"]), decode(vae32, latent["samples"])) >= PSNR_BAR_DB
