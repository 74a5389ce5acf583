"""Latent, mask, image and VAE operations, and the sampling nodes driven like the engine does."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from core.diffusion import latents, masks, vae_ops
from core.diffusion.images import scale
from core.engine.context import CancelToken, NodeContext
from nodes import build_registry
from tests.sampling.harness import model_of, random_conditioning, tiny, vae_of


def test_empty_and_noise_latents() -> None:
    assert latents.empty(64, 32, 2)["samples"].shape == (2, 4, 4, 8)
    a, b = latents.noise(5, 64, 64)["samples"], latents.noise(5, 64, 64)["samples"]
    assert torch.equal(a, b) and abs(float(a.std()) - 1) < 0.3


def test_upscale_methods_and_sizes() -> None:
    latent = {"samples": torch.randn(1, 4, 8, 8), "noise_mask": torch.ones(1, 64, 64)}
    for method in latents.UPSCALE_METHODS:
        out = latents.upscale(latent, 128, 96, method)
        assert out["samples"].shape == (1, 4, 12, 16) and "noise_mask" in out
    assert latents.upscale_by(latent, 1.5, "bilinear")["samples"].shape == (1, 4, 12, 12)
    constant = {"samples": torch.full((1, 4, 8, 8), 0.3)}
    assert torch.allclose(latents.upscale_by(constant, 2, "bicubic")["samples"], torch.tensor(0.3))


def test_interpolation_ends_and_spherical_norm() -> None:
    a, b = {"samples": torch.randn(2, 4, 8, 8)}, {"samples": torch.randn(2, 4, 8, 8)}
    for method in latents.INTERPOLATIONS:
        assert torch.allclose(
            latents.interpolate(a, b, 0.0, method)["samples"], a["samples"], atol=1e-5
        )
        assert torch.allclose(
            latents.interpolate(a, b, 1.0, method)["samples"], b["samples"], atol=1e-5
        )
    mid_lin = latents.interpolate(a, b, 0.5, "linear")["samples"]
    mid_sph = latents.interpolate(a, b, 0.5, "spherical")["samples"]
    # Near-orthogonal Gaussian latents: slerp keeps the norm, lerp shrinks it by ~1/√2.
    norm = a["samples"][0].norm()
    assert abs(float(mid_sph[0].norm() / norm) - 1) < 0.1
    assert abs(float(mid_lin[0].norm() / norm) - 1 / math.sqrt(2)) < 0.1


def test_batch_from_batch_and_repeat() -> None:
    a = {"samples": torch.randn(2, 4, 8, 8)}
    b = {"samples": torch.randn(1, 4, 4, 4), "noise_mask": torch.zeros(1, 32, 32)}
    joined = latents.batch(a, b)
    assert joined["samples"].shape == (3, 4, 8, 8) and joined["batch_index"] == [0, 1, 2]
    assert joined["noise_mask"].shape == (3, 64, 64)
    assert (
        float(joined["noise_mask"][:2].min()) == 1.0 and float(joined["noise_mask"][2].max()) == 0
    )
    picked = latents.from_batch(joined, 1, 2)
    assert torch.equal(picked["samples"], joined["samples"][1:3]) and picked["batch_index"] == [
        1,
        2,
    ]
    repeated = latents.repeat(a, 3)
    assert repeated["samples"].shape == (6, 4, 8, 8) and repeated["batch_index"] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]
    assert "batch_index" not in a  # inputs untouched


def test_mask_operations() -> None:
    mask = torch.zeros(1, 9, 9)
    mask[0, 4, 4] = 1
    grown = masks.grow_mask(mask, 2)
    assert float(grown.sum()) == 25
    tapered = masks.grow_mask(mask, 2, tapered_corners=True)
    assert 1 < float(tapered.sum()) < 25
    assert torch.equal(masks.grow_mask(grown, -2), mask)
    feathered = masks.grow_mask(mask, 1, feather=2.0)
    assert 0 < float(feathered[0, 0, 4]) < float(feathered[0, 4, 4]) <= 1
    assert torch.equal(masks.invert(masks.solid(0.25, 3, 2)), torch.full((1, 2, 3), 0.75))
    dest, src = masks.solid(0.5, 4, 4), masks.solid(1.0, 2, 2)
    added = masks.composite(dest, src, 3, 3, "add")
    assert float(added[0, 3, 3]) == 1.0 and float(added[0, 0, 0]) == 0.5
    assert float(masks.composite(dest, src, 0, 0, "subtract")[0, 0, 0]) == 0.0
    assert float(masks.composite(dest, src, 0, 0, "multiply")[0, 1, 1]) == 0.5
    assert float(masks.composite(masks.solid(0.2, 4, 4), src, 0, 0, "and")[0, 0, 0]) == 0
    assert float(masks.composite(masks.solid(0.2, 4, 4), src, 0, 0, "or")[0, 0, 0]) == 1
    image = torch.rand(1, 5, 6, 3)
    assert torch.equal(masks.from_image(image, "green"), image[..., 1])
    assert masks.to_image(masks.from_image(image, "red")).shape == (1, 5, 6, 3)
    assert masks.crop(masks.from_image(image, "red"), 1, 2, 3, 2).shape == (1, 2, 3)


def test_load_mask_alpha_is_inverted(tmp_path: Path) -> None:
    from PIL import Image

    picture = Image.new("RGBA", (4, 3), (255, 0, 0, 0))
    picture.putpixel((1, 1), (0, 0, 0, 255))
    picture.save(tmp_path / "m.png")
    alpha = masks.load_mask(str(tmp_path / "m.png"), "alpha")
    assert alpha.shape == (1, 3, 4) and float(alpha[0, 1, 1]) == 0 and float(alpha[0, 0, 0]) == 1
    assert float(masks.load_mask(str(tmp_path / "m.png"), "red")[0, 0, 0]) == 1


def test_image_scale_keeps_aspect_and_range() -> None:
    image = torch.rand(1, 10, 20, 3)
    assert scale(image, 40, 0, "bicubic", "disabled").shape == (1, 20, 40, 3)
    out = scale(image, 10, 10, "bicubic", "center")
    assert out.shape == (1, 10, 10, 3) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_tiled_decode_blends_to_the_whole_decode_for_a_local_decoder() -> None:
    """With a decoder whose pixels depend only on their own latent cell, any tiling must give
    exactly the whole decode: what is tested is the tile placement and the blending."""
    weight = torch.randn(3, 4)

    def decode(z: torch.Tensor) -> torch.Tensor:
        pixels = torch.einsum("oc,bchw->bohw", weight, z)
        return torch.nn.functional.interpolate(pixels, scale_factor=8, mode="nearest")

    latent = torch.randn(1, 4, 37, 29)
    whole = decode(latent)
    tiled = vae_ops.decode_tiled(decode, latent, 8, tile=16, overlap=4)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)


def test_vae_round_trip_shapes_and_forced_tiling() -> None:
    vae = vae_of(tiny())
    image = torch.rand(2, 34, 30, 3)
    encoded = vae_ops.encode(vae, image)
    assert encoded.shape == (2, 4, 17, 15)
    decoded = vae_ops.decode(vae, encoded)
    assert decoded.shape == (2, 34, 30, 3) and float(decoded.min()) >= 0
    tiled = vae_ops.decode(vae, encoded, tile=8, overlap=2)
    assert tiled.shape == decoded.shape
    samples, grown = vae_ops.encode_for_inpaint(vae, image, torch.zeros(1, 34, 30), grow_by=2)
    assert torch.equal(samples, encoded) and float(grown.max()) == 0


def test_the_vae_runs_channels_last_and_hands_back_plain_tensors() -> None:
    vae = vae_of(tiny())
    seen: list[bool] = []

    def record(module, args):
        seen.append(args[0].is_contiguous(memory_format=torch.channels_last))

    convs = [m for m in vae.vae.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 4]
    hooks = [conv.register_forward_pre_hook(record) for conv in convs]
    try:
        image = torch.rand(1, 32, 24, 3)
        encoded = vae_ops.encode(vae, image)
        decoded = vae_ops.decode(vae, encoded)
        tiled = vae_ops.encode_in_tiles(vae, image, tile=16, overlap=8)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and all(seen)  # every wide convolution saw channels-last activations
    for out in (encoded, decoded, tiled):
        assert out.is_contiguous()  # the UNet and image nodes get plain layouts back
    # The layout changes the speed, not the result.
    with torch.inference_mode():
        plain = vae.vae.decode(encoded.contiguous() / vae.scaling_factor, return_dict=False)[0]
    expected = ((plain + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1)
    torch.testing.assert_close(decoded, expected, rtol=1e-4, atol=1e-5)


class _Events:
    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, event: object) -> None:
        self.events.append(event)


def _context(tmp_path: Path) -> tuple[NodeContext, _Events]:
    events = _Events()
    return NodeContext("n1", "KSampler", CancelToken(), events, tmp_path), events


def test_ksampler_node_reports_progress_previews_and_keeps_the_mask(tmp_path: Path) -> None:
    from core.engine.events import Preview, Progress

    registry = build_registry()
    pipeline = tiny()
    model = model_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    empty = registry.get("EmptyLatentImage").function(None, width=128, height=128, batch_size=1)
    masked = registry.get("SetLatentNoiseMask").function(None, empty, torch.ones(1, 128, 128))
    ctx, events = _context(tmp_path)
    out, history = registry.get("KSampler").function(
        ctx,
        model,
        positive,
        negative,
        masked,
        seed=1,
        steps=3,
        cfg=4.0,
        sampler_name="euler",
        scheduler="normal",
        denoise=1.0,
    )
    assert out["samples"].shape == (1, 4, 16, 16) and "noise_mask" in out
    assert [(e.step, e.total) for e in events.events if isinstance(e, Progress)] == [
        (1, 3),
        (2, 3),
        (3, 3),
    ]
    previews = [e.image for e in events.events if isinstance(e, Preview)]
    assert [(p.step, p.total) for p in previews] == [(1, 3), (2, 3), (3, 3)]
    assert previews[0].image.shape == (1, 16, 16, 3)  # projected x̂₀, at latent resolution
    assert history.steps == [1, 2, 3] and history.at(3).shape == (1, 4, 16, 16)


def test_ksampler_advanced_split_matches_ksampler(tmp_path: Path) -> None:
    registry = build_registry()
    pipeline = tiny()
    model = model_of(pipeline)
    positive, negative = random_conditioning(pipeline, 1), random_conditioning(pipeline, 2)
    empty = {"samples": torch.zeros(1, 4, 16, 16)}
    common = {"steps": 4, "cfg": 4.0, "sampler_name": "euler_ancestral", "scheduler": "normal"}
    ctx, _ = _context(tmp_path)
    advanced = registry.get("KSamplerAdvanced").function
    half, _ = advanced(
        ctx,
        model,
        positive,
        negative,
        empty,
        add_noise=True,
        noise_seed=9,
        start_at_step=0,
        end_at_step=2,
        return_with_leftover_noise=True,
        **common,
    )
    done, _ = advanced(
        ctx,
        model,
        positive,
        negative,
        half,
        add_noise=False,
        noise_seed=9,
        start_at_step=2,
        end_at_step=10000,
        return_with_leftover_noise=False,
        **common,
    )
    whole, _ = registry.get("KSampler").function(
        ctx, model, positive, negative, empty, seed=9, denoise=1.0, **common
    )
    torch.testing.assert_close(done["samples"], whole["samples"], rtol=1e-4, atol=1e-4)


def test_ksampler_check_and_cancel(tmp_path: Path) -> None:
    from core.engine import validate
    from core.engine.errors import Cancelled
    from core.graph.model import Graph

    registry = build_registry()
    spec = registry.get("KSampler")
    graph = Graph(registry)
    node = graph.add_node("KSampler", params={"sampler_name": "nope"})
    # An unknown sampler is one problem, under sampler_name (not also under scheduler).
    assert [p.field for p in validate(graph, outputs=[node.id]) if p.node_id == node.id].count(
        "sampler_name"
    ) == 1
    assert not [p for p in validate(graph, outputs=[node.id]) if p.field == "scheduler"]
    # A name that arrives by a link is refused when the node runs, under the same field.
    from core.engine import NodeError

    pipeline = tiny()
    ctx, _ = _context(tmp_path)
    for field, names in (("sampler_name", ("nope", "normal")), ("scheduler", ("euler", "nope"))):
        try:
            spec.function(
                ctx,
                model_of(pipeline),
                random_conditioning(pipeline, 1),
                random_conditioning(pipeline, 2),
                {"samples": torch.zeros(1, 4, 8, 8)},
                seed=0,
                steps=2,
                cfg=2.0,
                sampler_name=names[0],
                scheduler=names[1],
                denoise=1.0,
            )
        except NodeError as exc:
            assert exc.field == field and "choose one of" in str(exc)
        else:
            raise AssertionError(f"an unknown {field} must be refused")
    pipeline = tiny()
    ctx, _ = _context(tmp_path)
    ctx.cancel.cancel()
    try:
        spec.function(
            ctx,
            model_of(pipeline),
            random_conditioning(pipeline, 1),
            random_conditioning(pipeline, 2),
            {"samples": torch.zeros(1, 4, 8, 8)},
            seed=0,
            steps=3,
            cfg=2.0,
            sampler_name="euler",
            scheduler="normal",
            denoise=1.0,
        )
    except Cancelled:
        pass
    else:
        raise AssertionError("a cancelled run must stop the sampler")


def test_node_sampler_lists_match_the_core_tables() -> None:
    from core.diffusion.samplers import SAMPLER_NAMES, SCHEDULE_NAMES
    from nodes import sampling

    assert sampling.SAMPLER_NAMES == SAMPLER_NAMES
    assert sampling.SCHEDULE_NAMES == SCHEDULE_NAMES


def test_pixel_sizes_follow_the_vae_downscale() -> None:
    """A VAE with fewer downsamplings (the tiny test VAE has 2 pixels per cell) makes Empty
    Latent Image and Latent Upscale size latents in its own pixels, and VAE Encode records it."""
    registry = build_registry()
    vae = vae_of(tiny())
    factor = vae_ops.latent_factor(vae)
    assert factor != latents.DEFAULT_DOWNSCALE
    empty = registry.get("EmptyLatentImage").function
    sized = empty(None, width=64, height=32, batch_size=1, vae=vae)
    assert sized["samples"].shape[2:] == (32 // factor, 64 // factor)
    assert empty(None, width=64, height=32, batch_size=1)["samples"].shape[2:] == (4, 8)
    up = latents.upscale(sized, 128, 64, "bilinear")
    assert up["samples"].shape[2:] == (64 // factor, 128 // factor)
    assert latents.downscale_of(latents.repeat(up, 2)) == factor
    encoded = registry.get("VAEEncode").function(None, pixels=torch.rand(1, 16, 16, 3), vae=vae)
    assert latents.downscale_of(encoded) == factor
