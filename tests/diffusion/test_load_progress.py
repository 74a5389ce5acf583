"""Loads report their stages, and a progress callback that raises stops a load between them."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file, save_file

from core.diffusion.loading import load_checkpoint, load_vae


class _Stop(Exception):
    """Raised by the callback to stop a load."""


def _recorder(stop_at: int | None = None):
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if done == stop_at:
            raise _Stop

    return calls, progress


@pytest.mark.parametrize(
    ("variant", "fmt", "total"),
    [
        ("sd1", "safetensors", 4),  # read, text encoder, UNet, VAE
        ("sd1", "ckpt", 4),
        ("sdxl", "safetensors", 5),  # two text encoders
        ("sd1", "diffusers", 3),  # UNet, text encoder, VAE
        ("sdxl", "diffusers", 4),
    ],
)
def test_every_stage_of_a_load_is_reported(tiny_files, variant, fmt, total):
    calls, progress = _recorder()
    load_checkpoint(tiny_files[(variant, fmt)], progress=progress)
    assert calls == [(done, total) for done in range(1, total + 1)]


@pytest.mark.parametrize("fmt", ["safetensors", "diffusers"])
def test_a_raising_callback_stops_the_load_after_that_stage(tiny_files, fmt):
    calls, progress = _recorder(stop_at=1)
    with pytest.raises(_Stop):
        load_checkpoint(tiny_files[("sdxl", fmt)], progress=progress)
    assert calls == [(1, calls[0][1])]


def test_vae_load_reports_the_read_and_the_build(tiny_files, tmp_path):
    tensors = load_file(tiny_files[("sd1", "safetensors")])
    vae_only = {k: v for k, v in tensors.items() if k.startswith("first_stage_model.")}
    save_file(vae_only, tmp_path / "vae.safetensors")
    calls, progress = _recorder(stop_at=1)
    with pytest.raises(_Stop):
        load_vae(tmp_path / "vae.safetensors", progress=progress)
    assert calls == [(1, 2)]
