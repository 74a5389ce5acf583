"""GLIGEN (Li et al. 2023, "GLIGEN: Open-Set Grounded Text-to-Image Generation"): boxes with
phrases steer where things appear, through gated self-attention layers added to a frozen SD 1.x
UNet (ComfyUI's GLIGENLoader and GLIGENTextBoxApply).

Each grounding token is a phrase's pooled (unprojected) CLIP text embedding joined with a
Fourier embedding of its box (§3.2, eq. 5), made by ``position_net``; a gated self-attention
layer after every transformer block's self-attention (§3.3, eq. 8) attends over the visual
tokens and the grounding tokens together and adds the visual part, scaled by tanh of a learnt
gate. The file stores, under the original LDM names of the transformer blocks,
``<block>.fuser.*`` (linear, attn, ff, norm1, norm2, alpha_attn, alpha_dense) and
``position_net.*`` (linears, null_positive_feature, null_position_feature).

A sampling run with boxes adds the layers to a copy of the UNet that shares its weights
(``patch_unet``); they act only on the rows of contexts that carry boxes.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers.models.attention import BasicTransformerBlock, GatedSelfAttentionDense
from torch import nn

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.errors import ModelLoadError
from core.diffusion.keymap import unet_module_to_ldm
from core.diffusion.merging import copy_with_tensors
from core.diffusion.models import HoldsTensors, StorageKey, TextEncoder, module_storages

#: Grounding tokens per context: the released models were trained with at most 30 boxes.
MAX_OBJECTS = 30
#: Fourier frequencies per box coordinate (sin and cos of each, for x₁ y₁ x₂ y₂).
FOURIER_FREQUENCIES = 8
_FUSER = re.compile(
    r".*?((?:input_blocks\.\d+|middle_block|output_blocks\.\d+)\.1\.transformer_blocks\.\d+)"
    r"\.fuser\.(.+)"
)
_REMEDY = "Expected a GLIGEN model (gligen_sd14_textbox_pruned) in the gligen folder."
#: The ``cross_attention_kwargs`` entry diffusers' transformer blocks hand their ``fuser``.
KWARG = "gligen"


class PositionNet(nn.Module):
    """Grounding tokens from phrase embeddings and boxes (absent objects take the learnt
    null features)."""

    def __init__(self, text_width: int, out_width: int) -> None:
        super().__init__()
        box_width = FOURIER_FREQUENCIES * 2 * 4
        self.linears = nn.Sequential(
            nn.Linear(text_width + box_width, 512),
            nn.SiLU(),
            nn.Linear(512, 512),
            nn.SiLU(),
            nn.Linear(512, out_width),
        )
        self.null_positive_feature = nn.Parameter(torch.zeros(text_width))
        self.null_position_feature = nn.Parameter(torch.zeros(box_width))

    @staticmethod
    def fourier(boxes: torch.Tensor) -> torch.Tensor:
        """sin and cos of each coordinate at frequencies 100^(k/8), k = 0…7."""
        bands = 100.0 ** (
            torch.arange(FOURIER_FREQUENCIES, device=boxes.device) / FOURIER_FREQUENCIES
        )
        parts = []
        for band in bands:
            parts += [torch.sin(band * boxes), torch.cos(band * boxes)]
        return torch.cat(parts, dim=-1)

    def forward(
        self, boxes: torch.Tensor, present: torch.Tensor, phrases: torch.Tensor
    ) -> torch.Tensor:
        present = present.unsqueeze(-1)
        phrases = phrases * present + (1 - present) * self.null_positive_feature
        where = self.fourier(boxes) * present + (1 - present) * self.null_position_feature
        return self.linears(torch.cat([phrases, where], dim=-1))


@dataclass(frozen=True, eq=False)
class GligenModel(HoldsTensors):
    """The GLIGEN socket value: the gated layers by LDM transformer-block name, and the
    network that makes grounding tokens."""

    layers: nn.ModuleDict  # LDM block name with "/" for "." → GatedSelfAttentionDense
    position_net: PositionNet
    source: Path

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.layers, self.position_net)

    @property
    def text_width(self) -> int:
        return int(self.position_net.null_positive_feature.shape[0])


def _gated_layer(tensors: Mapping[str, torch.Tensor]) -> GatedSelfAttentionDense:
    query, context = tensors["linear.weight"].shape
    # The released SD 1.x layers use 8 heads; wider text encoders 64-channel heads.
    heads = 8 if context == 768 else max(1, query // 64)
    layer = GatedSelfAttentionDense(int(query), int(context), heads, int(query) // heads)
    layer.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return layer


def load_gligen(path: str | Path, dtype: torch.dtype = torch.float32) -> GligenModel:
    """Read a GLIGEN file."""
    path = Path(path)
    tensors = read_state_dict(path)
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        match = _FUSER.match(key)
        if match:
            grouped.setdefault(match.group(1), {})[match.group(2)] = value
    position = {
        key.split("position_net.", 1)[1]: value
        for key, value in tensors.items()
        if "position_net." in key
    }
    if not grouped or "null_positive_feature" not in position:
        raise ModelLoadError(
            path, "is not a GLIGEN model: it has no fuser layers or no position_net.", _REMEDY
        )
    try:
        layers = {name.replace(".", "/"): _gated_layer(part) for name, part in grouped.items()}
        net = PositionNet(
            int(position["null_positive_feature"].shape[0]),
            int(position["linears.4.weight"].shape[0]),
        )
        net.load_state_dict({k: v.float() for k, v in position.items()}, strict=True)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(
            path, f"has GLIGEN layers that do not fit together ({str(exc)[:200]}).", _REMEDY
        ) from None
    module = nn.ModuleDict(layers).to(dtype).eval().requires_grad_(False)
    return GligenModel(module, net.to(dtype).eval().requires_grad_(False), path)


@torch.inference_mode()
def phrase_embedding(encoder: TextEncoder, text: str) -> torch.Tensor:
    """A phrase's grounding embedding: the text encoder's pooled output before any projection
    (the final-layer-normed end token) [width], as GLIGEN was trained on."""
    tokens = encoder.tokenizer(
        text,
        padding="max_length",
        max_length=encoder.max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    parameter = next(encoder.model.parameters())
    model = encoder.model
    text_model = getattr(model, "text_model", model)
    output = text_model(input_ids=tokens.to(parameter.device))
    return output.pooler_output[0].float().cpu()


@dataclass(frozen=True)
class GroundingBox:
    """One phrase and its box in pixels (left, top, width, height)."""

    phrase: torch.Tensor  # [text width]
    x: int
    y: int
    width: int
    height: int


class _RowsGated(nn.Module):
    """A gated layer that acts only on the rows the call marks (the contexts with boxes)."""

    def __init__(self, layer: GatedSelfAttentionDense) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, grounding: Mapping[str, torch.Tensor]) -> torch.Tensor:
        rows = grounding["rows"].to(x.dtype).view(-1, 1, 1)
        return x + rows * (self.layer(x, grounding["objs"].to(x.dtype)) - x)


class _GivenTokens(nn.Module):
    """Stands in for diffusers' ``position_net``: the grounding tokens come ready made."""

    def forward(self, **grounding: torch.Tensor) -> dict[str, torch.Tensor]:
        return grounding


@dataclass(frozen=True, eq=False)
class GligenBoxes:
    """The per-call UNet extra of a context with boxes: it makes the grounding tokens of its
    rows, and ``patch_unet`` gives the sampler a UNet with the gated layers in place."""

    model: GligenModel
    boxes: tuple[GroundingBox, ...]
    _tokens: dict[Any, torch.Tensor] = field(default_factory=dict, repr=False)

    def with_box(self, box: GroundingBox) -> GligenBoxes:
        if len(self.boxes) >= MAX_OBJECTS:
            raise ValueError(f"GLIGEN takes at most {MAX_OBJECTS} boxes per prompt")
        return GligenBoxes(self.model, (*self.boxes, box))

    def patch_unet(self, unet: Any) -> Any:
        """A copy of ``unet`` sharing its weights, with the gated layers after the
        self-attention of every transformer block the model has one for."""
        copied = copy_with_tensors(unet, {})
        names = [n for n, m in copied.named_modules() if isinstance(m, BasicTransformerBlock)]
        layers = self.model.layers
        parameter = next(copied.parameters())
        if next(layers.parameters()).dtype != parameter.dtype or (
            next(layers.parameters()).device != parameter.device
        ):
            # A copy where the UNet computes: the loaded GLIGEN model is shared and stays put.
            layers = copy.deepcopy(layers).to(parameter.device, parameter.dtype)
        found = 0
        for name in names:
            ldm = unet_module_to_ldm(name, copied.config).replace(".", "/")
            if ldm in layers:
                copied.get_submodule(name).fuser = _RowsGated(layers[ldm])
                found += 1
        if found != len(layers):
            raise ValueError(
                f"{self.model.source.name} has gated layers for {len(layers)} transformer "
                f"blocks but the model has {found} of them: GLIGEN models are for SD 1.x"
            )
        copied.position_net = _GivenTokens()
        return copied

    def _grounding(self, latent_size: tuple[int, int], downscale: int) -> torch.Tensor:
        key = (latent_size, downscale)
        if key not in self._tokens:
            height, width = latent_size
            net = self.model.position_net
            parameter = net.null_positive_feature
            boxes = torch.zeros(1, MAX_OBJECTS, 4)
            present = torch.zeros(1, MAX_OBJECTS)
            phrases = torch.zeros(1, MAX_OBJECTS, self.model.text_width)
            for number, box in enumerate(self.boxes):
                # Box corners as fractions of the latent, whole cells as ComfyUI counts them.
                left, top = box.x // downscale, box.y // downscale
                right, bottom = left + box.width // downscale, top + box.height // downscale
                boxes[0, number] = torch.tensor(
                    [left / width, top / height, right / width, bottom / height]
                )
                present[0, number] = 1.0
                phrases[0, number] = box.phrase
            with torch.inference_mode():
                tokens = net(
                    boxes.to(parameter.device, parameter.dtype),
                    present.to(parameter.device, parameter.dtype),
                    phrases.to(parameter.device, parameter.dtype),
                )
            self._tokens[key] = tokens.float()
        return self._tokens[key]

    def __call__(self, call: Any) -> dict[str, Any]:
        tokens = self._grounding(call.latent_size, call.downscale)
        rows = call.rows(self).to(call.x.device)
        objs = tokens.to(call.x.device).expand(call.x.shape[0], -1, -1) * rows.view(-1, 1, 1)
        grounding = {"objs": objs, "rows": rows.float()}
        return {"cross_attention_kwargs": {KWARG: grounding}}
