"""Fixtures the node tests share: a module that defines a ``root`` fixture (its models folder)
gets the registry over it and one executor."""

from __future__ import annotations

import pytest

from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from nodes import build_registry


@pytest.fixture(scope="module")
def registry(root):
    return build_registry(ModelPaths.of(root))


@pytest.fixture(scope="module")
def executor(registry):
    """One executor for the module, so loaded models and unchanged nodes come from its cache."""
    return Executor(registry)
