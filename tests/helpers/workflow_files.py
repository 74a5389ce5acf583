"""Tiny models and pictures under the names a real workflow asks for, and a way to make such a
workflow cheap to run without changing its graph.

``tiny_f8_pipeline`` is ``make_tiny_pipeline`` with a VAE that downsamples by 8 as SD's does, so a
workflow's pixel sizes (latent sizes, areas, upscale targets) mean what they mean with a real
model. ``checkpoint_kind`` reads a checkpoint's family from its file name, falling back to the
workflow's model family. ``write_vae_file``, ``write_lora_file`` and ``write_embedding_file`` write
the other model files a workflow names, in the layouts published files use, and ``write_picture``
the pictures its image loaders name. ``shrink_work`` scales a graph's sizes and step counts down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from PIL import Image
from safetensors.torch import save_file

from core.diffusion.families import ModelFamily, PredictionType
from core.diffusion.keymap import vae_to_ldm
from core.graph.model import Graph, NodeId
from tests.helpers.tiny_models import (
    TinyPipeline,
    _randomise,
    make_tiny_pipeline,
    tiny_vae_config,
)

#: Channels of the f = 8 VAE's levels: three downsamplings, as in SD's VAE.
F8_VAE_CHANNELS = (32, 32, 64, 64)


@dataclasses.dataclass(frozen=True)
class CheckpointKind:
    """Which tiny model stands in for a checkpoint."""

    family: ModelFamily
    refiner: bool = False
    inpainting: bool = False
    prediction: PredictionType = PredictionType.EPSILON


def checkpoint_kind(name: str, family_tag: str) -> CheckpointKind:
    """The kind of model a checkpoint file name stands for: SDXL when it says 'xl' (its refiner
    when it says 'refiner'), SD 2.x when it says 'v2-' or '768' (768 models predict v), an
    inpainting model when it says 'inpaint'; otherwise ``family_tag`` ('sd1', 'sd2', 'sdxl')."""
    lower = name.lower()
    if "xl" in lower or "refiner" in lower:
        family = ModelFamily.SDXL
    elif "v2-" in lower or "768" in lower:
        family = ModelFamily.SD2
    else:
        family = {"sd2": ModelFamily.SD2, "sdxl": ModelFamily.SDXL}.get(family_tag, ModelFamily.SD1)
    prediction = PredictionType.V_PREDICTION if "768" in lower else PredictionType.EPSILON
    return CheckpointKind(
        family,
        refiner=family is ModelFamily.SDXL and "refiner" in lower,
        inpainting="inpaint" in lower,
        prediction=prediction,
    )


def tiny_f8_pipeline(kind: CheckpointKind, seed: int = 0) -> TinyPipeline:
    """A tiny pipeline of ``kind`` whose VAE turns an 8×8 latent into a 64×64 picture."""
    pipeline = make_tiny_pipeline(
        kind.family,
        inpainting=kind.inpainting,
        prediction=kind.prediction,
        seed=seed,
        refiner=kind.refiner,
    )
    config = tiny_vae_config(kind.family)
    levels = len(F8_VAE_CHANNELS)
    config.update(
        block_out_channels=list(F8_VAE_CHANNELS),
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
    )
    vae = AutoencoderKL.from_config(config)
    _randomise(vae, torch.Generator().manual_seed(seed + 1000))
    return dataclasses.replace(pipeline, vae=vae.eval())


def _save(tensors: dict[str, torch.Tensor], path: Path) -> Path:
    """``.safetensors`` as is, anything else as a pickled ``state_dict`` (as ``.ckpt`` files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.contiguous() for key, value in tensors.items()}
    if path.suffix == ".safetensors":
        save_file(tensors, path)
    else:
        torch.save({"state_dict": tensors}, path)
    return path


def write_vae_file(pipeline: TinyPipeline, path: Path) -> Path:
    """The pipeline's VAE alone, in the LDM layout of files such as vae-ft-mse-840000."""
    return _save(vae_to_ldm(pipeline.vae.state_dict(), pipeline.vae.config), path)


#: UNet layers a test LoRA changes (the first cross-attention's key and value projections).
LORA_UNET_LAYERS = (
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v",
)
#: The text encoders' layer it changes (kohya names it from ``text_model``).
LORA_TEXT_LAYER = "encoder.layers.0.self_attn.q_proj"


def write_lora_file(pipeline: TinyPipeline, path: Path, seed: int = 0, rank: int = 2) -> Path:
    """A kohya-style LoRA (``lora_unet_…``, ``lora_te…``, rank ``rank``, alpha = rank) on two UNet
    cross-attention projections and each text encoder's first query projection."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}

    def add(stem: str, weight: torch.Tensor) -> None:
        out_features, in_features = weight.shape
        tensors[f"{stem}.lora_down.weight"] = torch.randn(rank, in_features, generator=generator)
        tensors[f"{stem}.lora_up.weight"] = 0.1 * torch.randn(
            out_features, rank, generator=generator
        )
        tensors[f"{stem}.alpha"] = torch.tensor(float(rank))

    unet = pipeline.unet
    # The refiner's first level has no attention; its second does, as do the others' second.
    for layer in LORA_UNET_LAYERS:
        add("lora_unet_" + layer.replace(".", "_"), unet.get_submodule(layer).weight)
    encoders = pipeline.text_encoders
    for number, encoder in enumerate(encoders, start=1):
        prefix = "lora_te" if len(encoders) == 1 else f"lora_te{number}"
        stem = f"{prefix}_text_model_{LORA_TEXT_LAYER.replace('.', '_')}"
        # transformers' CLIPTextModelWithProjection (SDXL's second encoder) keeps the layers
        # under text_model; CLIPTextModel has them at its top.
        layers = encoder if hasattr(encoder, "encoder") else encoder.text_model
        add(stem, layers.get_submodule(LORA_TEXT_LAYER).weight)
    return _save(tensors, path)


def write_embedding_file(
    pipeline: TinyPipeline, path: Path, vectors: int = 2, seed: int = 0
) -> Path:
    """A textual-inversion embedding of ``vectors`` tokens for the pipeline's text encoders:
    ``emb_params`` for one encoder, ``clip_l``/``clip_g`` for SDXL's two (``.safetensors``)."""
    generator = torch.Generator().manual_seed(seed)
    widths = [int(encoder.config.hidden_size) for encoder in pipeline.text_encoders]
    if len(widths) == 1:
        tensors = {"emb_params": torch.randn(vectors, widths[0], generator=generator)}
    else:
        tensors = {
            key: torch.randn(vectors, width, generator=generator)
            for key, width in zip(("clip_l", "clip_g"), widths, strict=True)
        }
    if path.suffix != ".safetensors":
        raise ValueError(f"{path.name}: only .safetensors embeddings are written here")
    return _save(tensors, path)


def write_picture(path: Path, size: tuple[int, int], alpha: bool) -> Path:
    """A small picture with a colour gradient; with ``alpha``, a transparent square in the
    middle (the area an inpainting workflow repaints)."""
    width, height = size
    picture = Image.new("RGBA", size)
    picture.putdata(
        [
            (255 * x // width, 255 * y // height, 128, 255)
            for y in range(height)
            for x in range(width)
        ]
    )
    if alpha:
        picture.paste((0, 0, 0, 0), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    (picture if alpha else picture.convert("RGB")).save(path)
    return path


#: Params that hold a size or position in pixels.
SIZE_PARAMS = ("width", "height", "x", "y")
#: Params that count sampler steps, and those that name a step of them.
STEPS, STEP_INDEXES = "steps", ("start_at_step", "end_at_step")


def _holder(graph: Graph, node_id: NodeId, name: str) -> tuple[NodeId, str] | None:
    """The node and param that hold the value of ``name`` on ``node_id``: the ``value`` of a
    primitive node feeding it by a link (through any reroutes), else the node's own param (a
    linked input may keep a stale param that the link overrides)."""
    link = graph.link_to(node_id, name)
    if link is None:
        return (node_id, name) if name in graph.node(node_id).params else None
    while link is not None:
        source = graph.node(link.src)
        if "value" in source.params:
            return source.id, "value"
        link = graph.link_to(source.id, "value")  # a reroute: follow it upstream
    return None


def _holders(graph: Graph, names: Iterable[str]) -> dict[tuple[NodeId, str], Any]:
    found = {}
    for node in graph:
        for name in names:
            holder = _holder(graph, node.id, name)
            if holder is not None:
                found[holder] = graph.node(holder[0]).params[holder[1]]
    return found


def _multiple_of_8(value: float, zero_allowed: bool) -> int:
    if zero_allowed and value == 0:
        return 0
    return max(8, 8 * round(value / 8))


def shrink_work(graph: Graph, longest_side: int = 64, max_steps: int = 3) -> float:
    """Scale every size and position in pixels (``width``, ``height``, ``x``, ``y``, whether a
    node's own or fed by a primitive node) so that the largest Empty Latent Image's longest side
    becomes ``longest_side``, each rounded to a multiple of 8; set batch sizes to 1 and step
    counts above ``max_steps`` to ``max_steps``, moving start/end steps in proportion. Nothing
    else changes: no node, link or other value. Returns the scale applied to sizes."""
    latents = [n for n in graph if n.type_id == "EmptyLatentImage"]
    sides = [
        graph.node(holder[0]).params[holder[1]]
        for node in latents
        for name in ("width", "height")
        if (holder := _holder(graph, node.id, name)) is not None
    ]
    scale = longest_side / max(sides) if sides else 1.0
    for (holder_id, param), value in _holders(graph, SIZE_PARAMS).items():
        if isinstance(value, int) and not isinstance(value, bool):
            resized = _multiple_of_8(value * scale, zero_allowed=param in ("x", "y") or value == 0)
            graph.set_param(holder_id, param, resized)
    for node in graph:
        if "batch_size" in node.params:
            graph.set_param(node.id, "batch_size", 1)
    new_values: dict[tuple[NodeId, str], int] = {}
    for node in graph:
        steps_holder = _holder(graph, node.id, STEPS)
        if steps_holder is None:
            continue
        old = int(graph.node(steps_holder[0]).params[steps_holder[1]])
        new = min(old, max_steps)
        new_values[steps_holder] = new
        for name in STEP_INDEXES:
            holder = _holder(graph, node.id, name)
            if holder is None:
                continue
            index = int(graph.node(holder[0]).params[holder[1]])
            if index < old:  # an index at or past the end ("to the end") stays as it is
                new_values[holder] = round(index * new / old)
    for (holder_id, param), value in new_values.items():
        graph.set_param(holder_id, param, value)
    return scale
