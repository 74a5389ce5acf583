"""Tiny random upscale models in the key layouts of the files people download.

``rrdbnet_weights`` writes BasicSR's names (Real-ESRGAN's releases); ``to_original_layout``
renames them as the original ESRGAN code stores them (4x-UltraSharp and most community
models); ``srvgg_weights`` is Real-ESRGAN's compact network. Weights are small random numbers
so that deep stacks stay in range. ``swinir_weights`` writes SwinIR's tensors as the authors'
released files hold them.
"""

from __future__ import annotations

import math

import torch


def _conv(
    weights: dict[str, torch.Tensor], name: str, out: int, into: int, gen: torch.Generator
) -> None:
    weights[f"{name}.weight"] = torch.randn(out, into, 3, 3, generator=gen) * 0.05
    weights[f"{name}.bias"] = torch.randn(out, generator=gen) * 0.01


def rrdbnet_weights(
    *,
    upsamples: int = 2,
    unshuffle: int = 1,
    features: int = 8,
    growth: int = 4,
    blocks: int = 1,
    channels: int = 3,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """An RRDBNet in BasicSR's names: ×4 is 2 upsamples; Real-ESRGAN's ×2 and ×1 are 2
    upsamples after a pixel-unshuffle by 2 or 4; ×8 is 3 upsamples."""
    gen = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    _conv(weights, "conv_first", features, channels * unshuffle**2, gen)
    for block in range(blocks):
        for rdb in (1, 2, 3):
            for j in range(1, 6):
                out = features if j == 5 else growth
                _conv(
                    weights, f"body.{block}.rdb{rdb}.conv{j}", out, features + (j - 1) * growth, gen
                )
    _conv(weights, "conv_body", features, features, gen)
    for n in range(1, upsamples + 1):
        _conv(weights, f"conv_up{n}", features, features, gen)
    _conv(weights, "conv_hr", features, features, gen)
    _conv(weights, "conv_last", channels, features, gen)
    return weights


def to_original_layout(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors under the original ESRGAN names: ``model.0``, ``model.1.sub.{i}.RDB{k}
    .conv{j}.0``, ``model.1.sub.{blocks}``, then per upsample (Upsample, conv, LeakyReLU) a
    conv at model.3, 6, 9…, then the HR conv and the last conv two indices apart."""
    blocks = len({key.split(".")[1] for key in weights if key.startswith("body.")})
    upsamples = len({key for key in weights if key.startswith("conv_up")}) // 2
    names = {"conv_first": "model.0", "conv_body": f"model.1.sub.{blocks}"}
    for n in range(1, upsamples + 1):
        names[f"conv_up{n}"] = f"model.{3 * n}"
    names["conv_hr"] = f"model.{3 * upsamples + 2}"
    names["conv_last"] = f"model.{3 * upsamples + 4}"
    renamed = {}
    for key, tensor in weights.items():
        module, kind = key.rsplit(".", 1)
        if module.startswith("body."):
            _, block, rdb, conv = module.split(".")
            renamed[f"model.1.sub.{block}.RDB{rdb[3:]}.{conv}.0.{kind}"] = tensor
        else:
            renamed[f"{names[module]}.{kind}"] = tensor
    return renamed


def srvgg_weights(
    *, scale: int = 4, features: int = 8, convolutions: int = 2, seed: int = 0
) -> dict[str, torch.Tensor]:
    """An SRVGGNetCompact: conv + PReLU, ``convolutions`` × (conv + PReLU), a last conv with
    3·scale² outputs, as ``body.{n}``."""
    gen = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    _conv(weights, "body.0", features, 3, gen)
    weights["body.1.weight"] = torch.full((features,), 0.25)
    for k in range(convolutions):
        _conv(weights, f"body.{2 + 2 * k}", features, features, gen)
        weights[f"body.{3 + 2 * k}.weight"] = torch.full((features,), 0.25)
    _conv(weights, f"body.{2 + 2 * convolutions}", 3 * scale**2, features, gen)
    return weights


def write_upscale_model_file(path, seed: int = 0) -> None:
    """A tiny Real-ESRGAN RRDBNet at ``path`` whose scale the name gives ("x2", "2x"…; ×4
    otherwise): ×1 and ×2 fold pixels in first, as Real-ESRGAN's do. A ``.pth`` keeps its
    weights under ``params_ema`` as Real-ESRGAN's releases do."""
    import re

    from safetensors.torch import save_file

    found = re.search(r"(?:x(\d)|(\d)x)", path.name.lower())
    scale = int(next(g for g in found.groups() if g)) if found else 4
    upsamples, unshuffle = {1: (2, 4), 2: (2, 2), 8: (3, 1)}.get(scale, (2, 1))
    weights = rrdbnet_weights(upsamples=upsamples, unshuffle=unshuffle, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(weights, path)
    else:
        torch.save({"params_ema": weights}, path)


def swinir_weights(
    *,
    embed_dim: int = 12,
    depths: tuple[int, ...] = (2, 2),
    heads: tuple[int, ...] = (2, 3),
    window: int = 4,
    mlp_ratio: float = 2.0,
    upsampler: str = "pixelshuffle",
    scale: int = 2,
    features: int = 8,
    resi: str = "1conv",
    channels: int = 3,
    wrapper: str = "params_ema",
    train_size: int = 8,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random SwinIR tensors under the names (and with the stored buffers) of the authors'
    released files, written out name by name rather than from LatentLoom's module."""
    gen = torch.Generator().manual_seed(seed)
    w: dict[str, torch.Tensor] = {}

    def conv(name: str, out: int, into: int, k: int = 3) -> None:
        w[f"{name}.weight"] = torch.randn(out, into, k, k, generator=gen) * 0.05
        w[f"{name}.bias"] = torch.randn(out, generator=gen) * 0.01

    def linear(name: str, out: int, into: int) -> None:
        w[f"{name}.weight"] = torch.randn(out, into, generator=gen) * 0.05
        w[f"{name}.bias"] = torch.randn(out, generator=gen) * 0.01

    def norm(name: str, dim: int) -> None:
        w[f"{name}.weight"] = 1 + torch.randn(dim, generator=gen) * 0.05
        w[f"{name}.bias"] = torch.randn(dim, generator=gen) * 0.01

    def body_conv(name: str, dim: int) -> None:
        if resi == "1conv":
            conv(name, dim, dim)
        else:
            conv(f"{name}.0", dim // 4, dim)
            conv(f"{name}.2", dim // 4, dim // 4, k=1)
            conv(f"{name}.4", dim, dim // 4)

    conv("conv_first", embed_dim, channels)
    norm("patch_embed.norm", embed_dim)
    windows = (train_size // window) ** 2
    for i, (depth, head) in enumerate(zip(depths, heads, strict=True)):
        for j in range(depth):
            block = f"layers.{i}.residual_group.blocks.{j}"
            norm(f"{block}.norm1", embed_dim)
            table = torch.randn((2 * window - 1) ** 2, head, generator=gen) * 0.02
            w[f"{block}.attn.relative_position_bias_table"] = table
            w[f"{block}.attn.relative_position_index"] = torch.zeros(
                window**2, window**2, dtype=torch.long
            )
            linear(f"{block}.attn.qkv", 3 * embed_dim, embed_dim)
            linear(f"{block}.attn.proj", embed_dim, embed_dim)
            norm(f"{block}.norm2", embed_dim)
            linear(f"{block}.mlp.fc1", int(embed_dim * mlp_ratio), embed_dim)
            linear(f"{block}.mlp.fc2", embed_dim, int(embed_dim * mlp_ratio))
            if j % 2:
                w[f"{block}.attn_mask"] = torch.zeros(windows, window**2, window**2)
        body_conv(f"layers.{i}.conv", embed_dim)
    norm("norm", embed_dim)
    body_conv("conv_after_body", embed_dim)
    if upsampler == "pixelshuffle":
        conv("conv_before_upsample.0", features, embed_dim)
        if scale == 3:
            conv("upsample.0", 9 * features, features)
        else:
            for n in range(int(math.log2(scale))):
                conv(f"upsample.{2 * n}", 4 * features, features)
        conv("conv_last", channels, features)
    elif upsampler == "pixelshuffledirect":
        conv("upsample.0", scale * scale * channels, embed_dim)
    elif upsampler == "nearest+conv":
        conv("conv_before_upsample.0", features, embed_dim)
        conv("conv_up1", features, features)
        if scale == 4:
            conv("conv_up2", features, features)
        conv("conv_hr", features, features)
        conv("conv_last", channels, features)
    else:
        conv("conv_last", channels, embed_dim)
    return {f"{wrapper}.{k}": v for k, v in w.items()} if wrapper else w
