"""The cache: Merkle keys, re-runs after edits, and the two LRU byte budgets."""

from __future__ import annotations

import random

import numpy as np

from core.engine import CacheBudgets, Executor, ResultCache, compute_keys, make_plan
from core.engine.cache import MODEL_POOL, TENSOR_POOL, measure_bytes, model_bytes
from core.graph.spec import NodeSpec, Output
from core.graph.types import FLOAT
from tests.engine.toy import FakeModel, Toy


def _diamond(toy: Toy, g):
    """c1 → a1 → a3 → show, c2 → a2 → a3 (b)."""
    c1 = g.add_node("Const", params={"value": 1.0})
    c2 = g.add_node("Const", params={"value": 2.0})
    a1 = g.add_node("Add", params={"bias": 10.0})
    a2 = g.add_node("Add", params={"bias": 20.0})
    a3 = g.add_node("Add")
    show = g.add_node("Show")
    g.connect(c1.id, "out", a1.id, "a")
    g.connect(c2.id, "out", a2.id, "a")
    g.connect(a1.id, "out", a3.id, "a")
    g.connect(a2.id, "out", a3.id, "b")
    g.connect(a3.id, "out", show.id, "x")
    return c1, c2, a1, a2, a3, show


def test_rerun_is_fully_cached(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    nodes = _diamond(toy, g)
    first = executor.run(g)
    assert first.ran_count == 6
    toy.reset()
    events = []
    second = executor.run(g, on_event=events.append)
    assert toy.calls == [] and second.ran_count == 0
    assert {e.status for e in second.entries.values()} == {"cached"}
    # The cached output node still reports what it recorded.
    assert second.entries[nodes[-1].id].records == first.entries[nodes[-1].id].records


def test_only_downstream_of_an_edit_reruns(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    c1, _c2, a1, a2, a3, show = _diamond(toy, g)
    executor.run(g)
    toy.reset()
    g.set_param(a1.id, "bias", 11.0)
    report = executor.run(g)
    assert toy.calls == [a1.id, a3.id, show.id]
    assert report.ran_count == len(g.downstream(a1.id)) + 1
    assert report.status_of(c1.id) == "cached" and report.status_of(a2.id) == "cached"


def test_ids_and_positions_do_not_change_keys(toy: Toy) -> None:
    g1, g2 = toy.graph(), toy.graph()
    c = g1.add_node("Const", node_id=1, params={"value": 3.0}, pos=(0, 0))
    a = g1.add_node("Add", node_id=2)
    g1.connect(c.id, "out", a.id, "a")
    c2 = g2.add_node("Const", node_id=70, params={"value": 3.0}, pos=(500, 80), title="three")
    a2 = g2.add_node("Add", node_id=5, pos=(9, 9))
    g2.connect(c2.id, "out", a2.id, "a")
    k1, _ = compute_keys(g1, make_plan(g1, [a.id]))
    k2, _ = compute_keys(g2, make_plan(g2, [a2.id]))
    assert k1[a.id] == k2[a2.id] and k1[c.id] == k2[c2.id]


def test_linked_widget_value_is_not_in_the_key(toy: Toy) -> None:
    g = toy.graph()
    c = g.add_node("Const")
    a = g.add_node("Add")
    g.connect(c.id, "out", a.id, "a")
    g.connect(c.id, "out", a.id, "bias")
    before = compute_keys(g, make_plan(g, [a.id]))[0][a.id]
    g.set_param(a.id, "bias", 123.0)
    assert compute_keys(g, make_plan(g, [a.id]))[0][a.id] == before


def test_fingerprint_change_invalidates(toy: Toy, executor: Executor, tmp_path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text("a cat")
    g = toy.graph()
    load = g.add_node("Load", params={"path": str(path)})
    assert executor.run(g, outputs=[load.id]).outputs[load.id] == ("a cat",)
    assert executor.run(g, outputs=[load.id]).ran_count == 0
    path.write_text("a dog")
    report = executor.run(g, outputs=[load.id])
    assert report.ran_count == 1 and report.outputs[load.id] == ("a dog",)


def test_fingerprint_that_raises_fails_the_node(toy: Toy, executor: Executor) -> None:
    def unreadable(params):
        raise OSError("disk unreadable")

    spec = NodeSpec(
        "Flaky",
        "Flaky",
        "test",
        lambda ctx: 1.0,
        (),
        (Output("out", FLOAT),),
        fingerprint=unreadable,
    )
    toy.registry.register(spec)
    g = toy.graph()
    flaky = g.add_node("Flaky")
    add = g.add_node("Add")
    g.connect(flaky.id, "out", add.id, "a")
    const = g.add_node("Const")
    report = executor.run(g, outputs=[add.id, const.id])
    assert report.status == "failed"
    assert report.status_of(flaky.id) == "failed"
    assert "OSError: disk unreadable" in report.entries[flaky.id].message
    assert report.status_of(add.id) == "skipped"
    assert report.status_of(const.id) == "ran"


def test_sizes_are_measured_from_objects() -> None:
    arr = np.zeros((4, 8), dtype=np.float32)
    assert measure_bytes(arr) == 128
    assert measure_bytes({"samples": arr, "mask": [arr, (arr,)]}) == 3 * 128
    assert model_bytes(FakeModel(5000)) == 5000

    class WithParameters:
        def parameters(self):
            return [np.zeros(10, dtype=np.float64), np.zeros(3, dtype=np.int8)]

    assert model_bytes(WithParameters()) == 83


def test_lru_evicts_by_byte_budget_per_pool() -> None:
    cache = ResultCache(CacheBudgets(tensor_bytes=1000, model_bytes=10_000))
    arr = np.zeros(100, dtype=np.float32)  # 400 bytes
    assert cache.put("a", (arr,), ["LATENT"])
    assert cache.put("b", (arr,), ["LATENT"])
    assert cache.put("m", (FakeModel(9000),), ["MODEL"])
    cache.get("a")  # a is now more recent than b
    assert cache.put("c", (arr,), ["LATENT"])
    assert cache.keys(TENSOR_POOL) == ["a", "c"]
    assert cache.keys(MODEL_POOL) == ["m"]  # tensors never evict models
    assert cache.used_bytes(TENSOR_POOL) == 800
    assert not cache.put("huge", (np.zeros(1000, dtype=np.float32),), ["LATENT"])
    assert "huge" not in cache and cache.keys(TENSOR_POOL) == ["a", "c"]
    assert cache.put("m2", (FakeModel(2000),), ["MODEL"])
    assert cache.keys(MODEL_POOL) == ["m2"]
    assert cache.used_bytes(MODEL_POOL) == 2000


def test_executor_model_budget(toy: Toy) -> None:
    executor = Executor(toy.registry, CacheBudgets(tensor_bytes=1 << 20, model_bytes=3 << 20))
    g = toy.graph()
    small = g.add_node("Model", params={"megabytes": 2})
    big = g.add_node("Model", params={"megabytes": 4})
    executor.run(g, outputs=[small.id, big.id])
    toy.reset()
    executor.run(g, outputs=[small.id, big.id])
    assert toy.calls == [big.id]  # too big for the model budget: never kept


def test_equal_subgraphs_share_a_result(toy: Toy, executor: Executor) -> None:
    g = toy.graph()
    c1 = g.add_node("Const", params={"value": 4.0})
    c2 = g.add_node("Const", params={"value": 4.0})
    report = executor.run(g, outputs=[c1.id, c2.id])
    assert toy.calls == [c1.id]
    assert report.outputs == {c1.id: (4.0,), c2.id: (4.0,)}


def test_reruns_match_downstream_on_random_graphs(toy: Toy) -> None:
    """After one param edit, exactly the edited node and its downstream re-run."""
    for seed in range(5):
        rng = random.Random(seed)
        g = toy.graph()
        ids = [g.add_node("Const", params={"value": float(i)}).id for i in range(4)]
        for i in range(40):
            node = g.add_node("Add", params={"bias": i * 0.5})
            g.connect(rng.choice(ids), "out", node.id, "a")
            if rng.random() < 0.6:
                g.connect(rng.choice(ids), "out", node.id, "b")
            ids.append(node.id)
        executor = Executor(toy.registry)
        executor.run(g, outputs=ids)
        edited = rng.choice(ids[4:])
        g.set_param(edited, "bias", -1.0)
        toy.reset()
        report = executor.run(g, outputs=ids)
        assert set(toy.calls) == g.downstream(edited) | {edited}
        assert report.ran_count == len(toy.calls)


class SharedModel:
    """A model value made of named storages; two values naming one storage share it."""

    def __init__(self, **storages: int) -> None:
        self.storages = storages

    def cache_storages(self) -> dict[str, int]:
        return dict(self.storages)


def test_model_pool_charges_a_shared_storage_once() -> None:
    cache = ResultCache(CacheBudgets(model_bytes=10_000))
    base = SharedModel(unet=4000, clip=2000, vae=1000)
    vae = SharedModel(vae=1000)
    assert cache.put("checkpoint", (base, base, vae), ["MODEL", "CLIP", "VAE"])
    assert cache.used_bytes(MODEL_POOL) == 7000
    patched = SharedModel(unet=4000, vae=1000, patched_layer=500)  # a LoRA copy of the base
    assert cache.put("lora", (patched,), ["MODEL"])
    assert cache.used_bytes(MODEL_POOL) == 7500
    assert cache.get("lora").nbytes == 5500  # what the entry holds, shared or not
    cache.discard("checkpoint")  # the copy still keeps the UNet and the VAE alive
    assert cache.used_bytes(MODEL_POOL) == 5500


def test_model_pool_evicts_until_what_an_entry_adds_fits() -> None:
    cache = ResultCache(CacheBudgets(model_bytes=10_000))
    assert cache.put("a", (SharedModel(a=4000),), ["MODEL"])
    assert cache.put("b", (SharedModel(b=4000),), ["MODEL"])
    # Shares b's storage: adds only 1500 bytes, which fit next to a and b.
    assert cache.put("b+lora", (SharedModel(b=4000, lora=1500),), ["MODEL"])
    assert cache.keys(MODEL_POOL) == ["a", "b", "b+lora"]
    assert cache.used_bytes(MODEL_POOL) == 9500
    # 3000 new bytes: a goes; evicting b would free nothing, since b+lora keeps its storage.
    assert cache.put("c", (SharedModel(c=3000),), ["MODEL"])
    assert cache.keys(MODEL_POOL) == ["b", "b+lora", "c"]
    assert cache.used_bytes(MODEL_POOL) == 8500
    # 5000 new bytes: b frees nothing on its own, so b+lora goes too; then it fits.
    assert cache.put("d", (SharedModel(d=5000),), ["MODEL"])
    assert cache.keys(MODEL_POOL) == ["c", "d"]
    assert cache.used_bytes(MODEL_POOL) == 8000 <= cache.budgets.model_bytes
