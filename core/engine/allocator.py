"""How the process's C allocator treats memory freed during a run (Linux with glibc only).

By default glibc serves each allocation above a threshold (at most 32 MiB) with its own
``mmap`` and unmaps it when freed, and gives the top of its heap back to the system as soon as
128 KiB of it are free. A diffusion run allocates and frees the same large activations at every
step, so every step then faults their pages in again and the kernel zeroes them: on an SD 1.5
run at 512² on the CPU, about 1.5 million page faults more than needed, 0.4 s of every 6 s
step and 1 s of the decode (docs/performance.md, "Freed memory"). ``keep_freed_memory``
raises both thresholds for the rest of the process, so freed blocks are reused in place;
``release_freed_memory`` hands what is free back to the system at once, which the executor
does when a run ends, so memory held between runs does not grow. It also keeps every thread on
the main heap: the editor runs on a worker thread, and a thread's own arena (heaps of at most
64 MiB) would map each larger block separately again. ``main.py`` calls it at start, before any
thread has allocated from an arena of its own.

Setting ``LATENTLOOM_KEEP_FREED_MEMORY=0`` leaves glibc's defaults. On other C libraries and
systems both calls do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

ENVIRONMENT = "LATENTLOOM_KEEP_FREED_MEMORY"
#: glibc's ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
#: Allocations up to this size come from the heap, and this much may stay free at its top.
KEEP_BYTES = 1 << 30
#: What glibc accepts as the largest mmap threshold on 64-bit systems where it refuses more.
FALLBACK_MMAP_BYTES = 32 << 20

_lock = threading.Lock()
_state: dict[str, bool] = {}


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ("mallopt", "malloc_trim", "gnu_get_libc_version")):
        return None  # musl and others
    return libc


def keep_freed_memory() -> bool:
    """Raises glibc's mmap and trim thresholds once per process (later calls do nothing);
    whether they are raised."""
    with _lock:
        if "kept" in _state:
            return _state["kept"]
        kept = False
        libc = _glibc()
        if libc is not None and os.environ.get(ENVIRONMENT, "1").strip() != "0":
            mmap_set = libc.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES) or libc.mallopt(
                M_MMAP_THRESHOLD, FALLBACK_MMAP_BYTES
            )
            kept = bool(mmap_set) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))
            if kept:
                libc.mallopt(M_ARENA_MAX, 1)
        _state["kept"] = kept
        return kept


def release_freed_memory() -> None:
    """Returns the allocator's free memory to the system (``malloc_trim``), if it was kept."""
    if not _state.get("kept"):
        return
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
