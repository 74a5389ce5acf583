"""Turn a prompt into CONDITIONING: emphasis weights, long prompts and clip skip.

Steps, for each text encoder of the family:

1. the prompt is split into weighted runs (``prompt_weights``) and each run is tokenized without
   start/end tokens, every token keeping its run's weight;
2. tokens are cut into chunks of ``max_length − 2`` (75 for every SD encoder); each chunk becomes
   ``<start> tokens <end> pad…`` of exactly ``max_length`` (77) ids;
3. each chunk goes through the encoder and the chosen layer's hidden states are taken (the
   final layer norm applied to earlier layers where the family's reference does so);
4. emphasis is applied the AUTOMATIC1111 way (modules/sd_hijack_clip.py): hidden states are
   multiplied per token by their weight, then rescaled so the chunk's mean is unchanged;
5. the chunks' hidden states are concatenated along the token axis (77·n tokens).

SDXL concatenates both encoders' states along the feature axis (768 + 1280 = 2048) and uses the
second encoder's pooled, projected output for the first chunk (as A1111 and ComfyUI do).
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.diffusion.conditioning import (
    Conditioning,
    ConditioningEntry,
    ConditioningOptions,
    SizeConditioning,
)
from core.diffusion.families import BOS_TOKEN_ID, EOS_TOKEN_ID
from core.diffusion.models import ClipModel, TextEncoder, module_device
from core.diffusion.prompt_weights import PromptError, parse_prompt_weights, prompt_problem


@dataclass(frozen=True)
class TokenChunk:
    """One encoder pass: ``max_length`` token ids and the emphasis weight of each."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]


def tokenize_weighted(tokenizer: object, prompt: str) -> tuple[list[int], list[float]]:
    """Token ids of ``prompt`` without start/end tokens, and each token's emphasis weight."""
    ids: list[int] = []
    weights: list[float] = []
    for run in parse_prompt_weights(prompt):
        run_ids = tokenizer(run.text, add_special_tokens=False)["input_ids"]
        ids.extend(run_ids)
        weights.extend([run.weight] * len(run_ids))
    return ids, weights


def chunk_tokens(
    ids: list[int], weights: list[float], max_length: int, pad_token_id: int
) -> list[TokenChunk]:
    """Cut tokens into ``<start> ≤(max_length−2) tokens <end> pad…`` chunks (at least one)."""
    body = max_length - 2
    chunks = []
    for start in range(0, max(len(ids), 1), body):
        part = ids[start : start + body]
        part_weights = weights[start : start + body]
        padding = body - len(part)
        chunks.append(
            TokenChunk(
                ids=(BOS_TOKEN_ID, *part, EOS_TOKEN_ID, *[pad_token_id] * padding),
                weights=(1.0, *part_weights, 1.0, *[1.0] * padding),
            )
        )
    return chunks


def apply_emphasis(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Scale token states by their weights, then restore the original mean (A1111)."""
    if bool(torch.all(weights == 1.0)):
        return hidden
    original_mean = hidden.mean()
    weighted = hidden * weights.reshape(1, -1, 1).to(hidden)
    return weighted * (original_mean / weighted.mean())


def _layer_states(
    encoder: TextEncoder, ids: torch.Tensor, layer: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Hidden states of ``layer`` (counted on the complete encoder) and the pooled output."""
    local = layer + encoder.missing_last_layers
    if local > -1:
        raise ValueError(
            f"CLIP layer {layer} is not available: this text encoder was stored without its "
            f"last {encoder.missing_last_layers} layer(s). Use -{1 + encoder.missing_last_layers}"
            " or lower."
        )
    output = encoder.model(input_ids=ids, output_hidden_states=True)
    if local == -1 and encoder.missing_last_layers == 0:
        states = output.last_hidden_state
    else:
        states = output.hidden_states[local]
        if encoder.normalize_hidden:
            text_model = getattr(encoder.model, "text_model", encoder.model)
            states = text_model.final_layer_norm(states)
    pooled = output.text_embeds if encoder.with_projection else None
    return states, pooled


def _go_on() -> None:
    """The default ``before_chunk``: never stops an encoding."""


@torch.inference_mode()
def encode_with(
    encoder: TextEncoder,
    prompt: str,
    layer: int | None = None,
    before_chunk: Callable[[], None] = _go_on,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode ``prompt`` with one encoder: ``[1, 77·chunks, width]`` states, pooled or None.

    ``before_chunk`` is called before each 77-token chunk goes through the encoder and may raise
    to stop a long prompt's encoding there (the text node passes its run's cancel check).
    """
    layer = encoder.default_layer if layer is None else layer
    ids, weights = tokenize_weighted(encoder.tokenizer, prompt)
    chunks = chunk_tokens(ids, weights, encoder.max_length, encoder.pad_token_id)
    device = module_device(encoder.model)
    states, pooled = [], None
    for chunk in chunks:
        before_chunk()
        chunk_ids = torch.tensor([chunk.ids], device=device)
        hidden, chunk_pooled = _layer_states(encoder, chunk_ids, layer)
        states.append(apply_emphasis(hidden.float(), torch.tensor(chunk.weights)))
        if pooled is None and chunk_pooled is not None:
            pooled = chunk_pooled.float()
    return torch.cat(states, dim=1), pooled


def encode_prompt(
    clip: ClipModel,
    prompt: str,
    size: SizeConditioning | None = None,
    before_chunk: Callable[[], None] = _go_on,
) -> Conditioning:
    """CLIP Text Encode: one conditioning entry for ``prompt`` (float32, on the CLIP's device).

    Raises ``PromptError`` for a prompt that cannot be encoded (see ``prompt_problem``).
    """
    problem = prompt_problem(prompt)
    if problem is not None:
        raise PromptError(problem)
    layer = clip.layer
    results = [encode_with(encoder, prompt, layer, before_chunk) for encoder in clip.encoders]
    embeds = torch.cat([states for states, _ in results], dim=-1)
    pooled = results[-1][1]
    entry = ConditioningEntry(embeds=embeds, pooled=pooled, options=ConditioningOptions(size=size))
    return Conditioning((entry,))
