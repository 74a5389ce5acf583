"""Saving MODEL, CLIP and VAE as an LDM-layout safetensors checkpoint: the file is valid
safetensors, and loading it back gives the same tensors, family and prediction type."""

from __future__ import annotations

import io
import json
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load

from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.loading import load_checkpoint
from core.diffusion.saving import CheckpointSaveError, checkpoint_tensors, write_safetensors
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


def save(loaded, path, metadata=None):
    tensors = checkpoint_tensors(loaded.model, loaded.clip, loaded.vae)
    with open(path, "wb") as stream:
        write_safetensors(stream, tensors, metadata)
    return tensors


def assert_same_modules(first, second):
    pairs = [(first.model.unet, second.model.unet), (first.vae.vae, second.vae.vae)]
    for x, y in zip(first.clip.encoders, second.clip.encoders, strict=True):
        pairs.append((x.model, y.model))
    for a, b in pairs:
        mine, theirs = a.state_dict(), b.state_dict()
        assert mine.keys() == theirs.keys()
        for name, tensor in mine.items():
            assert torch.equal(tensor, theirs[name]), name


def test_the_writer_makes_safetensors_that_the_library_reads(tiny_files):
    loaded = load_checkpoint(tiny_files[("sd1", "safetensors")])
    tensors = checkpoint_tensors(loaded.model, loaded.clip, loaded.vae)
    tensors["half"] = torch.randn(3, 5).to(torch.bfloat16)
    tensors["scalar"] = torch.tensor(2.5, dtype=torch.float16)
    tensors["flag"] = torch.tensor([True, False])
    buffer = io.BytesIO()
    done = []
    write_safetensors(buffer, tensors, {"note": "merged"}, lambda d, n: done.append((d, n)))
    read = load(buffer.getvalue())
    assert read.keys() == tensors.keys() and done[-1] == (len(tensors), len(tensors))
    for name, tensor in tensors.items():
        assert read[name].dtype == tensor.dtype and torch.equal(read[name], tensor), name
    data = buffer.getvalue()
    (size,) = struct.unpack("<Q", data[:8])
    assert size % 8 == 0  # the tensor bytes start aligned
    assert json.loads(data[8 : 8 + size])["__metadata__"] == {"note": "merged"}


@pytest.mark.parametrize("variant", ["sd1", "sd2_v", "sdxl", "sdxl_refiner"])
def test_a_saved_checkpoint_loads_back_the_same(tiny_files, tmp_path, variant):
    if variant == "sdxl_refiner":
        source = tmp_path / "refiner.safetensors"
        write_single_file(make_tiny_pipeline(ModelFamily.SDXL, refiner=True), source)
    else:
        source = tiny_files[(variant, "safetensors")]
    loaded = load_checkpoint(source)
    path = tmp_path / "saved.safetensors"
    save(loaded, path, {"workflow": "{}"})
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata() == {"workflow": "{}"}
    again = load_checkpoint(path)
    assert (again.family, again.model.prediction) == (loaded.family, loaded.model.prediction)
    assert (again.model.prediction is PredictionType.V_PREDICTION) == (variant == "sd2_v")
    assert_same_modules(loaded, again)


def test_parts_of_different_models_are_refused_by_input(tiny_files):
    sd1 = load_checkpoint(tiny_files[("sd1", "safetensors")])
    sdxl = load_checkpoint(tiny_files[("sdxl", "safetensors")])
    with pytest.raises(CheckpointSaveError, match="the CLIP is an sdxl text encoder") as info:
        checkpoint_tensors(sd1.model, sdxl.clip, sd1.vae)
    assert info.value.field == "clip"
