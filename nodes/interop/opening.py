"""One entry point that opens any workflow file LatentLoom understands.

``open_workflow(path, registry)`` reads ``.json`` files (LatentLoom's own, ComfyUI's UI format
0.4 or 1, ComfyUI's API format) and PNGs (with LatentLoom's embedded workflow, ComfyUI's
``workflow``/``prompt`` chunks or A1111's ``parameters``), WebP and JPEG pictures (the same
texts in their EXIF data, see ``nodes.interop.exif``), and returns the workflow with an
``ImportReport``. Anything it cannot read raises ``WorkflowError`` naming the file and the
problem. Nothing runs and nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from core.graph import png
from core.graph.errors import GraphError
from core.graph.spec import NodeRegistry
from core.graph.workflow import (
    FORMAT,
    PNG_KEY,
    Workflow,
    WorkflowError,
    from_dict,
    parse_json,
    read_file,
)
from nodes.interop import a1111, comfyui, exif
from nodes.interop.report import (
    ImportReport,
    OpenResult,
    ReportBuilder,
    SourceFormat,
)

#: The PNG text chunks ComfyUI and A1111 write.
COMFY_WORKFLOW_KEY, COMFY_PROMPT_KEY, A1111_KEY = "workflow", "prompt", "parameters"
#: Node types whose ``image`` param names a picture ComfyUI keeps in its input folder.
_IMAGE_LOADERS = ("LoadImage", "LoadImageMask")
_ANNOTATION = re.compile(r"\s*\[(input|output|temp)\]$")

Source = str | os.PathLike[str] | None
#: The pictures workflows come in, as messages name them.
_CONTAINER_NAMES = {"png": "PNG", "webp": "WebP", "jpeg": "JPEG"}


def open_workflow(path: str | os.PathLike[str], registry: NodeRegistry) -> OpenResult:
    """Opens a workflow ``.json`` or a PNG carrying one, in any supported format."""
    path = Path(path)
    return open_bytes(read_file(path), registry, path)


def open_bytes(raw: bytes, registry: NodeRegistry, source: Source = None) -> OpenResult:
    """Opens a file's content (a drop from another program, say); ``source`` names it in
    messages and is the folder relative image names are looked up in."""
    if raw.startswith(png.SIGNATURE):
        return _open_png(raw, registry, source)
    kind = exif.image_kind(raw)
    if kind is not None:
        return _open_exif_image(raw, registry, source, kind)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkflowError(
            "neither a PNG nor a text file (not UTF-8)",
            source=source,
            hint="Open a .json workflow or a PNG that carries one",
        ) from None
    return open_text(text, registry, source)


def open_text(
    text: str, registry: NodeRegistry, source: Source = None, container: str = "json"
) -> OpenResult:
    """Opens a workflow given as text: JSON in any supported format, or A1111 parameters."""
    try:
        data = parse_json(text, source)
    except WorkflowError:
        if a1111.looks_like_parameters(text):
            return _open_a1111(text, registry, source, "text" if container == "json" else container)
        raise
    return open_data(data, registry, source, container)


def open_data(
    data: Any, registry: NodeRegistry, source: Source = None, container: str = "json"
) -> OpenResult:
    """Opens already-parsed JSON data in any supported format."""
    if isinstance(data, dict) and data.get("format") == FORMAT:
        workflow = from_dict(data, registry, source)
        _resolve_own_images(workflow, source)
        return OpenResult(workflow, _own_report(workflow, container))
    data = _unwrap(data)
    if comfyui.is_ui_workflow(data):
        importer, what = comfyui.import_ui, "ComfyUI workflow"
    elif comfyui.is_api_prompt(data):
        importer, what = comfyui.import_api, "ComfyUI API prompt"
    else:
        raise WorkflowError(
            "not a workflow LatentLoom can open",
            source=source,
            hint="It reads LatentLoom workflows, ComfyUI workflows (UI or API format) and "
            "PNGs made by LatentLoom, ComfyUI or AUTOMATIC1111",
        )
    try:
        workflow, report = importer(data, registry, source)
    except WorkflowError:
        raise
    except (GraphError, TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise WorkflowError(f"damaged {what}: {exc}", source=source) from None
    warnings = _resolve_images(workflow, source)
    report = dataclasses.replace(
        report, container=container, warnings=report.warnings + tuple(warnings)
    )
    return OpenResult(workflow, report)


def _unwrap(data: Any) -> Any:
    """The workflow inside the wrappers ComfyUI's HTTP API uses: ``{"prompt": …,
    "extra_data": {"extra_pnginfo": {"workflow": …}}}`` or ``{"workflow": …}``."""
    if not isinstance(data, dict) or comfyui.is_ui_workflow(data) or comfyui.is_api_prompt(data):
        return data
    extra = data.get("extra_data")
    info = extra.get("extra_pnginfo") if isinstance(extra, dict) else None
    if isinstance(info, dict) and comfyui.is_ui_workflow(info.get("workflow")):
        return info["workflow"]
    for key in ("workflow", "prompt"):
        if comfyui.is_ui_workflow(data.get(key)) or comfyui.is_api_prompt(data.get(key)):
            return data[key]
    return data


def _own_report(workflow: Workflow, container: str) -> ImportReport:
    builder = ReportBuilder()
    for node_id in workflow.placeholders:
        builder.unknown_node(node_id, workflow.graph.node(node_id).type_id)
    return builder.build(workflow, SourceFormat.LATENTLOOM, container=container)


def _open_png(raw: bytes, registry: NodeRegistry, source: Source) -> OpenResult:
    try:
        chunks = png.read_text_chunks(raw)
    except png.PngError as exc:
        raise WorkflowError(f"damaged PNG ({exc})", source=source) from None
    if PNG_KEY in chunks:
        return open_text(chunks[PNG_KEY], registry, source, "png")
    return _open_texts(chunks, registry, source, "png")


def _open_exif_image(raw: bytes, registry: NodeRegistry, source: Source, kind: str) -> OpenResult:
    name = _CONTAINER_NAMES[kind]
    try:
        texts = exif.read_texts(raw)
    except ValueError as exc:
        raise WorkflowError(f"damaged {name} picture ({exc})", source=source) from None
    return _open_texts(texts, registry, source, kind)


def _open_texts(
    texts: dict[str, str], registry: NodeRegistry, source: Source, container: str
) -> OpenResult:
    """Opens the best workflow among a picture's texts: ComfyUI's UI workflow (it has
    positions and groups), else its API prompt, else A1111's parameters."""
    name = _CONTAINER_NAMES[container]
    notes: list[str] = []
    results: dict[str, OpenResult] = {}
    for key in (COMFY_WORKFLOW_KEY, COMFY_PROMPT_KEY):
        if key not in texts:
            continue
        try:
            results[key] = open_text(texts[key], registry, source, container)
        except WorkflowError as exc:
            where = f"the {name}'s ComfyUI {key!r} text could not be used ({exc.problem})"
            if key == COMFY_WORKFLOW_KEY and COMFY_PROMPT_KEY in texts:
                where += "; its 'prompt' text, which names every value, is opened instead"
            notes.append(where)
    chosen = _prefer_prompt(results, notes, name)
    if chosen is not None:
        report = dataclasses.replace(chosen.report, warnings=(*notes, *chosen.report.warnings))
        return OpenResult(chosen.workflow, report)
    if A1111_KEY in texts and texts[A1111_KEY].strip():
        result = _open_a1111(texts[A1111_KEY], registry, source, container)
        report = dataclasses.replace(result.report, warnings=(*notes, *result.report.warnings))
        return OpenResult(result.workflow, report)
    if notes:
        raise WorkflowError("; ".join(notes), source=source)
    raise WorkflowError(
        f"this {name} picture carries no workflow",
        source=source,
        hint="Open a picture saved by LatentLoom, ComfyUI or AUTOMATIC1111 with its metadata "
        "kept, or drop it on the canvas to load it as an image",
    )


def _prefer_prompt(results: dict[str, OpenResult], notes: list[str], name: str) -> Any:
    """The UI workflow's result, unless its values were read out of place and the API prompt
    (values by name) reads cleanly: then the prompt's graph, at the workflow's positions."""
    workflow, prompt = results.get(COMFY_WORKFLOW_KEY), results.get(COMFY_PROMPT_KEY)
    if workflow is None or not workflow.report.misfits:
        return workflow or prompt
    if prompt is None or prompt.report.misfits:
        return workflow
    notes.append(
        f"the {name}'s ComfyUI 'workflow' text has values out of place "
        f"({'; '.join(workflow.report.misfits[:3])}); its 'prompt' text, which names every "
        "value, is opened instead"
    )
    placed = workflow.workflow.graph
    graph = prompt.workflow.graph
    for node in list(graph):
        if node.id in placed and placed.node(node.id).type_id == node.type_id:
            graph.set_node_attribute(node.id, "pos", placed.node(node.id).pos)
            graph.set_node_attribute(node.id, "size", placed.node(node.id).size)
    return prompt


def _open_a1111(text: str, registry: NodeRegistry, source: Source, container: str) -> OpenResult:
    try:
        workflow, report = a1111.build_workflow(a1111.parse_parameters(text), registry, container)
    except (GraphError, ValueError) as exc:
        raise WorkflowError(f"cannot rebuild the A1111 parameters ({exc})", source=source) from None
    workflow.source = Path(source) if source is not None else None
    return OpenResult(workflow, report)


def _resolve_own_images(workflow: Workflow, source: Source) -> None:
    """A LatentLoom workflow may name its pictures (and painted masks) relative to its own
    folder, as the shipped examples do (``input/picture.png``): those found there become
    full paths, so the run does not depend on the folder it starts in."""
    if source is None:
        return
    base = Path(source).parent
    for node in workflow.graph:
        if node.type_id not in _IMAGE_LOADERS or node.placeholder is not None:
            continue
        for name in ("image", "mask"):
            value = node.params.get(name)
            if not isinstance(value, str) or not value.strip() or Path(value).is_absolute():
                continue
            found = base / value
            if found.is_file():
                workflow.graph.set_param(node.id, name, str(found.resolve()))


def _resolve_images(workflow: Workflow, source: Source) -> list[str]:
    """ComfyUI's image loaders name files in its input folder; point them at the file when it
    lies beside the workflow (or in an ``input`` folder there), else say what to do."""
    warnings = []
    base = Path(source).parent if source is not None else None
    for node in workflow.graph:
        if node.type_id not in _IMAGE_LOADERS or node.placeholder is not None:
            continue
        name = _ANNOTATION.sub("", str(node.params.get("image", ""))).strip()
        if not name or Path(name).is_absolute():
            continue
        found = None
        if base is not None:
            found = next((c for c in (base / name, base / "input" / name) if c.is_file()), None)
        if found is not None:
            workflow.graph.set_param(node.id, "image", str(found.resolve()))
            continue
        workflow.graph.set_param(node.id, "image", name)
        warnings.append(
            f"node {node.id} ({node.type_id}): image {name!r} is in ComfyUI's input folder, "
            "not beside this file; choose the picture in the node"
        )
    return warnings
