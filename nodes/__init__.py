"""The node catalogue: thin, declarative specs over ``core.diffusion``.

Node modules import torch and ``core.diffusion`` inside node functions only, so building the
registry (for the editor, ``main.py nodes`` or validation) stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.graph.spec import NodeRegistry
from nodes import (
    compile_model,
    compositing,
    conditioning,
    controlnet,
    custom_sampling,
    edit_models,
    feature_cache,
    gligen,
    image_effects,
    image_ops,
    image_prompts,
    images,
    ip_adapter,
    latent_ops,
    latents,
    masks,
    merging,
    models,
    packs,
    previews,
    primitives,
    sampling,
    sigmas,
    text_encoders,
    upscale_models,
)

#: Where the model trained by this project is shipped (``checkpoints/latentloom-shapes``).
SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "resources" / "models"
#: Extra model roots, separated like PATH (``os.pathsep``).
ROOTS_ENVIRONMENT = "LATENTLOOM_MODEL_ROOTS"


def default_model_roots(extra: Sequence[str | Path] = ()) -> list[Path]:
    """Model roots in search order: ``extra`` (settings, ``--models``), then
    ``$LATENTLOOM_MODEL_ROOTS``, then ``./models``, then the shipped demo model."""
    extra_roots = [Path(p).expanduser().absolute() for p in extra]
    return [*extra_roots, *(root for root, _ in builtin_model_roots())]


def builtin_model_roots() -> list[tuple[Path, str]]:
    """The roots searched after the user's own folders, in order, each with where it comes
    from (the Settings dialog lists them, since the user cannot remove them there)."""
    from_environment = [p for p in os.environ.get(ROOTS_ENVIRONMENT, "").split(os.pathsep) if p]
    sources = [
        *((root, f"${ROOTS_ENVIRONMENT}") for root in from_environment),
        ("models", "the working folder's models"),
        (SHIPPED_MODELS, "the shipped demo model"),
    ]
    return [(Path(root).expanduser().absolute(), why) for root, why in sources]


def build_registry(
    model_paths: ModelPaths | None = None,
    disabled_packs: Iterable[str] = (),
    entry_points: Iterable[EntryPoint] | None = None,
) -> NodeRegistry:
    """A fresh registry holding every built-in node type, its loaders bound to ``model_paths``
    (default: ``default_model_roots()``), then the node types of every installed node pack
    not named in ``disabled_packs`` (``entry_points``: those of the installed distributions).

    A pack that fails to load is skipped; ``registry.packs`` reports every pack."""
    paths = model_paths or ModelPaths.of(*default_model_roots())
    providers = {kind.value: (lambda kind=kind: paths.list(kind)) for kind in ModelKind}
    registry = NodeRegistry(
        [
            *primitives.SPECS,
            *images.SPECS,
            *image_ops.SPECS,
            *image_effects.SPECS,
            *compositing.SPECS,
            *masks.SPECS,
            *models.specs(paths),
            *text_encoders.specs(paths),
            *merging.SPECS,
            *conditioning.specs(paths),
            *edit_models.SPECS,
            *gligen.specs(paths),
            *controlnet.specs(paths),
            *latents.SPECS,
            *latent_ops.SPECS,
            *sampling.SPECS,
            *feature_cache.SPECS,
            *compile_model.SPECS,
            *custom_sampling.SPECS,
            *sigmas.SPECS,
            *previews.SPECS,
            *upscale_models.specs(paths),
            *image_prompts.specs(paths),
            *ip_adapter.specs(paths),
        ],
        choice_providers=providers,
    )
    return packs.add_packs(registry, disabled_packs, entry_points)


__all__ = ["build_registry", "default_model_roots"]
