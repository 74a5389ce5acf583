"""Loading in half precision: no float32 copy is ever made, and a file already in the compute
precision is used where it lies, without a copy."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from core.diffusion.checkpoint_io import CastingView, read_state_dict
from core.diffusion.families import ModelFamily
from core.diffusion.loading import LoadOverrides, load_checkpoint
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.diffusion.test_loading import assert_same_state
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


class _Allocations(TorchDispatchMode):
    """Records the dtype and size of every new tensor a torch operation makes (views and
    in-place operations, which make none, are left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[tuple[str, torch.dtype, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.is_view or func._schema.is_mutable:
            return out
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                self.made.append((str(func), tensor.dtype, tensor.numel()))
        return out


@pytest.fixture(scope="module")
def pipeline():
    return make_tiny_pipeline(ModelFamily.SD1, seed=3)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_half_file_loads_in_bf16_without_a_float32_copy(pipeline, tmp_path, suffix):
    """The Load Checkpoint node reads a float16 file straight into bfloat16."""
    write_single_file(pipeline, tmp_path / "checkpoints" / f"half{suffix}", torch.float16)
    registry = build_registry(ModelPaths.of(tmp_path))
    graph = Graph(registry)
    params = {"ckpt_name": f"half{suffix}", "dtype": "bfloat16", "vae_clip_dtype": "bfloat16"}
    load = graph.add_node("LoadCheckpoint", params=params).id
    with _Allocations() as allocations:
        model, clip, vae = Executor(registry).run(graph, [load], device="cpu").outputs[load]

    modules = [model.unet, vae.vae, *(e.model for e in clip.encoders)]
    for module in modules:
        assert {p.dtype for p in module.parameters()} == {torch.bfloat16}
    floats = [made for made in allocations.made if made[1] == torch.float32 and made[2] > 1]
    assert floats == []
    # Every weight was converted once, straight from float16.
    converted = sum(n for _, dtype, n in allocations.made if dtype == torch.bfloat16)
    assert converted == sum(p.numel() for m in modules for p in m.parameters())


def test_file_in_compute_precision_is_assigned_without_a_copy(pipeline, tmp_path):
    path = write_single_file(pipeline, tmp_path / "bf16.safetensors", torch.bfloat16)
    with _Allocations() as allocations:
        loaded = load_checkpoint(path, LoadOverrides(dtype=torch.bfloat16))

    largest = max(p.numel() for p in loaded.model.unet.parameters())
    assert [made for made in allocations.made if made[2] >= largest] == []
    expected = make_tiny_pipeline(ModelFamily.SD1, seed=3)
    for module in (expected.unet, expected.vae):
        module.to(torch.bfloat16)
    assert_same_state(expected.unet, loaded.model.unet)
    assert_same_state(expected.vae, loaded.vae.vae)


def test_components_load_in_their_own_precision(pipeline, tmp_path):
    path = write_single_file(pipeline, tmp_path / "half.safetensors", torch.float16)
    overrides = LoadOverrides(
        dtype=torch.bfloat16, text_dtype=torch.float32, vae_dtype=torch.float16
    )
    loaded = load_checkpoint(path, overrides)

    assert next(loaded.model.unet.parameters()).dtype == torch.bfloat16
    assert next(loaded.clip.encoders[0].model.parameters()).dtype == torch.float32
    assert next(loaded.vae.vae.parameters()).dtype == torch.float16
    tokens = {
        overrides.cache_token(),
        LoadOverrides(dtype=torch.bfloat16).cache_token(),
        LoadOverrides(dtype=torch.bfloat16, vae_dtype=torch.float16).cache_token(),
    }
    assert len(tokens) == 3


def test_casting_view_converts_only_floating_tensors(tmp_path, pipeline):
    path = write_single_file(pipeline, tmp_path / "half.safetensors", torch.float16)
    stored = read_state_dict(path)
    stored_ids = {"ids": torch.arange(4)}
    view = CastingView({**stored, **stored_ids}, torch.bfloat16)

    key = next(k for k, tensor in stored.items() if tensor.is_floating_point())
    assert view[key].dtype == torch.bfloat16
    assert torch.equal(view[key], stored[key].to(torch.bfloat16))
    assert view["ids"].dtype == torch.int64
    from_file = CastingView(stored, torch.bfloat16, path)
    assert torch.equal(from_file[key], view[key])
    assert len(from_file) == len(stored) and set(from_file) == set(stored)


def test_casting_view_converts_from_the_file_not_the_mapped_tensor(tmp_path, pipeline):
    """A conversion reads the stored bytes itself, so the memory map's pages are never touched
    (they would stay resident beside the converted copy until the whole load ends)."""
    path = write_single_file(pipeline, tmp_path / "half.safetensors", torch.float16)
    stored = read_state_dict(path)
    # Stand-ins without data: converting one of them would give a tensor without data too.
    shapes_only = {key: tensor.to("meta") for key, tensor in stored.items()}
    view = CastingView(shapes_only, torch.bfloat16, path)

    for key, tensor in stored.items():
        if tensor.is_floating_point():
            assert torch.equal(view[key], tensor.to(torch.bfloat16)), key
