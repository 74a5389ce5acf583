"""The nodes ComfyUI's templates for flow-matching families use around a sampler: Load CLIP
(CLIPLoader) with its ``type``, EmptySD3LatentImage, ModelSamplingAuraFlow and
ModelSamplingSD3. Latents and SD 1.x's standalone CLIP-L are real; the other text encoders and
the shift say plainly what LatentLoom does not run, naming the file and the family."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.families import ModelFamily
from core.diffusion.model_paths import ModelPaths
from core.diffusion.text_encoder_files import architecture, load_text_encoder_file
from core.engine import Executor
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


def _qwen3(layers: int = 2) -> dict[str, torch.Tensor]:
    """Tensor names of a Qwen3 language model (q_norm/k_norm in every attention)."""
    tensors = {"model.embed_tokens.weight": torch.zeros(16, 8), "model.norm.weight": torch.ones(8)}
    for i in range(layers):
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"model.layers.{i}.self_attn.{name}.weight"] = torch.zeros(8, 8)
        tensors[f"model.layers.{i}.self_attn.q_norm.weight"] = torch.ones(4)
        tensors[f"model.layers.{i}.self_attn.k_norm.weight"] = torch.ones(4)
        tensors[f"model.layers.{i}.mlp.gate_proj.weight"] = torch.zeros(16, 8)
    return tensors


def _qwen25_vl(layers: int = 3) -> dict[str, torch.Tensor]:
    """Qwen2.5-VL as ComfyUI ships it: the language model (biased q/k/v) and its vision tower."""
    tensors = {"model.embed_tokens.weight": torch.zeros(16, 8)}
    for i in range(layers):
        tensors[f"model.layers.{i}.self_attn.q_proj.weight"] = torch.zeros(8, 8)
        tensors[f"model.layers.{i}.self_attn.q_proj.bias"] = torch.zeros(8)
    tensors["visual.blocks.0.attn.qkv.weight"] = torch.zeros(24, 8)
    tensors["visual.patch_embed.proj.weight"] = torch.zeros(8, 3, 2, 2, 2)
    return tensors


def _t5(blocks: int = 2) -> dict[str, torch.Tensor]:
    tensors = {"shared.weight": torch.zeros(16, 8)}
    for i in range(blocks):
        tensors[f"encoder.block.{i}.layer.0.SelfAttention.q.weight"] = torch.zeros(8, 8)
    return tensors


def _clip_l(layers: int = 2, width: int = 768) -> dict[str, torch.Tensor]:
    tensors = {"text_model.embeddings.token_embedding.weight": torch.zeros(16, width)}
    for i in range(layers):
        tensors[f"text_model.encoder.layers.{i}.self_attn.q_proj.weight"] = torch.zeros(4, 4)
    return tensors


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow_models")
    (root / "checkpoints").mkdir()
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD1), root / "checkpoints" / "tiny.safetensors"
    )
    (root / "text_encoders").mkdir()
    save_file(_qwen3(), root / "text_encoders" / "qwen_3_4b.safetensors")
    (root / "clip").mkdir()
    save_file(_t5(), root / "clip" / "t5xxl_fp16.safetensors")
    return root


@pytest.fixture(scope="module")
def registry(root):
    return build_registry(ModelPaths.of(root))


def test_text_encoder_architectures_are_read_from_tensor_names():
    shapes = {k: tuple(v.shape) for k, v in _qwen3(36).items()}
    assert architecture(shapes) == "a Qwen3 language model, 36 layers"
    shapes = {k: tuple(v.shape) for k, v in _qwen25_vl(28).items()}
    assert architecture(shapes) == "a Qwen2.5-VL language model (with its vision tower), 28 layers"
    assert (
        architecture({k: tuple(v.shape) for k, v in _t5(24).items()}) == "a T5 encoder, 24 blocks"
    )
    shapes = {k: tuple(v.shape) for k, v in _clip_l(12).items()}
    assert architecture(shapes) == "a CLIP text encoder, 12 layers, width 768"
    assert architecture({"foo.weight": (2,)}) == "no text encoder LatentLoom recognises"


def test_load_clip_lists_both_text_encoder_folders_and_reports_a_missing_file(registry):
    widget = registry.get("CLIPLoader").input("clip_name")
    assert {"qwen_3_4b.safetensors", "t5xxl_fp16.safetensors"} <= set(registry.choices(widget))
    g = Graph(registry)
    node = g.add_node("CLIPLoader", params={"clip_name": "gemma_2_2b.safetensors"}).id
    [problem] = Executor(registry).validate(g, [node])
    assert problem.field == "clip_name"
    assert "no text_encoders model named 'gemma_2_2b.safetensors'" in problem.message
    assert "text_encoders, " in problem.message and "flow_models0/clip." in problem.message


@pytest.mark.parametrize(
    ("name", "clip_type", "held", "family"),
    [
        ("qwen_3_4b.safetensors", "lumina2", "a Qwen3 language model, 2 layers", "Lumina 2"),
        ("t5xxl_fp16.safetensors", "sd3", "a T5 encoder, 2 blocks", "Stable Diffusion 3"),
    ],
)
def test_a_present_text_encoder_of_an_unsupported_family_stops_the_run_naming_it(
    registry, root, name, clip_type, held, family
):
    g = Graph(registry)
    node = g.add_node("CLIPLoader", params={"clip_name": name, "type": clip_type}).id
    report = Executor(registry).run(g, outputs=[node], device="cpu")
    entry = report.entries[node]
    failure = entry.message
    assert report.status == "failed" and entry.field == "clip_name"
    assert name in failure and held in failure and family in failure
    assert f"type '{clip_type}'" in failure and "does not support" in failure


def test_an_sd1_clip_l_file_loads_as_the_checkpoints_clip(registry, root):
    """clip_l.safetensors: the tensors an SD 1.x checkpoint keeps under its text-encoder
    prefix, in transformers' names; it encodes prompts exactly as the checkpoint's CLIP."""
    prefix = "cond_stage_model.transformer."
    tensors = read_state_dict(root / "checkpoints" / "tiny.safetensors")
    clip_l = {k.removeprefix(prefix): v.clone() for k, v in tensors.items() if k.startswith(prefix)}
    save_file(clip_l, root / "text_encoders" / "clip_l.safetensors")
    g = Graph(registry)
    # A text encoder loaded on its own is float32 on a CPU (no UNet to follow); the
    # checkpoint's is set to match, so the two encodings compare exactly.
    params = {"ckpt_name": "tiny.safetensors", "vae_clip_dtype": "float32"}
    load = g.add_node("LoadCheckpoint", params=params).id
    alone = g.add_node("CLIPLoader", params={"clip_name": "clip_l.safetensors"}).id
    encodings = []
    for source in (load, alone):
        enc = g.add_node("CLIPTextEncode", params={"text": "a red circle"}).id
        g.connect(source, "CLIP", enc, "clip")
        encodings.append(enc)
    report = Executor(registry).run(g, outputs=[*encodings, alone], device="cpu")
    [from_checkpoint], [from_file] = (report.outputs[e] for e in encodings)
    assert report.outputs[alone][0].family is ModelFamily.SD1
    torch.testing.assert_close(from_file[0].embeds, from_checkpoint[0].embeds)


@pytest.mark.parametrize(
    ("tensors", "held"),
    [
        (_clip_l(width=1024), "a CLIP text encoder, 2 layers, width 1024"),
        ({**_clip_l(), "text_projection.weight": torch.zeros(4, 4)}, "a CLIP text encoder"),
        (_t5(), "a T5 encoder, 2 blocks"),
    ],
)
def test_other_stable_diffusion_text_encoders_point_to_the_checkpoint(tmp_path, tensors, held):
    path = tmp_path / "encoder.safetensors"
    save_file(tensors, path)
    with pytest.raises(ModelLoadError, match="CLIP output of Load Checkpoint") as caught:
        load_text_encoder_file(path, "stable_diffusion")
    assert "encoder.safetensors" in str(caught.value) and held in str(caught.value)


def test_empty_sd3_latent_is_sixteen_zero_channels_at_one_eighth(registry):
    g = Graph(registry)
    params = {"width": 1024, "height": 1328, "batch_size": 2}
    node = g.add_node("EmptySD3LatentImage", params=params).id
    [latent] = Executor(registry).run(g, outputs=[node], device="cpu").outputs[node]
    assert tuple(latent["samples"].shape) == (2, 16, 166, 128)
    assert not latent["samples"].any() and latent["downscale"] == 8
    g.set_param(node, "width", 1020)
    [problem] = Executor(registry).validate(g, [node])
    assert problem.field == "width"


@pytest.mark.parametrize(
    ("type_id", "default"), [("ModelSamplingAuraFlow", 1.73), ("ModelSamplingSD3", 3.0)]
)
def test_flow_shift_on_an_sd_model_stops_with_the_family_named(registry, type_id, default):
    assert registry.get(type_id).input("shift").default == default
    g = Graph(registry)
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "tiny.safetensors"}).id
    shift = g.add_node(type_id, params={"shift": 3.1}).id
    g.connect(load, "MODEL", shift, "model")
    report = Executor(registry).run(g, outputs=[shift], device="cpu")
    failure = report.entries[shift].message
    assert report.status == "failed"
    assert f"{type_id} (shift 3.1)" in failure and "an SD 1.x UNet" in failure
    assert "Bypass or remove" in failure
