"""The GPU suite (``tests/gpu``) picks its device as documented, marks every test ``gpu``, and
skips quickly with a clear reason where there is no CUDA device."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.gpu import conftest as gpu

SUITE = Path(__file__).with_name("gpu")


def test_the_environment_variable_forces_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.chosen_device({gpu.DEVICE_ENVIRONMENT: "cpu"}) == "cpu"
    assert gpu.chosen_device({gpu.DEVICE_ENVIRONMENT: " cuda:1 "}) == "cuda:1"
    assert gpu.chosen_device({gpu.DEVICE_ENVIRONMENT: ""}) is None
    assert gpu.chosen_device({}) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpu.chosen_device({}) == "cuda"
    assert gpu.chosen_device({gpu.DEVICE_ENVIRONMENT: "cpu"}) == "cpu"


def test_half_precision_is_float16_on_cuda_and_what_the_cpu_computes_natively(monkeypatch):
    from core.diffusion import devices

    assert gpu.half_precision("cuda") == gpu.half_precision("cuda:1") == "float16"
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert gpu.half_precision("cpu") == "bfloat16"
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx2"}))
    assert gpu.half_precision("cpu") == "float32"


def test_every_test_module_of_the_suite_is_marked_gpu():
    modules = sorted(SUITE.glob("test_*.py"))
    assert len(modules) >= 2
    for path in modules:
        module = importlib.import_module(f"tests.gpu.{path.stem}")
        marks = getattr(module, "pytestmark", None)
        assert marks is not None and marks.name == "gpu", f"{path.name} is not marked gpu"


def test_without_a_cuda_device_the_suite_skips_every_test_saying_why(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != gpu.DEVICE_ENVIRONMENT}
    environment["CUDA_VISIBLE_DEVICES"] = ""  # hides any GPU this machine may have
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(SUITE)],
        env=environment,
        capture_output=True,
        text=True,
        cwd=SUITE.parents[1],
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" not in output and " failed" not in output
    assert "skipped" in output and "no CUDA device" in output
