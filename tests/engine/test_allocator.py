"""Freed memory during a run: glibc keeps it for reuse instead of unmapping and faulting it in
again every step, and the executor hands it back when the run ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.engine import Executor, allocator
from tests.engine.toy import Toy

ROOT = Path(__file__).resolve().parents[2]

#: A fresh process (the allocator's settings are process-wide): the resident size after a
#: 256 MiB block is written and freed, before and after ``keep_freed_memory``, and after
#: ``release_freed_memory``.
PROBE = textwrap.dedent(
    """
    import ctypes, json, os, threading
    from core.engine import allocator

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    page = os.sysconf("SC_PAGE_SIZE")

    def resident():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    def churn():
        size = 256 << 20
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
        return resident()

    def churn_on_a_thread():
        found = []
        thread = threading.Thread(target=lambda: found.append(churn()))
        thread.start()
        thread.join()
        return found[0]

    before = resident()
    out = {"default": churn() - before}
    out["kept"] = allocator.keep_freed_memory()
    out["after_keep"] = churn() - before
    allocator.release_freed_memory()
    out["after_release"] = resident() - before
    # A thread (the editor runs on one) reuses freed memory as the main thread does.
    out["thread_after_keep"] = churn_on_a_thread() - before
    allocator.release_freed_memory()
    print(json.dumps(out))
    """
)


def _probe(**environment: str) -> dict:
    import json

    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


glibc_only = pytest.mark.skipif(allocator._glibc() is None, reason="needs Linux with glibc")


@glibc_only
def test_freed_blocks_stay_for_reuse_until_released():
    found = _probe()
    mib = 1 << 20
    assert found["kept"] is True
    assert found["default"] < 64 * mib  # glibc unmapped the block when it was freed
    assert found["after_keep"] > 200 * mib  # now it stays, ready for the next step
    assert found["after_release"] < 64 * mib  # and goes back when the run ends
    assert found["thread_after_keep"] > 200 * mib  # on another thread too


@glibc_only
def test_the_environment_variable_keeps_glibcs_defaults():
    found = _probe(**{allocator.ENVIRONMENT: "0"})
    assert found["kept"] is False
    assert found["after_keep"] < 64 << 20


def test_every_run_keeps_freed_memory_and_hands_it_back_at_the_end(monkeypatch, toy: Toy):
    calls: list[str] = []
    monkeypatch.setattr(
        "core.engine.executor.keep_freed_memory", lambda: calls.append("keep") or True
    )
    monkeypatch.setattr(
        "core.engine.executor.release_freed_memory", lambda: calls.append("release")
    )
    g = toy.graph()
    const = g.add_node("Const", params={"value": 2.0})
    show = g.add_node("Show")
    g.connect(const.id, "out", show.id, "x")
    Executor(toy.registry).run(g)
    g.set_param(const.id, "value", 3.0)
    Executor(toy.registry).run(g)
    assert calls == ["keep", "release", "keep", "release"]
