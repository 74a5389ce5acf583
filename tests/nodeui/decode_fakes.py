"""A fake VAE Decode (the fake sampler's number as a picture bigger than its step previews)
and an image output node, added to the shell's fake node types."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.graph import types as t
from core.graph.spec import NodeRegistry, NodeSpec, Output, SocketInput
from tests.nodeui import shell_fakes

#: The fake decode's picture size (the fake sampler's step pictures are 8×6).
DECODED_SIZE = (48, 32)


def _decode(ctx: Any, samples: int) -> tuple[np.ndarray]:
    width, height = DECODED_SIZE
    picture = np.zeros((1, height, width, 3), np.float32)
    picture[..., 0] = 1.0  # red: unlike any step picture
    return (picture,)


def _preview(ctx: Any, images: np.ndarray) -> tuple[()]:
    ctx.record("images", images)
    return ()


SPECS = (
    NodeSpec(
        "VAEDecode",
        "VAE Decode",
        "latent",
        _decode,
        inputs=(SocketInput("samples", t.INT),),
        outputs=(Output("IMAGE", t.IMAGE),),
    ),
    NodeSpec(
        "PreviewImage",
        "Preview Image",
        "image",
        _preview,
        inputs=(SocketInput("images", t.IMAGE),),
        output_node=True,
    ),
)


def registry() -> NodeRegistry:
    return NodeRegistry([*shell_fakes.SPECS, *SPECS])
