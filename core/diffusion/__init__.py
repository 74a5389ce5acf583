"""Tensors and models: loading, text conditioning, devices. No graph knowledge, no Qt.

``offline`` is imported first so that no Hugging Face library ever reaches for a model hub;
every submodule imports it again in first position, so importing one directly is safe too.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401

# isort: split
from core.diffusion.errors import ModelLoadError, ModelNotFoundError
from core.diffusion.families import ModelFamily, PredictionType

__all__ = ["ModelFamily", "ModelLoadError", "ModelNotFoundError", "PredictionType"]
