"""SwinIR (Liang et al., "SwinIR: Image Restoration Using Swin Transformer", ICCVW 2021).

The picture goes through a 3×3 convolution (shallow features), then residual Swin Transformer
blocks (RSTB: ``depths[i]`` Swin layers of window attention, every other one on windows
shifted by half a window, then a convolution, with a skip over the group), a LayerNorm and one
more convolution with a skip from the shallow features (deep features), then the upsampler of
the variant:

- ``pixelshuffle`` (classical SR): a convolution to ``features`` channels, a LeakyReLU, one
  convolution + pixel shuffle ×2 per octave (or one ×3) and the last convolution;
- ``pixelshuffledirect`` (lightweight SR): one convolution + pixel shuffle to the output;
- ``nearest+conv`` (real-world SR): nearest-neighbour ×2 and a convolution, once or twice;
- ``""`` (denoising, JPEG artefacts): the last convolution adds a residual at ×1.

Window attention (the paper's eq. 5): Attention(Q, K, V) = SoftMax(QKᵀ/√d + B)V inside each
``window × window`` window, B read from a learnt table of (2·window − 1)² entries per head by
each pair's relative position. Pixels are normalised by the DIV2K mean before the network and
it is added back after. Tensor names follow the authors' release (``conv_first``,
``layers.i.residual_group.blocks.j.attn.relative_position_bias_table``, ``conv_after_body``,
``upsample.0``, ``conv_last``…), which every published SwinIR file uses.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: The DIV2K training set's mean colour, which SwinIR subtracts from RGB input.
RGB_MEAN = (0.4488, 0.4371, 0.4040)
UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
#: Buffers the authors' files carry that are recomputed for each picture's size here.
DERIVED_BUFFERS = (".attn_mask", ".relative_position_index")
#: The value masked attention scores get (the authors' choice, not −∞, so rows stay finite).
_MASKED = -100.0


@dataclass(frozen=True)
class SwinIRShape:
    """A SwinIR's hyperparameters, as read from its weights (``read_shape``)."""

    in_channels: int
    out_channels: int
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    mlp_ratio: float
    upsampler: str
    scale: int
    features: int = 64
    resi_connection: str = "1conv"
    patch_norm: bool = True
    qkv_bias: bool = True


# --- windows --------------------------------------------------------------------------------


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``x`` [B, H, W, C] cut into non-overlapping windows [B·(H/w)·(W/w), w, w, C], row by
    row within each picture."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """The inverse of ``window_partition``: windows [B·n, w, w, C] back to [B, H, W, C]."""
    c = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


def relative_position_index(window: int) -> torch.Tensor:
    """For each pair (i, j) of the w² positions of a window, the row of the bias table for
    their offset: (Δy + w − 1)·(2w − 1) + (Δx + w − 1), Δ = position i − position j."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # [2, w²]
    delta = coords[:, :, None] - coords[:, None, :] + (window - 1)  # [2, w², w²]
    return delta[0] * (2 * window - 1) + delta[1]


@functools.lru_cache(maxsize=8)
def shifted_window_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """The additive mask [windows, w², w²] for attention on windows shifted by ``shift``:
    after the cyclic shift a window can hold pixels from up to four regions of the picture
    that were not neighbours; pairs from different regions get ``_MASKED``."""
    regions = torch.zeros(1, height, width, 1)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for rows in bands:
        for cols in bands:
            regions[:, rows, cols, :] = label
            label += 1
    labels = window_partition(regions, window).view(-1, window * window)
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, _MASKED)


# --- layers ---------------------------------------------------------------------------------


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learnt relative position bias."""

    def __init__(self, dim: int, window: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.window, self.heads = window, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window), False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        windows, n, c = x.shape
        qkv = self.qkv(x).view(windows, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [windows, heads, n, c / heads]
        table = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = table.view(n, n, self.heads).permute(2, 0, 1).to(q.dtype)  # [heads, n, n]
        if mask is not None:
            # Windows run picture by picture, ``count`` to a picture, each with its own mask.
            count = mask.shape[0]
            bias = bias[None] + mask.to(q.dtype)[:, None]  # [count, heads, n, n]
            q, k, v = (t.view(-1, count, self.heads, n, t.shape[-1]) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        out = out.reshape(windows, self.heads, n, -1)
        return self.proj(out.transpose(1, 2).reshape(windows, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    """One Swin layer: window attention (on shifted windows when ``shift`` > 0) and an MLP,
    each after a LayerNorm and with a skip connection."""

    def __init__(self, shape: SwinIRShape, heads: int, shift: int) -> None:
        super().__init__()
        dim = shape.embed_dim
        self.window, self.shift = shape.window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, shape.window_size, heads, shape.qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * shape.mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        b, _, c = x.shape
        w = self.window
        y = self.norm1(x).view(b, height, width, c)
        mask = None
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = shifted_window_mask(height, width, w, self.shift).to(x.device)
        windows = self.attn(window_partition(y, w).view(-1, w * w, c), mask)
        y = window_reverse(windows.view(-1, w, w, c), w, height, width)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, height * width, c)
        return x + self.mlp(self.norm2(x))


class BasicLayer(nn.Module):
    def __init__(self, shape: SwinIRShape, depth: int, heads: int) -> None:
        super().__init__()
        half = shape.window_size // 2
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(shape, heads, 0 if j % 2 == 0 else half) for j in range(depth)
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, size)
        return x


def _conv_block(dim: int, kind: str) -> nn.Module:
    """The convolution after a group of Swin layers (and after the body): one 3×3, or, to
    save parameters, 3×3 to dim/4, 1×1, 3×3 back with LeakyReLUs ("3conv")."""
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, padding=1)
    quarter = dim // 4
    return nn.Sequential(
        nn.Conv2d(dim, quarter, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(quarter, quarter, 1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(quarter, dim, 3, padding=1),
    )


class RSTB(nn.Module):
    """Residual Swin Transformer block: Swin layers, a convolution, a skip over both."""

    def __init__(self, shape: SwinIRShape, depth: int, heads: int) -> None:
        super().__init__()
        self.residual_group = BasicLayer(shape, depth, heads)
        self.conv = _conv_block(shape.embed_dim, shape.resi_connection)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = _to_image(self.residual_group(x, size), size)
        return _to_tokens(self.conv(y)) + x


class PatchEmbed(nn.Module):
    """Feature map to tokens (patches of one pixel), with the optional LayerNorm."""

    def __init__(self, dim: int, norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _to_tokens(x)
        return self.norm(x) if self.norm is not None else x


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # [B, C, H, W] → [B, H·W, C]


def _to_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size)


class SwinIR(nn.Module):
    """SwinIR with the authors' parameter names; input and output are pictures in 0..1."""

    def __init__(self, shape: SwinIRShape) -> None:
        super().__init__()
        self.shape = shape
        dim, out = shape.embed_dim, shape.out_channels
        mean = RGB_MEAN if shape.in_channels == 3 else (0.0,) * shape.in_channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(shape.in_channels, dim, 3, padding=1)
        self.patch_embed = PatchEmbed(dim, shape.patch_norm)
        self.layers = nn.ModuleList(
            RSTB(shape, depth, heads)
            for depth, heads in zip(shape.depths, shape.num_heads, strict=True)
        )
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = _conv_block(dim, shape.resi_connection)
        features, scale = shape.features, shape.scale
        if shape.upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(dim, features, 3, padding=1), nn.LeakyReLU(inplace=True)
            )
            steps: list[nn.Module] = []
            factors = [3] if scale == 3 else [2] * int(math.log2(scale))
            for factor in factors:
                steps += [nn.Conv2d(features, factor**2 * features, 3, padding=1)]
                steps += [nn.PixelShuffle(factor)]
            self.upsample = nn.Sequential(*steps)
            self.conv_last = nn.Conv2d(features, out, 3, padding=1)
        elif shape.upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(
                nn.Conv2d(dim, scale**2 * out, 3, padding=1), nn.PixelShuffle(scale)
            )
        elif shape.upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(dim, features, 3, padding=1), nn.LeakyReLU(inplace=True)
            )
            self.conv_up1 = nn.Conv2d(features, features, 3, padding=1)
            if scale == 4:
                self.conv_up2 = nn.Conv2d(features, features, 3, padding=1)
            self.conv_hr = nn.Conv2d(features, features, 3, padding=1)
            self.conv_last = nn.Conv2d(features, out, 3, padding=1)
        else:
            self.conv_last = nn.Conv2d(dim, out, 3, padding=1)

    def _deep_features(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, size)
        return _to_image(self.norm(tokens), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2:]
        w = self.shape.window_size
        pad_h, pad_w = (-height) % w, (-width) % w
        if pad_h or pad_w:
            # Reflection, as the authors pad to whole windows; a side shorter than the pad
            # cannot reflect, so it repeats its edge instead.
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        mean = self.mean.to(x.dtype)
        x = x - mean
        upsampler, scale = self.shape.upsampler, self.shape.scale
        first = self.conv_first(x)
        body = self.conv_after_body(self._deep_features(first)) + first
        if upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(body)))
        elif upsampler == "pixelshuffledirect":
            x = self.upsample(body)
        elif upsampler == "nearest+conv":
            y = self.conv_before_upsample(body)
            y = F.leaky_relu(self.conv_up1(F.interpolate(y, scale_factor=2, mode="nearest")), 0.2)
            if scale == 4:
                y = F.interpolate(y, scale_factor=2, mode="nearest")
                y = F.leaky_relu(self.conv_up2(y), 0.2)
            x = self.conv_last(F.leaky_relu(self.conv_hr(y), 0.2))
        else:
            x = x + self.conv_last(body)
        return (x + mean)[:, :, : height * scale, : width * scale]


# --- reading the shape from weights ----------------------------------------------------------


def is_swinir(state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether the keys are SwinIR's: a first convolution and Swin layers inside RSTBs, and
    none of the layers its successors added (HAT's overlapping attention, Swin2SR's
    continuous position bias)."""
    return (
        "conv_first.weight" in state_dict
        and any(".residual_group.blocks." in key for key in state_dict)
        and "relative_position_index_SA" not in state_dict
        and not any(".attn.cpb_mlp." in key for key in state_dict)
    )


def _indices(state_dict: dict[str, torch.Tensor], pattern: str) -> list[int]:
    found = {int(m.group(1)) for key in state_dict if (m := re.match(pattern, key))}
    return sorted(found)


def read_shape(state_dict: dict[str, torch.Tensor]) -> SwinIRShape:
    """Every hyperparameter from tensor names and shapes; raises ``ValueError`` when the
    weights do not fit together or are a variant not run here."""
    try:
        return _read_shape(state_dict)
    except KeyError as exc:
        raise ValueError(f"it has no {exc.args[0]}") from None


def _read_shape(state_dict: dict[str, torch.Tensor]) -> SwinIRShape:
    if any(key.startswith("absolute_pos_embed") for key in state_dict):
        raise ValueError(
            "it uses an absolute position embedding, which fixes the picture size; "
            "only SwinIR models without one (all published ones) run"
        )
    first = state_dict["conv_first.weight"]
    embed_dim, in_channels = int(first.shape[0]), int(first.shape[1])
    layers = _indices(state_dict, r"layers\.(\d+)\.residual_group\.")
    if layers != list(range(len(layers))):
        raise ValueError(f"its Swin groups are numbered {layers}, not 0 to {len(layers) - 1}")
    depths, heads = [], []
    for i in layers:
        group = f"layers.{i}.residual_group.blocks."
        blocks = _indices(state_dict, re.escape(group) + r"(\d+)\.")
        depths.append(len(blocks))
        heads.append(int(state_dict[f"{group}0.attn.relative_position_bias_table"].shape[1]))
    first_block = "layers.0.residual_group.blocks.0."
    table = int(state_dict[first_block + "attn.relative_position_bias_table"].shape[0])
    side = math.isqrt(table)
    if side * side != table or side % 2 == 0:
        raise ValueError(f"its position bias table has {table} rows, no (2·window − 1)²")
    window = (side + 1) // 2
    hidden = int(state_dict[first_block + "mlp.fc1.weight"].shape[0])
    resi = "3conv" if "conv_after_body.0.weight" in state_dict else "1conv"
    features = 64
    if "conv_up1.weight" in state_dict:
        upsampler = "nearest+conv"
        scale = 4 if "conv_up2.weight" in state_dict else 2
        features = int(state_dict["conv_up1.weight"].shape[0])
        out_channels = int(state_dict["conv_last.weight"].shape[0])
    elif "conv_before_upsample.0.weight" in state_dict:
        upsampler = "pixelshuffle"
        features = int(state_dict["conv_before_upsample.0.weight"].shape[0])
        convs = _indices(state_dict, r"upsample\.(\d+)\.weight")
        grow = int(state_dict["upsample.0.weight"].shape[0]) // features if convs else 0
        if grow == 9 and len(convs) == 1:
            scale = 3
        elif grow == 4:
            scale = 2 ** len(convs)
        else:
            raise ValueError(f"its upsampler widens {features} features {grow}×, not 4× or 9×")
        out_channels = int(state_dict["conv_last.weight"].shape[0])
    elif "upsample.0.weight" in state_dict:
        upsampler = "pixelshuffledirect"
        outputs = int(state_dict["upsample.0.weight"].shape[0])
        out_channels = in_channels
        scale = math.isqrt(outputs // out_channels)
        if scale < 1 or scale * scale * out_channels != outputs:
            raise ValueError(f"its upsampler has {outputs} outputs, no pixel shuffle of RGB")
    else:
        upsampler, scale = "", 1
        out_channels = int(state_dict["conv_last.weight"].shape[0])
    return SwinIRShape(
        in_channels=in_channels,
        out_channels=out_channels,
        embed_dim=embed_dim,
        depths=tuple(depths),
        num_heads=tuple(heads),
        window_size=window,
        mlp_ratio=hidden / embed_dim,
        upsampler=upsampler,
        scale=scale,
        features=features,
        resi_connection=resi,
        patch_norm="patch_embed.norm.weight" in state_dict,
        qkv_bias=first_block + "attn.qkv.bias" in state_dict,
    )


def without_derived_buffers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights without the masks and position indices the authors' files store for their
    training size: they are recomputed here for every picture."""
    return {k: v for k, v in state_dict.items() if not k.endswith(DERIVED_BUFFERS)}
