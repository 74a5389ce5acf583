"""How many torch threads a sampler run uses on the CPU: one for small latents (splitting tiny
operations across cores costs more than it saves, and far more when another process holds a
core), every usable core for large ones, ``$LATENTLOOM_CPU_THREADS`` when set; the process's
own setting comes back after the run."""

from __future__ import annotations

import pytest
import torch

from core.diffusion import devices, sampling, vae_ops
from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "checkpoints"
    write_single_file(make_tiny_pipeline(ModelFamily.SD1), folder / "tiny.safetensors")
    return build_registry(ModelPaths.of(folder.parent))


@pytest.fixture
def two_threads():
    """The process starts with two torch threads, as on a 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _graph(registry) -> tuple[Graph, int]:
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    pos = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
    neg = g.add_node("CLIPTextEncode", params={"text": ""}).id
    empty = g.add_node("EmptyLatentImage", params={"width": 16, "height": 16}).id
    params = {"seed": 1, "steps": 2, "cfg": 5.0, "sampler_name": "euler"}
    sampler = g.add_node("KSampler", params=params).id
    for enc in (pos, neg):
        g.connect(load, "CLIP", enc, "clip")
    g.connect(load, "MODEL", sampler, "model")
    g.connect(pos, "CONDITIONING", sampler, "positive")
    g.connect(neg, "CONDITIONING", sampler, "negative")
    g.connect(empty, "LATENT", sampler, "latent_image")
    return g, sampler


def _threads_seen(monkeypatch, module=sampling, name: str = "sample") -> list[int]:
    """The torch thread count at each call of ``module.name`` (the sampler by default)."""
    seen: list[int] = []
    real = getattr(module, name)

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return seen


def test_a_small_latent_is_sampled_on_one_thread_and_the_count_comes_back(
    registry, two_threads, monkeypatch
):
    monkeypatch.delenv(devices.CPU_THREADS_ENVIRONMENT, raising=False)
    seen = _threads_seen(monkeypatch)
    g, sampler = _graph(registry)

    report = Executor(registry).run(g, outputs=[sampler], device="cpu")

    assert report.status == "ok", {e.label: e.message for e in report.entries.values()}
    assert seen == [1]
    assert torch.get_num_threads() == 2


def test_the_environment_sets_the_sampler_threads(registry, two_threads, monkeypatch):
    monkeypatch.setenv(devices.CPU_THREADS_ENVIRONMENT, "3")
    seen = _threads_seen(monkeypatch)
    g, sampler = _graph(registry)

    report = Executor(registry).run(g, outputs=[sampler], device="cpu")

    assert report.status == "ok"
    assert seen == [3]
    assert torch.get_num_threads() == 2


def test_a_bad_thread_count_fails_the_sampler_naming_the_variable(registry, monkeypatch):
    monkeypatch.setenv(devices.CPU_THREADS_ENVIRONMENT, "many")
    g, sampler = _graph(registry)

    report = Executor(registry).run(g, outputs=[sampler], device="cpu")

    entry = report.entries[sampler]
    assert entry.status == "failed"
    assert "$LATENTLOOM_CPU_THREADS is 'many'" in entry.message
    assert "whole number" in entry.message


@pytest.mark.parametrize("text", ["0", "-2", "two"])
def test_thread_counts_below_one_or_not_numbers_are_refused(monkeypatch, text):
    monkeypatch.setenv(devices.CPU_THREADS_ENVIRONMENT, text)
    with pytest.raises(ValueError, match="LATENTLOOM_CPU_THREADS"):
        devices.sampler_threads((1, 4, 8, 8))


def test_large_latents_use_every_usable_core_and_small_ones_one(monkeypatch):
    monkeypatch.delenv(devices.CPU_THREADS_ENVIRONMENT, raising=False)
    monkeypatch.setattr(devices, "usable_cpus", lambda: 6)

    assert devices.sampler_threads((1, 4, 64, 64)) == 6  # a 512² SD picture
    assert devices.sampler_threads((2, 4, 16, 16)) == 1  # 128²: at the limit
    assert devices.sampler_threads((1, 4, 8, 8)) == 1  # the demo model's 64²


def test_other_devices_keep_the_thread_count(two_threads, monkeypatch):
    monkeypatch.setenv(devices.CPU_THREADS_ENVIRONMENT, "1")
    with devices.cpu_threads((1, 4, 8, 8), torch.device("meta")) as threads:
        assert threads == 2
        assert torch.get_num_threads() == 2


def test_decoding_a_small_latent_uses_one_thread_too(registry, two_threads, monkeypatch):
    """Decoding right after sampling keeps one thread: restoring two between them made the
    demo's decode wait for a new thread pool (0.9–1.9 s against 0.03–0.4 s under load)."""
    monkeypatch.delenv(devices.CPU_THREADS_ENVIRONMENT, raising=False)
    seen = _threads_seen(monkeypatch, vae_ops, "decode")
    g, sampler = _graph(registry)
    load = next(n.id for n in g if n.type_id == "LoadCheckpoint")
    decode = g.add_node("VAEDecode").id
    g.connect(sampler, "LATENT", decode, "samples")
    g.connect(load, "VAE", decode, "vae")

    report = Executor(registry).run(g, outputs=[decode], device="cpu")

    assert report.status == "ok", {e.label: e.message for e in report.entries.values()}
    assert seen == [1]
    assert torch.get_num_threads() == 2
