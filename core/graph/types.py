"""Socket types, which pairs may be linked, and the named conversions between them.

Types are plain names (``"LATENT"``, ``"INT"``…). The compatibility table is explicit: a link
from an output of type A to an input of type B is legal when A == B, when either side is the
wildcard ``ANY`` (reroutes), or when a named conversion from A to B exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MODEL = "MODEL"
CLIP = "CLIP"
VAE = "VAE"
CONDITIONING = "CONDITIONING"
LATENT = "LATENT"
IMAGE = "IMAGE"
MASK = "MASK"
INT = "INT"
FLOAT = "FLOAT"
STRING = "STRING"
BOOLEAN = "BOOLEAN"
#: Every step of a sampler run (x_t and x̂₀ per step), for scrubbing and branching.
HISTORY = "HISTORY"
#: A pixel upscale model (ESRGAN, Real-ESRGAN…), ComfyUI's name for it.
UPSCALE_MODEL = "UPSCALE_MODEL"
#: A sampler function with its options (custom sampling: KSamplerSelect, SamplerEulerAncestral…).
SAMPLER = "SAMPLER"
#: A noise schedule: a 1-D float tensor of steps + 1 decreasing noise levels σ.
SIGMAS = "SIGMAS"
#: A seedable source of initial noise (RandomNoise, DisableNoise).
NOISE = "NOISE"
#: A model with the conditionings and guidance scales that steer it (CFGGuider…).
GUIDER = "GUIDER"
#: A CLIP image encoder (ViT-L/14, ViT-H/14, ViT-bigG/14), ComfyUI's name for it.
CLIP_VISION = "CLIP_VISION"
#: What a CLIP image encoder makes of pictures: projected embeddings and hidden states.
CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
#: A style model that turns CLIP image features into extra prompt tokens.
STYLE_MODEL = "STYLE_MODEL"
#: An IP-Adapter: image-prompt projection and cross-attention weights for a UNet.
IPADAPTER = "IPADAPTER"
#: A ControlNet or T2I-Adapter, ComfyUI's name for both.
CONTROL_NET = "CONTROL_NET"
#: A GLIGEN model: gated attention layers that place phrases in boxes (ComfyUI's name).
GLIGEN = "GLIGEN"
#: A widget whose value is one of a list of strings; links of type STRING can drive it.
COMBO = "COMBO"
#: Wildcard used by reroutes: it takes the type of whatever is linked to it.
ANY = "*"

#: Every type the editor knows how to draw and the engine how to check.
SOCKET_TYPES: tuple[str, ...] = (
    MODEL,
    CLIP,
    VAE,
    CONDITIONING,
    LATENT,
    IMAGE,
    MASK,
    INT,
    FLOAT,
    STRING,
    BOOLEAN,
    HISTORY,
    UPSCALE_MODEL,
    SAMPLER,
    SIGMAS,
    NOISE,
    GUIDER,
    CLIP_VISION,
    CLIP_VISION_OUTPUT,
    STYLE_MODEL,
    IPADAPTER,
    CONTROL_NET,
    GLIGEN,
)

#: Types whose values are loaded models: the cache keeps them under its model budget.
MODEL_TYPES: frozenset[str] = frozenset(
    {MODEL, CLIP, VAE, UPSCALE_MODEL, CLIP_VISION, STYLE_MODEL, IPADAPTER, CONTROL_NET, GLIGEN}
)


@dataclass(frozen=True)
class Conversion:
    """An implicit, lossless-enough conversion applied when a link crosses two types."""

    name: str
    source: str
    target: str
    apply: Callable[[Any], Any]


def _bool_to_int(value: Any) -> int:
    return int(bool(value))


#: The only implicit conversions. Anything else needs an explicit node.
CONVERSIONS: dict[tuple[str, str], Conversion] = {
    (c.source, c.target): c
    for c in (
        Conversion("int_to_float", INT, FLOAT, float),
        Conversion("bool_to_int", BOOLEAN, INT, _bool_to_int),
        Conversion("int_to_string", INT, STRING, str),
        Conversion("float_to_string", FLOAT, STRING, repr),
        Conversion("string_to_combo", STRING, COMBO, str),
    )
}


def widget_socket_type(value_type: str) -> str:
    """The socket type a link must carry to drive a widget of ``value_type``."""
    return STRING if value_type == COMBO else value_type


def is_compatible(source: str, target: str) -> bool:
    """Whether an output of type ``source`` may be linked to an input of type ``target``."""
    if source == target or ANY in (source, target):
        return True
    return (source, target) in CONVERSIONS


def conversion_for(source: str, target: str) -> Conversion | None:
    """The conversion a value needs when crossing from ``source`` to ``target`` (None: as is)."""
    if source == target or ANY in (source, target):
        return None
    return CONVERSIONS.get((source, target))


def incompatibility_reason(source: str, target: str) -> str | None:
    """A sentence for the user saying why the two types cannot be linked, or None if they can."""
    if is_compatible(source, target):
        return None
    convertible = sorted(t for (s, t) in CONVERSIONS if s == source)
    hint = f" ({source} converts only to {', '.join(convertible)})" if convertible else ""
    return f"an output of type {source} cannot feed an input of type {target}{hint}"
