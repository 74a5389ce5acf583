"""bench/sampling.py's device handling: every time stamp waits for the device, the GPU-only
metric is summarised, and asking for CUDA where there is none stops with a message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench import sampling, sampling_worker
from bench import sd15_checkpoint as checkpoints

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_checkpoint(tmp_path_factory) -> Path:
    """The benchmark's small SD 1.5-layout checkpoint, written outside the repository."""
    cache = tmp_path_factory.mktemp("bench_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoints, "CACHE", cache)
        return checkpoints.checkpoint_path(quick=True)


class CountingClock:
    """Stands in for the synchronised clock: counts the stamps taken through it."""

    def __init__(self) -> None:
        self.stamps = 0
        #: The devices a clock was asked for.
        self.asked: list[str] = []

    def __call__(self) -> float:
        self.stamps += 1
        return time.perf_counter()


@pytest.fixture
def clock(monkeypatch) -> CountingClock:
    counting = CountingClock()

    def clock_for(device: str) -> CountingClock:
        counting.asked.append(device)
        return counting

    monkeypatch.setattr(sampling_worker, "_clock", clock_for)
    return counting


def test_on_cuda_every_stamp_waits_for_the_queued_work(monkeypatch):
    order: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *args: order.append("synchronize"))
    real = time.perf_counter
    monkeypatch.setattr(time, "perf_counter", lambda: order.append("stamp") or real())
    clock = sampling_worker._clock("cuda")
    clock()
    clock()
    assert order == ["synchronize", "stamp"] * 2
    assert sampling_worker._clock("cpu") is time.perf_counter


def test_latentloom_times_each_node_and_step_through_the_device_clock(
    quick_checkpoint, clock, tmp_path, monkeypatch
):
    monkeypatch.setattr(sampling_worker, "ROOT", tmp_path)  # its model folder goes there
    result = sampling_worker.run_latentloom(quick_checkpoint, "float32", 64, 3, "auto", "", "cpu")
    assert clock.asked == ["cpu"]
    # Six nodes, each stamped when it starts and finishes; three steps; the run's two ends.
    assert clock.stamps == 6 * 2 + 3 + 2
    assert 0 < result["per_step_s"] <= result["sample_s"] <= result["run_s"]
    assert result["load_s"] > 0 and result["decode_s"] > 0 and result["encode_s"] > 0
    spent = result["load_s"] + result["encode_s"] + result["sample_s"] + result["decode_s"]
    assert spent <= result["run_s"] + 0.01


def test_diffusers_times_each_section_and_step_through_the_device_clock(quick_checkpoint, clock):
    result = sampling_worker.run_diffusers(quick_checkpoint, "float32", 64, 3, "cpu")
    assert clock.asked == ["cpu"]
    # Start, loaded, encoded, three steps, sampled, decoded.
    assert clock.stamps == 5 + 3
    assert 0 < result["per_step_s"] <= result["sample_s"] <= result["run_s"]


def test_peak_vram_is_a_metric_only_on_cuda():
    rounds = [
        {**{m: float(i) for m in sampling.METRICS}, "peak_vram_mib": 100.0 + i} for i in (1, 2, 3)
    ]
    assert "peak_vram_mib" not in sampling.summarise(rounds, "cpu")
    summary = sampling.summarise(rounds, "cuda")
    assert summary["peak_vram_mib"] == {"min": 101.0, "median": 102.0}
    assert set(summary) == {*sampling.METRICS, "peak_vram_mib"}
    assert sampling.DEFAULT_DTYPES["cuda"] == "float16,bfloat16"


def _without_a_gpu(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Runs ``command`` in the repository with every GPU hidden, offline."""
    environment = dict(
        os.environ, CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1", PYTHON=sys.executable
    )
    return subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "command",
    [
        ["bench/sampling.py", "--device", "cuda", "--quick"],
        ["bench/sampling_worker.py", "latentloom", "model.safetensors", "--device", "cuda"],
    ],
)
def test_cuda_without_a_gpu_stops_with_a_message_not_a_traceback(command):
    done = _without_a_gpu([sys.executable, *command])
    assert done.returncode == 2, done.stderr
    assert "no CUDA device" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_gpu_check_script_stops_first_thing_without_a_gpu():
    done = _without_a_gpu(["bash", "bench/gpu_check.sh"])
    assert done.returncode == 2, done.stderr
    assert "no CUDA device" in done.stderr and done.stdout == ""
    assert "== GPU suite" not in done.stderr  # nothing was started
