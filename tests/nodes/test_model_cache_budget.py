"""The engine's model budget on real loaded checkpoints: sizes are the real parameter and
buffer bytes, LoRA copies are charged only for what they add, and the oldest models go."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.families import ModelFamily
from core.engine import CacheBudgets, Executor
from core.engine.cache import MODEL_POOL
from core.graph.model import Graph
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file

CHECKPOINTS = 4


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Four checkpoint files (copies of one tiny SD 1.x model) and a LoRA for its conv_in."""
    root = tmp_path_factory.mktemp("models")
    pipeline = make_tiny_pipeline(ModelFamily.SD1)
    first = write_single_file(pipeline, root / "checkpoints" / "tiny0.safetensors")
    for number in range(1, CHECKPOINTS):
        shutil.copy(first, root / "checkpoints" / f"tiny{number}.safetensors")
    conv = pipeline.unet.conv_in.weight
    (root / "loras").mkdir()
    save_file(
        {
            "lora_unet_conv_in.lora_down.weight": torch.randn(2, *conv.shape[1:]),
            "lora_unet_conv_in.lora_up.weight": torch.randn(conv.shape[0], 2, 1, 1),
            "lora_unet_conv_in.alpha": torch.tensor(2.0),
        },
        root / "loras" / "style.safetensors",
    )
    return root


def _real_bytes(*modules: torch.nn.Module) -> int:
    """Parameter and buffer bytes of the modules, each tensor once."""
    tensors = {id(t): t for m in modules for t in [*m.parameters(), *m.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _modules(model, clip, vae) -> list[torch.nn.Module]:
    return [model.unet, *(e.model for e in clip.encoders), vae.vae]


def test_a_checkpoint_is_charged_its_real_parameter_and_buffer_bytes(registry):
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny0.safetensors"}).id
    executor = Executor(registry)
    outputs = executor.run(g, outputs=[load], device="cpu").outputs[load]
    real = _real_bytes(*_modules(*outputs))
    assert real > 1_000_000  # millions of bytes, not the size of three Python objects
    assert executor.cache.used_bytes(MODEL_POOL) == real


def test_a_lora_copy_is_charged_only_for_the_weights_it_adds(registry):
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny0.safetensors"}).id
    lora = g.add_node("LoadLoRA", params={"lora_name": "style.safetensors"}).id
    g.connect(load, "MODEL", lora, "model")
    g.connect(load, "CLIP", lora, "clip")
    executor = Executor(registry)
    report = executor.run(g, outputs=[load, lora], device="cpu")
    base = report.outputs[load]
    patched_model, patched_clip = report.outputs[lora]
    new_weight = patched_model.unet.conv_in.weight
    assert new_weight is not base[0].unet.conv_in.weight
    both = _real_bytes(*_modules(*base), *_modules(patched_model, patched_clip, base[2]))
    assert executor.cache.used_bytes(MODEL_POOL) == both
    assert both == _real_bytes(*_modules(*base)) + new_weight.numel() * new_weight.element_size()


def test_loading_more_than_the_model_budget_evicts_the_oldest(registry):
    g = Graph(registry)
    loads = [
        g.add_node("LoadCheckpoint", params={"ckpt_name": f"tiny{n}.safetensors"}).id
        for n in range(CHECKPOINTS)
    ]
    probe = Executor(registry)
    one = _real_bytes(*_modules(*probe.run(g, outputs=loads[:1], device="cpu").outputs[loads[0]]))
    budget = int(2.5 * one)  # room for two checkpoints
    executor = Executor(registry, CacheBudgets(model_bytes=budget))
    for load in loads:
        executor.run(g, outputs=[load], device="cpu")
        assert executor.cache.used_bytes(MODEL_POOL) <= budget
    assert len(executor.cache.keys(MODEL_POOL)) == 2
    assert executor.cache.used_bytes(MODEL_POOL) == 2 * one
    assert executor.run(g, outputs=loads[-2:], device="cpu").ran_count == 0
    assert executor.run(g, outputs=loads[:1], device="cpu").ran_count == 1  # loaded again
    assert executor.cache.used_bytes(MODEL_POOL) == 2 * one
