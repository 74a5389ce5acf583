"""Load LoRA (Model Only): the UNet gets the LoRA as Load LoRA gives it; no CLIP is involved."""

from __future__ import annotations

import pytest
import torch

from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.engine import Executor, ValidationError
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file
from tests.helpers.workflow_files import write_lora_file


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    pipeline = make_tiny_pipeline(ModelFamily.SD1)
    write_single_file(pipeline, root / "checkpoints" / "tiny.safetensors")
    write_lora_file(pipeline, root / "loras" / "style.safetensors")
    return build_registry(ModelPaths.of(root))


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.unet.state_dict().items()}


def test_model_only_lora_patches_the_unet_as_load_lora_does(registry):
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    params = {"lora_name": "style.safetensors", "strength_model": 0.7}
    only = g.add_node("LoraLoaderModelOnly", params=params).id
    both = g.add_node("LoadLoRA", params={**params, "strength_clip": 1.0}).id
    g.connect(load, "MODEL", only, "model")
    g.connect(load, "MODEL", both, "model")
    g.connect(load, "CLIP", both, "clip")
    report = Executor(registry).run(g, outputs=[load, only, both], device="cpu")
    assert report.status == "ok", {e.label: e.message for e in report.entries.values()}
    base = _weights(report.outputs[load][0])
    alone, paired = _weights(report.outputs[only][0]), _weights(report.outputs[both][0])
    changed = [k for k in base if not torch.equal(base[k], alone[k])]
    assert changed  # the LoRA reached the UNet…
    for key in base:  # …exactly as Load LoRA applies it
        assert torch.equal(alone[key], paired[key]), key


def test_a_missing_lora_file_is_reported_on_its_field(registry):
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    only = g.add_node("LoraLoaderModelOnly", params={"lora_name": "absent.safetensors"}).id
    g.connect(load, "MODEL", only, "model")
    with pytest.raises(ValidationError) as raised:
        Executor(registry).run(g, outputs=[only], device="cpu")
    [problem] = [p for p in raised.value.problems if p.node_id == only]
    assert problem.field == "lora_name" and "absent.safetensors" in problem.message
