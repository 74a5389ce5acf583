"""The demo model's one-command retrain, at toy scale: every stage runs and the export loads
through LatentLoom's own checkpoint loader. (The full run takes about 1.5 hours; this guards the
command against library changes such as the transformers 5 tokenizer change that once fed
every caption to training as the same ids.)"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tools.demo_model import components
from tools.demo_model.scenes import Scene, SceneObject, render_batch
from tools.demo_model.train import experimental, options, shape_codes, unet_phases
from tools.demo_model.train import unet as unet_stage
from tools.demo_model.train.config import LossLog, TrainConfig, cosine_lr
from tools.demo_model.train.data import (
    TokenCache,
    latent_object_weights,
    object_weights,
    to_model_range,
)
from tools.demo_model.train.unet import epsilon_loss, training_noise


def test_training_tokenizes_different_captions_differently() -> None:
    tokens = TokenCache(components.load_tokenizer())
    ids = tokens(["a big red circle on the left, blue background", "small green square", ""])
    assert ids.shape == (3, components.MAX_TOKENS)
    assert ids[0, :3].tolist() == [49406, 320, 1205]  # <start> "a" "big", as CLIP tokenizes
    assert not torch.equal(ids[0], ids[1]) and not torch.equal(ids[1], ids[2])
    assert torch.equal(tokens(["small green square"])[0], ids[1])  # cached, same ids


def test_latent_object_weights_cover_exactly_the_cells_the_object_touches() -> None:
    # A small square (14 px) centred on the left anchor (16, 32) spans pixels 9..22 across and
    # 25..38 down, so latent cells (4 px each) 2..5 across and 6..9 down.
    scene = Scene("blue", (SceneObject("square", "red", "small", "left"),))
    weights = latent_object_weights(render_batch([scene]), ["blue"], 16, 5.0)
    assert weights.shape == (1, 1, 16, 16)
    rows, cols = torch.nonzero(weights[0, 0] == 5.0, as_tuple=True)
    assert (rows.min().item(), rows.max().item()) == (6, 9)
    assert (cols.min().item(), cols.max().item()) == (2, 5)
    assert torch.all((weights == 1.0) | (weights == 5.0))
    assert (weights == 5.0).sum().item() == 16


def test_outline_weights_cover_the_ring_around_an_object_and_spare_its_inside() -> None:
    # A big square (26 px) on the left covers latent cells 1..6 across and 5..10 down whole
    # (it touches no others); the outline is every cell within one of a touched cell except
    # those whose whole 3x3 neighbourhood is covered (2..5 across, 6..9 down).
    scene = Scene("blue", (SceneObject("square", "red", "big", "left"),))
    weights = latent_object_weights(render_batch([scene]), ["blue"], 16, 1.0, 3.0)[0, 0]
    expected = torch.ones(16, 16)
    expected[4:12, 0:8] = 3.0
    expected[6:10, 2:6] = 1.0
    assert torch.equal(weights, expected)
    # with the object weight too, the larger of the two wins on each cell
    both = latent_object_weights(render_batch([scene]), ["blue"], 16, 5.0, 3.0)[0, 0]
    assert torch.all(both[5:11, 1:7] == 5.0)
    assert both[4, 0] == 3.0 and both[11, 7] == 3.0 and both[0, 15] == 1.0
    # off by default: exactly the object weights as before
    assert torch.equal(
        latent_object_weights(render_batch([scene]), ["blue"], 16, 5.0),
        latent_object_weights(render_batch([scene]), ["blue"], 16, 5.0, 1.0),
    )


def test_corner_weights_cover_the_corner_regions_of_each_objects_box() -> None:
    # A big object on the left has the box 3..29 across and 19..45 down; a quarter of its side
    # (6.5 px) at each corner overlaps latent cells 0..2 or 5..7 across and 4..6 or 9..11 down.
    big = Scene("blue", (SceneObject("square", "red", "big", "left"),))
    # A small one (box 25..39 across, 9..23 down at the top) is all corners at 4 px a cell.
    small = Scene("white", (SceneObject("circle", "green", "small", "top"),))
    weights = experimental.latent_corner_weights([big, small], 16, 64, 6.0)
    expected = torch.ones(2, 1, 16, 16)
    for rows in (slice(4, 7), slice(9, 12)):
        for cols in (slice(0, 3), slice(5, 8)):
            expected[0, 0, rows, cols] = 6.0
    expected[1, 0, 2:6, 6:10] = 6.0
    assert torch.equal(weights, expected)
    # two objects: both boxes' corners
    both = Scene("black", (*big.objects, *small.objects))
    corners = experimental.latent_corner_weights([both], 16, 64, 6.0)
    assert torch.equal(corners[0], expected.amax(dim=0))


def test_shape_code_maps_put_each_shapes_code_over_the_cells_of_its_box() -> None:
    from tools.demo_model.train.shape_codes import SHAPE_CODES, shape_code_maps

    # A small object (14 px) on the left has the box 9..23 across and 25..39 down: latent
    # cells (4 px) 3-4 and 7-8 whole, 2 and 5 across, 6 and 9 down three quarters.
    square = Scene("blue", (SceneObject("square", "red", "small", "left"),))
    circle = Scene("blue", (SceneObject("circle", "red", "small", "left"),))
    triangle = Scene("blue", (SceneObject("triangle", "red", "small", "left"),))
    maps = shape_code_maps([square, circle, triangle], 16, 64)
    assert maps.shape == (3, 1, 16, 16)
    cover = torch.zeros(16, 16)
    edge = torch.tensor([0.75, 1.0, 1.0, 0.75])
    cover[6:10, 2:6] = torch.outer(edge, edge)
    assert torch.allclose(maps[0, 0], SHAPE_CODES["square"] * cover)
    assert torch.allclose(maps[1, 0], SHAPE_CODES["circle"] * cover)
    assert torch.equal(maps[2], torch.zeros(1, 16, 16))  # triangles: the background's 0
    # circle and square, the pair every model confused, lie as far apart as the codes allow
    codes = SHAPE_CODES.values()
    assert abs(SHAPE_CODES["circle"] - SHAPE_CODES["square"]) == max(codes) - min(codes) > 0
    # two objects: each its own code on its own box
    both = Scene("white", (SceneObject("square", "red", "small", "left"),
                           SceneObject("circle", "green", "big", "right")))  # fmt: skip
    pair = shape_code_maps([both], 16, 64)[0, 0]
    assert torch.allclose(pair[:, :8], maps[0, 0, :, :8])
    # the big circle's box is 35..61 across: cells 9-14 whole, 8 and 15 a quarter
    assert pair[8, 9:15].tolist() == [1.0] * 6 and pair[8, 8].item() == pytest.approx(0.25)


def test_shape_codes_replace_only_the_latents_least_used_direction() -> None:
    from tools.demo_model.train.shape_codes import least_used_direction, with_shape_codes

    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=generator))
    spread = torch.tensor([2.0, 1.0, 0.05, 3.0]).view(1, 4, 1, 1)
    latents = torch.einsum(
        "ij,njhw->nihw", rotation, spread * torch.randn(64, 4, 8, 8, generator=generator)
    )
    direction = least_used_direction(latents)
    # the rotated third axis, whose spread is smallest, up to sign
    assert abs(torch.dot(direction, rotation[:, 2]).item()) == pytest.approx(1.0, abs=1e-3)
    assert direction.norm().item() == pytest.approx(1.0, abs=1e-5)
    codes = torch.randn(64, 1, 8, 8, generator=generator)
    coded = with_shape_codes(latents, codes, direction)
    d = direction.view(1, 4, 1, 1)
    assert torch.allclose((coded * d).sum(1, keepdim=True), codes, atol=1e-5)
    # everything orthogonal to the direction is untouched
    assert torch.allclose(coded - (coded * d).sum(1, keepdim=True) * d,
                          latents - (latents * d).sum(1, keepdim=True) * d, atol=1e-5)  # fmt: skip
    assert not torch.allclose(coded, latents)


def test_circles_and_squares_swap_and_everything_else_stays() -> None:
    from tools.demo_model.train.shape_codes import with_circles_and_squares_swapped

    scene = Scene("white", (SceneObject("circle", "red", "big", "left", (1, -2)),
                            SceneObject("square", "blue", "small", "right"),
                            SceneObject("triangle", "green", "small", "top")))  # fmt: skip
    swapped = with_circles_and_squares_swapped(scene)
    assert [obj.shape for obj in swapped.objects] == ["square", "circle", "triangle"]
    assert [(o.colour, o.size, o.position, o.offset) for o in swapped.objects] == [
        (o.colour, o.size, o.position, o.offset) for o in scene.objects
    ]
    assert swapped.background == "white"
    assert with_circles_and_squares_swapped(swapped) == scene


@pytest.mark.slow
def test_the_shape_code_decoder_stage_changes_the_decoder_and_not_the_unet(tmp_path) -> None:
    """The UNet learns from the encoder's latents only, so the decoder's shape-code fine-tune
    (here with and without swapped scenes) leaves it exactly as it is: a model whose decoder
    stage changed is still what the one command gives."""
    from safetensors.torch import load_file

    from tools.demo_model import train

    tiny = [
        *("--scenes", "64", "--ae-steps", "2", "--decoder-steps", "1", "--shape-code", "2.5"),
        *("--shape-code-steps", "2", "--unet-steps", "2", "--unet-batch", "4"),
        *("--polish-steps", "1", "--refine-steps", "1", "--skip-eval"),
    ]
    for name, fraction in (("plain", "0"), ("swapped", "1")):
        dirs = ("--out", str(tmp_path / name), "--work", str(tmp_path / f"work-{name}"))
        train.main([*tiny, "--shape-code-swap-fraction", fraction, *dirs])
    for part, same in (("unet/diffusion_pytorch_model", True), ("text_encoder/model", True),
                       ("vae/diffusion_pytorch_model", False)):  # fmt: skip
        plain = load_file(tmp_path / "plain" / f"{part}.safetensors")
        swapped = load_file(tmp_path / "swapped" / f"{part}.safetensors")
        assert all(torch.equal(plain[k], swapped[k]) for k in plain) == same, part


def test_epsilon_loss_weighs_object_cells_up_and_keeps_the_scale() -> None:
    cells = torch.ones(2, 1, 4, 4)
    cells[:, :, 0, 0] = 5.0  # one object cell
    alphas = torch.tensor([0.5, 0.5])  # SNR 1: Min-SNR weight 1
    noise = torch.zeros(2, 4, 4, 4)
    on_object, on_background = noise.clone(), noise.clone()
    on_object[:, :, 0, 0] = 1.0
    on_background[:, :, 3, 3] = 1.0
    object_loss = epsilon_loss(on_object, noise, cells, alphas, 5.0)
    background_loss = epsilon_loss(on_background, noise, cells, alphas, 5.0)
    assert object_loss.item() == pytest.approx(5 * background_loss.item())
    # Uniform error: the same loss as plain MSE whatever the weights.
    uniform = epsilon_loss(noise + 0.5, noise, cells, alphas, 5.0)
    assert uniform.item() == pytest.approx(0.25)
    # Min-SNR-γ: at SNR 20 (> γ = 5) the weight is 5 / 20.
    high_snr = torch.tensor([20 / 21, 20 / 21])
    assert epsilon_loss(noise + 0.5, noise, cells, high_snr, 5.0).item() == pytest.approx(
        0.25 * 5 / 20
    )


def test_x0_weight_floor_raises_only_the_noisiest_timesteps() -> None:
    cells = torch.ones(2, 1, 4, 4)
    noise = torch.zeros(2, 4, 4, 4)
    error = noise + 0.5  # ε-MSE 0.25
    # SNR 0.01 (t near 950): the plain ε-loss weighs x0 errors by 0.01; a floor of 0.1 makes
    # the ε weight 0.1 / 0.01 = 10.
    noisy = torch.tensor([0.01 / 1.01, 0.01 / 1.01])
    assert epsilon_loss(error, noise, cells, noisy, 5.0).item() == pytest.approx(0.25)
    assert epsilon_loss(error, noise, cells, noisy, 5.0, 0.1).item() == pytest.approx(2.5)
    # SNR 1 is above the floor and SNR 20 is capped by γ: the floor changes neither.
    for snr in (1.0, 20.0):
        alphas = torch.full((2,), snr / (1 + snr))
        assert epsilon_loss(error, noise, cells, alphas, 5.0, 0.1).item() == pytest.approx(
            epsilon_loss(error, noise, cells, alphas, 5.0).item()
        )


def test_white_training_noise_is_drawn_as_before_pyramid_noise_is_coarser() -> None:
    shape = torch.Size((64, 4, 16, 16))
    white = training_noise(shape, torch.Generator().manual_seed(5), 0.1, 0.0)
    generator = torch.Generator().manual_seed(5)  # the draws from before pyramid noise existed
    expected = torch.randn(shape, generator=generator)
    expected = expected + 0.1 * torch.randn((64, 4, 1, 1), generator=generator)
    assert torch.equal(white, expected)

    pyramid = training_noise(shape, torch.Generator().manual_seed(5), 0.0, 0.8)
    assert pyramid.std(dim=(1, 2, 3)) == pytest.approx(torch.ones(64), abs=1e-5)
    # Averaged over 4×4 latent cells (a position-sized patch), white noise keeps 1/16 of its
    # variance; pyramid noise keeps far more, so it hides where an object is.
    white_coarse = F.avg_pool2d(training_noise(shape, torch.Generator(), 0.0, 0.0), 4).var()
    pyramid_coarse = F.avg_pool2d(pyramid, 4).var()
    assert white_coarse.item() == pytest.approx(1 / 16, rel=0.15)
    assert pyramid_coarse.item() > 5 * white_coarse.item()


@pytest.mark.slow
def test_pixel_loss_decodes_the_x0_the_prediction_implies_and_trains_only_the_prediction() -> None:
    """With the exact noise as the prediction, the x0 estimate is the clean latent itself, so the
    loss is the autoencoder's own reconstruction error of the scene; any other prediction is
    judged by the x0 it implies, and the gradient reaches the prediction, not the frozen
    autoencoder."""
    from tools.demo_model.train.autoencoder import reconstruction_loss
    from tools.demo_model.train.experimental import PixelTargets, decoded_estimate_loss

    torch.manual_seed(0)
    scenes = [
        Scene("blue", (SceneObject("square", "red", "small", "left"),)),
        Scene("white", (SceneObject("circle", "green", "big", "centre"),)),
    ]
    images = render_batch(scenes)
    vae = components.new_vae().eval().requires_grad_(False)
    targets = PixelTargets(vae, images, [scene.background for scene in scenes])
    scale = 0.5
    clean = vae.encode(to_model_range(images)).latent_dist.mean * scale
    noise = torch.randn_like(clean)
    a = torch.tensor([0.9, 0.3])
    noisy = a.sqrt().view(-1, 1, 1, 1) * clean + (1 - a).sqrt().view(-1, 1, 1, 1) * noise
    index = torch.tensor([0, 1])
    exact = decoded_estimate_loss(noise, noisy, a, scale, targets, index, 10.0)
    weight = object_weights(images, targets.backgrounds, index.numpy(), 10.0)
    own = reconstruction_loss(vae.decode(clean / scale).sample, to_model_range(images), weight)
    assert exact.item() == pytest.approx(own.item(), rel=1e-4)
    # Any other prediction is judged by the x0 it implies, (x_t - sqrt(1-a)·ε̂) / sqrt(a).
    wrong = (noise + 0.5 * torch.randn_like(noise)).requires_grad_(True)
    worse = decoded_estimate_loss(wrong, noisy, a, scale, targets, index, 10.0)
    implied = (noisy - (1 - a).sqrt().view(-1, 1, 1, 1) * wrong.detach()) / a.sqrt().view(
        -1, 1, 1, 1
    )
    judged = reconstruction_loss(vae.decode(implied / scale).sample, to_model_range(images), weight)
    assert worse.item() == pytest.approx(judged.item(), rel=1e-4)
    assert worse.item() != pytest.approx(exact.item(), rel=1e-3)
    worse.backward()
    assert wrong.grad is not None and wrong.grad.abs().sum() > 0
    assert all(p.grad is None for p in vae.parameters())


def test_pixel_loss_without_its_targets_is_refused() -> None:
    config = TrainConfig(unet_steps=1, unet_batch=2, unet_pixel_weight=0.5)
    means = torch.zeros(2, 4, 16, 16)
    with pytest.raises(ValueError, match=r"unet_pixel_weight 0\.5 asks for a pixel-space loss"):
        unet_stage.train_unet(
            means, means, torch.ones(2, 1, 16, 16), 1.0, [], config, LossLog(),
            lambda *_: None, None,
        )  # fmt: skip


def test_one_command_retrains_every_stage_and_exports_a_loadable_model(
    tmp_path, capsys, monkeypatch
) -> None:
    from core.diffusion.loading import load_checkpoint
    from tools.demo_model import train

    corner_calls = []
    real_corners = unet_phases.latent_corner_weights

    def recording_corners(scenes, size, image_size, corner_weight):
        corner_calls.append((len(scenes), size, corner_weight))
        return real_corners(scenes, size, image_size, corner_weight)

    monkeypatch.setattr(unet_phases, "latent_corner_weights", recording_corners)
    # the ᾱ_t of every training step's timesteps, in the order the phases run
    step_alphas = []
    real_loss = unet_stage.epsilon_loss

    def recording_loss(prediction, noise, cells, alphas_cumprod, *rest):
        step_alphas.append(alphas_cumprod.clone())
        return real_loss(prediction, noise, cells, alphas_cumprod, *rest)

    monkeypatch.setattr(unet_stage, "epsilon_loss", recording_loss)

    out = tmp_path / "latentloom-shapes"
    train.main(
        [
            *("--scenes", "96", "--ae-steps", "2", "--decoder-steps", "1"),
            *("--unet-steps", "2", "--unet-batch", "8", "--unet-object-weight", "3"),
            *("--x0-weight-floor", "0.1", "--precision", "fp32", "--polish-steps", "2"),
            *("--polish-pixel-weight", "0.5", "--unet-pixel-below", "1000"),
            *("--polish-corner-weight", "4", "--shape-code", "2.5", "--shape-code-steps", "2"),
            *("--refine-steps", "3", "--refine-timestep-below", "20"),
            "--skip-eval",
            *("--out", str(out), "--work", str(tmp_path / "work")),
        ]
    )
    log = json.loads((out / "train_log.json").read_text())
    assert log["unet_steps_done"] == 2
    assert log["config"]["unet_object_weight"] == 3.0
    assert log["config"]["x0_weight_floor"] == 0.1
    assert log["config"]["bf16"] is False and log["precision"]["asked"] == "fp32"
    assert log["polish_steps_done"] == 2
    assert log["refine_steps_done"] == 3
    assert log["config"]["refine_timestep_below"] == 20
    assert set(log["losses"]) == {
        *("autoencoder", "decoder", "shape codes", "unet", "polish", "refine"),
    }
    # the refining phase (the last 3 steps) draws only timesteps below 20; the others draw from
    # all 1,000 (8 + 8 + 8 + 8 timesteps all below 20 would happen about once in 10^37 runs)
    floor = components.new_scheduler().alphas_cumprod[19].item()
    assert len(step_alphas) == 2 + 2 + 3
    assert all((alphas >= floor - 1e-6).all() for alphas in step_alphas[-3:])
    assert not all((alphas >= floor - 1e-6).all() for alphas in step_alphas[:-3])
    assert [step for step, _ in log["losses"]["shape codes"]] == [0, 1]
    assert [step for step, _ in log["losses"]["polish"]] == [0, 1]
    # the pixel-space loss runs in the polish only, on every sample (t < 1000)
    assert log["config"]["polish_pixel_weight"] == 0.5 and log["config"]["unet_pixel_weight"] == 0
    # the corner weights are made for the polish and the refining phase, which shares its
    # settings (the main phase's are off: 1)
    assert log["config"]["polish_corner_weight"] == 4.0
    assert corner_calls == [(96, 16, 4.0)] * 2
    printed = capsys.readouterr().out.splitlines()
    assert any(" polish step " in line and " pixel=" in line for line in printed)
    assert not any(" unet step " in line and " pixel=" in line for line in printed)
    # the polish continues the main phase's export, the refining phase the polish's; both
    # stay in the work folder
    assert (tmp_path / "work" / "main-phase" / "unet").is_dir()
    assert (tmp_path / "work" / "polished" / "unet").is_dir()
    assert all(len(records) >= 1 for records in log["losses"].values())
    assert (tmp_path / "work" / "vae_decoder_tuned.safetensors").is_file()
    assert (tmp_path / "work" / "vae_shape_codes.safetensors").is_file()
    assert log["config"]["shape_code"] == 2.5
    direction, code = shape_codes.read_shape_codes(out)  # where the latents carry the codes
    assert code == 2.5 and direction.norm().item() == pytest.approx(1.0, abs=1e-5)
    # so does every other export a probe may be pointed at
    main_phase = tmp_path / "work" / "main-phase"
    assert torch.equal(shape_codes.read_shape_codes(main_phase)[0], direction)
    loaded = load_checkpoint(out)
    assert loaded.model.latent_rgb is not None  # its own fitted preview factors
    assert loaded.model.preview_vae is loaded.vae
    assert loaded.vae.scaling_factor == pytest.approx(log["scaling_factor"])


@pytest.mark.slow
def test_training_on_a_saved_autoencoder_gives_what_the_full_command_gives(tmp_path) -> None:
    """``--autoencoder`` skips stages 1-2; the UNet and text encoder it trains from scratch must
    be exactly those of the full run, or a model made this way would not be reproducible by the
    one command."""
    from safetensors.torch import load_file

    from tools.demo_model import train

    tiny = [
        *("--scenes", "64", "--ae-steps", "2", "--decoder-steps", "1", "--shape-code-steps", "1"),
        *("--unet-steps", "3", "--unet-batch", "4", "--polish-steps", "1", "--refine-steps", "1"),
        "--skip-eval",
    ]
    work = tmp_path / "work"
    train.main([*tiny, "--out", str(tmp_path / "full"), "--work", str(work)])
    saved = work / "vae_decoder_tuned.safetensors"
    again_dirs = ("--out", str(tmp_path / "unet_only"), "--work", str(tmp_path / "work2"))
    train.main([*tiny, "--autoencoder", str(saved), *again_dirs])
    parts = ("unet/diffusion_pytorch_model", "text_encoder/model", "vae/diffusion_pytorch_model")
    for part in parts:
        full = load_file(tmp_path / "full" / f"{part}.safetensors")
        again = load_file(tmp_path / "unet_only" / f"{part}.safetensors")
        assert full.keys() == again.keys()
        assert all(torch.equal(full[name], again[name]) for name in full), part
    log = json.loads((tmp_path / "unet_only" / "train_log.json").read_text())
    assert log["autoencoder_from"] == str(saved)
    assert "autoencoder" not in log["losses"]


def test_training_refuses_two_sources_for_the_autoencoder(tmp_path, capsys) -> None:
    from tools.demo_model import train

    with pytest.raises(SystemExit):
        train.main(["--autoencoder", "a.safetensors", "--resume", "b.safetensors", str(tmp_path)])
    assert "give one of them" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--autoencoder", str(tmp_path / "missing.safetensors")])
    assert f"{tmp_path / 'missing.safetensors'} is not a file" in capsys.readouterr().err


def test_recipe_options_parse_into_the_train_config() -> None:
    """``train`` and ``position_check`` share these options; each lands in its ``TrainConfig``
    field with that field's type, and the rest keep the defaults."""
    import argparse

    parser = argparse.ArgumentParser()
    options.add_recipe_arguments(parser)
    args = parser.parse_args(
        ["--text-freeze-steps", "7", "--high-noise-fraction", "0.5", "--min-snr-gamma", "1e9"]
    )
    recipe = options.recipe_from_arguments(args)
    assert set(recipe) == set(options.RECIPE_OPTIONS) | {"bf16"}
    config = TrainConfig(**recipe)
    assert config.text_freeze_steps == 7 and isinstance(config.text_freeze_steps, int)
    assert config.high_noise_fraction == 0.5
    assert config.min_snr_gamma == 1e9
    defaults = TrainConfig()
    assert config.x0_weight_floor == defaults.x0_weight_floor
    assert config.unet_lr == defaults.unet_lr


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_trains_in_bf16_only_where_the_cpu_computes_it(monkeypatch, native) -> None:
    """Emulated bfloat16 made a training step ten times slower than float32 on an AVX2-only
    CPU (measured 2026-12-03: 25.2 against 1.9-2.6 s), which put the one command at ~20 hours
    there."""
    import argparse

    monkeypatch.setattr(options, "cpu_has_native_bf16", lambda: native)
    assert options.precision_for("auto") is native
    assert options.precision_for("bf16") is True
    assert options.precision_for("fp32") is False
    with pytest.raises(ValueError, match="unknown precision 'fp16'; choose one of auto, bf16"):
        options.precision_for("fp16")
    parser = argparse.ArgumentParser()
    options.add_recipe_arguments(parser)
    assert TrainConfig(**options.recipe_from_arguments(parser.parse_args([]))).bf16 is native
    forced = parser.parse_args(["--precision", "bf16"])
    assert TrainConfig(**options.recipe_from_arguments(forced)).bf16 is True


def test_polish_phase_trains_uniform_timesteps_from_its_own_learning_rate() -> None:
    """The polishing phase restarts the learning rate and samples every timestep uniformly with
    no x0 floor, whatever the main phase emphasised; it does not polish again."""
    main_phase = TrainConfig(
        unet_steps=50,
        high_noise_fraction=0.5,
        x0_weight_floor=1.0,
        polish_pixel_weight=0.7,
        polish_corner_weight=5.0,
    )
    polish = unet_phases.polish_config(main_phase)
    assert polish.unet_steps == main_phase.polish_steps > 0
    assert polish.unet_lr == main_phase.polish_lr
    assert polish.warmup_steps == main_phase.polish_warmup_steps
    assert polish.ema_decay == main_phase.polish_ema_decay
    assert polish.high_noise_fraction == 0 and polish.x0_weight_floor == 0
    assert polish.unet_outline_weight == main_phase.polish_outline_weight > 1
    assert polish.unet_pixel_weight == 0.7 and main_phase.unet_pixel_weight == 0
    assert polish.unet_corner_weight == 5.0 and main_phase.unet_corner_weight == 1.0
    assert polish.polish_steps == 0 and polish.refine_steps == 0
    assert polish.unet_timestep_below == 1000  # every timestep
    assert polish.unet_batch == main_phase.unet_batch and polish.seed == main_phase.seed
    assert cosine_lr(0, polish.unet_steps, polish.unet_lr, polish.warmup_steps, 0.05) < (
        cosine_lr(polish.warmup_steps, polish.unet_steps, polish.unet_lr, 30, 0.05)
    )


def test_refining_phase_is_the_polish_on_low_noise_timesteps_only() -> None:
    """The refining phase after the polish has the polish's settings, its own step count and
    timesteps below ``refine_timestep_below``; it neither polishes nor refines again."""
    config = TrainConfig(refine_steps=123, refine_timestep_below=250, polish_lr=3e-4)
    refine = unet_phases.refine_config(config)
    polish = unet_phases.polish_config(config)
    assert refine.unet_steps == 123 and refine.unet_timestep_below == 250
    assert refine.polish_steps == 0 and refine.refine_steps == 0
    assert refine.unet_lr == polish.unet_lr == 3e-4
    assert refine.ema_decay == polish.ema_decay and refine.warmup_steps == polish.warmup_steps
    assert refine.unet_outline_weight == polish.unet_outline_weight
    assert refine.high_noise_fraction == 0 and refine.x0_weight_floor == 0
