"""Shared fixtures: one tiny pipeline per family, written once in every supported format."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.diffusion.families import ModelFamily, PredictionType
from tests.helpers.tiny_models import (
    TinyPipeline,
    make_tiny_pipeline,
    write_diffusers_folder,
    write_single_file,
)

FORMATS = ("safetensors", "ckpt", "diffusers")
VARIANTS = {
    "sd1": dict(family=ModelFamily.SD1),
    "sd1_inpaint": dict(family=ModelFamily.SD1, inpainting=True),
    "sd2": dict(family=ModelFamily.SD2),
    "sd2_v": dict(family=ModelFamily.SD2, prediction=PredictionType.V_PREDICTION),
    "sdxl": dict(family=ModelFamily.SDXL),
}


@pytest.fixture(scope="session")
def tiny_pipelines() -> dict[str, TinyPipeline]:
    return {
        name: make_tiny_pipeline(**kwargs, seed=i)
        for i, (name, kwargs) in enumerate(VARIANTS.items())
    }


@pytest.fixture(scope="session")
def tiny_files(tiny_pipelines, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(variant, format) → path of that variant written in that format."""
    root = tmp_path_factory.mktemp("tiny_models")
    files = {}
    for name, pipeline in tiny_pipelines.items():
        files[(name, "safetensors")] = write_single_file(pipeline, root / f"{name}.safetensors")
        files[(name, "ckpt")] = write_single_file(pipeline, root / f"{name}.ckpt")
        files[(name, "diffusers")] = write_diffusers_folder(pipeline, root / f"{name}_diffusers")
    return files
