"""Textual-inversion embeddings reach the text transformer as token embeddings, in every layout."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from core.diffusion.embedding_names import (
    a1111_embedding_name,
    embedding_references,
    is_embedding_name,
    resolve_embedding,
    split_embeddings,
)
from core.diffusion.embeddings import EmbeddingError, load_embedding
from core.diffusion.errors import ModelLoadError, ModelNotFoundError
from core.diffusion.loading import load_checkpoint
from core.diffusion.model_paths import ModelPaths
from core.diffusion.text_encoding import (
    Vectors,
    apply_emphasis,
    chunk_tokens,
    encode_prompt,
)

BOS, EOS = 49406, 49407
A, CAT = 320, 2368
#: Token ids whose rows a copied encoder takes the embedding's vectors in.
SLOTS = (1000, 1001, 1002)


@pytest.fixture(scope="module")
def clips(tiny_files):
    return {v: load_checkpoint(tiny_files[(v, "safetensors")]).clip for v in ("sd1", "sd2", "sdxl")}


def _vectors(count: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


def write_a1111_pt(path: Path, vectors: torch.Tensor) -> Path:
    """AUTOMATIC1111's own .pt layout."""
    data = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vectors.clone().requires_grad_(True)},
        "name": path.stem,
        "step": 3000,
        "sd_checkpoint": "abc123",
        "sd_checkpoint_name": "model",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Embeddings in every layout: widths 32 (CLIP-L and SD 2.x tiny encoders), 64 (tiny G)."""
    root = tmp_path_factory.mktemp("models")
    folder = root / "embeddings"
    write_a1111_pt(folder / "two.pt", _vectors(2, 32, 1))
    torch.save({"<cat-toy>": _vectors(1, 32, 2)[0]}, folder / "toy.bin")
    (folder / "sub").mkdir()
    save_file({"emb_params": _vectors(3, 32, 3)}, folder / "sub" / "three.safetensors")
    save_file(
        {"clip_l": _vectors(2, 32, 4), "clip_g": _vectors(2, 64, 5)},
        folder / "xl.safetensors",
    )
    save_file({"clip_g": _vectors(1, 64, 6)}, folder / "only_g.safetensors")
    return root


@pytest.fixture(scope="module")
def source(root):
    paths = ModelPaths.of(root)
    return lambda name: load_embedding(resolve_embedding(paths, name), name)


@torch.no_grad()
def manual_states(encoder, vectors: torch.Tensor, tokens: list, layer: int, normalize: bool):
    """The encoder run on ids whose placeholder rows hold the vectors: a copy of the model
    whose token table has ``vectors`` in the rows of ``SLOTS``, on ``<start> tokens <end>``."""
    model = copy.deepcopy(encoder.model)
    table = model.get_input_embeddings().weight
    for index, row in enumerate(vectors):
        table[SLOTS[index]] = row
    ids = [BOS, *tokens, EOS]
    ids += [encoder.pad_token_id] * (77 - len(ids))
    output = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    if layer == -1:
        states = output.last_hidden_state
    else:
        states = output.hidden_states[layer]
        if normalize:
            states = getattr(model, "text_model", model).final_layer_norm(states)
    pooled = output.text_embeds if encoder.with_projection else None
    return states, pooled


@pytest.mark.parametrize(
    ("variant", "name", "count", "seed"),
    [("sd1", "two", 2, 1), ("sd1", "toy", 1, 2), ("sd2", "sub/three", 3, 3)],
)
def test_vectors_reach_the_transformer_input(clips, source, variant, name, count, seed):
    clip = clips[variant]
    [entry] = encode_prompt(clip, f"a embedding:{name} cat", embeddings=source)
    encoder = clip.encoders[0]
    slots = list(SLOTS[:count])
    layer, normalize = (-1, True) if variant == "sd1" else (-2, True)
    expected, _ = manual_states(
        encoder, _vectors(count, 32, seed), [A, *slots, CAT], layer, normalize
    )
    torch.testing.assert_close(entry.embeds, expected, rtol=1e-5, atol=1e-5)
    # Without the embedding the states differ: the vectors did something.
    plain = encode_prompt(clip, "a cat")[0].embeds
    assert not torch.allclose(plain, entry.embeds, atol=1e-3)


def test_weights_apply_to_embedding_vectors(clips, source):
    clip = clips["sd1"]
    [entry] = encode_prompt(clip, "a (embedding:two:1.5) cat", embeddings=source)
    states, _ = manual_states(clip.encoders[0], _vectors(2, 32, 1), [A, *SLOTS[:2], CAT], -1, True)
    weights = torch.ones(77)
    weights[2:4] = 1.5
    torch.testing.assert_close(entry.embeds, apply_emphasis(states, weights), rtol=1e-5, atol=1e-5)


def test_sdxl_embedding_feeds_each_encoder_its_own_vectors(clips, source):
    clip = clips["sdxl"]
    [entry] = encode_prompt(clip, "embedding:xl, cat", embeddings=source)
    comma = clip.encoders[0].tokenizer(",", add_special_tokens=False)["input_ids"]
    tokens = [*SLOTS[:2], *comma, CAT]
    states_l, _ = manual_states(clip.encoders[0], _vectors(2, 32, 4), tokens, -2, False)
    states_g, pooled = manual_states(clip.encoders[1], _vectors(2, 64, 5), tokens, -2, False)
    torch.testing.assert_close(
        entry.embeds, torch.cat([states_l, states_g], -1), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(entry.pooled, pooled, atol=1e-5, rtol=1e-5)


def test_embedding_for_another_encoder_is_refused_by_name(clips, source):
    with pytest.raises(EmbeddingError, match=r"'only_g'.*32-wide text encoder clip_l"):
        encode_prompt(clips["sd1"], "embedding:only_g", embeddings=source)
    with pytest.raises(EmbeddingError, match=r"'two'.*64-wide text encoder clip_g"):
        encode_prompt(clips["sdxl"], "embedding:two", embeddings=source)


def test_unknown_embedding_is_an_error_naming_it(clips, source, root):
    with pytest.raises(ModelNotFoundError, match="no embedding named 'missing'") as info:
        encode_prompt(clips["sd1"], "a embedding:missing cat", embeddings=source)
    assert str(root / "embeddings") in str(info.value)
    with pytest.raises(EmbeddingError, match="embedding:two"):
        encode_prompt(clips["sd1"], "a embedding:two")  # no embeddings to look in


def test_embedding_is_never_split_across_chunks():
    vectors = Vectors("three", torch.zeros(3, 8))
    tokens = [7] * 73 + [vectors, 9]
    chunks = chunk_tokens(tokens, [1.0] * 73 + [1.2, 1.0], 77, 0)
    assert len(chunks) == 2
    first, second = chunks
    assert first.inserts == () and first.ids[74:] == (EOS, 0, 0)
    [(position, values)] = second.inserts
    assert position == 1 and values is vectors.values
    assert second.ids[:6] == (BOS, 0, 0, 0, 9, EOS)
    assert second.weights[1:5] == (1.2, 1.2, 1.2, 1.0)


def test_long_prompt_with_embedding_in_second_chunk(clips, source):
    clip = clips["sd1"]
    [entry] = encode_prompt(clip, "cat " * 74 + "embedding:two", embeddings=source)
    assert entry.embeds.shape[1] == 154
    expected, _ = manual_states(clip.encoders[0], _vectors(2, 32, 1), list(SLOTS[:2]), -1, True)
    torch.testing.assert_close(entry.embeds[:, 77:], expected, rtol=1e-5, atol=1e-5)


def test_prompt_syntax_follows_comfyui():
    assert embedding_references("(embedding:bad-hands:1.2), embedding:x,, y") == ["bad-hands", "x"]
    parts = split_embeddings("a embedding:x, b")
    assert parts[0] == "a " and parts[1].name == "x" and parts[2] == ", b"
    # Only a word of its own: inside a word, or with no name, it is text.
    assert embedding_references("myembedding:x embedding: alone") == []


def test_file_layouts_and_names(root, tmp_path):
    paths = ModelPaths.of(root)
    assert resolve_embedding(paths, "two.pt") == resolve_embedding(paths, "two")
    assert load_embedding(resolve_embedding(paths, "toy"), "toy").vectors[""].shape == (1, 32)
    xl = load_embedding(resolve_embedding(paths, "xl"), "xl")
    assert set(xl.vectors) == {"clip_l", "clip_g"}
    save_file(
        {"clip_l": torch.zeros(2, 8), "clip_g": torch.zeros(3, 16)}, tmp_path / "bad.safetensors"
    )
    with pytest.raises(ModelLoadError, match="different number of vectors"):
        load_embedding(tmp_path / "bad.safetensors", "bad")
    save_file({"lora_unet_x.alpha": torch.zeros(())}, tmp_path / "lora.safetensors")
    with pytest.raises(ModelLoadError, match="not a textual-inversion embedding"):
        load_embedding(tmp_path / "lora.safetensors", "lora")


def test_a1111_words_name_embedding_files(root):
    paths = ModelPaths.of(root)
    assert a1111_embedding_name(paths, "three") == "sub/three"
    assert a1111_embedding_name(paths, "TWO") == "two"
    assert is_embedding_name(paths, "xl") and not is_embedding_name(paths, "castle")
