"""The node registry a cluster worker builds where it runs.

A Ray worker may sit on another machine: it searches the model roots the sweep was given
(shared storage mounted at the same path), then its own ``$LATENTLOOM_MODEL_ROOTS`` (where a
machine mounts the models elsewhere), ``./models`` and the shipped demo model, with the node
packs that machine has installed and not disabled. ``functools.partial(worker_registry,
roots)`` pickles by reference, so it travels to workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.graph.spec import NodeRegistry


def worker_registry(roots: Sequence[str | Path] = ()) -> NodeRegistry:
    """Every node type, its loaders searching ``roots`` and then this machine's own roots."""
    from core.diffusion.model_paths import ModelPaths
    from nodes import build_registry, default_model_roots
    from nodes.packs import disabled_from_environment

    paths = ModelPaths.of(*default_model_roots(roots))
    return build_registry(paths, disabled_from_environment())
