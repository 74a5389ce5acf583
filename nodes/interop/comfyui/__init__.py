"""ComfyUI workflows in and out: the UI format (0.4 and 1) and the API ("prompt") format.

``mapping`` is the table of ComfyUI node types and how their values translate; ``ui_format``
and ``api_format`` import; ``export`` writes the API format. Node types without a mapping
become placeholders (``core.graph.spec.placeholder_spec``) that keep their sockets, values and
links, and are reported by type and id.
"""

from __future__ import annotations

from nodes.interop.comfyui.api_format import import_api, is_api_prompt
from nodes.interop.comfyui.common import estimated_height, layout
from nodes.interop.comfyui.export import ComfyExportError, to_comfy_api
from nodes.interop.comfyui.mapping import MAPPINGS, TypeMapping, coerce
from nodes.interop.comfyui.ui_format import import_ui, is_ui_workflow

__all__ = [
    "MAPPINGS",
    "ComfyExportError",
    "TypeMapping",
    "coerce",
    "estimated_height",
    "import_api",
    "import_ui",
    "is_api_prompt",
    "is_ui_workflow",
    "layout",
    "to_comfy_api",
]
