"""The result cache: an LRU of node outputs with two byte budgets.

Loaded models (outputs of the types in ``MODEL_TYPES``) live under their own budget, so a
batch of big latents cannot push the checkpoint out, and the other way round. Sizes are
measured from the objects: anything with ``nbytes`` (numpy arrays, torch tensors) counts that,
containers and dataclasses count their contents.

Models share memory: a LoRA-patched MODEL keeps every untouched tensor of the checkpoint it came
from, and a checkpoint's MODEL keeps its VAE for previews. So the model pool charges storages,
not entries: a model value lists the storages it holds with ``cache_storages()`` (a mapping
from a storage's identity to its bytes), the pool holds the union of its entries' storages, and
its use is the bytes of that union. An entry therefore costs what it adds beyond what the pool
already holds, and evicting an entry frees only the storages no other entry keeps. The union is
taken afresh on every store, because storage identities (device and address) change when a
model moves between devices. A model value without ``cache_storages()`` counts as one storage of
``model_bytes`` bytes, tied to the object.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter, OrderedDict
from collections.abc import Hashable, Mapping, Sequence
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
    """A node's outputs and recorded UI outputs, as one run produced them.

    ``nbytes`` is what the entry holds when stored, storages it shares with others included.
    """

    outputs: tuple[Any, ...]
    records: tuple[Record, ...]
    nbytes: int
    pool: str
    output_types: tuple[str, ...] = ()


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


def entry_storages(
    outputs: Sequence[Any], output_types: Sequence[str], records: Sequence[Record] = ()
) -> dict[Hashable, int]:
    """The storages a model-pool entry holds, with their bytes: each model value's own
    ``cache_storages()``, and every other value as one storage tied to the object."""
    found: dict[Hashable, int] = {}
    for value, kind in zip(outputs, output_types, strict=False):
        own = getattr(value, "cache_storages", None)
        if kind in MODEL_TYPES and callable(own):
            storages: Mapping[Hashable, int] = own()
            found.update(storages)
        elif kind in MODEL_TYPES:
            found[("object", id(value))] = model_bytes(value)
        else:
            found[("object", id(value))] = measure_bytes(value)
    for record in records:
        found[("object", id(record))] = measure_bytes(record.value)
    return found


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
        self._used = {TENSOR_POOL: 0}
        self._where: dict[str, str] = {}

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
        if any(kind in MODEL_TYPES for kind in output_types):
            return self._put_model(key, outputs, tuple(output_types), records)
        size = sum(measure_bytes(value) for value in outputs)
        if records:
            size += sum(measure_bytes(r.value) for r in records)
        budget = self.budgets.tensor_bytes
        if size > budget:
            return False
        entries = self._pools[TENSOR_POOL]
        while entries and self._used[TENSOR_POOL] + size > budget:
            old_key, old = entries.popitem(last=False)
            del self._where[old_key]
            self._used[TENSOR_POOL] -= old.nbytes
        entries[key] = CacheEntry(outputs, records, size, TENSOR_POOL, tuple(output_types))
        self._where[key] = TENSOR_POOL
        self._used[TENSOR_POOL] += size
        return True

    def _put_model(
        self,
        key: str,
        outputs: tuple[Any, ...],
        output_types: tuple[str, ...],
        records: tuple[Record, ...],
    ) -> bool:
        """Stores a model entry, charging only the storages the pool does not hold yet."""
        budget = self.budgets.model_bytes
        storages = entry_storages(outputs, output_types, records)
        size = sum(storages.values())
        if size > budget:
            return False
        entries = self._pools[MODEL_POOL]
        held = {k: self._storages(e) for k, e in entries.items()}
        owners = Counter(storage for found in held.values() for storage in found)
        sizes = {storage: n for found in held.values() for storage, n in found.items()}
        used = sum(sizes.values())
        added = sum(n for storage, n in storages.items() if storage not in owners)
        while entries and used + added > budget:
            old_key, _ = entries.popitem(last=False)
            del self._where[old_key]
            for storage in held.pop(old_key):
                owners[storage] -= 1
                if owners[storage] == 0:
                    del owners[storage]
                    used -= sizes[storage]
                    if storage in storages:  # the new entry keeps it: now it is its charge
                        added += sizes[storage]
        entries[key] = CacheEntry(outputs, records, size, MODEL_POOL, output_types)
        self._where[key] = MODEL_POOL
        return True

    @staticmethod
    def _storages(entry: CacheEntry) -> dict[Hashable, int]:
        return entry_storages(entry.outputs, entry.output_types, entry.records)

    def discard(self, key: str) -> None:
        """Forget the entry under ``key``, if any."""
        pool = self._where.pop(key, None)
        if pool is not None:
            old = self._pools[pool].pop(key)
            if pool == TENSOR_POOL:
                self._used[pool] -= old.nbytes

    def clear(self) -> None:
        for entries in self._pools.values():
            entries.clear()
        self._where.clear()
        self._used = {TENSOR_POOL: 0}

    def used_bytes(self, pool: str = TENSOR_POOL) -> int:
        """Bytes held in ``pool`` (``"tensor"`` or ``"model"``); in the model pool, the bytes
        of the distinct storages its entries hold, measured now."""
        if pool == TENSOR_POOL:
            return self._used[pool]
        found: dict[Hashable, int] = {}
        for entry in self._pools[MODEL_POOL].values():
            found.update(self._storages(entry))
        return sum(found.values())

    def keys(self, pool: str = TENSOR_POOL) -> list[str]:
        """Keys in ``pool``, least recently used first."""
        return list(self._pools[pool])
