"""Keep loaded models in memory, and keep the recently used ones on the accelerator.

``ModelCache`` remembers what a file loaded into, keyed by the file's path, size and
modification time plus the load overrides, so an edited or replaced file is loaded afresh.
``DeviceResidency`` moves models to the compute device on use and, when the next one would not
fit in the device budget, moves the least recently used ones back to the offload device (the
CPU). On a CPU-only machine both devices are the CPU and nothing ever moves.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from core.diffusion.devices import module_bytes

T = TypeVar("T")


@dataclass(frozen=True)
class ModelKey:
    """Identity of a model file as loaded: where, which version of it, with which overrides."""

    path: str
    size: int
    mtime_ns: int
    overrides: Hashable = ()


def model_key(path: str | Path, overrides: Hashable = ()) -> ModelKey:
    """Key a file, or a diffusers folder by the total size and newest time of its files."""
    path = Path(path).resolve()
    if path.is_dir():
        stats = [p.stat() for p in path.rglob("*") if p.is_file()]
        size = sum(s.st_size for s in stats)
        mtime = max((s.st_mtime_ns for s in stats), default=0)
    else:
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    return ModelKey(str(path), size, mtime, overrides)


class ModelCache:
    """An LRU of loaded models, at most ``capacity`` of them."""

    def __init__(self, capacity: int = 3) -> None:
        if capacity < 1:
            raise ValueError("a model cache holds at least one model")
        self.capacity = capacity
        self._entries: OrderedDict[ModelKey, Any] = OrderedDict()

    def get_or_load(self, key: ModelKey, load: Callable[[], T]) -> T:
        """The cached value for ``key``, loading (and evicting the oldest) on a miss."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = load()
        self._entries[key] = value
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every model."""
        self._entries.clear()


def _move(module: torch.nn.Module, device: torch.device) -> None:
    torch.nn.Module.to(module, device)


class DeviceResidency:
    """LRU placement of modules on a compute device with a byte budget.

    ``move`` and ``size_of`` are injectable so the policy can be tested with a fake device.
    """

    def __init__(
        self,
        device: torch.device,
        budget_bytes: int,
        offload_device: torch.device | None = None,
        move: Callable[[torch.nn.Module, torch.device], None] = _move,
        size_of: Callable[[torch.nn.Module], int] = module_bytes,
    ) -> None:
        self.device = torch.device(device)
        self.offload_device = torch.device(offload_device or "cpu")
        self.budget_bytes = budget_bytes
        self._move = move
        self._size_of = size_of
        # Weak references: a model the engine's cache forgets must not be kept alive here.
        self._resident: OrderedDict[int, tuple[weakref.ref[torch.nn.Module], int]] = OrderedDict()

    @property
    def is_noop(self) -> bool:
        """True when compute and offload devices are the same (e.g. CPU only)."""
        return self.device == self.offload_device

    def _prune(self) -> None:
        for key in [k for k, (ref, _) in self._resident.items() if ref() is None]:
            del self._resident[key]

    @property
    def used_bytes(self) -> int:
        """Bytes of the modules currently on the device."""
        self._prune()
        return sum(size for _, size in self._resident.values())

    def resident(self) -> list[torch.nn.Module]:
        """Modules on the device, least recently used first."""
        self._prune()
        return [module for ref, _ in self._resident.values() if (module := ref()) is not None]

    def use(self, module: torch.nn.Module) -> torch.nn.Module:
        """Put ``module`` on the device, offloading least recently used ones to make room."""
        if self.is_noop:
            return module
        self._prune()
        key = id(module)
        if key in self._resident:
            self._resident.move_to_end(key)
            return module
        size = self._size_of(module)
        while self._resident and self.used_bytes + size > self.budget_bytes:
            _, (victim_ref, _) = self._resident.popitem(last=False)
            victim = victim_ref()
            if victim is not None:
                self._move(victim, self.offload_device)
        self._move(module, self.device)
        self._resident[key] = (weakref.ref(module), size)
        return module

    def release(self, module: torch.nn.Module) -> None:
        """Move ``module`` off the device now (e.g. before its model is forgotten)."""
        entry = self._resident.pop(id(module), None)
        if entry is not None:
            self._move(module, self.offload_device)


_RESIDENCIES: dict[str, DeviceResidency] = {}


def residency_for(device: torch.device) -> DeviceResidency:
    """The one residency of ``device`` in this process (device memory is a process-wide
    resource). CUDA budgets 80 % of the card, leaving room for activations; other devices
    keep everything where it is."""
    device = torch.device(device)
    key = str(device)
    if key not in _RESIDENCIES:
        if device.type == "cuda":
            budget = int(torch.cuda.get_device_properties(device).total_memory * 0.8)
            _RESIDENCIES[key] = DeviceResidency(device, budget)
        else:
            _RESIDENCIES[key] = DeviceResidency(device, 0, offload_device=device)
    return _RESIDENCIES[key]
