from __future__ import annotations

import pytest

from core.engine import Executor
from tests.engine.toy import Toy


@pytest.fixture
def toy() -> Toy:
    return Toy()


@pytest.fixture
def executor(toy: Toy) -> Executor:
    return Executor(toy.registry)
