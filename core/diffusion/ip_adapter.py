"""IP-Adapter (Ye et al. 2023, "IP-Adapter: Text Compatible Image Prompt Adapter for
Text-to-Image Diffusion Models"): a picture's CLIP image features become a few extra tokens
that every cross-attention layer of the UNet attends to, through its own key and value
projections, beside the text tokens.

For each cross-attention layer with query Q = W_q·h the output becomes
``Attention(Q, K_text, V_text) + weight · Attention(Q, W'_k·c_img, W'_v·c_img)`` (the paper's
decoupled cross-attention, eq. 5), before the layer's output projection.

Files come in two layouts holding the same tensors: a single safetensors file with flat keys
(``image_proj.*``, ``ip_adapter.<n>.to_k_ip.weight``, ``ip_adapter.<n>.to_v_ip.weight``) and
the original ``.bin`` with the nested dictionaries ``{"image_proj": …, "ip_adapter": …}``,
read only through ``torch.load(weights_only=True)``. ``<n>`` numbers the UNet's attention
processors in diffusers' order (``unet.attn_processors``), so the cross-attention layers are
the odd numbers. Two image projections are supported:

- *plain* (``ip-adapter_sd15``, ``ip-adapter_sdxl_vit-h``…): the projected CLIP image
  embedding through Linear(embed → tokens·width) and a LayerNorm, four tokens;
- *plus* (``ip-adapter-plus_sd15``, ``ip-adapter-plus-face``…): a perceiver resampler
  (learned latent queries, layers of perceiver attention and a feed-forward) over the
  penultimate hidden states of the CLIP image encoder, usually sixteen tokens.

The negative (unconditional) rows of classifier-free guidance see the tokens of "no picture",
as diffusers' pipelines make them: for plain adapters the zero image embedding, for plus ones
the encoder's penultimate states of an all-zero pixel input (zeros after CLIP's
normalisation).

Applying an adapter never changes the loaded MODEL: the patched MODEL holds a structural copy
of the UNet that shares every weight, whose cross-attention processors also hold the
adapter's key and value projections, and a per-call UNet extra (``ImagePromptTokens``) that
hands the image tokens to those processors through ``cross_attention_kwargs``. Several
adapters stack: each adds its own projections and tokens under its own key. An optional mask
multiplies an adapter's image attention position by position, resized to each UNet level, so
a picture can steer one region only.
"""

from __future__ import annotations

from core.diffusion import offline  # noqa: F401  (must precede diffusers/transformers)

# isort: split
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from core.diffusion.checkpoint_io import read_state_dict
from core.diffusion.clip_vision import ClipVisionModel, ClipVisionOutput, encode_pixels
from core.diffusion.errors import ModelLoadError
from core.diffusion.merging import copy_with_tensors
from core.diffusion.models import (
    DiffusionModel,
    HoldsTensors,
    StorageKey,
    module_dtype,
    module_storages,
)

if TYPE_CHECKING:
    from core.diffusion.guidance import UnetCall

Variant = Literal["plain", "plus"]
#: The ``cross_attention_kwargs`` entry that carries image tokens to the processors; diffusers
#: passes this name on to every attention layer without a warning.
TOKENS_ARGUMENT = "ip_hidden_states"
#: Width of each head of the resampler's perceiver attention in every published file.
RESAMPLER_HEAD_WIDTH = 64
#: Cross-attention widths of the families IP-Adapters are published for.
FAMILY_BY_WIDTH = {768: "SD 1.5", 1024: "SD 2.x", 2048: "SDXL"}
_LAYER_KEY = re.compile(r"ip_adapter\.(\d+)\.to_([kv])_ip\.weight")


# --- image projections ---------------------------------------------------------------------


class PlainProjection(nn.Module):
    """CLIP image embedding [B, embed] → ``tokens`` tokens [B, tokens, width]."""

    def __init__(self, embed_dim: int, width: int, tokens: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.proj = nn.Linear(embed_dim, tokens * width)
        self.norm = nn.LayerNorm(width)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(embeds).reshape(embeds.shape[0], self.tokens, -1))


class PerceiverAttention(nn.Module):
    """The latents attend to the image features and to themselves (Jaegle et al. 2021)."""

    def __init__(self, width: int, heads: int, head_width: int) -> None:
        super().__init__()
        inner = heads * head_width
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)  # image features
        self.norm2 = nn.LayerNorm(width)  # latents
        self.to_q = nn.Linear(width, inner, bias=False)
        self.to_kv = nn.Linear(width, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, width, bias=False)

    def forward(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        features, latents = self.norm1(features), self.norm2(latents)
        query = self.to_q(latents)
        key, value = self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1)
        batch = latents.shape[0]

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(batch, x.shape[1], self.heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(query), heads(key), heads(value))
        return self.to_out(out.transpose(1, 2).reshape(batch, latents.shape[1], -1))


class Resampler(nn.Module):
    """IP-Adapter plus's image projection: learned queries read the CLIP hidden states
    [B, patches, embed] through perceiver layers and become [B, queries, out_width]."""

    def __init__(
        self, embed_dim: int, width: int, out_width: int, queries: int, depth: int, heads: int
    ) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.zeros(1, queries, width))
        self.proj_in = nn.Linear(embed_dim, width)
        self.proj_out = nn.Linear(width, out_width)
        self.norm_out = nn.LayerNorm(out_width)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PerceiverAttention(width, heads, RESAMPLER_HEAD_WIDTH),
                    nn.Sequential(
                        nn.LayerNorm(width),
                        nn.Linear(width, 4 * width, bias=False),
                        nn.GELU(),
                        nn.Linear(4 * width, width, bias=False),
                    ),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        latents = self.latents.expand(features.shape[0], -1, -1)
        features = self.proj_in(features)
        for attention, feed_forward in self.layers:  # type: ignore[misc]
            latents = attention(features, latents) + latents
            latents = feed_forward(latents) + latents
        return self.norm_out(self.proj_out(latents))


class ImageKeyValue(nn.Module):
    """One cross-attention layer's key and value projections of the image tokens."""

    def __init__(self, key: torch.Tensor, value: torch.Tensor) -> None:
        super().__init__()
        with torch.device("meta"):  # no random initialisation: the weights are given
            self.to_k_ip = nn.Linear(key.shape[1], key.shape[0], bias=False)
            self.to_v_ip = nn.Linear(value.shape[1], value.shape[0], bias=False)
        self.to_k_ip.weight = nn.Parameter(key, requires_grad=False)
        self.to_v_ip.weight = nn.Parameter(value, requires_grad=False)


# --- files ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IpAdapterWeights(HoldsTensors):
    """The IPADAPTER socket value: an adapter's image projection and its per-layer key and
    value projections (by attention-processor number)."""

    source: Path
    variant: Variant
    image_proj: nn.Module
    layers: Mapping[int, ImageKeyValue]
    #: The width of the UNet's text tokens the adapter was trained for (768 SD 1.5, 2048 SDXL).
    cross_attention_dim: int
    #: The CLIP feature width it reads: the image embedding (plain) or the hidden states (plus).
    clip_dim: int
    tokens: int

    def cache_storages(self) -> dict[StorageKey, int]:
        return module_storages(self.image_proj, *self.layers.values())

    @property
    def family(self) -> str:
        """The model family its width stands for ("SD 1.5", "SDXL"…)."""
        return FAMILY_BY_WIDTH.get(self.cross_attention_dim, f"{self.cross_attention_dim}-wide")

    @property
    def reads(self) -> str:
        """Which CLIP output the image projection reads, in words."""
        return "penultimate hidden states" if self.variant == "plus" else "image embedding"


def _nested_sections(tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    sections: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, tensor in tensors.items():
        head, _, rest = key.partition(".")
        if head in sections:
            sections[head][rest] = tensor
    return sections


def _unsupported_projection(projection: Mapping[str, torch.Tensor]) -> str | None:
    if "proj.3.weight" in projection:
        return "a full-face IP-Adapter (an MLP image projection)"
    if any(k.startswith("perceiver_resampler.") for k in projection) or (
        "norm.weight" in projection and "proj.0.weight" in projection
    ):
        return "a FaceID IP-Adapter (it reads InsightFace embeddings, not CLIP's)"
    return None


def _projection(
    projection: Mapping[str, torch.Tensor],
) -> tuple[Variant, nn.Module, int, int, int]:
    """(variant, module, width, clip width, tokens) of the ``image_proj`` tensors."""
    if "proj.weight" in projection and "norm.weight" in projection:
        width = int(projection["norm.weight"].shape[0])
        out, embed = projection["proj.weight"].shape
        if out % width:
            raise ValueError(f"image_proj.proj.weight has {out} rows, not a multiple of {width}")
        module: nn.Module = PlainProjection(int(embed), width, int(out) // width)
        variant: Variant = "plain"
        tokens = int(out) // width
    elif "latents" in projection and "proj_in.weight" in projection:
        queries, inner_width = (int(n) for n in projection["latents"].shape[1:])
        width = int(projection["proj_out.weight"].shape[0])
        embed = int(projection["proj_in.weight"].shape[1])
        depth = len({int(k.split(".")[1]) for k in projection if k.startswith("layers.")})
        heads = int(projection["layers.0.0.to_q.weight"].shape[0]) // RESAMPLER_HEAD_WIDTH
        module = Resampler(embed, inner_width, width, queries, depth, max(heads, 1))
        variant, tokens = "plus", queries
    else:
        raise KeyError("image_proj.proj.weight or image_proj.latents (the image projection)")
    module.load_state_dict(dict(projection), strict=True)
    return variant, module, width, int(embed), tokens


def ip_adapter_from_state_dict(
    tensors: Mapping[str, torch.Tensor], path: Path, dtype: torch.dtype = torch.float32
) -> IpAdapterWeights:
    """The adapter held by ``tensors`` (flat ``image_proj.*`` / ``ip_adapter.*`` names)."""
    sections = _nested_sections(tensors)
    projection, attention = sections["image_proj"], sections["ip_adapter"]
    if not projection or not attention:
        raise ModelLoadError(
            path,
            "is not an IP-Adapter (it has no image_proj.* and ip_adapter.* tensors).",
            "Choose an IP-Adapter file such as ip-adapter_sd15.safetensors in the ipadapter "
            "folder.",
        )
    unsupported = _unsupported_projection(projection)
    if unsupported is not None:
        raise ModelLoadError(
            path,
            f"is {unsupported}, which LatentLoom does not support.",
            "Use a plain or plus IP-Adapter (ip-adapter_sd15, ip-adapter-plus_sd15, "
            "ip-adapter_sdxl_vit-h, ip-adapter-plus_sdxl_vit-h…).",
        )
    try:
        variant, module, width, clip_dim, tokens = _projection(projection)
        pairs: dict[int, dict[str, torch.Tensor]] = {}
        for key, tensor in attention.items():
            match = _LAYER_KEY.fullmatch("ip_adapter." + key)
            if match is None:
                raise KeyError(f"ip_adapter.{key} (expected only to_k_ip/to_v_ip weights)")
            pairs.setdefault(int(match.group(1)), {})[match.group(2)] = tensor
        layers: dict[int, ImageKeyValue] = {}
        for number, pair in sorted(pairs.items()):
            for missing in sorted({"k", "v"} - set(pair)):
                raise KeyError(f"ip_adapter.{number}.to_{missing}_ip.weight")
            if pair["k"].shape[1] != width or pair["v"].shape[1] != width:
                raise ValueError(
                    f"ip_adapter.{number} reads {pair['k'].shape[1]}-wide tokens but the image "
                    f"projection makes {width}-wide ones"
                )
            layers[number] = ImageKeyValue(pair["k"], pair["v"])
    except (KeyError, ValueError, RuntimeError, IndexError) as exc:
        text = " ".join(str(exc).split())[:300]
        raise ModelLoadError(
            path,
            f"has IP-Adapter tensors LatentLoom does not recognise ({text}).",
            "The file is damaged or a variant LatentLoom does not support.",
        ) from exc
    module = module.to(dtype).eval().requires_grad_(False)
    for layer in layers.values():
        layer.to(dtype)
    return IpAdapterWeights(path, variant, module, layers, width, clip_dim, tokens)


def load_ip_adapter(path: str | Path, dtype: torch.dtype = torch.float32) -> IpAdapterWeights:
    """Load an IP-Adapter file (``.safetensors``, or ``.bin``/``.pth`` read with
    ``torch.load(weights_only=True)``)."""
    path = Path(path)
    return ip_adapter_from_state_dict(read_state_dict(path), path, dtype)


# --- image tokens --------------------------------------------------------------------------


def _features(adapter: IpAdapterWeights, output: ClipVisionOutput) -> torch.Tensor:
    return output.penultimate_hidden_states if adapter.variant == "plus" else output.image_embeds


def project(adapter: IpAdapterWeights, features: torch.Tensor) -> torch.Tensor:
    """Image tokens [B, tokens, width] (float32, on the CPU) of CLIP ``features``."""
    parameter = next(adapter.image_proj.parameters())
    with torch.inference_mode():
        tokens = adapter.image_proj(features.to(parameter.device, parameter.dtype))
    return tokens.float().cpu()


def image_tokens(
    adapter: IpAdapterWeights, output: ClipVisionOutput, encoder: ClipVisionModel | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) image tokens [1, B·tokens, width] of the encoded pictures.

    Several pictures are concatenated along the tokens, so the UNet attends to all of them at
    once (as diffusers does for several images of one adapter). The negative tokens are those
    of no picture (see the module docstring); a plus adapter needs ``encoder`` for them.
    """
    features = _features(adapter, output)
    if features.shape[-1] != adapter.clip_dim:
        raise ValueError(
            f"{adapter.source.name} reads {adapter.clip_dim}-wide CLIP {adapter.reads}, but the "
            f"image encoder gives {features.shape[-1]}-wide ones: load the CLIP vision model "
            "the adapter was trained with (ViT-H/14 for most SD 1.5 and SDXL adapters, "
            "ViT-bigG/14 for ip-adapter_sdxl)"
        )
    positive = project(adapter, features)
    if adapter.variant == "plus":
        if encoder is None:
            raise ValueError(f"{adapter.source.name} is a plus adapter: it needs the encoder")
        size = encoder.image_size
        blank = encode_pixels(encoder, torch.zeros(1, 3, size, size))
        negative = project(adapter, _features(adapter, blank))
    else:
        negative = project(adapter, torch.zeros_like(features[:1]))
    pictures = positive.shape[0]
    positive = positive.reshape(1, -1, positive.shape[-1])
    # The same blank tokens once per picture: repeating keys and values leaves attention
    # unchanged, and positive and negative rows need the same length to share a UNet call.
    negative = negative.repeat(1, pictures, 1)
    return positive, negative


@dataclass(frozen=True)
class TokenRows:
    """What one adapter gives one UNet call: its tokens per row, its weight and, when it
    applies only to part of the picture, its mask per row over the call's latent cells."""

    tokens: torch.Tensor  # [rows, T, width]
    weight: float
    mask: torch.Tensor | None = None  # [rows, height, width] in 0..1


def layer_size(height: int, width: int, tokens: int) -> tuple[int, int]:
    """The (height, width) of a UNet level with ``tokens`` positions, for a UNet input of
    ``height`` × ``width`` cells: each level halves the sides, rounding up (stride-2
    convolutions with padding 1)."""
    size = (height, width)
    while size[0] * size[1] > tokens:
        size = (-(-size[0] // 2), -(-size[1] // 2))
    if size[0] * size[1] != tokens:
        raise ValueError(f"no UNet level of a {height}×{width} input has {tokens} positions")
    return size


@dataclass(frozen=True, eq=False)
class ImagePromptTokens(HoldsTensors):
    """The per-call UNet extra of one applied adapter: gives its processors, under ``key``,
    the positive tokens on positive rows and the negative ones elsewhere, within the
    start/end window of the schedule (fractions of the model's timesteps, as ComfyUI's
    start_at/end_at); outside it, or at weight 0, nothing."""

    key: str
    positive: torch.Tensor  # [1, T, width]
    negative: torch.Tensor  # [1, T, width]
    weight: float = 1.0
    start: float = 0.0
    end: float = 1.0
    #: Where the picture applies (MASK [B, H, W] or [H, W] in 0..1, any size; the
    #: batch cycles over the latents); None: everywhere.
    mask: torch.Tensor | None = None

    def cache_storages(self) -> dict[StorageKey, int]:
        held = [self.positive, self.negative] + ([self.mask] if self.mask is not None else [])
        return {
            (str(t.device), t.untyped_storage().data_ptr()): t.untyped_storage().nbytes()
            for t in held
        }

    def active_at(self, sigma: float, levels: Any) -> bool:
        from core.diffusion.controlnet.apply import percent_to_sigma

        high, low = percent_to_sigma(self.start, levels), percent_to_sigma(self.end, levels)
        return self.weight != 0.0 and low <= sigma <= high

    def rows(
        self,
        sides: Sequence[int],
        batch: int,
        device: torch.device,
        dtype: torch.dtype,
        latent_size: tuple[int, int] | None = None,
        box: tuple[int, int, int, int] | None = None,
    ) -> dict[str, Any]:
        """The ``cross_attention_kwargs`` for entries on ``sides`` (1 positive, 0 negative) of
        ``batch`` latents each; a mask is resized to ``latent_size`` (height, width in cells)
        and cut to ``box`` (top, left, height, width; default the whole latent)."""
        chosen = [self.positive if side else self.negative for side in sides]
        tokens = torch.cat(chosen).repeat_interleave(batch, dim=0).to(device, dtype)
        mask = None
        if self.mask is not None:
            if latent_size is None:
                raise ValueError("a masked image prompt needs the latent's size")
            top, left, height, width = box or (0, 0, *latent_size)
            pictures = self.mask.float().reshape(-1, 1, *self.mask.shape[-2:])
            cells = F.interpolate(pictures, size=latent_size, mode="bilinear")[:, 0]
            cells = cells[:, top : top + height, left : left + width]
            per_latent = cells[torch.arange(batch) % cells.shape[0]]
            mask = per_latent.repeat(len(sides), 1, 1).to(device, dtype)
        return {TOKENS_ARGUMENT: {self.key: TokenRows(tokens, self.weight, mask)}}

    def __call__(self, call: UnetCall) -> dict[str, Any]:
        if not self.active_at(call.sigma, call.levels):
            return {}
        sides = call.sides or (1,) * len(call.entries)
        kwargs = self.rows(
            sides, call.batch, call.x.device, call.x.dtype, call.latent_size, call.box
        )
        return {"cross_attention_kwargs": kwargs}


# --- the UNet patch ------------------------------------------------------------------------


class ImagePromptAttention(nn.Module):
    """A cross-attention processor that adds the image attention of every adapter whose
    tokens the call brings to what the layer's own processor (``base``) computes.

    Adding ``W_out·(weight·a_img) / rescale`` after the base processor equals adding
    ``weight·a_img`` before its output projection, as the paper does, because the
    projection is linear; the query is computed again from the layer's input.
    """

    def __init__(self, base: Any, adapters: Mapping[str, ImageKeyValue]) -> None:
        super().__init__()
        self.base = base
        self.adapters = nn.ModuleDict(dict(adapters))

    def with_adapter(self, key: str, layer: ImageKeyValue) -> ImagePromptAttention:
        return ImagePromptAttention(self.base, {**self.adapters, key: layer})

    def __call__(  # diffusers passes only the arguments this signature names
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        ip_hidden_states: Mapping[str, TokenRows] | None = None,
    ) -> torch.Tensor:
        out = self.base(
            attn,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
        )
        given = [(k, rows) for k, rows in (ip_hidden_states or {}).items() if k in self.adapters]
        if not given:
            return out
        if hidden_states.ndim != 3:
            raise ValueError("IP-Adapter attention expects [batch, tokens, channels] features")
        batch = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        if getattr(attn, "norm_q", None) is not None:
            query = attn.norm_q(query)
        head_width = query.shape[-1] // attn.heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(batch, -1, attn.heads, head_width).transpose(1, 2)

        query = heads(query)
        total = torch.zeros_like(query)
        for key, rows in given:
            layer = self.adapters[key]
            tokens = rows.tokens.to(query.dtype)
            image = F.scaled_dot_product_attention(
                query, heads(layer.to_k_ip(tokens)), heads(layer.to_v_ip(tokens))
            )
            if rows.mask is not None:
                height, width = layer_size(*rows.mask.shape[-2:], query.shape[2])
                mask = F.interpolate(rows.mask[:, None], size=(height, width), mode="bilinear")
                image = image * mask.reshape(batch, 1, -1, 1).to(image.dtype)
            total = total + rows.weight * image
        total = total.transpose(1, 2).reshape(batch, -1, attn.heads * head_width)
        added = F.linear(total, attn.to_out[0].weight) / attn.rescale_output_factor
        return out + added.to(out.dtype)


def cross_attention_layers(unet: Any) -> list[tuple[int, str]]:
    """(processor number, attention module name) of every cross-attention layer, numbered
    as IP-Adapter files number them (diffusers' ``attn_processors`` order)."""
    names = list(unet.attn_processors.keys())
    return [
        (number, name.removesuffix(".processor"))
        for number, name in enumerate(names)
        if name.endswith("attn2.processor")
    ]


def fit_problem(model: DiffusionModel, adapter: IpAdapterWeights) -> str | None:
    """Why ``adapter`` cannot patch ``model``'s UNet, or None."""
    width = int(model.unet.config.cross_attention_dim)
    if adapter.cross_attention_dim != width:
        model_family = FAMILY_BY_WIDTH.get(width, f"a {width}-wide")
        return (
            f"{adapter.source.name} is an IP-Adapter for {adapter.family} "
            f"({adapter.cross_attention_dim}-wide tokens), but the model is {model_family} "
            f"({width}-wide): choose an adapter made for this model's family"
        )
    layers = cross_attention_layers(model.unet)
    numbers = [number for number, _ in layers]
    if sorted(adapter.layers) != numbers:
        return (
            f"{adapter.source.name} has key/value projections for {len(adapter.layers)} "
            f"cross-attention layers, but the model has {len(layers)}: it was made for "
            "another UNet layout"
        )
    for number, name in layers:
        inner = int(model.unet.get_submodule(name).to_k.out_features)
        if adapter.layers[number].to_k_ip.out_features != inner:
            return (
                f"{adapter.source.name}: layer {number} projects to "
                f"{adapter.layers[number].to_k_ip.out_features} channels where the model's "
                f"{name} has {inner}"
            )
    return None


def apply_ip_adapter(
    model: DiffusionModel,
    adapter: IpAdapterWeights,
    positive: torch.Tensor,
    negative: torch.Tensor,
    weight: float = 1.0,
    start: float = 0.0,
    end: float = 1.0,
    mask: torch.Tensor | None = None,
) -> DiffusionModel:
    """``model`` with ``adapter`` attending to the image tokens (``image_tokens``) between
    ``start`` and ``end`` of the schedule, where ``mask`` (MASK, 1 = the picture applies)
    allows; ``model`` itself is left as it was."""
    problem = fit_problem(model, adapter)
    if problem is not None:
        raise ValueError(problem)
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(
            f"start_at ({start:g}) and end_at ({end:g}) must satisfy 0 ≤ start ≤ end ≤ 1"
        )
    if mask is not None and mask.ndim not in (2, 3):
        shape = list(mask.shape)
        raise ValueError(
            f"the attention mask must be [height, width] or [batch, height, width], not {shape}"
        )
    unet = copy_with_tensors(model.unet, {})
    dtype = module_dtype(unet)
    layers = cross_attention_layers(unet)
    first = unet.get_submodule(layers[0][1]).processor
    count = len(first.adapters) if isinstance(first, ImagePromptAttention) else 0
    key = f"ip{count}"
    for number, name in layers:
        attention = unet.get_submodule(name)
        layer = adapter.layers[number]
        if layer.to_k_ip.weight.dtype != dtype:
            layer = ImageKeyValue(layer.to_k_ip.weight.to(dtype), layer.to_v_ip.weight.to(dtype))
        current = attention.processor
        if isinstance(current, ImagePromptAttention):
            processor = current.with_adapter(key, layer)
        else:
            processor = ImagePromptAttention(current, {key: layer})
        attention.set_processor(processor)
    extra = ImagePromptTokens(
        key, positive, negative, float(weight), float(start), float(end), mask
    )
    return replace(model, unet=unet, unet_extras=(*model.unet_extras, extra))
