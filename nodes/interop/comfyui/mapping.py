"""The table of ComfyUI node types LatentLoom maps, and how their values translate.

ComfyUI stores widget values by position (``widgets_values``), in the order its node class
declares its widgets, with a frontend-only ``control_after_generate`` value after each seed.
``MAPPINGS`` is the explicit table, per ComfyUI node type, of that order and of the LatentLoom
type and param names each position lands in; its entries live in the ``table_*`` modules by
family, and value translation in ``values``. This module is the one the importers and the
exporter use.
"""

from __future__ import annotations

from core.graph import types as t
from core.graph.spec import REROUTE, NodeRegistry
from nodes.interop.comfyui.table_conditioning import CONDITIONING_MAPPINGS
from nodes.interop.comfyui.table_images import IMAGE_MAPPINGS
from nodes.interop.comfyui.table_models import MODEL_MAPPINGS
from nodes.interop.comfyui.table_packs import PACK_MAPPINGS
from nodes.interop.comfyui.table_sampling import SAMPLING_MAPPINGS
from nodes.interop.comfyui.type_mapping import TypeMapping
from nodes.interop.comfyui.values import (
    CONTROL_MODES,
    VALUE_CONVERSIONS,
    coerce,
    control_mode,
    control_ui,
    custom_title,
    to_comfy,
    to_ours,
    value_fits,
    widget_of,
    widget_values_to_params,
)

__all__ = [
    "BY_COMFY_TYPE",
    "BY_OUR_TYPE",
    "CONTROL_MODES",
    "MAPPINGS",
    "META_PARAMS",
    "MODE_BYPASSED",
    "MODE_MUTED",
    "PRIMITIVE_NODE_TYPES",
    "VALUE_CONVERSIONS",
    "TypeMapping",
    "active_mappings",
    "coerce",
    "control_mode",
    "control_ui",
    "custom_title",
    "export_mapping",
    "mapping_for",
    "normalised_type",
    "to_comfy",
    "to_ours",
    "value_fits",
    "widget_of",
    "widget_values_to_params",
]

#: ComfyUI's mode numbers: 0 always, 2 never (muted), 4 bypass.
MODE_MUTED, MODE_BYPASSED = 2, 4
#: The key under which an API export keeps LatentLoom-only params (ComfyUI ignores ``_meta``).
META_PARAMS = "latentloom_params"

MAPPINGS: tuple[TypeMapping, ...] = (
    MODEL_MAPPINGS + CONDITIONING_MAPPINGS + SAMPLING_MAPPINGS + IMAGE_MAPPINGS + PACK_MAPPINGS
)


BY_COMFY_TYPE: dict[str, TypeMapping] = {m.comfy_type: m for m in MAPPINGS}
BY_OUR_TYPE: dict[str, TypeMapping] = {m.our_type: m for m in MAPPINGS if m.export}


def normalised_type(type_id: str) -> str:
    """A node type name without stray whitespace: old ComfyUI registered
    ``"ConditioningAverage "`` with a trailing space, and files kept it."""
    return " ".join(type_id.split())


def mapping_for(type_id: str, registry: NodeRegistry) -> TypeMapping | None:
    """How a ComfyUI node type imports into ``registry``, or None when it does not.

    The table's entry when the registry has its type with every widget it names; else, when
    the registry has a node type of the same name, that type with its own widgets in its own
    order (ComfyUI's order for nodes written to match ComfyUI), so new nodes import without a
    table entry.
    """
    name = normalised_type(type_id)
    entry = BY_COMFY_TYPE.get(name)
    if entry is not None and entry.our_type in registry:
        spec = registry.get(entry.our_type)
        if all(
            widget_of(spec, entry.param_for(w)) is not None
            for w in entry.widgets
            if entry.param_for(w) is not None
        ):
            return entry
    if name in registry and name != REROUTE.type_id:
        spec = registry.get(name)
        return TypeMapping(
            name,
            name,
            tuple(w.name for w in spec.widgets),
            seeds=frozenset(w.name for w in spec.widgets if w.control_after_run),
            comfy_title=spec.title,
            export=False,
        )
    return None


def export_mapping(our_type: str, registry: NodeRegistry) -> TypeMapping | None:
    """The table's entry that exports ``our_type`` to ComfyUI, or None when it has none."""
    entry = BY_OUR_TYPE.get(our_type)
    return entry if entry is not None and mapping_for(entry.comfy_type, registry) is entry else None


def active_mappings(registry: NodeRegistry) -> list[TypeMapping]:
    """The table's entries that import into ``registry`` as they stand."""
    return [m for m in MAPPINGS if mapping_for(m.comfy_type, registry) is m]


#: The frontend-only node that feeds a widget converted to an input, by the type it carries.
PRIMITIVE_NODE_TYPES = {
    t.INT: "Int",
    t.FLOAT: "Float",
    t.STRING: "String",
    t.BOOLEAN: "Boolean",
    t.COMBO: "String",
}
