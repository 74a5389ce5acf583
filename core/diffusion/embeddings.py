"""Read textual-inversion embeddings (Gal et al., 2022) in the layouts they are shared in.

An embedding is one or more learned token vectors that a prompt inserts in place of ordinary
tokens, before the text transformer. Files come as

- AUTOMATIC1111 ``.pt``: ``{"string_to_param": {"*": [n, width]}, ...}``;
- diffusers ``.bin`` or ``.safetensors``: ``{"<token>": [width] or [n, width]}``;
- ``.safetensors`` with ``emb_params`` ``[n, width]`` (AUTOMATIC1111's export);
- SDXL ``.safetensors`` with ``clip_l`` ``[n, 768]`` and ``clip_g`` ``[n, 1280]``, one set of
  vectors per text encoder.

Widths: 768 for SD 1.x (CLIP ViT-L), 1024 for SD 2.x (OpenCLIP ViT-H), 768 + 1280 for SDXL.
Pickled files are read by ``checkpoint_io.read_state_dict``, which never runs stored code.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError

#: Keys of files that hold vectors per text encoder, as ComfyUI names them.
ENCODER_KEYS = ("clip_l", "clip_g", "clip_h")
#: Keys of files that hold the vectors of one encoder.
_SINGLE_KEYS = ("string_to_param.*", "emb_params")


class EmbeddingError(ValueError):
    """An embedding cannot be used with a text encoder; the message names it."""


@dataclass(frozen=True, eq=False)
class TextualInversion:
    """The vectors of one embedding file: per encoder key, or under "" for one encoder."""

    name: str
    path: Path
    vectors: Mapping[str, torch.Tensor]  # each [n, width], float32

    def for_encoder(self, key: str, width: int) -> torch.Tensor:
        """The vectors for the text encoder that files call ``key`` and that is ``width`` wide.

        The encoder's own key wins; otherwise the vectors of a one-encoder file, or any set of
        the right width, are used (an SD 1.x embedding in an SDXL file's ``clip_l``, say).
        """
        chosen = self.vectors.get(key)
        if chosen is None:
            fitting = [v for v in self.vectors.values() if int(v.shape[-1]) == width]
            chosen = fitting[0] if fitting else None
        if chosen is None or int(chosen.shape[-1]) != width:
            made_for = ", ".join(
                f"{k or 'one encoder'}: {int(v.shape[-1])} wide" for k, v in self.vectors.items()
            )
            raise EmbeddingError(
                f"embedding '{self.name}' ({self.path.name}) does not fit this model's "
                f"{width}-wide text encoder {key} (it holds {made_for}; SD 1.x is 768 wide, "
                "SD 2.x 1024, SDXL 768 + 1280). Use an embedding trained for this model family."
            )
        return chosen


def load_embedding(path: str | Path, name: str) -> TextualInversion:
    """Read the embedding file ``path``, which prompts call ``name``."""
    path = Path(path)
    tensors = read_state_dict(path)
    vectors = _vectors_of(tensors, path)
    counts = {int(v.shape[0]) for v in vectors.values()}
    if len(counts) > 1:
        raise ModelLoadError(
            path,
            f"holds a different number of vectors per text encoder ({_describe(vectors)}).",
            "Each text encoder needs the same number of vectors; use an intact SDXL embedding.",
        )
    return TextualInversion(name, path, vectors)


def _vectors_of(tensors: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    by_encoder = {key: tensors[key] for key in ENCODER_KEYS if key in tensors}
    if by_encoder:
        found = by_encoder
    else:
        single = next((tensors[key] for key in _SINGLE_KEYS if key in tensors), None)
        if single is None:
            # diffusers: one entry per placeholder token, in the order they were learned.
            parts = [t for t in tensors.values() if t.is_floating_point() and t.ndim in (1, 2)]
            widths = {int(t.shape[-1]) for t in parts}
            if not parts or len(widths) != 1:
                raise ModelLoadError(
                    path,
                    "is not a textual-inversion embedding (expected string_to_param, "
                    "emb_params, clip_l/clip_g or token vectors of one width; found "
                    f"{', '.join(list(tensors)[:4])}).",
                    "Put LoRAs in the loras folder and checkpoints in the checkpoints folder.",
                )
            single = torch.cat([t.reshape(-1, t.shape[-1]) for t in parts])
        found = {"": single}
    vectors = {}
    for key, tensor in found.items():
        if tensor.ndim == 1:
            tensor = tensor[None]
        if tensor.ndim != 2 or not tensor.is_floating_point() or 0 in tensor.shape:
            raise ModelLoadError(
                path,
                f"has embedding vectors of shape {tuple(tensor.shape)} under '{key or 'its key'}'.",
                "Expected [vectors, width] floating-point values.",
            )
        vectors[key] = tensor.detach().float().contiguous()
    return vectors


def _describe(vectors: Mapping[str, torch.Tensor]) -> str:
    return ", ".join(f"{key}: {int(v.shape[0])}" for key, v in vectors.items())
