"""Turn a prompt into CONDITIONING: emphasis weights, long prompts, clip skip, embeddings.

Steps, for each text encoder of the family:

1. the prompt is split into weighted runs (``prompt_weights``), each run into text and
   ``embedding:name`` references (``embedding_names``); text is tokenized without start/end
   tokens, an embedding stands for its learned vectors, and every token keeps its run's weight;
2. tokens are cut into chunks of ``max_length − 2`` (75 for every SD encoder); each chunk becomes
   ``<start> tokens <end> pad…`` of exactly ``max_length`` (77) ids. An embedding is never cut:
   one that does not fit in the rest of a chunk starts the next (as AUTOMATIC1111 does);
3. each chunk goes through the encoder, an embedding's vectors replacing the token embeddings at
   its positions before the transformer, and the chosen layer's hidden states are taken (the
   final layer norm applied to earlier layers where the family's reference does so);
4. emphasis is applied the AUTOMATIC1111 way (modules/sd_hijack_clip.py): hidden states are
   multiplied per token by their weight, then rescaled so the chunk's mean is unchanged;
5. the chunks' hidden states are concatenated along the token axis (77·n tokens).

SDXL concatenates both encoders' states along the feature axis (768 + 1280 = 2048) and uses the
second encoder's pooled, projected output for the first chunk (as A1111 and ComfyUI do). Its
encoders may get different texts (``text_l`` and ``text_g``); the one with fewer chunks is
padded with chunks of the empty prompt, as ComfyUI does. The SDXL refiner has only the second
encoder.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from core.diffusion.conditioning import (
    Conditioning,
    ConditioningEntry,
    ConditioningOptions,
    SizeConditioning,
)
from core.diffusion.embedding_names import EMBEDDING_PREFIX, EmbeddingReference, split_embeddings
from core.diffusion.embeddings import EmbeddingError, TextualInversion
from core.diffusion.families import (
    BOS_TOKEN_ID,
    EOS_TOKEN_ID,
    REFINER_AESTHETIC_SCORE,
    ModelFamily,
)
from core.diffusion.models import ClipModel, TextEncoder, module_device
from core.diffusion.prompt_weights import PromptError, parse_prompt_weights, prompt_problem

#: ``embeddings(name)``: the embedding a prompt calls ``name``; raises ``EmbeddingError`` (or a
#: ``ModelLoadError``) naming it when there is none or its file cannot be read.
EmbeddingSource = Callable[[str], TextualInversion]

#: The id standing in for an embedding's vectors (AUTOMATIC1111 uses it too); never the end
#: token, whose first position is where CLIP reads its pooled output.
_PLACEHOLDER_ID = 0


@dataclass(frozen=True, eq=False)
class Vectors:
    """An embedding's vectors for one encoder, in place of ordinary tokens."""

    name: str
    values: torch.Tensor  # [n, width]

    def __len__(self) -> int:
        return int(self.values.shape[0])


Token = int | Vectors


@dataclass(frozen=True, eq=False)
class TokenChunk:
    """One encoder pass: ``max_length`` token ids, the emphasis weight of each, and the
    embedding vectors inserted at given positions (whose ids are placeholders)."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]
    inserts: tuple[tuple[int, torch.Tensor], ...] = ()


def _no_embeddings(name: str) -> TextualInversion:
    raise EmbeddingError(
        f"the prompt uses '{EMBEDDING_PREFIX}{name}', but no embeddings folder is available "
        "here. Encode it with a CLIP Text Encode node, which finds embeddings in the model "
        "folders."
    )


def tokenize_weighted(
    tokenizer: object,
    prompt: str,
    vectors_for: Callable[[str], torch.Tensor] | None = None,
) -> tuple[list[Token], list[float]]:
    """Tokens of ``prompt`` without start/end tokens, and each token's emphasis weight.

    ``vectors_for(name)`` gives an embedding's vectors for this encoder; an ``embedding:name``
    becomes one ``Vectors`` token with one weight. Without it, any reference is an error.
    """
    lookup = vectors_for or (lambda name: _no_embeddings(name).vectors[""])
    tokens: list[Token] = []
    weights: list[float] = []
    for run in parse_prompt_weights(prompt):
        for part in split_embeddings(run.text):
            if isinstance(part, EmbeddingReference):
                tokens.append(Vectors(part.name, lookup(part.name)))
                weights.append(run.weight)
                continue
            part_ids = tokenizer(part, add_special_tokens=False)["input_ids"]
            tokens.extend(part_ids)
            weights.extend([run.weight] * len(part_ids))
    return tokens, weights


def chunk_tokens(
    tokens: Sequence[Token], weights: Sequence[float], max_length: int, pad_token_id: int
) -> list[TokenChunk]:
    """Cut tokens into ``<start> ≤(max_length−2) tokens <end> pad…`` chunks (at least one).

    Ordinary tokens fill each chunk to the brim; an embedding's vectors stay together, moving
    to a new chunk when they do not fit in the current one.
    """
    body = max_length - 2
    chunks: list[TokenChunk] = []
    ids: list[int] = []
    token_weights: list[float] = []
    inserts: list[tuple[int, torch.Tensor]] = []

    def close() -> None:
        padding = body - len(ids)
        chunks.append(
            TokenChunk(
                ids=(BOS_TOKEN_ID, *ids, EOS_TOKEN_ID, *[pad_token_id] * padding),
                weights=(1.0, *token_weights, 1.0, *[1.0] * padding),
                inserts=tuple(inserts),
            )
        )
        ids.clear()
        token_weights.clear()
        inserts.clear()

    for token, weight in zip(tokens, weights, strict=True):
        if isinstance(token, Vectors):
            if len(token) > body:
                raise EmbeddingError(
                    f"embedding '{token.name}' has {len(token)} vectors; at most {body} fit in "
                    "one pass of the text encoder."
                )
            if len(ids) + len(token) > body:
                close()
            inserts.append((1 + len(ids), token.values))  # 1: after the start token
            ids.extend([_PLACEHOLDER_ID] * len(token))
            token_weights.extend([weight] * len(token))
            continue
        if len(ids) == body:
            close()
        ids.append(token)
        token_weights.append(weight)
    if ids or not chunks:
        close()
    return chunks


def apply_emphasis(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Scale token states by their weights, then restore the original mean (A1111)."""
    if bool(torch.all(weights == 1.0)):
        return hidden
    original_mean = hidden.mean()
    weighted = hidden * weights.reshape(1, -1, 1).to(hidden)
    return weighted * (original_mean / weighted.mean())


@contextmanager
def _inserted_vectors(
    encoder: TextEncoder, inserts: Sequence[tuple[int, torch.Tensor]]
) -> Iterator[None]:
    """While active, the encoder's token embeddings carry ``inserts`` at their positions.

    A forward hook on the token-embedding table replaces its output rows, so position
    embeddings, the transformer and the pooled output (read at the end token's id) all run
    as the library wrote them.
    """
    if not inserts:
        yield
        return

    def replace_rows(module: torch.nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for position, values in inserts:
            output[:, position : position + values.shape[0]] = values.to(output)
        return output

    handle = encoder.model.get_input_embeddings().register_forward_hook(replace_rows)
    try:
        yield
    finally:
        handle.remove()


def _layer_states(
    encoder: TextEncoder,
    ids: torch.Tensor,
    layer: int,
    inserts: Sequence[tuple[int, torch.Tensor]] = (),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Hidden states of ``layer`` (counted on the complete encoder) and the pooled output."""
    local = layer + encoder.missing_last_layers
    if local > -1:
        raise ValueError(
            f"CLIP layer {layer} is not available: this text encoder was stored without its "
            f"last {encoder.missing_last_layers} layer(s). Use -{1 + encoder.missing_last_layers}"
            " or lower."
        )
    with _inserted_vectors(encoder, inserts):
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


def embedding_key(clip: ClipModel, index: int) -> str:
    """What embedding files call encoder ``index`` of ``clip`` (ComfyUI's names)."""
    encoder = clip.encoders[index]
    if clip.family is ModelFamily.SDXL:
        return "clip_g" if encoder.with_projection else "clip_l"
    return "clip_h" if clip.family is ModelFamily.SD2 else "clip_l"


def _chunks(
    encoder: TextEncoder,
    prompt: str,
    key: str,
    embeddings: EmbeddingSource | None,
) -> list[TokenChunk]:
    width = int(encoder.model.config.hidden_size)
    source = embeddings or _no_embeddings

    def vectors_for(name: str) -> torch.Tensor:
        return source(name).for_encoder(key, width)

    tokens, weights = tokenize_weighted(encoder.tokenizer, prompt, vectors_for)
    return chunk_tokens(tokens, weights, encoder.max_length, encoder.pad_token_id)


@torch.inference_mode()
def _encode_chunks(
    encoder: TextEncoder,
    chunks: Sequence[TokenChunk],
    layer: int | None,
    before_chunk: Callable[[], None],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    layer = encoder.default_layer if layer is None else layer
    device = module_device(encoder.model)
    states, pooled = [], None
    for chunk in chunks:
        before_chunk()
        chunk_ids = torch.tensor([chunk.ids], device=device)
        hidden, chunk_pooled = _layer_states(encoder, chunk_ids, layer, chunk.inserts)
        states.append(apply_emphasis(hidden.float(), torch.tensor(chunk.weights)))
        if pooled is None and chunk_pooled is not None:
            pooled = chunk_pooled.float()
    return torch.cat(states, dim=1), pooled


def encode_with(
    encoder: TextEncoder,
    prompt: str,
    layer: int | None = None,
    before_chunk: Callable[[], None] = _go_on,
    embeddings: EmbeddingSource | None = None,
    key: str = "clip_l",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode ``prompt`` with one encoder: ``[1, 77·chunks, width]`` states, pooled or None.

    ``before_chunk`` is called before each 77-token chunk goes through the encoder and may raise
    to stop a long prompt's encoding there (the text node passes its run's cancel check).
    ``embeddings`` finds the embeddings the prompt names; ``key`` is what embedding files call
    this encoder.
    """
    chunks = _chunks(encoder, prompt, key, embeddings)
    return _encode_chunks(encoder, chunks, layer, before_chunk)


def is_sdxl_refiner_clip(clip: ClipModel) -> bool:
    """Whether ``clip`` is the SDXL refiner's: OpenCLIP-bigG alone."""
    return clip.family is ModelFamily.SDXL and len(clip.encoders) == 1


def _check(prompt: str) -> None:
    problem = prompt_problem(prompt)
    if problem is not None:
        raise PromptError(problem)


def encode_texts(
    clip: ClipModel,
    texts: Sequence[str],
    size: SizeConditioning | None = None,
    before_chunk: Callable[[], None] = _go_on,
    embeddings: EmbeddingSource | None = None,
) -> Conditioning:
    """One conditioning entry from one text per encoder of ``clip`` (float32, on its device).

    Encoders whose texts take fewer chunks are padded with chunks of the empty prompt, so the
    states of all encoders line up token by token. Raises ``PromptError`` for a text that
    cannot be encoded and ``EmbeddingError``/``ModelLoadError`` for an embedding that cannot be
    used.
    """
    if len(texts) != len(clip.encoders):
        raise ValueError(f"{len(texts)} texts for {len(clip.encoders)} text encoders")
    for text in texts:
        _check(text)
    chunked = [
        _chunks(encoder, text, embedding_key(clip, index), embeddings)
        for index, (encoder, text) in enumerate(zip(clip.encoders, texts, strict=True))
    ]
    longest = max(len(chunks) for chunks in chunked)
    for index, encoder in enumerate(clip.encoders):
        if len(chunked[index]) < longest:
            empty = chunk_tokens([], [], encoder.max_length, encoder.pad_token_id)[0]
            chunked[index] = chunked[index] + [empty] * (longest - len(chunked[index]))
    results = [
        _encode_chunks(encoder, chunks, clip.layer, before_chunk)
        for encoder, chunks in zip(clip.encoders, chunked, strict=True)
    ]
    embeds = torch.cat([states for states, _ in results], dim=-1)
    pooled = results[-1][1]
    if size is None and is_sdxl_refiner_clip(clip):
        # The refiner's UNet needs an aesthetic score; a plain prompt gets the usual one.
        size = SizeConditioning(aesthetic_score=REFINER_AESTHETIC_SCORE)
    entry = ConditioningEntry(embeds=embeds, pooled=pooled, options=ConditioningOptions(size=size))
    return Conditioning((entry,))


def encode_prompt(
    clip: ClipModel,
    prompt: str,
    size: SizeConditioning | None = None,
    before_chunk: Callable[[], None] = _go_on,
    embeddings: EmbeddingSource | None = None,
) -> Conditioning:
    """CLIP Text Encode: one conditioning entry for ``prompt``, the same text for every encoder.

    Raises ``PromptError`` for a prompt that cannot be encoded (see ``prompt_problem``).
    """
    return encode_texts(clip, [prompt] * len(clip.encoders), size, before_chunk, embeddings)


def encode_sdxl(
    clip: ClipModel,
    text_g: str,
    text_l: str,
    size: SizeConditioning | None = None,
    before_chunk: Callable[[], None] = _go_on,
    embeddings: EmbeddingSource | None = None,
) -> Conditioning:
    """CLIP Text Encode SDXL: ``text_l`` through CLIP-L, ``text_g`` through OpenCLIP-bigG
    (which also gives the pooled output). Raises ``ValueError`` for a CLIP other than the
    SDXL base's."""
    if clip.family is not ModelFamily.SDXL or len(clip.encoders) != 2:
        kind = "the SDXL refiner's" if is_sdxl_refiner_clip(clip) else f"a {clip.family} one"
        raise ValueError(
            f"this node needs the SDXL base model's CLIP (two text encoders), not {kind}. "
            "Use CLIP Text Encode (or CLIP Text Encode SDXL Refiner for the refiner)."
        )
    return encode_texts(clip, [text_l, text_g], size, before_chunk, embeddings)
