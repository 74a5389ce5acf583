"""Choose where models run and in which precision.

Device: CUDA, then Apple's MPS, then the CPU, unless the caller (or ``LATENTLOOM_DEVICE``)
names one. Precision: on CUDA bfloat16 where the GPU computes it natively (compute capability
8.0 and later, where it is as fast as float16 and cannot overflow), float16 on older GPUs and on
MPS; on the CPU bfloat16 only when the CPU has native bfloat16 instructions (AVX512-BF16 or
AMX), float32 otherwise, since emulated bfloat16 is slower than float32.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import os
from functools import cache
from pathlib import Path

import torch

DEVICE_ENVIRONMENT = "LATENTLOOM_DEVICE"
_CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """The device to run models on: ``preference``, else $LATENTLOOM_DEVICE, else the best."""
    preference = preference or os.environ.get(DEVICE_ENVIRONMENT) or None
    if preference is not None:
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bfloat16 arithmetic in hardware."""
    return bool(cpu_flags() & _CPU_BF16_FLAGS)


def pick_dtype(device: torch.device, override: torch.dtype | None = None) -> torch.dtype:
    """The compute dtype for a model on ``device``; ``override`` wins."""
    if override is not None:
        return override
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.type == "mps":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def pick_aux_dtype(device: torch.device, override: torch.dtype | None = None) -> torch.dtype:
    """The precision of the VAE and the text encoders on ``device``; ``override`` wins.

    On a GPU they follow the UNet. On a CPU they stay in float32.
    """
    if override is not None:
        return override
    if device.type == "cpu":
        return torch.float32
    return pick_dtype(device)
