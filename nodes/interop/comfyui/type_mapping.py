"""One entry of the ComfyUI mapping table: a ComfyUI node type and the LatentLoom type it becomes.

ComfyUI stores widget values by position (``widgets_values``), in the order its node class
declares its widgets, with a frontend-only ``control_after_generate`` value after each seed.
An entry records that order and the LatentLoom type and param names each position lands in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TypeMapping:
    """One ComfyUI node type and the LatentLoom type it becomes.

    ``widgets`` are ComfyUI's widget names in its declaration order (the order of
    ``widgets_values``, control values left out). ``rename`` maps a ComfyUI input or widget
    name to ours where they differ; ``None`` means ComfyUI's widget has no counterpart and is
    skipped. ``seeds`` are the widgets ComfyUI follows with a control_after_generate value.
    Output slots map by index: every mapped type has ComfyUI's output order, and
    ``outputs`` names the ComfyUI ones where ours go on beyond them (the sampler's HISTORY).
    """

    comfy_type: str
    our_type: str
    widgets: tuple[str, ...] = ()
    rename: Mapping[str, str | None] = field(default_factory=dict)
    seeds: frozenset[str] = frozenset()
    #: ComfyUI's outputs where ours are more (empty: the same as ours).
    outputs: tuple[str, ...] = ()
    #: ComfyUI's display name: a node titled so has no custom title.
    comfy_title: str = ""
    #: Whether exporting ``our_type`` uses this entry (one entry per LatentLoom type does).
    export: bool = True
    #: The third-party ComfyUI node pack this node type comes from (its repository's name, as
    #: ComfyUI's manager lists it, e.g. "ComfyUI_essentials"); empty for ComfyUI's own nodes.
    pack: str = ""
    #: Per ComfyUI widget name, how its value becomes ours where this node type measures it
    #: differently from the LatentLoom type it maps onto (a pack's 0..255 thresholds onto
    #: our 0..1 ones). Import only: such entries do not export.
    imports: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """Where ComfyUI gets this node type, for the user: "from ComfyUI_essentials", or
        "ComfyUI core"."""
        return f"from {self.pack}" if self.pack else "ComfyUI core"

    def imported_value(self, comfy_name: str, value: Any) -> Any:
        """The file's value of ``comfy_name`` in our units (unchanged unless ``imports`` says)."""
        convert = self.imports.get(comfy_name)
        return value if convert is None else convert(value)

    def param_for(self, comfy_name: str) -> str | None:
        """Our input or param name for ComfyUI's input or widget ``comfy_name``."""
        return self.rename.get(comfy_name, comfy_name)

    def comfy_name_for(self, our_name: str) -> str:
        """ComfyUI's input or widget name for our ``our_name``."""
        for comfy, ours in self.rename.items():
            if ours == our_name:
                return comfy
        return our_name


def entry(
    comfy_type: str,
    our_type: str | None = None,
    widgets: tuple[str, ...] = (),
    *,
    rename: Mapping[str, str | None] | None = None,
    seeds: Iterable[str] = (),
    outputs: tuple[str, ...] = (),
    title: str = "",
    export: bool = True,
    pack: str = "",
    imports: Mapping[str, Callable[[Any], Any]] | None = None,
) -> TypeMapping:
    """A table entry; ``our_type`` defaults to ComfyUI's type name."""
    return TypeMapping(
        comfy_type,
        our_type or comfy_type,
        widgets,
        dict(rename or {}),
        frozenset(seeds),
        outputs,
        title,
        export and not imports,
        pack,
        dict(imports or {}),
    )


#: ComfyUI's LoadImage upload button is a widget with no value of ours.
UPLOAD_SKIPPED: Mapping[str, str | None] = {"upload": None}
