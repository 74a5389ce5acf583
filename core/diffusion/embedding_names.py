"""Find textual-inversion embeddings by the names prompts use, without reading any tensor.

Prompts name an embedding the ComfyUI way, ``embedding:name`` as a word of its own (after a
space, a line break or the start of a weighted run), so ``(embedding:bad-hands:1.2)`` weighs it
like any word. Commas right after the name are text, as in ComfyUI. A name is the file's path
relative to an ``embeddings`` folder, with or without its suffix. AUTOMATIC1111 prompts name
embeddings by their bare file name instead; ``a1111_embedding_name`` tells an importer whether a
word is one. Nothing here imports torch, so validation and importers stay fast.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.diffusion.errors import ModelNotFoundError
from core.diffusion.model_paths import LAYOUTS, ModelKind, ModelPaths
from core.diffusion.prompt_weights import PromptError, parse_prompt_weights

EMBEDDING_PREFIX = "embedding:"
#: The file types embeddings come in, in the order a suffix-less name tries them (ComfyUI's).
EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")

_REFERENCE = re.compile(r"(?:(?<=\s)|^)" + re.escape(EMBEDDING_PREFIX) + r"(\S*?)(,*)(?=\s|$)")


@dataclass(frozen=True)
class EmbeddingReference:
    """``embedding:name`` in a prompt."""

    name: str


def split_embeddings(text: str) -> list[str | EmbeddingReference]:
    """Split a run of prompt text into plain text and embedding references, in order."""
    parts: list[str | EmbeddingReference] = []
    position = 0
    for match in _REFERENCE.finditer(text):
        if not match.group(1):
            continue  # "embedding:" alone names nothing: it stays text
        if match.start() > position:
            parts.append(text[position : match.start()])
        parts.append(EmbeddingReference(match.group(1)))
        position = match.end(1)
    if position < len(text):
        parts.append(text[position:])
    return parts


def embedding_references(prompt: str) -> list[str]:
    """The distinct embedding names a prompt uses, in order of first use.

    A prompt whose emphasis cannot be parsed names none (its own error is reported instead).
    """
    try:
        runs = parse_prompt_weights(prompt)
    except PromptError:
        return []
    names = [
        part.name
        for run in runs
        for part in split_embeddings(run.text)
        if isinstance(part, EmbeddingReference)
    ]
    return list(dict.fromkeys(names))


def find_embedding(paths: ModelPaths, name: str) -> Path | None:
    """The embedding file ``name`` refers to (suffix optional), or None."""
    candidates = [name] if name.lower().endswith(EMBEDDING_SUFFIXES) else []
    candidates += [name + suffix for suffix in EMBEDDING_SUFFIXES]
    for candidate in candidates:
        try:
            return paths.resolve(ModelKind.EMBEDDINGS, candidate)
        except ModelNotFoundError:
            continue
    return None


def missing_embedding_message(paths: ModelPaths, name: str) -> str:
    """Why ``embedding:name`` cannot be used, with where it was looked for and what to do."""
    folders = paths.folders(ModelKind.EMBEDDINGS)
    where = (
        "searched " + ", ".join(str(folder) for folder in folders)
        if folders
        else f"no model root has an {' or '.join(LAYOUTS[ModelKind.EMBEDDINGS])} folder"
    )
    suffixes = "/".join(EMBEDDING_SUFFIXES)
    return (
        f"no embedding named '{name}' ({where}). Put {name}{suffixes} in an embeddings "
        f"folder, or remove '{EMBEDDING_PREFIX}{name}' from the prompt."
    )


def resolve_embedding(paths: ModelPaths, name: str) -> Path:
    """The file of ``embedding:name``; raises ``ModelNotFoundError`` saying where it looked."""
    path = find_embedding(paths, name)
    if path is None:
        raise ModelNotFoundError(None, missing_embedding_message(paths, name))
    return path


def embedding_files(paths: ModelPaths) -> list[str]:
    """Names (relative paths with suffix) of every embedding file in the model folders."""
    return [
        name
        for name in paths.list(ModelKind.EMBEDDINGS)
        if name.lower().endswith(EMBEDDING_SUFFIXES)
    ]


def a1111_embedding_name(paths: ModelPaths, word: str) -> str | None:
    """The ``embedding:`` name of the file an AUTOMATIC1111 prompt word stands for, or None.

    AUTOMATIC1111 names an embedding by its file name without suffix, from any subfolder of
    its embeddings folder, and matches it through the tokenizer, which ignores case. An exact
    match wins over one that differs in case; among equals, the first name in sorted order.
    """
    word = word.strip()
    if not word:
        return None
    folded = []
    for name in embedding_files(paths):
        stem = PurePosixPath(name).stem
        if stem == word:
            return str(PurePosixPath(name).with_suffix(""))
        if stem.lower() == word.lower():
            folded.append(str(PurePosixPath(name).with_suffix("")))
    return folded[0] if folded else None


def is_embedding_name(paths: ModelPaths, word: str) -> bool:
    """Whether an AUTOMATIC1111 prompt word names an embedding file in the model folders."""
    return a1111_embedding_name(paths, word) is not None
