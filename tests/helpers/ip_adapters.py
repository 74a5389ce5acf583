"""Tiny random IP-Adapters in the key layouts of the published files.

``ip_adapter_tensors`` builds, for a given UNet, the tensors of a plain adapter
(``image_proj.proj`` + ``image_proj.norm``) or of a plus adapter (a perceiver resampler:
``image_proj.latents``, ``proj_in``, ``proj_out``, ``norm_out`` and ``layers.<i>.0.*`` /
``layers.<i>.1.*``), and ``ip_adapter.<n>.to_k_ip.weight`` / ``to_v_ip.weight`` for every
cross-attention processor ``n`` of the UNet, numbered as the files number them.
``write_ip_adapter`` stores them as a flat safetensors file or as the original nested
``{"image_proj": …, "ip_adapter": …}`` ``.bin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import save_file


def _random(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator) * 0.2


def ip_adapter_tensors(
    unet: Any,
    variant: Literal["plain", "plus"],
    clip_dim: int,
    *,
    tokens: int = 4,
    seed: int = 0,
    depth: int = 4,
    resampler_width: int = 48,
    heads: int = 2,
) -> dict[str, torch.Tensor]:
    """Flat tensors of a random adapter for ``unet``: ``clip_dim`` is the image embedding's
    width (plain) or the encoder's hidden width (plus)."""
    g = torch.Generator().manual_seed(seed)
    width = int(unet.config.cross_attention_dim)
    tensors: dict[str, torch.Tensor] = {}
    p = "image_proj."
    if variant == "plain":
        tensors[p + "proj.weight"] = _random(g, tokens * width, clip_dim)
        tensors[p + "proj.bias"] = _random(g, tokens * width)
        tensors[p + "norm.weight"] = 1 + _random(g, width)
        tensors[p + "norm.bias"] = _random(g, width)
    else:
        hidden, inner = resampler_width, heads * 64
        tensors[p + "latents"] = _random(g, 1, tokens, hidden)
        tensors[p + "proj_in.weight"] = _random(g, hidden, clip_dim)
        tensors[p + "proj_in.bias"] = _random(g, hidden)
        tensors[p + "proj_out.weight"] = _random(g, width, hidden)
        tensors[p + "proj_out.bias"] = _random(g, width)
        tensors[p + "norm_out.weight"] = 1 + _random(g, width)
        tensors[p + "norm_out.bias"] = _random(g, width)
        for i in range(depth):
            layer = f"{p}layers.{i}."
            for norm in ("0.norm1", "0.norm2", "1.0"):
                tensors[f"{layer}{norm}.weight"] = 1 + _random(g, hidden)
                tensors[f"{layer}{norm}.bias"] = _random(g, hidden)
            tensors[layer + "0.to_q.weight"] = _random(g, inner, hidden)
            tensors[layer + "0.to_kv.weight"] = _random(g, 2 * inner, hidden)
            tensors[layer + "0.to_out.weight"] = _random(g, hidden, inner)
            tensors[layer + "1.1.weight"] = _random(g, 4 * hidden, hidden)
            tensors[layer + "1.3.weight"] = _random(g, hidden, 4 * hidden)
    for number, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            attention = unet.get_submodule(name.removesuffix(".processor"))
            inner_dim = int(attention.to_k.out_features)
            tensors[f"ip_adapter.{number}.to_k_ip.weight"] = _random(g, inner_dim, width)
            tensors[f"ip_adapter.{number}.to_v_ip.weight"] = _random(g, inner_dim, width)
    return tensors


def nested(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Flat names as the original ``.bin`` nests them."""
    out: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, tensor in tensors.items():
        head, _, rest = key.partition(".")
        out[head][rest] = tensor
    return out


def write_ip_adapter(tensors: dict[str, torch.Tensor], path: Path) -> Path:
    """``.safetensors``: flat names; any other suffix: the nested ``torch.save`` layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in tensors.items()}, path)
    else:
        torch.save(nested(tensors), path)
    return path
