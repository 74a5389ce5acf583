"""Model merging and checkpoint saving, with ComfyUI's node names, inputs and conventions.

Each merge returns a new MODEL or CLIP that shares the tensors it does not change with its
first input; the inputs stay as they are for every other node that uses them
(``core.diffusion.merging``). Save Checkpoint writes the three parts as one LDM-layout
safetensors file into the output folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.outputs import output_name_problems, write_output

CATEGORY = "advanced/model_merging"
_RATIO = dict(min=0.0, max=1.0, step=0.01)
_MULTIPLIER = dict(min=-10.0, max=10.0, step=0.01)


def _merge_error(exc: Exception, field: str) -> Exception:
    from core.engine import NodeError

    return NodeError(str(exc), field=field)


def _progress(ctx: Any) -> Callable[[int, int], None] | None:
    return None if ctx is None else ctx.progress


def _merge_models(ctx: Any, model1: Any, model2: Any, coefficients: Any) -> tuple[Any]:
    from core.diffusion.merging import MergeError, merge_models

    try:
        return (merge_models(model1, model2, coefficients, _progress(ctx)),)
    except MergeError as exc:
        raise _merge_error(exc, "model2") from None


def _merge_clips(ctx: Any, clip1: Any, clip2: Any, coefficients: Any) -> tuple[Any]:
    from core.diffusion.merging import MergeError, merge_clips

    try:
        return (merge_clips(clip1, clip2, coefficients, _progress(ctx)),)
    except MergeError as exc:
        raise _merge_error(exc, "clip2") from None


def _model_merge_simple(ctx: Any, model1: Any, model2: Any, ratio: float) -> tuple[Any]:
    from core.diffusion.merging import weighted_sum

    return _merge_models(ctx, model1, model2, weighted_sum(ratio))


def _model_merge_blocks(
    ctx: Any, model1: Any, model2: Any, input: float, middle: float, out: float
) -> tuple[Any]:
    from core.diffusion.merging import unet_block_ratios

    ratios = {"input": input, "middle": middle, "out": out}
    return _merge_models(ctx, model1, model2, unet_block_ratios(ratios, model1.unet.config))


def _model_merge_by_block(ctx: Any, model1: Any, model2: Any, **ratios: float) -> tuple[Any]:
    from core.diffusion.merging import unet_block_ratios

    return _merge_models(ctx, model1, model2, unet_block_ratios(ratios, model1.unet.config))


def block_names(input_blocks: int, output_blocks: int) -> tuple[str, ...]:
    """ComfyUI's per-block ratio names for a UNet of ``input_blocks`` and ``output_blocks``
    LDM blocks: prefixes of LDM tensor names, each ending in a dot so that block 1 is not a
    prefix of block 10."""
    return (
        "time_embed.",
        "label_emb.",
        *(f"input_blocks.{i}." for i in range(input_blocks)),
        *(f"middle_block.{i}." for i in range(3)),
        *(f"output_blocks.{i}." for i in range(output_blocks)),
        "out.",
    )


def _block_merge_spec(type_id: str, family: str, blocks: int) -> NodeSpec:
    return NodeSpec(
        type_id,
        type_id,
        CATEGORY + "/model_specific",
        _model_merge_by_block,
        inputs=(
            *_two(t.MODEL, "model"),
            *(
                WidgetInput(name, t.FLOAT, 1.0, **_RATIO, description=f"ratio of {name}*")
                for name in block_names(blocks, blocks)
            ),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description=f"Blends two {family} models like Model Merge Simple, with a ratio for each "
        "block of the UNet (in the original layout's names: the time and label embeddings, "
        f"input blocks 0–{blocks - 1}, the middle block's three parts, output blocks "
        f"0–{blocks - 1} and the final layers): 1 keeps model1's block, 0 takes model2's. "
        "Use it to take composition from one model (input blocks) and detail from another "
        "(output blocks), or to tune a CosXL conversion." + _SHARING,
    )


def _model_merge_subtract(ctx: Any, model1: Any, model2: Any, multiplier: float) -> tuple[Any]:
    from core.diffusion.merging import difference

    return _merge_models(ctx, model1, model2, difference(multiplier))


def _model_merge_add(ctx: Any, model1: Any, model2: Any) -> tuple[Any]:
    from core.diffusion.merging import add

    return _merge_models(ctx, model1, model2, add())


def _clip_merge_simple(ctx: Any, clip1: Any, clip2: Any, ratio: float) -> tuple[Any]:
    from core.diffusion.merging import weighted_sum

    return _merge_clips(ctx, clip1, clip2, weighted_sum(ratio))


def _clip_merge_subtract(ctx: Any, clip1: Any, clip2: Any, multiplier: float) -> tuple[Any]:
    from core.diffusion.merging import difference

    return _merge_clips(ctx, clip1, clip2, difference(multiplier))


def _clip_merge_add(ctx: Any, clip1: Any, clip2: Any) -> tuple[Any]:
    from core.diffusion.merging import add

    return _merge_clips(ctx, clip1, clip2, add())


def _checkpoint_save(ctx: Any, model: Any, clip: Any, vae: Any, filename_prefix: str) -> tuple[()]:
    import json

    from core.diffusion.saving import CheckpointSaveError, checkpoint_tensors, write_safetensors
    from core.engine import NodeError

    try:
        tensors = checkpoint_tensors(model, clip, vae)
    except CheckpointSaveError as exc:
        raise NodeError(str(exc), field=exc.field) from None
    metadata = {"workflow": json.dumps(ctx.workflow)} if ctx.workflow else None

    def write(stream: Any) -> None:
        write_safetensors(stream, tensors, metadata, ctx.progress)

    path = write_output(ctx, "filename_prefix", filename_prefix, ".safetensors", write)
    ctx.record("file", str(path))
    return ()


def _two(kind: str, name: str) -> tuple[SocketInput, SocketInput]:
    return SocketInput(f"{name}1", kind), SocketInput(f"{name}2", kind)


_SHARING = " Tensors it leaves unchanged are shared with the first input, which stays as it is."

SPECS: tuple[NodeSpec, ...] = (
    NodeSpec(
        "ModelMergeSimple",
        "Model Merge Simple",
        CATEGORY,
        _model_merge_simple,
        inputs=(
            *_two(t.MODEL, "model"),
            WidgetInput(
                "ratio", t.FLOAT, 1.0, **_RATIO, description="1: model1 alone; 0: model2 alone"
            ),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="Blends two models of one family weight by weight: "
        "ratio·model1 + (1 − ratio)·model2. Use it to mix the styles of two fine-tunes." + _SHARING,
    ),
    NodeSpec(
        "ModelMergeBlocks",
        "Model Merge Blocks",
        CATEGORY,
        _model_merge_blocks,
        inputs=(
            *_two(t.MODEL, "model"),
            WidgetInput("input", t.FLOAT, 1.0, **_RATIO, description="ratio of the input blocks"),
            WidgetInput("middle", t.FLOAT, 1.0, **_RATIO, description="ratio of the middle block"),
            WidgetInput("out", t.FLOAT, 1.0, **_RATIO, description="ratio of the output blocks"),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="Blends two models like Model Merge Simple, with its own ratio for the "
        "UNet's input blocks (composition), middle block and output blocks (detail and "
        "texture); the time embedding follows the input ratio." + _SHARING,
    ),
    NodeSpec(
        "ModelMergeSubtract",
        "Model Merge Subtract",
        CATEGORY,
        _model_merge_subtract,
        inputs=(
            *_two(t.MODEL, "model"),
            WidgetInput("multiplier", t.FLOAT, 1.0, **_MULTIPLIER),
        ),
        outputs=(Output("MODEL", t.MODEL),),
        description="multiplier·(model1 − model2): what a fine-tune learned over its base "
        'model. Add it to another model with Model Merge Add ("add difference"), e.g. to '
        "turn a fine-tune into an inpainting model.",
    ),
    NodeSpec(
        "ModelMergeAdd",
        "Model Merge Add",
        CATEGORY,
        _model_merge_add,
        inputs=_two(t.MODEL, "model"),
        outputs=(Output("MODEL", t.MODEL),),
        description="model1 + model2, weight by weight: adds a difference made by Model Merge "
        "Subtract. An inpainting model1 may take a normal model2: its extra input channels are "
        "kept.",
    ),
    NodeSpec(
        "CLIPMergeSimple",
        "CLIP Merge Simple",
        CATEGORY,
        _clip_merge_simple,
        inputs=(
            *_two(t.CLIP, "clip"),
            WidgetInput(
                "ratio", t.FLOAT, 1.0, **_RATIO, description="1: clip1 alone; 0: clip2 alone"
            ),
        ),
        outputs=(Output("CLIP", t.CLIP),),
        description="Blends two text encoders of one family: ratio·clip1 + (1 − ratio)·clip2. "
        "Pair it with a model merge so prompts are read the way the merged model expects."
        + _SHARING,
    ),
    NodeSpec(
        "CLIPMergeSubtract",
        "CLIP Merge Subtract",
        CATEGORY,
        _clip_merge_subtract,
        inputs=(*_two(t.CLIP, "clip"), WidgetInput("multiplier", t.FLOAT, 1.0, **_MULTIPLIER)),
        outputs=(Output("CLIP", t.CLIP),),
        description="multiplier·(clip1 − clip2): what a fine-tuned text encoder learned over "
        "its base, to add to another with CLIP Merge Add.",
    ),
    NodeSpec(
        "CLIPMergeAdd",
        "CLIP Merge Add",
        CATEGORY,
        _clip_merge_add,
        inputs=_two(t.CLIP, "clip"),
        outputs=(Output("CLIP", t.CLIP),),
        description="clip1 + clip2, weight by weight: adds a difference made by CLIP Merge "
        "Subtract.",
    ),
    NodeSpec(
        "CheckpointSave",
        "Save Checkpoint",
        CATEGORY,
        _checkpoint_save,
        inputs=(
            SocketInput("model", t.MODEL),
            SocketInput("clip", t.CLIP),
            SocketInput("vae", t.VAE),
            WidgetInput(
                "filename_prefix",
                t.STRING,
                "checkpoints/LatentLoom",
                description="file name before the number; 'folder/name' saves in a subfolder",
            ),
        ),
        output_node=True,
        description="Saves a model, its text encoder(s) and its VAE as one .safetensors "
        "checkpoint in the original Stable Diffusion layout, e.g. the result of a merge or of "
        "LoRAs baked in, so Load Checkpoint and other tools open it. It goes to the output "
        "folder as PREFIX_00001.safetensors, the next free number; no file is replaced.",
        check=output_name_problems("filename_prefix"),
    ),
    # ComfyUI's per-block merges: SD 1.x and 2.x UNets have 12 input and output blocks,
    # SDXL's 9.
    _block_merge_spec("ModelMergeSD1", "SD 1.x", 12),
    _block_merge_spec("ModelMergeSD2", "SD 2.x", 12),
    _block_merge_spec("ModelMergeSDXL", "SDXL", 9),
)
