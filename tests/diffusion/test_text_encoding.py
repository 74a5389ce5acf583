"""Prompt encoding equals running the transformers text models on the expected token ids."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from core.diffusion.loading import load_checkpoint
from core.diffusion.text_encoding import chunk_tokens, encode_prompt, tokenize_weighted

BOS, EOS = 49406, 49407
CAT, DOG, A, PHOTO, OF = 2368, 1929, 320, 1125, 539


@pytest.fixture(scope="module")
def loaded(tiny_files):
    return {v: load_checkpoint(tiny_files[(v, "safetensors")]) for v in ("sd1", "sd2", "sdxl")}


def ids_of(tokens: list[int], pad: int) -> torch.Tensor:
    return torch.tensor([[BOS, *tokens, EOS] + [pad] * (75 - len(tokens))])


@torch.no_grad()
def run(model, ids, layer, normalize):
    output = model(input_ids=ids, output_hidden_states=True)
    if layer == -1:
        return output.last_hidden_state
    states = output.hidden_states[layer]
    if normalize:
        text_model = getattr(model, "text_model", model)
        states = text_model.final_layer_norm(states)
    return states


def test_sd1_last_layer_matches_clip_text_model(loaded):
    clip = loaded["sd1"].clip
    result = encode_prompt(clip, "a photo of a cat")
    assert len(result) == 1 and result[0].pooled is None
    expected = run(clip.encoders[0].model, ids_of([A, PHOTO, OF, A, CAT], EOS), -1, True)
    torch.testing.assert_close(result[0].embeds, expected, rtol=0, atol=0)


def test_sd1_clip_skip_uses_penultimate_with_final_norm(loaded):
    clip = loaded["sd1"].clip.with_last_layer(-2)
    expected = run(clip.encoders[0].model, ids_of([CAT], EOS), -2, True)
    torch.testing.assert_close(encode_prompt(clip, "cat")[0].embeds, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="out of range"):
        clip.with_last_layer(-99)


def test_sd2_defaults_to_penultimate_layer_padded_with_zero(loaded):
    clip = loaded["sd2"].clip
    expected = run(clip.encoders[0].model, ids_of([DOG], 0), -2, True)
    torch.testing.assert_close(encode_prompt(clip, "dog")[0].embeds, expected, rtol=0, atol=0)
    last = run(clip.encoders[0].model, ids_of([DOG], 0), -1, True)
    torch.testing.assert_close(
        encode_prompt(clip.with_last_layer(-1), "dog")[0].embeds, last, rtol=0, atol=0
    )


def test_sd2_encoder_stored_without_last_block(loaded):
    """diffusers' SD 2 text encoders lack block 24; layer numbers still mean the full model."""
    encoder = loaded["sd2"].clip.encoders[0]
    trimmed_model = copy.deepcopy(encoder.model)
    trimmed_model.encoder.layers = trimmed_model.encoder.layers[:-1]
    trimmed_model.config.num_hidden_layers -= 1
    trimmed = replace(encoder, model=trimmed_model, missing_last_layers=1)
    clip = replace(loaded["sd2"].clip, encoders=(trimmed,))
    expected = run(encoder.model, ids_of([DOG], 0), -2, True)
    torch.testing.assert_close(encode_prompt(clip, "dog")[0].embeds, expected)
    with pytest.raises(ValueError, match="stored without its last 1 layer"):
        encode_prompt(clip.with_last_layer(-1), "dog")


def test_sdxl_concatenates_both_penultimate_states_and_pools_encoder_two(loaded):
    clip = loaded["sdxl"].clip
    result = encode_prompt(clip, "a cat")[0]
    first, second = (e.model for e in clip.encoders)
    expected = torch.cat(
        [
            run(first, ids_of([A, CAT], EOS), -2, False),
            run(second, ids_of([A, CAT], 0), -2, False),
        ],
        dim=-1,
    )
    torch.testing.assert_close(result.embeds, expected, rtol=0, atol=0)
    with torch.no_grad():
        pooled = second(input_ids=ids_of([A, CAT], 0)).text_embeds
    torch.testing.assert_close(result.pooled, pooled, rtol=0, atol=0)
    assert result.embeds.shape[-1] == first.config.hidden_size + second.config.hidden_size


def test_long_prompts_are_chunked_and_concatenated(loaded):
    clip = loaded["sd1"].clip
    result = encode_prompt(clip, "cat " * 100)[0].embeds
    assert result.shape[1] == 154
    model = clip.encoders[0].model
    torch.testing.assert_close(result[:, :77], run(model, ids_of([CAT] * 75, EOS), -1, True))
    torch.testing.assert_close(result[:, 77:], run(model, ids_of([CAT] * 25, EOS), -1, True))


def test_chunking_of_token_lists():
    chunks = chunk_tokens(list(range(160)), [1.0] * 160, 77, pad_token_id=0)
    assert [len(c.ids) for c in chunks] == [77, 77, 77]
    assert chunks[0].ids[0] == BOS and chunks[0].ids[76] == EOS
    assert chunks[2].ids[:12] == (BOS, *range(150, 160), EOS)
    assert chunks[2].ids[12:] == (0,) * 65
    assert chunk_tokens([], [], 77, EOS)[0].ids == (BOS, EOS, *[EOS] * 75)


def test_weights_follow_the_parsed_runs(loaded):
    tokenizer = loaded["sd1"].clip.encoders[0].tokenizer
    ids, weights = tokenize_weighted(tokenizer, "a (photo:1.5) of [cat]")
    assert ids == [A, PHOTO, OF, CAT]
    assert weights == pytest.approx([1.0, 1.5, 1.0, 1 / 1.1])


def test_emphasis_scales_tokens_and_restores_the_mean(loaded):
    clip = loaded["sd1"].clip
    result = encode_prompt(clip, "a (cat:1.5)")[0].embeds
    plain = run(clip.encoders[0].model, ids_of([A, CAT], EOS), -1, True)
    weights = torch.ones(77)
    weights[2] = 1.5
    expected = plain * weights[None, :, None]
    expected = expected * (plain.mean() / expected.mean())
    torch.testing.assert_close(result, expected)
    torch.testing.assert_close(result.mean(), plain.mean())
