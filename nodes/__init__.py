"""The node catalogue: thin, declarative specs over ``core.diffusion``.

Node modules import torch and ``core.diffusion`` inside node functions only, so building the
registry (for the editor, ``main.py nodes`` or validation) stays fast.
"""

from __future__ import annotations

from core.graph.spec import NodeRegistry
from nodes import images, primitives


def build_registry() -> NodeRegistry:
    """A fresh registry holding every built-in node type."""
    return NodeRegistry([*primitives.SPECS, *images.SPECS])


__all__ = ["build_registry"]
