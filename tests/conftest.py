"""Shared test settings.

Tests run torch single-threaded: the tiny random models gain nothing from threads, and on a
shared 2-core machine thread contention made them 10–20× slower.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


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
