"""Device memory: two checkpoints over the budgets take turns on the device, and a cancelled run
leaves nothing behind.

The byte counts are CUDA's (``torch.cuda.memory_allocated``): under a forced CPU device those
assertions are skipped, since the CPU has no such counter and its residency never moves a model
(compute and offload device are the same); what the runs report and produce is checked on
every device.
"""

from __future__ import annotations

import gc

import pytest
import torch

from core.diffusion.cache import module_tensors, residency_for
from core.engine import CacheBudgets, CancelToken, Executor, RunReport
from core.engine.cache import MODEL_POOL
from core.engine.events import Progress
from tests.gpu.conftest import (
    CHECKPOINTS,
    SAME_WORK,
    default_workflow,
    device_bytes,
    on_cuda,
)

pytestmark = pytest.mark.gpu


def _ok(report: RunReport) -> RunReport:
    assert report.status == "ok", {n: (e.status, e.message) for n, e in report.entries.items()}
    return report


def _parts(loaded: tuple) -> dict[str, list[torch.nn.Module]]:
    model, clip, vae = loaded
    return {"unet": [model.unet], "clip": [e.model for e in clip.encoders], "vae": [vae.vae]}


def _bytes(modules: list[torch.nn.Module]) -> int:
    tensors = {id(t): size for m in modules for t, size in module_tensors(m)}
    return sum(tensors.values())


def _where(module: torch.nn.Module) -> set[str]:
    return {t.device.type for t, _ in module_tensors(module)}


def test_two_checkpoints_over_the_budgets_take_turns_and_stay_right(
    registry, gpu_device, gpu_dtype, monkeypatch
):
    flows = [
        default_workflow(registry, gpu_dtype, checkpoint=name, seed=2, steps=2)
        for name in CHECKPOINTS
    ]
    # Each checkpoint alone on a fresh executor: the latents every later run must reproduce.
    alone = []
    for flow in flows:
        report = _ok(
            Executor(registry).run(flow.graph, [flow.load, flow.sampler], device=gpu_device)
        )
        parts = _parts(report.outputs[flow.load])
        alone.append(report.outputs[flow.sampler][0]["samples"])
    one = _bytes([m for modules in parts.values() for m in modules])
    # When the second UNet is placed its text encoder has just been: the first UNet cannot
    # stay beside both, so it must leave the device (below).
    assert _bytes(parts["clip"]) + 2 * _bytes(parts["unet"]) > one
    del report, parts
    assert not torch.equal(alone[0], alone[1])  # two different models

    # The engine's model budget holds one checkpoint: loading the second evicts the first
    # (and, with no room for other values, every run samples again).
    budget = int(1.5 * one)
    executor = Executor(registry, CacheBudgets(tensor_bytes=0, model_bytes=budget))
    for flow, expected in zip(flows, alone, strict=True):
        report = _ok(executor.run(flow.graph, [flow.sampler], device=gpu_device))
        assert executor.cache.used_bytes(MODEL_POOL) <= budget
        torch.testing.assert_close(
            report.outputs[flow.sampler][0]["samples"], expected, **SAME_WORK
        )
    again = _ok(executor.run(flows[0].graph, [flows[0].sampler], device=gpu_device))
    assert again.status_of(flows[0].load) == "ran"  # evicted, so loaded again
    del executor, report, again

    # Both stay in the engine's cache, but the device holds one checkpoint's bytes: running
    # the second moves the first off it, and running the first again brings it back.
    residency = residency_for(torch.device(gpu_device))
    monkeypatch.setattr(residency, "budget_bytes", one)
    gc.collect()
    before = device_bytes(gpu_device) if on_cuda(gpu_device) else 0
    # Nothing but models is cached, so every run samples again with the models it finds.
    executor = Executor(registry, CacheBudgets(tensor_bytes=0))
    loaded = []
    for flow, expected in [*zip(flows, alone, strict=True), (flows[0], alone[0])]:
        report = _ok(executor.run(flow.graph, [flow.load, flow.sampler], device=gpu_device))
        torch.testing.assert_close(
            report.outputs[flow.sampler][0]["samples"], expected, **SAME_WORK
        )
        loaded.append(_parts(report.outputs[flow.load]))
        if on_cuda(gpu_device):
            assert residency.used_bytes <= one
            # Activations are gone after the run; what stays is the resident models and the
            # few conditioning tensors the run kept, far less than another checkpoint.
            assert device_bytes(gpu_device) - before <= one + one // 4
    first, second = loaded[0]["unet"][0], loaded[1]["unet"][0]
    assert report.status_of(flows[0].load) == "cached" and loaded[2]["unet"][0] is first
    if on_cuda(gpu_device):
        assert _where(first) == {"cuda"} and _where(second) == {"cpu"}
        # A moment ago (after the second checkpoint's run) it was the other way round.
        report = _ok(executor.run(flows[1].graph, [flows[1].sampler], device=gpu_device))
        assert _where(first) == {"cpu"} and _where(second) == {"cuda"}


def test_cancelling_after_the_first_step_releases_what_the_run_held(
    registry, gpu_device, gpu_dtype
):
    cuda = on_cuda(gpu_device)
    # On CUDA a larger picture, so that a leaked latent stands well clear of allocator rounding;
    # on the CPU, where no bytes are counted, the small one keeps the run short.
    flow = default_workflow(registry, gpu_dtype, seed=1, steps=3, size=128 if cuda else 64)
    # A first whole run, then forgotten: the device's one-off allocations (library
    # workspaces) are made, and the baseline below holds no model.
    warm = Executor(registry)
    _ok(warm.run(flow.graph, [flow.decode], device=gpu_device))
    warm.clear_cache()
    del warm
    empty = device_bytes(gpu_device) if cuda else 0

    executor = Executor(registry)
    report = _ok(executor.run(flow.graph, [flow.sampler], device=gpu_device))
    samples = report.outputs[flow.sampler][0]["samples"]
    del report
    # Even part of one leaked latent would show: the allowance is a quarter of a float32 one.
    allowance = samples.numel() * samples.element_size() // 4
    loaded = device_bytes(gpu_device) if cuda else 0

    flow.graph.set_param(flow.sampler, "seed", 2)
    token = CancelToken()
    steps: list[int] = []

    def cancel_after_the_first_step(event: object) -> None:
        if isinstance(event, Progress) and event.node_id == flow.sampler:
            steps.append(event.step)
            token.cancel()

    report = executor.run(
        flow.graph,
        [flow.decode],
        on_event=cancel_after_the_first_step,
        cancel=token,
        device=gpu_device,
    )
    assert report.status == "cancelled" and steps == [1]
    assert report.status_of(flow.sampler) == "cancelled"
    assert report.status_of(flow.decode) == "cancelled"
    assert flow.decode not in report.outputs
    assert not [e for e in report.entries.values() if e.status == "failed"]
    del report
    if cuda:
        # The models stay resident for the next run; the cancelled run's latents, noise and
        # activations are gone.
        assert device_bytes(gpu_device) - loaded <= allowance

    # The executor is not left in a broken state: the next run completes.
    flow.graph.set_param(flow.sampler, "seed", 3)
    _ok(executor.run(flow.graph, [flow.decode], device=gpu_device))
    executor.clear_cache()
    del executor
    if cuda:
        # With the cache cleared no model is alive: the device is back to where it started.
        assert device_bytes(gpu_device) - empty <= allowance
