"""Shared test settings.

Tests run torch single-threaded: the tiny random models gain nothing from threads, and on a
shared 2-core machine thread contention made them 10–20× slower.

Under CI (``CI`` set, as ``.ci/run`` is run) Hypothesis draws the same examples every run, so
whether CI passes never depends on a random draw: a fresh-clone CI run once failed on an
example a property test had never drawn before (the test was wrong, but chance decided which
run found it). Locally examples stay random, so new ones keep being explored.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    torch = sys.modules.get("torch")  # never import torch just for this: most tests don't
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
