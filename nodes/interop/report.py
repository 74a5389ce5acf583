"""What an import found: the source format, the nodes it could not map, and every warning.

Importers never drop anything silently: each node type they cannot map, each link they cannot
keep and each value they had to change is written here for the user to read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.graph.workflow import Workflow


class SourceFormat(StrEnum):
    """The kinds of file ``open_workflow`` reads."""

    LATENTLOOM = "latentloom"
    COMFYUI_UI = "comfyui-ui"
    COMFYUI_API = "comfyui-api"
    A1111 = "a1111"


_LABELS = {
    SourceFormat.LATENTLOOM: "LatentLoom workflow",
    SourceFormat.COMFYUI_UI: "ComfyUI workflow",
    SourceFormat.COMFYUI_API: "ComfyUI API prompt",
    SourceFormat.A1111: "AUTOMATIC1111 generation parameters",
}


@dataclass(frozen=True)
class UnknownNode:
    """A node whose type LatentLoom lacks; the graph keeps it as a placeholder."""

    node_id: int
    type_id: str


@dataclass(frozen=True)
class PackNode:
    """A node whose ComfyUI type comes from a third-party node pack, opened as one of ours."""

    node_id: int
    type_id: str
    pack: str


@dataclass(frozen=True)
class ImportReport:
    """How a file became a workflow: what it was, how much mapped, what to look at."""

    source_format: SourceFormat
    #: The source's own format version where it has one ("0.4" or "1" for the ComfyUI UI).
    format_version: str = ""
    #: "json", "png", "webp", "jpeg" or "text": the container the workflow came in.
    container: str = "json"
    #: Nodes that became real LatentLoom nodes (placeholders not counted).
    mapped: int = 0
    unknown: tuple[UnknownNode, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Text notes carried over (ComfyUI's Note and MarkdownNote).
    notes: int = 0
    #: Values of the wrong kind for their widget (a sign the file was read out of place).
    misfits: tuple[str, ...] = ()
    #: Nodes of third-party ComfyUI node packs opened as LatentLoom's own nodes.
    from_packs: tuple[PackNode, ...] = ()

    @property
    def label(self) -> str:
        """A human name of the source, e.g. "ComfyUI workflow (UI format 0.4) in a PNG"."""
        text = _LABELS[self.source_format]
        if self.source_format is SourceFormat.COMFYUI_UI and self.format_version:
            text += f" (UI format {self.format_version})"
        picture = {"png": "PNG", "webp": "WebP", "jpeg": "JPEG"}.get(self.container)
        if picture is not None:
            text += f" in a {picture}"
        return text

    def summary(self) -> str:
        """A few lines for the CLI or a status message: what was opened and every warning."""
        label = self.label
        article = "an" if label[:1].lower() in "aeiou" else "a"
        lines = [f"Opened {article} {label}: {self.mapped} node(s) mapped"]
        if self.unknown:
            lines[0] += f", {len(self.unknown)} unknown (kept as placeholders)"
        if self.notes:
            lines[0] += f", {self.notes} note(s)"
        packs: dict[str, set[str]] = {}
        for node in self.from_packs:
            packs.setdefault(node.type_id, set()).add(node.pack)
        if packs:
            named = ", ".join(
                f"{t} (from {', '.join(sorted(p))})" for t, p in sorted(packs.items())
            )
            lines.append(f"  Node-pack types opened as LatentLoom's own nodes: {named}")
        lines.extend(f"  - {warning}" for warning in self.warnings)
        return "\n".join(lines)


@dataclass(frozen=True)
class OpenResult:
    """A workflow opened from any supported file, with its import report."""

    workflow: Workflow
    report: ImportReport


@dataclass
class ReportBuilder:
    """Collects warnings and unknown nodes while an importer works."""

    warnings: list[str] = field(default_factory=list)
    unknown: list[UnknownNode] = field(default_factory=list)
    #: Values that do not fit their widget's kind ("node 3 (KSampler): steps=True").
    misfits: list[str] = field(default_factory=list)
    from_packs: list[PackNode] = field(default_factory=list)

    def pack_node(self, node_id: int, type_id: str, pack: str) -> None:
        """A node of a third-party pack's type that became one of ours (nothing to fix)."""
        self.from_packs.append(PackNode(node_id, type_id, pack))

    def misfit(self, where: str) -> None:
        """A value of the wrong kind for its widget: the file's values may be out of place."""
        self.misfits.append(where)
        self.warn(f"{where} is not the kind of value the widget holds; check the node")

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def unknown_node(self, node_id: int, type_id: str, title: str | None = None) -> None:
        self.unknown.append(UnknownNode(node_id, type_id))
        named = f" ({title!r})" if title and title != type_id else ""
        self.warn(
            f"node {node_id}{named}: unknown node type {type_id!r}, kept as a placeholder with "
            "its sockets and values; install what provides it or replace the node"
        )

    def build(
        self,
        workflow: Workflow,
        source_format: SourceFormat,
        format_version: str = "",
        container: str = "json",
    ) -> ImportReport:
        placeholders = set(workflow.placeholders)
        return ImportReport(
            source_format=source_format,
            format_version=format_version,
            container=container,
            mapped=sum(1 for node in workflow.graph if node.id not in placeholders),
            unknown=tuple(self.unknown),
            warnings=tuple(self.warnings),
            misfits=tuple(self.misfits),
            from_packs=tuple(self.from_packs),
            notes=len(workflow.graph.notes),
        )
