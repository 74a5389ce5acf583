"""Sampling tests run torch single-threaded: tiny models gain nothing from threads, and on a
shared 2-core machine thread contention made them 10–20× slower."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
