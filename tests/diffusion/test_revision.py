"""SDXL "revision": unCLIP Conditioning on an SDXL base model puts the picture's CLIP image
embedding, weighted by strength and noise-augmented, in the pooled text embedding's place in
the UNet's added embedding; strength 0 leaves the text alone."""

from __future__ import annotations

import functools

import pytest
import torch

from core.diffusion.conditioning import Conditioning, with_extra
from core.diffusion.families import ModelFamily
from core.diffusion.sampling import SamplerSettings, sample
from core.diffusion.unclip import SLOT, add_images, revision_noiser
from nodes.image_prompts import _unclip_conditioning
from tests.helpers.tiny_models import make_tiny_pipeline
from tests.sampling.harness import model_of, random_conditioning

SETTINGS = SamplerSettings("euler", "normal", 2, 1.0, 3)


@functools.cache
def _pipeline():
    return make_tiny_pipeline(ModelFamily.SDXL, seed=6)


def _width() -> int:
    return int(_pipeline().text_encoders[1].config.projection_dim)


def _image_embeds(seed: int = 4, width: int | None = None) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, width or _width(), generator=generator)


def _revision(conditioning, embeds, strength, noise_augmentation=0.0):
    output = type("ClipVisionOutput", (), {"image_embeds": embeds})()
    return _unclip_conditioning(None, conditioning, output, strength, noise_augmentation)


def _pooled_into_unet(conditioning) -> list[torch.Tensor]:
    """The pooled vectors the UNet's added embedding receives while sampling (one per call)."""
    unet = _pipeline().unet
    seen: list[torch.Tensor] = []

    def record(module, args, kwargs):
        seen.append(args[0][:, : _width()].detach().clone())

    handle = unet.add_embedding.register_forward_pre_hook(record, with_kwargs=True)
    try:
        sample(model_of(_pipeline()), conditioning, conditioning, torch.zeros(1, 4, 8, 8), SETTINGS)
    finally:
        handle.remove()
    return seen


def test_the_image_embedding_replaces_the_pooled_text_embedding_by_strength():
    text = random_conditioning(_pipeline(), 1)
    embeds = _image_embeds()
    unchanged = _revision(text, embeds, 0.0)
    assert unchanged is text  # strength 0: text only
    text_pooled = _pooled_into_unet(text)[0]
    torch.testing.assert_close(text_pooled, text[0].pooled)

    once = _pooled_into_unet(_revision(text, embeds, 1.0))[0]
    twice = _pooled_into_unet(_revision(text, embeds, 2.0))[0]
    torch.testing.assert_close(twice, 2 * once)
    # At augmentation 0 the picture is noised only by the lowest level: √(1−ᾱ₀) ≈ 0.006.
    assert (once - embeds).abs().max() < 0.05
    assert not torch.allclose(once, text_pooled, atol=0.1)
    # Noise augmentation moves it towards noise (√ᾱ shrinks the picture's part).
    noisy = _pooled_into_unet(_revision(text, embeds, 1.0, noise_augmentation=0.9))[0]
    alpha = revision_noiser(_width()).alphas_cumprod[round(999 * 0.9)]
    assert float(alpha) < 0.5
    assert (noisy - embeds).abs().mean() > 5 * (once - embeds).abs().mean()


def test_revision_steers_the_sampled_latent():
    text = random_conditioning(_pipeline(), 1)
    latent = torch.zeros(1, 4, 8, 8)

    def run(conditioning):
        return sample(model_of(_pipeline()), conditioning, conditioning, latent, SETTINGS)

    assert not torch.allclose(run(text), run(_revision(text, _image_embeds(), 1.0)), atol=1e-4)
    torch.testing.assert_close(run(text), run(_revision(text, _image_embeds(), 0.0)))


def test_two_pictures_add_up_before_they_enter():
    text = random_conditioning(_pipeline(), 1)
    first, second = _image_embeds(4), _image_embeds(5)
    both = _revision(_revision(text, first, 1.0), second, 0.5)
    pooled = _pooled_into_unet(both)[0]
    assert (pooled - (first + 0.5 * second)).abs().max() < 0.05


def test_an_image_embedding_of_another_width_is_refused_naming_vit_big_g():
    text = random_conditioning(_pipeline(), 1)
    entry = text[0]
    wrong = with_extra(entry, SLOT, add_images(entry.extras, _image_embeds(width=7), 1.0, 0.0))
    with pytest.raises(ValueError, match=r"7 wide.*ViT-bigG"):
        _pooled_into_unet(Conditioning((wrong,)))
