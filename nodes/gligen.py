"""GLIGEN: put a phrase in a box of the picture (ComfyUI's GLIGENLoader and GLIGENTextBoxApply,
with its names and widgets, so its workflows import and run)."""

from __future__ import annotations

from typing import Any

from core.diffusion.model_paths import ModelKind, ModelPaths
from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.models import _Loaders, _node_error
from nodes.placement import compute_device, place

#: ComfyUI's largest picture side.
MAX_SIDE = 16384


class _GligenLoaders(_Loaders):
    def load_gligen(self, ctx: Any, gligen_name: str) -> Any:
        from core.diffusion import devices
        from core.diffusion.errors import ModelLoadError
        from core.diffusion.gligen import load_gligen

        path = self._resolve(ModelKind.GLIGEN, gligen_name, "gligen_name")
        try:
            return load_gligen(path, devices.pick_aux_dtype(compute_device(ctx)))
        except ModelLoadError as exc:
            raise _node_error(exc, "gligen_name") from None


def _text_box_apply(
    ctx: Any,
    conditioning_to: Any,
    clip: Any,
    gligen_textbox_model: Any,
    text: str,
    width: int,
    height: int,
    x: int,
    y: int,
) -> Any:
    from core.diffusion.conditioning import Conditioning, with_extra
    from core.diffusion.gligen import KWARG, GligenBoxes, GroundingBox, phrase_embedding

    encoder = clip.encoders[0]
    if int(encoder.model.config.hidden_size) != gligen_textbox_model.text_width:
        raise _node_error(
            ValueError(
                f"the GLIGEN model reads {gligen_textbox_model.text_width}-wide phrase "
                f"embeddings but this CLIP's are {encoder.model.config.hidden_size}: GLIGEN "
                "models are for SD 1.x; use an SD 1.x checkpoint's CLIP"
            ),
            "clip",
        )
    place(ctx, encoder.model)
    box = GroundingBox(phrase_embedding(encoder, text), x, y, width, height)
    entries = []
    for entry in conditioning_to:
        current = entry.extras.get(KWARG)
        if isinstance(current, GligenBoxes) and current.model is gligen_textbox_model:
            extra = current.with_box(box)
        else:
            extra = GligenBoxes(gligen_textbox_model, (box,))
        entries.append(with_extra(entry, KWARG, extra))
    return Conditioning(tuple(entries))


def _pixels(name: str, default: int, description: str) -> WidgetInput:
    return WidgetInput(
        name,
        t.INT,
        default,
        min=0 if name in "xy" else 8,
        max=MAX_SIDE,
        step=8,
        description=description,
    )


def specs(paths: ModelPaths) -> tuple[NodeSpec, ...]:
    """The GLIGEN specs, bound to ``paths``."""
    loaders = _GligenLoaders(paths)
    kind = ModelKind.GLIGEN
    return (
        NodeSpec(
            "GLIGENLoader",
            "GLIGENLoader",
            "loaders",
            loaders.load_gligen,
            inputs=(
                WidgetInput(
                    "gligen_name",
                    t.COMBO,
                    "",
                    choices_from=kind.value,
                    description="a GLIGEN model in gligen (gligen_sd14_textbox_pruned)",
                ),
            ),
            outputs=(Output("GLIGEN", t.GLIGEN),),
            description="Loads a GLIGEN model for GLIGEN Textbox Apply: gated attention "
            "layers that make an SD 1.x model draw phrases inside boxes.",
            fingerprint=loaders.fingerprint(kind, "gligen_name"),
            check=loaders.problems(kind, "gligen_name"),
        ),
        NodeSpec(
            "GLIGENTextBoxApply",
            "GLIGENTextBoxApply",
            "conditioning/gligen",
            _text_box_apply,
            inputs=(
                SocketInput("conditioning_to", t.CONDITIONING),
                SocketInput("clip", t.CLIP),
                SocketInput("gligen_textbox_model", t.GLIGEN),
                WidgetInput(
                    "text", t.STRING, "", multiline=True, description="what goes in the box"
                ),
                _pixels("width", 64, "the box's width in pixels"),
                _pixels("height", 64, "the box's height in pixels"),
                _pixels("x", 0, "the box's left edge in pixels"),
                _pixels("y", 0, "the box's top edge in pixels"),
            ),
            outputs=(Output("CONDITIONING", t.CONDITIONING),),
            description="Places a phrase in a box of the picture (GLIGEN, Li et al. 2023): "
            "chain one per object on the positive prompt, which should mention them all. "
            "Unlike Conditioning (Set Area) the whole prompt still sees the whole picture; "
            "the boxes steer where each thing appears. For SD 1.x models, at most 30 boxes.",
        ),
    )
