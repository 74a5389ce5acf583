"""Text encoding and the conditioning operations: combine, average, concat, areas, masks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from core.diffusion.prompt_weights import MAX_PROMPT_CHARACTERS
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.placement import place

_PIXELS = {"min": 0, "max": 16384, "step": 8}
#: An area is placed on whole latent cells, so its pixel box must fall on the 8-pixel grid:
#: refused otherwise, never rounded behind the user's back.
_AREA = {**_PIXELS, "multiple_of": 8}
_STRENGTH = {"min": 0.0, "max": 10.0, "step": 0.01}


def _encode(ctx: Any, clip: Any, text: str) -> Any:
    from core.diffusion.prompt_weights import prompt_problem
    from core.diffusion.text_encoding import encode_prompt
    from core.engine import NodeError

    problem = prompt_problem(text)  # again here: a link may feed the text
    if problem is not None:
        raise NodeError(f"'text': {problem}", field="text")
    for encoder in clip.encoders:
        place(ctx, encoder.model)
    return encode_prompt(clip, text, before_chunk=ctx.cancel.raise_if_cancelled)


def _text_problems(params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Validation: emphasis brackets nested too deep. The widget itself refuses a text that is
    too long or holds a broken character."""
    from core.diffusion.prompt_weights import PromptError, parse_prompt_weights

    text = params.get("text", "")
    if isinstance(text, str) and len(text) <= MAX_PROMPT_CHARACTERS:
        try:
            parse_prompt_weights(text)
        except PromptError as exc:
            yield "text", str(exc)


def _combine(ctx: Any, conditioning_1: Any, conditioning_2: Any) -> Any:
    from core.diffusion import conditioning

    return conditioning.combine(conditioning_1, conditioning_2)


def _average(
    ctx: Any, conditioning_to: Any, conditioning_from: Any, conditioning_to_strength: float
) -> Any:
    from core.diffusion import conditioning

    return conditioning.average(conditioning_to, conditioning_from, conditioning_to_strength)


def _concat(ctx: Any, conditioning_to: Any, conditioning_from: Any) -> Any:
    from core.diffusion import conditioning

    return conditioning.concat(conditioning_to, conditioning_from)


def _set_area(
    ctx: Any, conditioning: Any, width: int, height: int, x: int, y: int, strength: float
) -> Any:
    from core.diffusion import conditioning as cond
    from core.engine import NodeError

    for name, value in (("width", width), ("height", height), ("x", x), ("y", y)):
        if value % 8:  # a linked value: widgets are checked before the run
            raise NodeError(
                f"'{name}': {value} is not a multiple of 8; areas lie on the 8-pixel grid",
                field=name,
            )
    return cond.set_area(conditioning, cond.Area(x, y, width, height), strength)


def _set_mask(ctx: Any, conditioning: Any, mask: Any, strength: float, set_cond_area: str) -> Any:
    from core.diffusion import conditioning as cond

    return cond.set_mask(conditioning, mask, strength, set_cond_area)


def _set_size(
    ctx: Any,
    conditioning: Any,
    original_width: int,
    original_height: int,
    crop_left: int,
    crop_top: int,
    target_width: int,
    target_height: int,
) -> Any:
    from core.diffusion import conditioning as cond

    size = cond.SizeConditioning(
        original_size=(original_height, original_width),
        crop_top_left=(crop_top, crop_left),
        target_size=(target_height, target_width),
    )
    return cond.set_size(conditioning, size)


def _zero_out(ctx: Any, conditioning: Any) -> Any:
    from core.diffusion import conditioning as cond

    return cond.zero_out(conditioning)


_COND = Output("CONDITIONING", t.CONDITIONING)

SPECS = (
    NodeSpec(
        "CLIPTextEncode",
        "CLIP Text Encode (Prompt)",
        "conditioning",
        _encode,
        inputs=(
            SocketInput("clip", t.CLIP),
            WidgetInput(
                "text",
                t.STRING,
                "",
                multiline=True,
                max_length=MAX_PROMPT_CHARACTERS,
                description="(word:1.3) weighs a word up, [word] down; \\( escapes",
            ),
        ),
        outputs=(_COND,),
        description="Turns a prompt into conditioning. Weights like (word:1.3), (word), "
        f"[word]; prompts past 75 tokens are encoded in chunks and joined (up to "
        f"{MAX_PROMPT_CHARACTERS:,} characters). SDXL uses both encoders and the pooled "
        "embedding.",
        check=_text_problems,
    ),
    NodeSpec(
        "ConditioningCombine",
        "Conditioning (Combine)",
        "conditioning",
        _combine,
        inputs=(
            SocketInput("conditioning_1", t.CONDITIONING),
            SocketInput("conditioning_2", t.CONDITIONING),
        ),
        outputs=(_COND,),
        description="Both conditionings guide the sampler; their predictions are averaged "
        "(with areas and masks, each where it applies).",
    ),
    NodeSpec(
        "ConditioningAverage",
        "Conditioning (Average)",
        "conditioning",
        _average,
        inputs=(
            SocketInput("conditioning_to", t.CONDITIONING),
            SocketInput("conditioning_from", t.CONDITIONING),
            WidgetInput("conditioning_to_strength", t.FLOAT, 1.0, min=0.0, max=1.0, step=0.01),
        ),
        outputs=(_COND,),
        description="Blends two text contexts token by token (the multi-context blending of "
        "Versatile Diffusion): strength 1 keeps 'to', 0 gives 'from'.",
    ),
    NodeSpec(
        "ConditioningConcat",
        "Conditioning (Concat)",
        "conditioning",
        _concat,
        inputs=(
            SocketInput("conditioning_to", t.CONDITIONING),
            SocketInput("conditioning_from", t.CONDITIONING),
        ),
        outputs=(_COND,),
        description="Appends the tokens of 'from' to 'to', so cross-attention sees both.",
    ),
    NodeSpec(
        "ConditioningSetArea",
        "Conditioning (Set Area)",
        "conditioning",
        _set_area,
        inputs=(
            SocketInput("conditioning", t.CONDITIONING),
            WidgetInput("width", t.INT, 64, **_AREA),
            WidgetInput("height", t.INT, 64, **_AREA),
            WidgetInput("x", t.INT, 0, **_AREA),
            WidgetInput("y", t.INT, 0, **_AREA),
            WidgetInput("strength", t.FLOAT, 1.0, **_STRENGTH),
        ),
        outputs=(_COND,),
        description="Limits a prompt to a rectangle of the image (in pixels): regional "
        "prompts, combined with others by Conditioning (Combine).",
    ),
    NodeSpec(
        "ConditioningSetMask",
        "Conditioning (Set Mask)",
        "conditioning",
        _set_mask,
        inputs=(
            SocketInput("conditioning", t.CONDITIONING),
            SocketInput("mask", t.MASK),
            WidgetInput("strength", t.FLOAT, 1.0, **_STRENGTH),
            WidgetInput("set_cond_area", t.COMBO, "default", choices=("default", "mask_bounds")),
        ),
        outputs=(_COND,),
        description="Limits a prompt to a mask; mask_bounds also crops to the mask's box.",
    ),
    NodeSpec(
        "ConditioningSetSize",
        "Conditioning (SDXL Size)",
        "conditioning",
        _set_size,
        inputs=(
            SocketInput("conditioning", t.CONDITIONING),
            WidgetInput("original_width", t.INT, 1024, **_PIXELS),
            WidgetInput("original_height", t.INT, 1024, **_PIXELS),
            WidgetInput("crop_left", t.INT, 0, **_PIXELS),
            WidgetInput("crop_top", t.INT, 0, **_PIXELS),
            WidgetInput("target_width", t.INT, 1024, **_PIXELS),
            WidgetInput("target_height", t.INT, 1024, **_PIXELS),
        ),
        outputs=(_COND,),
        description="SDXL's size and crop conditioning (without it the image size is used).",
    ),
    NodeSpec(
        "ConditioningZeroOut",
        "Conditioning (Zero Out)",
        "conditioning",
        _zero_out,
        inputs=(SocketInput("conditioning", t.CONDITIONING),),
        outputs=(_COND,),
        description="All-zero embeddings of the same shape: an empty negative for SDXL.",
    ),
)
