"""Device/dtype choice and LRU device residency with a fake device."""

from __future__ import annotations

import gc

import pytest
import torch

from core.diffusion import devices
from core.diffusion.cache import DeviceResidency, module_tensors
from core.diffusion.lora import _patched_copy


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


def test_pick_aux_dtype_follows_a_bf16_unet_only_on_a_native_bf16_cpu(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert devices.pick_aux_dtype(cpu, unet_dtype=torch.bfloat16) == torch.bfloat16
    assert devices.pick_aux_dtype(cpu, unet_dtype=torch.float32) == torch.float32
    assert devices.pick_aux_dtype(cpu, unet_dtype=torch.float16) == torch.float32
    assert devices.pick_aux_dtype(cpu) == torch.float32  # a VAE or text encoder loaded alone
    assert devices.pick_aux_dtype(cpu, torch.float32, torch.bfloat16) == torch.float32
    # Emulated bfloat16 is slower than float32: a CPU without it keeps them in float32 even
    # under a bfloat16 UNet the user asked for.
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx2"}))
    assert devices.pick_aux_dtype(cpu, unet_dtype=torch.bfloat16) == torch.float32
    assert devices.pick_aux_dtype(cpu, torch.bfloat16, torch.float32) == torch.bfloat16
    # GPUs: the device's own half precision, whatever the UNet was given.
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert devices.pick_aux_dtype(torch.device("cuda"), unet_dtype=torch.float32) == torch.float16


class Fake(torch.nn.Module):
    def __init__(self, name: str, size: int) -> None:
        super().__init__()
        self.name, self.size, self.where = name, size, "cpu"


def test_device_residency_evicts_least_recently_used():
    moves = []

    def move(parts, device):
        for module in parts:
            module.where = device.type
            moves.append((module.name, device.type))

    residency = DeviceResidency(
        torch.device("cuda"), budget_bytes=10, move=move, parts=lambda m: [(m, m.size)]
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


class FakeDevice:
    """Records where each tensor was moved (by id) instead of moving it."""

    def __init__(self) -> None:
        self.where: dict[int, str] = {}

    def move(self, tensors, device) -> None:
        for tensor in tensors:
            self.where[id(tensor)] = device.type

    def place(self, module) -> set[str]:
        """Where the module's tensors are: one device when it is whole."""
        return {self.where.get(id(t), "cpu") for t, _ in module_tensors(module)}


def _base_and_patched() -> tuple[torch.nn.Module, torch.nn.Module]:
    """A small model and a LoRA-style copy of it with a new first-layer weight."""
    base = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 16))
    base.register_buffer("scale", torch.ones(16))
    patched = _patched_copy(base, {"0": torch.full((16, 16), 0.5)})
    return base, patched


def _nbytes(*modules) -> int:
    tensors = {id(t): t for m in modules for t in [*m.parameters(), *m.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def test_shared_tensors_are_placed_and_counted_once():
    base, patched = _base_and_patched()
    own = patched[0].weight.numel() * patched[0].weight.element_size()
    device = FakeDevice()
    residency = DeviceResidency(torch.device("cuda"), budget_bytes=10**6, move=device.move)
    residency.use(base)
    assert residency.used_bytes == _nbytes(base)
    moved_before = len(device.where)
    residency.use(patched)  # only its own new weight has to move
    assert len(device.where) == moved_before + 1 and device.where[id(patched[0].weight)] == "cuda"
    assert residency.used_bytes == _nbytes(base) + own == _nbytes(base, patched)


def test_offloading_a_patched_copy_leaves_its_resident_base_whole():
    base, patched = _base_and_patched()
    other = torch.nn.Linear(16, 16, bias=False)  # as big as the copy's own weight
    device = FakeDevice()
    residency = DeviceResidency(
        torch.device("cuda"), budget_bytes=_nbytes(base, patched), move=device.move
    )
    residency.use(patched)
    residency.use(base)
    residency.use(patched)  # base is now the least recently used…
    residency.use(base)  # …and patched
    residency.use(other)  # room for it: patched goes, taking only what base does not use
    assert residency.resident() == [base, other]
    assert device.place(base) == {"cuda"} and device.place(other) == {"cuda"}
    assert device.where[id(patched[0].weight)] == "cpu"
    assert residency.used_bytes <= residency.budget_bytes


def test_placing_a_copy_does_not_bounce_the_tensors_it_shares_off_the_device():
    base, patched = _base_and_patched()
    moves: list[tuple[int, str]] = []
    device = FakeDevice()

    def move(tensors, target):
        moves.extend((id(t), target.type) for t in tensors)
        device.move(tensors, target)

    # Room for one of them: placing patched offloads base, but not what patched shares.
    residency = DeviceResidency(torch.device("cuda"), budget_bytes=_nbytes(base), move=move)
    residency.use(base)
    moves.clear()
    residency.use(patched)
    assert moves == [(id(base[0].weight), "cpu"), (id(patched[0].weight), "cuda")]
    assert residency.resident() == [patched] and device.place(patched) == {"cuda"}


def test_a_forgotten_base_does_not_leave_its_copy_half_on_the_device():
    base, patched = _base_and_patched()
    device = FakeDevice()
    residency = DeviceResidency(torch.device("cuda"), budget_bytes=10**6, move=device.move)
    residency.use(base)
    assert device.place(patched) == {"cpu", "cuda"}  # the shared part came along
    del base
    gc.collect()  # the engine's cache evicted the checkpoint; only the copy lives on
    assert residency.used_bytes == 0
    assert device.place(patched) == {"cpu"}
    residency.use(patched)
    assert device.place(patched) == {"cuda"} and residency.used_bytes == _nbytes(patched)


def test_cuda_and_its_current_card_share_one_residency_and_one_budget(monkeypatch):
    """The nodes ask for the run's "cuda", the ControlNet for its latent's "cuda:0": one card,
    so one residency and one budget (two would each fill 80 % of it)."""
    from types import SimpleNamespace

    from core.diffusion import cache

    monkeypatch.setattr(cache, "_RESIDENCIES", {})
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    card = SimpleNamespace(total_memory=10 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: card)
    run = cache.residency_for("cuda")
    assert cache.residency_for(torch.device("cuda:0")) is run
    assert run.device == torch.device("cuda:0") and run.budget_bytes == 8 * 2**30
    assert cache.residency_for("cuda:1") is not run
    assert cache.residency_for("cpu").is_noop
