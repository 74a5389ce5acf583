"""The result cache: an LRU of node outputs with two byte budgets.

Loaded models (outputs of the types in ``MODEL_TYPES``) live under their own budget, so a
batch of big latents cannot push the checkpoint out, and the other way round. Sizes are
measured from the objects: anything with ``nbytes`` (numpy arrays, torch tensors) counts that,
containers and dataclasses count their contents.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.engine.events import Record
from core.graph.types import MODEL_TYPES

GIB = 1024**3

TENSOR_POOL = "tensor"
MODEL_POOL = "model"


@dataclass(frozen=True)
class CacheBudgets:
    """Byte budgets of the cache: one for tensors and other values, one for loaded models."""

    tensor_bytes: int = 4 * GIB
    model_bytes: int = 8 * GIB


@dataclass(frozen=True)
class CacheEntry:
    """A node's outputs and recorded UI outputs, as one run produced them."""

    outputs: tuple[Any, ...]
    records: tuple[Record, ...]
    nbytes: int
    pool: str


def measure_bytes(value: Any, _seen: set[int] | None = None) -> int:
    """Bytes a value holds: ``nbytes`` where it has one, the sum over containers' and
    dataclasses' contents, ``sys.getsizeof`` for anything else."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, (str, bytes, int, float, bool, type(None))):
        return sys.getsizeof(value)
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, dict):
        return sum(measure_bytes(v, seen) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(measure_bytes(v, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(measure_bytes(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


def model_bytes(model: Any) -> int:
    """Bytes a loaded model holds: its ``cache_nbytes()``, else the sum of its parameters'
    ``nbytes``, else what ``measure_bytes`` finds."""
    own = getattr(model, "cache_nbytes", None)
    if callable(own):
        return int(own())
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        return sum(int(p.nbytes) for p in parameters())
    return measure_bytes(model)


class ResultCache:
    """Node results by cache key, least recently used evicted first, per budget.

    An entry goes to the model pool when any of its outputs has a model type. An entry larger
    than its pool's whole budget is not kept. Not thread-safe: the executor serialises runs.
    """

    def __init__(self, budgets: CacheBudgets | None = None) -> None:
        self.budgets = budgets or CacheBudgets()
        self._pools: dict[str, OrderedDict[str, CacheEntry]] = {
            TENSOR_POOL: OrderedDict(),
            MODEL_POOL: OrderedDict(),
        }
        self._used = {TENSOR_POOL: 0, MODEL_POOL: 0}
        self._where: dict[str, str] = {}

    def _budget(self, pool: str) -> int:
        return self.budgets.model_bytes if pool == MODEL_POOL else self.budgets.tensor_bytes

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, key: str) -> CacheEntry | None:
        """The entry under ``key`` (marked as recently used), or None."""
        pool = self._where.get(key)
        if pool is None:
            return None
        entries = self._pools[pool]
        entries.move_to_end(key)
        return entries[key]

    def put(
        self,
        key: str,
        outputs: tuple[Any, ...],
        output_types: Sequence[str],
        records: tuple[Record, ...] = (),
    ) -> bool:
        """Stores a result, evicting older entries of its pool; False when it was too big."""
        self.discard(key)
        is_model = any(kind in MODEL_TYPES for kind in output_types)
        size = sum(
            model_bytes(value) if kind in MODEL_TYPES else measure_bytes(value)
            for value, kind in zip(outputs, output_types, strict=False)
        )
        if records:
            size += sum(measure_bytes(r.value) for r in records)
        pool = MODEL_POOL if is_model else TENSOR_POOL
        budget = self._budget(pool)
        if size > budget:
            return False
        entries = self._pools[pool]
        while entries and self._used[pool] + size > budget:
            old_key, old = entries.popitem(last=False)
            del self._where[old_key]
            self._used[pool] -= old.nbytes
        entries[key] = CacheEntry(outputs, records, size, pool)
        self._where[key] = pool
        self._used[pool] += size
        return True

    def discard(self, key: str) -> None:
        pool = self._where.pop(key, None)
        if pool is not None:
            self._used[pool] -= self._pools[pool].pop(key).nbytes

    def clear(self) -> None:
        for entries in self._pools.values():
            entries.clear()
        self._where.clear()
        self._used = {TENSOR_POOL: 0, MODEL_POOL: 0}

    def used_bytes(self, pool: str = TENSOR_POOL) -> int:
        """Bytes held in ``pool`` (``"tensor"`` or ``"model"``)."""
        return self._used[pool]

    def keys(self, pool: str = TENSOR_POOL) -> list[str]:
        """Keys in ``pool``, least recently used first."""
        return list(self._pools[pool])
