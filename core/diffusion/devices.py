"""Choose where models run and in which precision.

Device: CUDA, then Apple's MPS, then the CPU, unless the caller (or ``LATENTLOOM_DEVICE``)
names one. Precision: on CUDA bfloat16 where the GPU computes it natively (compute capability
8.0 and later, where it is as fast as float16 and cannot overflow), float16 on older GPUs and on
MPS; on the CPU bfloat16 only when the CPU has native bfloat16 instructions (AVX512-BF16 or
AMX), float32 otherwise, since emulated bfloat16 is slower than float32. The VAE and text
encoders follow a bfloat16 UNet on such a CPU and stay in float32 on any other.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


def pick_aux_dtype(
    device: torch.device,
    override: torch.dtype | None = None,
    unet_dtype: torch.dtype | None = None,
) -> torch.dtype:
    """The precision of the VAE and the text encoders on ``device``; ``override`` wins.

    On a GPU they follow the UNet. On a CPU they follow the UNet's ``unet_dtype`` only when it
    is bfloat16 and the CPU computes bfloat16 natively: there a bfloat16 decode is about twice
    as fast as float32's and the demo model's pictures stay 48 dB or more from float32's
    (docs/performance.md). Otherwise, and when the UNet's precision is not known (a VAE or text
    encoder loaded on its own), they stay in float32: emulated bfloat16 is slower than float32,
    and float16 on a CPU is both slow and prone to overflow in the VAE.
    """
    if override is not None:
        return override
    if device.type == "cpu":
        if unet_dtype == torch.bfloat16 and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    return pick_dtype(device)


#: ``LATENTLOOM_CPU_THREADS``: how many threads torch uses for a sampler run on the CPU,
#: overriding the choice below (e.g. to pin a benchmark, or to use every core on a small model).
CPU_THREADS_ENVIRONMENT = "LATENTLOOM_CPU_THREADS"
#: Latents up to this many cells a picture (16×16: a 128² SD picture) are sampled on one
#: thread. Each convolution or matrix product of such a latent lasts well under a millisecond,
#: so splitting it across threads buys nothing, and every split ends at a barrier where all
#: threads wait for the slowest: on a shared machine, where another process holds a core, each
#: barrier waits for the scheduler to give it back. On a 2-core VM with other work running,
#: the demo model's 20 steps took 14–40 s on two threads and under 1 s on one.
SINGLE_THREAD_CELLS = 16 * 16


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity mask
        return max(1, os.cpu_count() or 1)


def sampler_threads(latent_shape: Sequence[int]) -> int:
    """The torch thread count for sampling or decoding a latent of ``latent_shape``
    ([B, C, h, w]) on the CPU: $LATENTLOOM_CPU_THREADS when set, one for small latents, else
    every usable core."""
    text = os.environ.get(CPU_THREADS_ENVIRONMENT, "").strip()
    if text:
        try:
            wanted = int(text)
        except ValueError:
            wanted = 0
        if wanted < 1:
            raise ValueError(
                f"${CPU_THREADS_ENVIRONMENT} is {text!r}: set it to a whole number of threads "
                "(1 or more), or unset it to let LatentLoom choose"
            )
        return wanted
    height, width = int(latent_shape[-2]), int(latent_shape[-1])
    return 1 if height * width <= SINGLE_THREAD_CELLS else usable_cpus()


@contextmanager
def cpu_threads(latent_shape: Sequence[int], device: torch.device) -> Iterator[int]:
    """Runs the block with ``sampler_threads(latent_shape)`` torch threads when ``device`` is
    the CPU, then restores the thread count; yields the count in force."""
    before = torch.get_num_threads()
    if device.type != "cpu":
        yield before
        return
    wanted = sampler_threads(latent_shape)
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if wanted != before:
            torch.set_num_threads(before)
