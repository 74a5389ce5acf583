"""Device/dtype choice, the model cache and LRU device residency with a fake device."""

from __future__ import annotations

import os
import time

import pytest
import torch

from core.diffusion import devices
from core.diffusion.cache import DeviceResidency, ModelCache, model_key


def test_pick_device_prefers_explicit_then_environment(monkeypatch):
    assert devices.pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(devices.DEVICE_ENVIRONMENT, "cuda:1")
    assert devices.pick_device() == torch.device("cuda:1")
    monkeypatch.delenv(devices.DEVICE_ENVIRONMENT)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.pick_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.pick_device() == torch.device("cuda")


def test_pick_dtype(monkeypatch):
    cpu = torch.device("cpu")
    assert devices.pick_dtype(cpu, torch.float16) == torch.float16
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx2"}))
    assert devices.pick_dtype(cpu) == torch.float32
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert devices.pick_dtype(cpu) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    assert devices.pick_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert devices.pick_dtype(torch.device("cuda")) == torch.float16
    assert devices.pick_dtype(torch.device("mps")) == torch.float16


def test_model_cache_keys_on_file_version(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"one")
    cache = ModelCache(capacity=2)
    loads = []
    first = cache.get_or_load(model_key(path), lambda: loads.append(1) or object())
    assert cache.get_or_load(model_key(path), lambda: loads.append(2)) is first
    assert len(loads) == 1
    assert model_key(path, ("dtype", "bf16")) != model_key(path)
    path.write_bytes(b"changed")
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    assert model_key(path) not in cache
    cache.get_or_load(model_key(path), object)
    cache.get_or_load(model_key(path, "x"), object)
    assert len(cache) == 2


class Fake(torch.nn.Module):
    def __init__(self, name: str, size: int) -> None:
        super().__init__()
        self.name, self.size, self.where = name, size, "cpu"


def test_device_residency_evicts_least_recently_used():
    moves = []

    def move(module, device):
        module.where = device.type
        moves.append((module.name, device.type))

    residency = DeviceResidency(
        torch.device("cuda"), budget_bytes=10, move=move, size_of=lambda m: m.size
    )
    a, b, c = Fake("a", 4), Fake("b", 4), Fake("c", 4)
    residency.use(a)
    residency.use(b)
    residency.use(a)  # a is now the most recently used
    residency.use(c)  # needs room: b goes back to the CPU
    assert (b.where, a.where, c.where) == ("cpu", "cuda", "cuda")
    assert residency.resident() == [a, c] and residency.used_bytes == 8
    residency.release(a)
    assert a.where == "cpu" and residency.resident() == [c]
    assert moves == [("a", "cuda"), ("b", "cuda"), ("b", "cpu"), ("c", "cuda"), ("a", "cpu")]


def test_device_residency_is_a_noop_on_cpu():
    residency = DeviceResidency(torch.device("cpu"), budget_bytes=0, move=pytest.fail)
    module = Fake("a", 100)
    assert residency.use(module) is module and residency.is_noop
