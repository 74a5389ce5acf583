"""Interoperability: ComfyUI workflows (UI and API formats), A1111 images and PNG metadata.

``open_workflow(path, registry)`` opens any of them as a LatentLoom workflow with an import
report; ``to_comfy_api(graph)`` exports a graph to ComfyUI's API format.
"""

from __future__ import annotations

from nodes.interop.comfyui import MAPPINGS, ComfyExportError, TypeMapping, to_comfy_api
from nodes.interop.opening import open_bytes, open_data, open_text, open_workflow
from nodes.interop.report import ImportReport, OpenResult, SourceFormat, UnknownNode

__all__ = [
    "MAPPINGS",
    "ComfyExportError",
    "ImportReport",
    "OpenResult",
    "SourceFormat",
    "TypeMapping",
    "UnknownNode",
    "open_bytes",
    "open_data",
    "open_text",
    "open_workflow",
    "to_comfy_api",
]
