"""T2I-Adapter style models: a CLIP image embedding turned into extra prompt tokens.

TencentARC's style adapter (``t2iadapter_style_sd14v1``, ``coadapter-style-sd15v1``; Mou et
al. 2023, "T2I-Adapter", §3.3) reads the hidden states of a CLIP ViT-L/14 image encoder,
appends a few learned query tokens, runs a small CLIP-style transformer over the lot and
projects the query tokens into the text encoder's width. Those tokens are appended to every
prompt's tokens, so cross-attention sees the picture's style beside the words.

The files store ``style_embedding`` [1, tokens, width], ``ln_pre``/``ln_post``, ``proj``
[width, context] and ``transformer_layes.N.*`` (sic) blocks of the CLIP layout (``attn`` as
``nn.MultiheadAttention``, ``ln_1``, ``mlp.c_fc``, ``mlp.c_proj``, ``ln_2``); every size is
read from the tensors.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.conditioning import Conditioning
from core.diffusion.errors import ModelLoadError
from core.diffusion.models import HoldsTensors, StorageKey, module_storages

#: Attention heads of the released style adapters (width 1024 / 8 = 128 per head); the files
#: do not record it.
HEADS = 8
#: ComfyUI's StyleModelApply strength types.
StrengthType = Literal["multiply", "attn_bias"]
_BLOCK = re.compile(r"transformer_layes\.(\d+)\.")


class _QuickGelu(nn.Module):
    """CLIP's GELU approximation, x·σ(1.702x) (Radford et al. 2021), which the adapter uses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _Mlp(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, width * 4)
        self.gelu = _QuickGelu()
        self.c_proj = nn.Linear(width * 4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class _Block(nn.Module):
    """A pre-norm transformer block: x + attn(ln₁ x), then + mlp(ln₂ x)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = _Mlp(width)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class StyleAdapter(nn.Module):
    """CLIP image hidden states [B, T, width] → style tokens [B, tokens, context]."""

    def __init__(self, width: int, context: int, layers: int, tokens: int, heads: int = HEADS):
        super().__init__()
        self.transformer_layes = nn.Sequential(*(_Block(width, heads) for _ in range(layers)))
        self.style_embedding = nn.Parameter(torch.zeros(1, tokens, width))
        self.ln_pre = nn.LayerNorm(width)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, context))

    @property
    def tokens(self) -> int:
        return int(self.style_embedding.shape[1])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        queries = self.style_embedding.expand(hidden.shape[0], -1, -1)
        x = self.ln_pre(torch.cat([hidden, queries], dim=1))
        x = self.transformer_layes(x)
        return self.ln_post(x[:, -self.tokens :]) @ self.proj


@dataclass(frozen=True, eq=False)
class StyleModel(HoldsTensors):
    """The STYLE_MODEL socket value: a loaded style adapter and the file it came from."""

    adapter: StyleAdapter
    source: Path

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.adapter)

    @property
    def width(self) -> int:
        """The CLIP image encoder width it reads (1024: ViT-L/14)."""
        return int(self.adapter.style_embedding.shape[-1])

    @property
    def context(self) -> int:
        """The width of the tokens it makes (768: SD 1.x's text encoder)."""
        return int(self.adapter.proj.shape[-1])


def style_adapter_from_state_dict(tensors: Mapping[str, torch.Tensor]) -> StyleAdapter:
    """A style adapter with the sizes and weights of ``tensors`` (raises KeyError or
    RuntimeError when they are not a style adapter's)."""
    embedding = tensors["style_embedding"]
    layers = 1 + max((int(m.group(1)) for k in tensors if (m := _BLOCK.match(k))), default=-1)
    _, tokens, width = embedding.shape
    adapter = StyleAdapter(width, int(tensors["proj"].shape[1]), layers, tokens)
    adapter.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return adapter.eval().requires_grad_(False)


def load_style_model(path: str | Path, dtype: torch.dtype = torch.float32) -> StyleModel:
    """Load a T2I-Adapter style model file (.safetensors, or a legacy .pth read without
    running code)."""
    path = Path(path)
    tensors = read_state_dict(path)
    if "style_embedding" not in tensors:
        raise ModelLoadError(
            path,
            "is not a style model: it has no style_embedding tensor.",
            "Expected a T2I-Adapter style model (t2iadapter_style_sd14v1.pth, "
            "coadapter-style-sd15v1.pth) in the style_models folder.",
        )
    try:
        adapter = style_adapter_from_state_dict(tensors)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            path,
            f"looks like a style model but its tensors do not fit one ({str(exc)[:200]}).",
            "The file is damaged or of another kind; download it again.",
        ) from None
    return StyleModel(adapter.to(dtype), path)


def style_tokens(model: StyleModel, hidden: torch.Tensor) -> torch.Tensor:
    """The style tokens of CLIP image hidden states [B, T, width], every picture's tokens one
    after the other in a single sequence [1, B·tokens, context] (several pictures mix)."""
    if hidden.shape[-1] != model.width:
        raise ValueError(
            f"the style model reads CLIP image features {model.width} wide but the encoder "
            f"gave {hidden.shape[-1]}: encode the picture with the CLIP vision model the style "
            "model was trained with (ViT-L/14 for the SD 1.x style adapters)"
        )
    parameter = model.adapter.proj
    with torch.inference_mode():
        tokens = model.adapter(hidden.to(parameter.device, parameter.dtype))
    return tokens.float().cpu().reshape(1, -1, tokens.shape[-1])


def apply_style(
    conditioning: Conditioning,
    tokens: torch.Tensor,
    strength: float = 1.0,
    strength_type: StrengthType = "multiply",
) -> Conditioning:
    """``conditioning`` with the style ``tokens`` [1, N, context] appended to every entry's
    prompt tokens, scaled by ``strength`` ("multiply"). "attn_bias" weights the tokens'
    attention by ``strength`` instead, which equals plain appending at strength 1 and needs
    an attention bias otherwise."""
    if strength_type == "attn_bias" and strength != 1.0:
        raise ValueError(
            "strength_type attn_bias with a strength other than 1 needs an attention bias "
            "LatentLoom's cross-attention does not take: use multiply"
        )
    if strength_type == "multiply":
        tokens = tokens * strength
    entries = []
    for entry in conditioning:
        if entry.embeds.shape[-1] != tokens.shape[-1]:
            raise ValueError(
                f"the style tokens are {tokens.shape[-1]} wide but the prompt's are "
                f"{entry.embeds.shape[-1]}: this style model is for a model whose text "
                f"encoder is {tokens.shape[-1]} wide (SD 1.x: 768)"
            )
        extra = tokens.to(entry.embeds.dtype).expand(entry.embeds.shape[0], -1, -1)
        entries.append(replace(entry, embeds=torch.cat([entry.embeds, extra], dim=1)))
    return Conditioning(tuple(entries))
