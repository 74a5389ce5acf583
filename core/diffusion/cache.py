"""Keep the recently used models on the accelerator, within a byte budget.

``DeviceResidency`` moves models to the compute device when a node uses them and, when the
next one would not fit in the device budget, moves the least recently used ones back to the
offload device (host memory). On a CPU-only machine both devices are the CPU and nothing moves.

Models share tensors: a LoRA-patched copy keeps every untouched parameter of its base. So the
residency works on tensors, not whole modules: the device holds the union of the resident
models' tensors, a model brings along only the tensors not already there, and offloading a
model moves only the tensors no other resident model (nor the one being placed) still uses.
Tensors move in place (``tensor.data = …``), so a tensor shared by two modules is moved for both
and never silently split in two copies. A model the engine's cache forgets is not kept alive
here; the tensors it shared with a surviving model go back to host memory at the next call,
unless a resident model uses them, so no model is left half on the device.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


def module_tensors(module: torch.nn.Module) -> list[tuple[torch.Tensor, int]]:
    """A module's distinct parameters and buffers with their bytes: what a move carries."""
    seen: dict[int, tuple[torch.Tensor, int]] = {}
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        seen.setdefault(id(tensor), (tensor, tensor.numel() * tensor.element_size()))
    return list(seen.values())


@torch.no_grad()
def move_tensors(tensors: Sequence[torch.Tensor], device: torch.device) -> None:
    """Move tensors to ``device`` in place, so every module holding one sees the move."""
    for tensor in tensors:
        if tensor.device != device:
            tensor.data = tensor.data.to(device)


@dataclass
class _Placed:
    """A resident module (weakly held) and its tensors (weakly held), by ``id``, with bytes."""

    module: weakref.ref[Any]
    tensors: dict[int, tuple[weakref.ref[Any], int]]


class DeviceResidency:
    """LRU placement of modules on a compute device with a byte budget, sharing-aware.

    ``parts`` (a module's movable tensors with their bytes) and ``move`` (move some of them to a
    device) are injectable so the policy can be tested with a fake device.
    """

    def __init__(
        self,
        device: torch.device,
        budget_bytes: int,
        offload_device: torch.device | None = None,
        move: Callable[[Sequence[Any], torch.device], None] = move_tensors,
        parts: Callable[[Any], Iterable[tuple[Any, int]]] = module_tensors,
    ) -> None:
        self.device = torch.device(device)
        self.offload_device = torch.device(offload_device or "cpu")
        self.budget_bytes = budget_bytes
        self._move = move
        self._parts = parts
        # Weak references: a model the engine's cache forgets must not be kept alive here.
        self._resident: OrderedDict[int, _Placed] = OrderedDict()

    @property
    def is_noop(self) -> bool:
        """True when compute and offload devices are the same (e.g. CPU only)."""
        return self.device == self.offload_device

    def _on_device(self) -> dict[int, int]:
        """Bytes of the tensors the resident modules hold, by tensor id."""
        found: dict[int, int] = {}
        for placed in self._resident.values():
            found.update(
                (tid, size) for tid, (ref, size) in placed.tensors.items() if ref() is not None
            )
        return found

    def _prune(self, keep: Iterable[int] = ()) -> None:
        """Forget modules that died; send the tensors they shared with a live module, and
        that neither a resident module nor ``keep`` uses, back to the offload device."""
        dead = [key for key, placed in self._resident.items() if placed.module() is None]
        orphans: dict[int, Any] = {}
        for key in dead:
            for tid, (ref, _) in self._resident.pop(key).tensors.items():
                if (tensor := ref()) is not None:
                    orphans[tid] = tensor
        if orphans:
            kept = self._on_device().keys() | set(keep)
            stray = [tensor for tid, tensor in orphans.items() if tid not in kept]
            if stray:
                self._move(stray, self.offload_device)

    @property
    def used_bytes(self) -> int:
        """Bytes of the tensors currently placed on the device, shared ones counted once."""
        self._prune()
        return sum(self._on_device().values())

    def resident(self) -> list[Any]:
        """Modules on the device, least recently used first."""
        self._prune()
        return [m for placed in self._resident.values() if (m := placed.module()) is not None]

    def use(self, module: Any) -> Any:
        """Put ``module`` on the device, offloading least recently used ones to make room."""
        if self.is_noop:
            return module
        key = id(module)
        own = {id(tensor): (tensor, size) for tensor, size in self._parts(module)}
        self._prune(keep=own.keys())
        if key in self._resident:
            self._resident.move_to_end(key)
            return module
        on_device = self._on_device()
        there = own.keys() & on_device.keys()  # offloading below leaves these in place
        needed = sum(size for tid, (_, size) in own.items() if tid not in on_device)
        while self._resident and sum(on_device.values()) + needed > self.budget_bytes:
            self._offload(next(iter(self._resident)), keep=own.keys())
            on_device = self._on_device()
            needed = sum(size for tid, (_, size) in own.items() if tid not in on_device)
        self._move([tensor for tid, (tensor, _) in own.items() if tid not in there], self.device)
        refs = {tid: (weakref.ref(tensor), size) for tid, (tensor, size) in own.items()}
        self._resident[key] = _Placed(weakref.ref(module), refs)
        return module

    def _offload(self, key: int, keep: Iterable[int] = ()) -> None:
        """Move a resident module off the device, leaving the tensors that other resident
        modules, or ``keep``, still use."""
        placed = self._resident.pop(key)
        kept = self._on_device().keys() | set(keep)
        leaving = [
            tensor
            for tid, (ref, _) in placed.tensors.items()
            if tid not in kept and (tensor := ref()) is not None
        ]
        if leaving:
            self._move(leaving, self.offload_device)

    def release(self, module: Any) -> None:
        """Move ``module`` off the device now (e.g. before its model is forgotten)."""
        self._prune()
        if id(module) in self._resident:
            self._offload(id(module))


_RESIDENCIES: dict[str, DeviceResidency] = {}


def residency_for(device: torch.device | str) -> DeviceResidency:
    """The one residency of ``device`` in this process (device memory is a process-wide
    resource). CUDA budgets 80 % of the card, leaving room for activations; other devices
    keep everything where it is.

    ``cuda`` names the current card, as ``cuda:0`` (the device of every tensor on it) does:
    both get the same residency, so the nodes (which ask for the run's ``cuda``) and the
    ControlNet (which asks for its latent's ``cuda:0``) share one budget for the one card.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    key = str(device)
    if key not in _RESIDENCIES:
        if device.type == "cuda":
            budget = int(torch.cuda.get_device_properties(device).total_memory * 0.8)
            _RESIDENCIES[key] = DeviceResidency(device, budget)
        else:
            _RESIDENCIES[key] = DeviceResidency(device, 0, offload_device=device)
    return _RESIDENCIES[key]
