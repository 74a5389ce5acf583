"""Text encoding and the conditioning operations: combine, average, concat, areas, masks.

The text encoders find ``embedding:name`` embeddings in the model folders they are bound to;
the files a prompt names are part of the node's cache key, so replacing one re-encodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.diffusion.prompt_weights import MAX_PROMPT_CHARACTERS
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.placement import place

_PIXELS = {"min": 0, "max": 16384, "step": 8}
#: An area is placed on whole latent cells, so its pixel box must fall on the 8-pixel grid:
#: refused otherwise, never rounded behind the user's back.
_AREA = {**_PIXELS, "multiple_of": 8}
_STRENGTH = {"min": 0.0, "max": 10.0, "step": 0.01}
#: ComfyUI's ranges for the SDXL encoders' sizes (any integer up to its MAX_RESOLUTION).
_SDXL_SIZE = {"min": 0, "max": 16384, "step": 1}
_PROMPT_HINT = "(word:1.3) weighs a word up, [word] down; \\( escapes; embedding:name"


class _TextEncoders:
    """The text-encoding node functions, bound to the model folders embeddings come from."""

    def __init__(self, paths: ModelPaths) -> None:
        self.paths = paths

    def embeddings(self, texts: Mapping[str, str]) -> Callable[[str], Any]:
        """An ``EmbeddingSource`` for ``texts`` (by field) whose errors are node errors on the
        first field that names the embedding."""
        from core.diffusion.embedding_names import (
            embedding_references,
            find_embedding,
            missing_embedding_message,
        )
        from core.diffusion.embeddings import load_embedding
        from core.diffusion.errors import ModelLoadError
        from core.engine import NodeError

        fields: dict[str, str] = {}
        for field, text in texts.items():
            for name in embedding_references(text):
                fields.setdefault(name, field)
        loaded: dict[str, Any] = {}

        def source(name: str) -> Any:
            field = fields.get(name, next(iter(texts)))
            if name not in loaded:
                path = find_embedding(self.paths, name)
                if path is None:
                    message = missing_embedding_message(self.paths, name)
                    raise NodeError(f"'{field}': {message}", field=field)
                try:
                    loaded[name] = load_embedding(path, name)
                except ModelLoadError as exc:
                    raise NodeError(f"'{field}': embedding '{name}': {exc}", field=field) from None
            return loaded[name]

        return source

    def run(self, ctx: Any, clip: Any, encode: Callable[[], Any], fields: tuple[str, ...]) -> Any:
        """Place the encoders, run ``encode`` and turn its errors into node errors."""
        from core.diffusion.embeddings import EmbeddingError
        from core.diffusion.prompt_weights import PromptError
        from core.engine import NodeError

        for encoder in clip.encoders:
            place(ctx, encoder.model)
        try:
            return encode()
        except (EmbeddingError, PromptError, ValueError) as exc:
            field = fields[0] if len(fields) == 1 else None
            prefix = f"'{field}': " if field else ""
            raise NodeError(f"{prefix}{exc}", field=field) from None

    def encode(self, ctx: Any, clip: Any, text: str) -> Any:
        from core.diffusion.text_encoding import encode_prompt

        _refuse_bad_text(text, "text")  # again here: a link may feed the text
        return self.run(
            ctx,
            clip,
            lambda: encode_prompt(
                clip,
                text,
                before_chunk=ctx.cancel.raise_if_cancelled,
                embeddings=self.embeddings({"text": text}),
            ),
            ("text",),
        )

    def encode_sdxl(
        self,
        ctx: Any,
        clip: Any,
        width: int,
        height: int,
        crop_w: int,
        crop_h: int,
        target_width: int,
        target_height: int,
        text_g: str,
        text_l: str,
    ) -> Any:
        from core.diffusion.conditioning import SizeConditioning
        from core.diffusion.text_encoding import encode_sdxl
        from core.engine import NodeError

        _refuse_bad_text(text_g, "text_g")
        _refuse_bad_text(text_l, "text_l")
        if len(clip.encoders) != 2:
            raise NodeError(
                "'clip': CLIP Text Encode SDXL needs the SDXL base model's CLIP (CLIP-L and "
                "OpenCLIP-bigG); for the refiner use CLIP Text Encode SDXL Refiner, for other "
                "models CLIP Text Encode.",
                field="clip",
            )
        size = SizeConditioning(
            original_size=(height, width),
            crop_top_left=(crop_h, crop_w),
            target_size=(target_height, target_width),
        )
        source = self.embeddings({"text_g": text_g, "text_l": text_l})
        return self.run(
            ctx,
            clip,
            lambda: encode_sdxl(clip, text_g, text_l, size, ctx.cancel.raise_if_cancelled, source),
            ("text_g", "text_l"),
        )

    def encode_refiner(
        self, ctx: Any, clip: Any, ascore: float, width: int, height: int, text: str
    ) -> Any:
        from core.diffusion.conditioning import SizeConditioning
        from core.diffusion.text_encoding import encode_prompt, is_sdxl_refiner_clip

        _refuse_bad_text(text, "text")
        if is_sdxl_refiner_clip(clip):
            size = SizeConditioning(original_size=(height, width), aesthetic_score=ascore)
        else:
            # The SDXL base has no aesthetic score: width and height are its original and
            # target size (as in ComfyUI).
            size = SizeConditioning(original_size=(height, width), target_size=(height, width))
        return self.run(
            ctx,
            clip,
            lambda: encode_prompt(
                clip, text, size, ctx.cancel.raise_if_cancelled, self.embeddings({"text": text})
            ),
            ("text",),
        )

    def problems(self, fields: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Iterator]:
        """Validation: brackets nested too deep and embeddings that cannot be found. The widget
        itself refuses a text that is too long or holds a broken character."""

        def check(params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
            from core.diffusion.embedding_names import (
                embedding_references,
                find_embedding,
                missing_embedding_message,
            )
            from core.diffusion.prompt_weights import PromptError, parse_prompt_weights

            for field in fields:
                text = params.get(field, "")
                if not isinstance(text, str) or len(text) > MAX_PROMPT_CHARACTERS:
                    continue
                try:
                    parse_prompt_weights(text)
                except PromptError as exc:
                    yield field, str(exc)
                    continue
                for name in embedding_references(text):
                    if find_embedding(self.paths, name) is None:
                        yield field, missing_embedding_message(self.paths, name)

        return check

    def fingerprint(self, fields: tuple[str, ...]) -> Callable[[Mapping[str, Any]], str]:
        """The state of every embedding file the texts name; of every embedding file when a
        text arrives by a link (its names are unknown until the node runs)."""

        def digest(params: Mapping[str, Any]) -> str:
            from core.diffusion.embedding_names import (
                embedding_files,
                embedding_references,
                find_embedding,
            )
            from nodes.models import file_state

            if any(field not in params for field in fields):
                names = embedding_files(self.paths)
                return "|".join(
                    file_state(self.paths.resolve(ModelKind.EMBEDDINGS, n)) for n in names
                )
            parts = []
            for field in fields:
                text = params[field]
                for name in embedding_references(text if isinstance(text, str) else ""):
                    path = find_embedding(self.paths, name)
                    parts.append(f"{name}={file_state(path) if path else 'missing'}")
            return "|".join(parts)

        return digest


def _refuse_bad_text(text: str, field: str) -> None:
    from core.diffusion.prompt_weights import prompt_problem
    from core.engine import NodeError

    problem = prompt_problem(text)
    if problem is not None:
        raise NodeError(f"'{field}': {problem}", field=field)


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


def _set_timestep_range(ctx: Any, conditioning: Any, start: float, end: float) -> Any:
    from core.diffusion import conditioning as cond
    from core.engine import NodeError

    try:
        return cond.set_timestep_range(conditioning, start, end)
    except ValueError as exc:
        raise NodeError(str(exc), field="end") from None


_COND = Output(
    "CONDITIONING",
    t.CONDITIONING,
    description="the encoded prompt: link it to a sampler's positive or negative",
)

_TEXT = ("text",)
_SDXL_TEXTS = ("text_g", "text_l")


def _prompt(name: str, description: str = _PROMPT_HINT) -> WidgetInput:
    return WidgetInput(
        name,
        t.STRING,
        "",
        multiline=True,
        max_length=MAX_PROMPT_CHARACTERS,
        description=description,
    )


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """The conditioning specs, text encoders finding embeddings in ``paths``."""
    encoders = _TextEncoders(paths)
    return (*_text_specs(encoders), *SPECS)


def _text_specs(encoders: _TextEncoders) -> tuple[NodeSpec, ...]:
    return (
        NodeSpec(
            "CLIPTextEncode",
            "CLIP Text Encode (Prompt)",
            "conditioning",
            encoders.encode,
            inputs=(
                SocketInput("clip", t.CLIP, description="the text encoder (Load Checkpoint)"),
                _prompt("text"),
            ),
            outputs=(_COND,),
            description="Turns a prompt into conditioning. Weights like (word:1.3), (word), "
            f"[word]; prompts past 75 tokens are encoded in chunks and joined (up to "
            f"{MAX_PROMPT_CHARACTERS:,} characters); embedding:name inserts a textual-inversion "
            "embedding from the embeddings folder, (embedding:name:1.2) weighs it. SDXL uses "
            "both encoders and the pooled embedding.",
            fingerprint=encoders.fingerprint(_TEXT),
            check=encoders.problems(_TEXT),
        ),
        NodeSpec(
            "CLIPTextEncodeSDXL",
            "CLIP Text Encode SDXL",
            "conditioning",
            encoders.encode_sdxl,
            inputs=(
                SocketInput("clip", t.CLIP),
                WidgetInput(
                    "width",
                    t.INT,
                    1024,
                    **_SDXL_SIZE,
                    description="original size: the training picture's size to imitate",
                ),
                WidgetInput("height", t.INT, 1024, **_SDXL_SIZE),
                WidgetInput(
                    "crop_w", t.INT, 0, **_SDXL_SIZE, description="crop from the left; 0: centred"
                ),
                WidgetInput("crop_h", t.INT, 0, **_SDXL_SIZE, description="crop from the top"),
                WidgetInput(
                    "target_width",
                    t.INT,
                    1024,
                    **_SDXL_SIZE,
                    description="the size the picture is made at",
                ),
                WidgetInput("target_height", t.INT, 1024, **_SDXL_SIZE),
                _prompt("text_g", "for OpenCLIP-bigG (and the pooled embedding); " + _PROMPT_HINT),
                _prompt("text_l", "for CLIP-L; " + _PROMPT_HINT),
            ),
            outputs=(_COND,),
            description="SDXL base prompt with its size conditioning: text_g goes through the "
            "OpenCLIP-bigG encoder, text_l through CLIP-L (usually the same text). Original "
            "size, crop and target size are SDXL's micro-conditioning: a large original size "
            "and no crop ask for a sharp, well-framed picture.",
            fingerprint=encoders.fingerprint(_SDXL_TEXTS),
            check=encoders.problems(_SDXL_TEXTS),
        ),
        NodeSpec(
            "CLIPTextEncodeSDXLRefiner",
            "CLIP Text Encode SDXL Refiner",
            "conditioning",
            encoders.encode_refiner,
            inputs=(
                SocketInput("clip", t.CLIP),
                WidgetInput(
                    "ascore",
                    t.FLOAT,
                    6.0,
                    min=0.0,
                    max=1000.0,
                    step=0.01,
                    description="aesthetic score: about 6 for the prompt, 2.5 for the negative",
                ),
                WidgetInput("width", t.INT, 1024, **_SDXL_SIZE),
                WidgetInput("height", t.INT, 1024, **_SDXL_SIZE),
                _prompt("text"),
            ),
            outputs=(_COND,),
            description="Prompt for the SDXL refiner, which is conditioned on an aesthetic "
            "score and the original size. Use it on the refiner checkpoint's CLIP for the last "
            "steps of a base → refiner split with KSampler (Advanced).",
            fingerprint=encoders.fingerprint(_TEXT),
            check=encoders.problems(_TEXT),
        ),
    )


#: The conditioning operations, which need no model folders.
SPECS = (
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
    NodeSpec(
        "ConditioningSetTimestepRange",
        "Conditioning (Set Timestep Range)",
        "conditioning",
        _set_timestep_range,
        inputs=(
            SocketInput("conditioning", t.CONDITIONING),
            WidgetInput("start", t.FLOAT, 0.0, min=0.0, max=1.0, step=0.001),
            WidgetInput("end", t.FLOAT, 1.0, min=0.0, max=1.0, step=0.001),
        ),
        outputs=(_COND,),
        description="Applies a prompt only to part of the sampling, from start to end as "
        "fractions of the schedule (0: pure noise, 1: clean): combine one prompt for the "
        "composition (0 to 0.5) with another for the details (0.5 to 1).",
    ),
)
