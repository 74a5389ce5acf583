"""The demo model's one-command retrain, at toy scale: every stage runs and the export loads
through LatentLoom's own checkpoint loader. (The full run takes about 1.5 hours; this guards the
command against library changes such as the transformers 5 tokenizer change that once fed
every caption to training as the same ids.)"""

from __future__ import annotations

import json

import pytest
import torch

from tools.demo_model import components
from tools.demo_model.train import TokenCache


def test_training_tokenizes_different_captions_differently() -> None:
    tokens = TokenCache(components.load_tokenizer())
    ids = tokens(["a big red circle on the left, blue background", "small green square", ""])
    assert ids.shape == (3, components.MAX_TOKENS)
    assert ids[0, :3].tolist() == [49406, 320, 1205]  # <start> "a" "big", as CLIP tokenizes
    assert not torch.equal(ids[0], ids[1]) and not torch.equal(ids[1], ids[2])
    assert torch.equal(tokens(["small green square"])[0], ids[1])  # cached, same ids


@pytest.mark.slow
def test_one_command_retrains_every_stage_and_exports_a_loadable_model(tmp_path) -> None:
    from core.diffusion.loading import load_checkpoint
    from tools.demo_model import train

    out = tmp_path / "latentloom-shapes"
    train.main(
        [
            *("--scenes", "96", "--ae-steps", "2", "--decoder-steps", "1"),
            *("--unet-steps", "2", "--unet-batch", "8", "--skip-eval"),
            *("--out", str(out), "--work", str(tmp_path / "work")),
        ]
    )
    log = json.loads((out / "train_log.json").read_text())
    assert log["unet_steps_done"] == 2
    assert set(log["losses"]) == {"autoencoder", "decoder", "unet"}
    assert all(len(records) >= 1 for records in log["losses"].values())
    assert (tmp_path / "work" / "vae_decoder_tuned.safetensors").is_file()
    loaded = load_checkpoint(out)
    assert loaded.model.latent_rgb is not None  # its own fitted preview factors
    assert loaded.model.preview_vae is loaded.vae
    assert loaded.vae.scaling_factor == pytest.approx(log["scaling_factor"])
