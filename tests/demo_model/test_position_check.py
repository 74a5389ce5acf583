"""The position-only check (``tools.demo_model.position_check``): its scenes vary in place alone,
its reliance measure is zero for a UNet that ignores the prompt and not for one that reads it, and
the whole check runs end to end at toy scale."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file
from torch.backends.cuda import flash_sdp_enabled

from tools.demo_model import components, position_check
from tools.demo_model.scenes import POSITIONS
from tools.demo_model.train import unet as unet_stage
from tools.demo_model.train.config import LossLog, TrainConfig
from tools.demo_model.train.data import TokenCache


def test_position_scenes_differ_only_in_place_and_offset() -> None:
    scenes = position_check.position_scenes(200, seed=3)
    assert {s.background for s in scenes} == {"blue"}
    assert {len(s.objects) for s in scenes} == {1}
    objects = [s.objects[0] for s in scenes]
    assert {(o.shape, o.colour, o.size) for o in objects} == {("circle", "red", "big")}
    assert {o.position for o in objects} == set(POSITIONS)
    assert len({o.offset for o in objects}) > 5
    assert position_check.position_scenes(200, seed=3) == scenes  # seeded
    for scene in scenes[:20]:
        moved = position_check.elsewhere(scene)
        assert moved.objects[0].position != scene.objects[0].position
        assert moved.objects[0].colour == scene.objects[0].colour


class _ContextBlind(torch.nn.Module):
    """Predicts ε from x_t alone."""

    def forward(self, x, t, context):
        return SimpleNamespace(sample=0.9 * x)


class _ContextReader(torch.nn.Module):
    """Adds a prompt-dependent constant to its ε estimate."""

    def forward(self, x, t, context):
        return SimpleNamespace(sample=0.9 * x + 0.01 * context[:, :, 0].sum(1).view(-1, 1, 1, 1))


def test_reliance_is_zero_for_a_blind_unet_and_not_for_one_that_reads_the_prompt() -> None:
    torch.manual_seed(0)
    text_encoder = components.new_text_encoder().eval()
    tokens = TokenCache(components.load_tokenizer())
    scenes = position_check.position_scenes(8, seed=0)
    latents = torch.randn(8, 4, 16, 16)
    blind = position_check.prompt_reliance(_ContextBlind(), text_encoder, tokens, latents, scenes)
    reader = position_check.prompt_reliance(_ContextReader(), text_encoder, tokens, latents, scenes)
    timesteps = {str(t) for t in position_check.RELIANCE_TIMESTEPS}
    assert set(blind) == timesteps | {"context_distance"}
    assert blind["context_distance"] > 0  # a random encoder already tells the places apart
    for t in timesteps:
        assert blind[t]["gap"] == 0
        assert blind[t]["right_prompt"] > 0
        assert reader[t]["gap"] != 0
        assert reader[t]["gap"] == pytest.approx(
            reader[t]["wrong_prompt"] - reader[t]["right_prompt"], abs=2e-4
        )


def _snapshot_into(snapshots: list[dict[str, torch.Tensor]]):
    """An ``on_unet_call`` for ``_train_tiny`` that appends a copy of the text encoder's weights."""
    return lambda encoder, t: snapshots.append(
        {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    )


def _train_tiny(monkeypatch, config: TrainConfig, on_unet_call) -> None:
    """Run ``train.unet.train_unet`` on six random latents, calling
    ``on_unet_call(text_encoder, t)`` before every UNet call (after that step's text encoding,
    before its update)."""
    real_new_unet, real_new_text_encoder = components.new_unet, components.new_text_encoder
    encoders: list[torch.nn.Module] = []

    def spied_text_encoder():
        encoders.append(real_new_text_encoder())
        return encoders[-1]

    def spied_unet():
        unet = real_new_unet()
        unet.register_forward_pre_hook(lambda module, args: on_unet_call(encoders[0], args[1]))
        return unet

    monkeypatch.setattr(components, "new_unet", spied_unet)
    monkeypatch.setattr(components, "new_text_encoder", spied_text_encoder)
    means = torch.randn(6, 4, 16, 16)
    unet_stage.train_unet(
        means, means.abs() * 0.1, torch.ones(6, 1, 16, 16), 1.0,
        position_check.position_scenes(6, seed=0), config, LossLog(), lambda *_: None, None,
    )  # fmt: skip


@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_high_noise_fraction_of_each_batch_is_drawn_from_the_noisiest_steps(
    monkeypatch, fraction
) -> None:
    seen: list[torch.Tensor] = []
    config = TrainConfig(
        unet_steps=3, unet_batch=16, high_noise_fraction=fraction, high_noise_from=900, bf16=False
    )
    _train_tiny(monkeypatch, config, lambda encoder, t: seen.append(t.clone()))
    assert len(seen) == 3
    high = int(16 * fraction)
    for drawn in seen:
        assert len(drawn) == 16
        assert drawn[:high].min().item() >= 900 and drawn.max().item() <= 999
    low = torch.cat([drawn[high:] for drawn in seen])
    if fraction < 1:  # the rest are drawn from every timestep as before
        assert low.min().item() < 900


def test_high_noise_steps_end_the_high_noise_phase(monkeypatch) -> None:
    """With ``high_noise_steps`` 2, the first two steps draw every timestep from 900..999 with
    the x0 floor in the loss; the next two draw uniformly under plain Min-SNR-γ."""
    seen: list[torch.Tensor] = []
    floors: list[float] = []
    real_loss = unet_stage.epsilon_loss

    def spied_loss(*args):
        floors.append(args[5])
        return real_loss(*args)

    monkeypatch.setattr(unet_stage, "epsilon_loss", spied_loss)
    config = TrainConfig(
        unet_steps=4, unet_batch=16, high_noise_fraction=1.0, high_noise_from=900,
        x0_weight_floor=1.0, high_noise_steps=2, bf16=False,
    )  # fmt: skip
    _train_tiny(monkeypatch, config, lambda encoder, t: seen.append(t.clone()))
    assert len(seen) == 4
    assert all(drawn.min().item() >= 900 for drawn in seen[:2])
    assert torch.cat(seen[2:]).min().item() < 900  # 32 uniform draws
    assert floors == [1.0, 1.0, 0.0, 0.0]


def test_text_freeze_steps_keep_the_text_encoder_at_its_initial_weights(monkeypatch) -> None:
    snapshots: list[dict[str, torch.Tensor]] = []
    config = TrainConfig(unet_steps=4, unet_batch=4, text_freeze_steps=2, bf16=False)
    _train_tiny(monkeypatch, config, _snapshot_into(snapshots))
    assert len(snapshots) == 4

    def same(first, second):
        return all(torch.equal(first[k], second[k]) for k in first)

    assert same(snapshots[0], snapshots[1]) and same(snapshots[1], snapshots[2])  # frozen 2 steps
    assert not same(snapshots[2], snapshots[3])  # then trained


@pytest.mark.parametrize(("grad_from", "learns"), [(1000, False), (900, True)])
def test_text_encoder_learns_only_from_samples_at_or_above_text_grad_from(
    monkeypatch, grad_from, learns
) -> None:
    """Half of each batch is drawn from t >= 900: with ``text_grad_from`` 900 the text encoder
    learns from that half; with 1000 no sample qualifies and it keeps its initial weights
    (weight decay off: it would shrink the weights without any gradient)."""
    snapshots: list[dict[str, torch.Tensor]] = []
    config = TrainConfig(
        unet_steps=2, unet_batch=8, high_noise_fraction=0.5, high_noise_from=900,
        text_grad_from=grad_from, empty_caption_fraction=0.0, weight_decay=0.0, bf16=False,
    )  # fmt: skip
    _train_tiny(monkeypatch, config, _snapshot_into(snapshots))
    assert len(snapshots) == 2
    changed = any(not torch.equal(snapshots[0][k], snapshots[1][k]) for k in snapshots[0])
    assert changed == learns


def test_text_anchor_weight_holds_the_text_encoder_near_its_initial_weights(monkeypatch) -> None:
    """Over six steps a heavily anchored text encoder ends closer to its initial weights than a
    free one (Adam's first step is the same size for both; the anchor pulls back after it)."""

    def distance_moved(anchor_weight: float) -> float:
        snapshots: list[dict[str, torch.Tensor]] = []
        config = TrainConfig(
            unet_steps=6, unet_batch=8, text_anchor_weight=anchor_weight, weight_decay=0.0,
            bf16=False,
        )  # fmt: skip
        _train_tiny(monkeypatch, config, _snapshot_into(snapshots))
        first, last = snapshots[0], snapshots[-1]
        return sum((last[k] - first[k]).pow(2).sum().item() for k in first) ** 0.5

    free, anchored = distance_moved(0.0), distance_moved(1e4)
    assert anchored < 0.8 * free


@pytest.mark.slow
def test_position_check_trains_exports_and_reports(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    autoencoder = tmp_path / "vae.safetensors"
    save_file(components.new_vae().state_dict(), autoencoder)
    out = tmp_path / "check"
    report = position_check.main(
        [
            *("--autoencoder", str(autoencoder), "--out", str(out)),
            *("--steps", "2", "--batch", "4", "--scenes", "16", "--judged", "5"),
            *("--threads", "1", "--x0-weight-floor", "0.5"),
        ]
    )
    assert report["steps_done"] == 2
    assert report["config"]["x0_weight_floor"] == 0.5
    assert report["placement"]["prompts"] == 5
    assert 0 <= report["placement"]["position_accuracy"] <= 1
    assert set(report["reliance_x0_units"]) >= {"999", "851", "context_distance"}
    assert json.loads((out / "position_check.json").read_text()) == report
    assert (out / "position_check.png").is_file()
    assert (out / "unet" / "config.json").is_file()
    assert '"position_accuracy"' in capsys.readouterr().out


def test_position_check_names_a_missing_autoencoder(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        position_check.main(["--autoencoder", str(tmp_path / "nope.safetensors")])
    assert f"{tmp_path / 'nope.safetensors'} is not a file" in capsys.readouterr().err


@pytest.mark.parametrize("bf16", [True, False])
def test_bf16_training_runs_attention_without_the_cpu_flash_kernel(monkeypatch, bf16) -> None:
    """Under bf16 autocast the CPU flash-attention kernel's backward pass took over half of a
    training step (``train.unet.training_attention``); float32 keeps torch's own choice."""
    flash_enabled: list[bool] = []
    config = TrainConfig(unet_steps=2, unet_batch=4, bf16=bf16)
    _train_tiny(monkeypatch, config, lambda encoder, t: flash_enabled.append(flash_sdp_enabled()))
    assert flash_enabled == [not bf16] * 2
    assert flash_sdp_enabled()  # only while training


def test_extra_averages_leave_training_alone_and_decay_zero_is_the_last_weights() -> None:
    """``extra_ema_decays`` exports further averages of the same run: training (and so the
    exported average) is unchanged by them, and decay 0 holds exactly the last weights."""

    def run(extra_decays, export_extra=None, ema_decay=0.9):
        config = TrainConfig(unet_steps=3, unet_batch=4, ema_decay=ema_decay, bf16=False)
        means = torch.randn(6, 4, 16, 16, generator=torch.Generator().manual_seed(5))
        unet, _, _ = unet_stage.train_unet(
            means, means.abs() * 0.1, torch.ones(6, 1, 16, 16), 1.0,
            position_check.position_scenes(6, seed=0), config, LossLog(), lambda *_: None,
            None, extra_ema_decays=extra_decays, export_extra=export_extra,
        )  # fmt: skip
        return {k: v.clone() for k, v in unet.state_dict().items()}

    exported: dict[float, dict[str, torch.Tensor]] = {}

    def export(decay, average):
        unet, text_encoder = components.new_unet(), components.new_text_encoder()
        average.copy_to([unet, text_encoder])
        exported[decay] = unet.state_dict()

    plain = run(())
    with_extras = run((0.0, 0.5), export)
    assert set(exported) == {0.0, 0.5}
    assert all(torch.equal(plain[k], with_extras[k]) for k in plain)
    last_weights = run((), ema_decay=0.0)  # the exported average at decay 0 is the last weights
    assert all(torch.equal(exported[0.0][k], last_weights[k]) for k in last_weights)
    assert any(not torch.equal(exported[0.5][k], last_weights[k]) for k in last_weights)
