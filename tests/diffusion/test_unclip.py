"""Stable unCLIP: SD 2.1 unCLIP single files load with their image input, image encoder and
augmentation, and sampling with a picture matches diffusers' StableUnCLIPImg2ImgPipeline."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from diffusers import DDPMScheduler, EulerDiscreteScheduler, StableUnCLIPImg2ImgPipeline
from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import (
    StableUnCLIPImageNormalizer,
)
from transformers import CLIPImageProcessor, CLIPTokenizer

from core.diffusion.conditioning import Conditioning, ConditioningEntry
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.resources import CLIP_TOKENIZER
from core.diffusion.sampling import SamplerSettings, sample, schedule_sigmas, seeded_noise
from core.diffusion.schedulers import scheduler_config
from core.diffusion.unclip import (
    SLOT,
    UnclipImage,
    UnclipInput,
    UnclipPrompts,
    class_input,
    cosine_alphas_cumprod,
    load_unclip_checkpoint,
)
from tests.helpers.image_prompts import make_tiny_unclip, write_unclip_checkpoint
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file
from tests.sampling.harness import latent_psnr, random_conditioning

SEED, CFG, STEPS = 7, 4.0, 4
LATENT = (1, 4, 16, 16)


@functools.cache
def _unclip():
    return make_tiny_unclip(seed=5, output_scale=30.0)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    path = tmp_path_factory.mktemp("unclip") / "sd21-unclip-h.ckpt"
    return load_unclip_checkpoint(write_unclip_checkpoint(_unclip(), path, schedule=False))


def test_the_checkpoint_loads_its_image_input_encoder_and_augmentation(loaded):
    tiny = _unclip()
    unet = loaded.checkpoint.model.unet
    assert unet.config.class_embed_type == "projection"
    assert unet.config.projection_class_embeddings_input_dim == 2 * tiny.embed_dim
    for key, tensor in tiny.pipeline.unet.state_dict().items():
        assert torch.equal(unet.state_dict()[key], tensor), key
    for key, tensor in tiny.vision.state_dict().items():
        assert torch.equal(loaded.clip_vision.model.state_dict()[key], tensor), key
    (extra,) = loaded.checkpoint.model.unet_extras
    assert isinstance(extra, UnclipInput)
    assert torch.equal(extra.noiser.mean, tiny.mean) and torch.equal(extra.noiser.std, tiny.std)
    assert loaded.checkpoint.family is ModelFamily.SD2
    storages = loaded.checkpoint.model.cache_storages()
    assert extra.noiser.mean.untyped_storage().data_ptr() in {ptr for _, ptr in storages}


def test_the_missing_schedule_is_the_cosine_one_diffusers_noises_with():
    reference = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    assert torch.allclose(cosine_alphas_cumprod(1000), reference.alphas_cumprod, atol=1e-6)


def test_a_checkpoint_without_the_image_input_is_refused_naming_it(tmp_path):
    path = write_single_file(make_tiny_pipeline(ModelFamily.SD2), tmp_path / "v2-1_768.ckpt")
    with pytest.raises(ModelLoadError, match=r"v2-1_768\.ckpt.*not an unCLIP checkpoint"):
        load_unclip_checkpoint(path)


def _conditioning(entry: ConditioningEntry, images: tuple[UnclipImage, ...]) -> Conditioning:
    extras = {SLOT: UnclipPrompts(images)} if images else {}
    return Conditioning((ConditioningEntry(entry.embeds, extras=extras),))


def _ours(loaded, images, seed: int = SEED) -> torch.Tensor:
    pipeline = _unclip().pipeline
    positive = _conditioning(random_conditioning(pipeline, 1)[0], images)
    negative = random_conditioning(pipeline, 2)
    settings = SamplerSettings("euler", "normal", STEPS, CFG, seed)
    return sample(loaded.checkpoint.model, positive, negative, torch.zeros(LATENT), settings)


def test_sampling_with_a_picture_matches_diffusers_stable_unclip(loaded):
    """Euler, 4 steps, CFG 4, the picture's embedding noised to level 100 (augmentation 0.1)
    with the run's seed: diffusers draws the augmentation noise first from its generator."""
    tiny = _unclip()
    embeds = torch.randn(1, tiny.embed_dim, generator=torch.Generator().manual_seed(11))
    ours = _ours(loaded, (UnclipImage(embeds[0], 1.0, 0.1),))

    normalizer = StableUnCLIPImageNormalizer(tiny.embed_dim)
    with torch.no_grad():
        normalizer.mean.copy_(tiny.mean)
        normalizer.std.copy_(tiny.std)
    tokenizer = CLIPTokenizer.from_pretrained(str(CLIP_TOKENIZER))
    _, config = scheduler_config("euler", "normal", {"prediction_type": "v_prediction"})
    scheduler = EulerDiscreteScheduler.from_config(config)
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(),
        image_encoder=tiny.vision,
        image_normalizer=normalizer,
        image_noising_scheduler=DDPMScheduler(
            num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"
        ),
        tokenizer=tokenizer,
        text_encoder=tiny.pipeline.text_encoders[0],
        unet=tiny.pipeline.unet,
        scheduler=scheduler,
        vae=tiny.pipeline.vae,
    )
    pipe.set_progress_bar_config(disable=True)
    # This pipeline takes given latents as they are (no init_noise_sigma): start both at
    # LatentLoom's first level.
    first = float(schedule_sigmas("euler", "normal", STEPS)[0])
    start = math.sqrt(1 + first * first)
    pipeline = tiny.pipeline
    reference = pipe(
        image_embeds=embeds,
        noise_level=100,
        prompt_embeds=random_conditioning(pipeline, 1)[0].embeds,
        negative_prompt_embeds=random_conditioning(pipeline, 2)[0].embeds,
        latents=seeded_noise(SEED, LATENT) * start,
        num_inference_steps=STEPS,
        guidance_scale=CFG,
        generator=torch.Generator().manual_seed(SEED),
        output_type="latent",
        height=32,
        width=32,
    ).images
    assert latent_psnr(ours, reference) >= 40.0
    # The bar can fail: without the picture the result falls below it (about 35 dB).
    assert latent_psnr(_ours(loaded, ()), reference) < 38.0


def test_strength_weights_a_picture_and_several_pictures_mix(loaded):
    (extra,) = loaded.checkpoint.model.unet_extras
    noiser = extra.noiser
    embeds = torch.randn(2, noiser.dim, generator=torch.Generator().manual_seed(3))
    one = class_input(noiser, (UnclipImage(embeds[0], 1.0, 0.0),), seed=0)
    half = class_input(noiser, (UnclipImage(embeds[0], 0.5, 0.0),), seed=0)
    assert torch.allclose(half, one * 0.5)
    assert torch.equal(class_input(noiser, (), 0), torch.zeros(1, 2 * noiser.dim))
    both = class_input(
        noiser, (UnclipImage(embeds[0], 1.0, 0.0), UnclipImage(embeds[1], 1.0, 0.0)), seed=0
    )
    assert both.shape == one.shape and not torch.allclose(both, one, atol=1e-3)
    mixed = _ours(loaded, (UnclipImage(embeds[0], 1.0, 0.0), UnclipImage(embeds[1], 1.0, 0.0)))
    single = _ours(loaded, (UnclipImage(embeds[0], 1.0, 0.0),))
    assert torch.isfinite(mixed).all() and not torch.allclose(mixed, single)
    wrong = UnclipImage(torch.zeros(noiser.dim + 1), 1.0, 0.0)
    with pytest.raises(ValueError, match="CLIP vision model that came with the checkpoint"):
        class_input(noiser, (wrong,), 0)
