"""Text encode nodes find embeddings in the model folders and re-encode when a file changes."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.embedding_names import resolve_embedding
from core.diffusion.embeddings import load_embedding
from core.diffusion.families import ModelFamily
from core.diffusion.loading import load_checkpoint
from core.diffusion.model_paths import ModelPaths
from core.diffusion.text_encoding import encode_prompt
from core.engine import Executor, ValidationError
from core.graph.model import Graph
from nodes import build_registry
from tests.helpers.tiny_models import make_tiny_pipeline, write_single_file


def _write_embedding(path, seed: int) -> None:
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(seed))
    save_file({"emb_params": vectors}, path)


@pytest.fixture
def root(tmp_path):
    write_single_file(
        make_tiny_pipeline(ModelFamily.SD1), tmp_path / "checkpoints" / "sd.safetensors"
    )
    (tmp_path / "embeddings").mkdir()
    _write_embedding(tmp_path / "embeddings" / "style.safetensors", 1)
    return tmp_path


def _graph(registry, text):
    g = Graph(registry)
    # float32 text encoder: compared exactly with the library's float32 load.
    params = {"ckpt_name": "sd.safetensors", "vae_clip_dtype": "float32"}
    load = g.add_node("LoadCheckpoint", params=params).id
    enc = g.add_node("CLIPTextEncode", params={"text": text}).id
    g.connect(load, "CLIP", enc, "clip")
    return g, enc


def test_prompt_embedding_comes_from_the_model_folders(root):
    paths = ModelPaths.of(root)
    registry = build_registry(paths)
    g, enc = _graph(registry, "a (embedding:style:1.1) castle")
    [cond] = Executor(registry).run(g, outputs=[enc], device="cpu").outputs[enc]
    clip = load_checkpoint(root / "checkpoints" / "sd.safetensors").clip

    def source(name):
        return load_embedding(resolve_embedding(paths, name), name)

    expected = encode_prompt(clip, "a (embedding:style:1.1) castle", embeddings=source)
    torch.testing.assert_close(cond[0].embeds, expected[0].embeds)


def test_missing_embedding_is_a_validation_problem_naming_it(root):
    registry = build_registry(ModelPaths.of(root))
    g, enc = _graph(registry, "a castle, embedding:bad-hands")
    with pytest.raises(ValidationError) as info:
        Executor(registry).run(g, outputs=[enc], device="cpu")
    [problem] = info.value.problems
    assert problem.node_id == enc and problem.field == "text"
    assert "no embedding named 'bad-hands'" in problem.message
    assert str(root / "embeddings") in problem.message


def test_sdxl_node_names_the_field_of_a_missing_embedding(root):
    registry = build_registry(ModelPaths.of(root))
    g = Graph(registry)
    enc = g.add_node(
        "CLIPTextEncodeSDXL", params={"text_g": "a castle", "text_l": "embedding:gone"}
    ).id
    load = g.add_node("LoadCheckpoint", params={"ckpt_name": "sd.safetensors"}).id
    g.connect(load, "CLIP", enc, "clip")
    with pytest.raises(ValidationError) as info:
        Executor(registry).run(g, outputs=[enc], device="cpu")
    [problem] = info.value.problems
    assert problem.field == "text_l" and "'gone'" in problem.message


def test_replacing_an_embedding_file_re_encodes(root):
    registry = build_registry(ModelPaths.of(root))
    g, enc = _graph(registry, "embedding:style castle")
    executor = Executor(registry)
    first = executor.run(g, outputs=[enc], device="cpu")
    assert executor.run(g, outputs=[enc], device="cpu").status_of(enc) == "cached"
    path = root / "embeddings" / "style.safetensors"
    _write_embedding(path, 2)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = executor.run(g, outputs=[enc], device="cpu")
    assert again.status_of(enc) == "ran"
    before, after = first.outputs[enc][0][0].embeds, again.outputs[enc][0][0].embeds
    assert not torch.allclose(before, after)
