"""What every command shares: exit codes, the user-mistake error, the node registry, opening
a workflow, ``--set`` overrides and the checks of output places made before anything runs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_NODE_FAILED, EXIT_INVALID = 0, 1, 2


class CliError(Exception):
    """A user mistake on the command line or in the workflow: printed, exit 2."""


def registry(model_roots: Sequence[Path] = (), announce: bool = True) -> Any:
    """The node registry, its loaders searching ``model_roots`` before the default roots, with
    the node packs not disabled by ``$LATENTLOOM_DISABLED_PACKS``; with ``announce``, each
    pack that failed to load is named on stderr."""
    from core.diffusion.model_paths import ModelPaths
    from nodes import build_registry, default_model_roots
    from nodes.packs import disabled_from_environment, failures

    built = build_registry(
        ModelPaths.of(*default_model_roots(model_roots)), disabled_from_environment()
    )
    for line in failures(built.packs) if announce else ():
        print(f"warning: {line}", file=sys.stderr)
    return built


def load_workflow(path: str | Path, registry: Any) -> Any:
    """Opens a LatentLoom workflow, a ComfyUI workflow (UI or API format), or a PNG carrying
    either or A1111's parameters; what an import could not carry over is printed."""
    from core.graph.workflow import WorkflowError
    from nodes.interop import SourceFormat, open_workflow

    try:
        result = open_workflow(path, registry)
    except WorkflowError as exc:
        raise CliError(str(exc)) from None
    if result.report.source_format is not SourceFormat.LATENTLOOM or result.report.warnings:
        print(result.report.summary(), file=sys.stderr)
    if not len(result.workflow.graph):
        raise CliError(
            f"{path}: the workflow has no nodes, so nothing would run. Add nodes that end in "
            "an output node such as Save Image, or open another file"
        )
    return result.workflow


def _parse_value(widget: Any, text: str) -> Any:
    from core.graph import types as t

    try:
        if widget.type == t.INT:
            return int(text)
        if widget.type == t.FLOAT:
            return float(text)
    except ValueError:
        kind = "a whole number" if widget.type == t.INT else "a number"
        raise CliError(f"--set {widget.name}: {text!r} is not {kind}") from None
    if widget.type == t.BOOLEAN:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise CliError(f"--set {widget.name}: {text!r} is not true or false")
        return lowered in ("true", "1", "yes")
    return text


def apply_overrides(graph: Any, overrides: Sequence[str]) -> None:
    """Applies ``NODE_ID.PARAM=VALUE`` overrides, typed by each widget's spec."""
    from core.graph.spec import WidgetInput

    for item in overrides:
        target, sep, text = item.partition("=")
        node_text, dot, param = target.partition(".")
        if not (sep and dot and node_text.strip().isdigit() and param):
            raise CliError(f"--set {item!r}: write it as NODE_ID.PARAM=VALUE, e.g. 5.seed=42")
        node_id = int(node_text)
        if node_id not in graph:
            raise CliError(f"--set {item!r}: the workflow has no node {node_id}")
        widget = graph.spec(node_id).input(param)
        if not isinstance(widget, WidgetInput):
            names = ", ".join(w.name for w in graph.spec(node_id).widgets) or "none"
            raise CliError(
                f"--set {item!r}: node {node_id} has no parameter {param!r} (it has: {names})"
            )
        graph.set_param(node_id, param, _parse_value(widget, text))


def print_problems(problems: Sequence[Any], graph: Any) -> None:
    print(
        f"The workflow is not valid ({len(problems)} problem(s)); nothing was run:", file=sys.stderr
    )
    for problem in problems:
        print(f"  - {problem.message}", file=sys.stderr)


def check_destinations(out_dir: Path, report_path: Path | None, previews: Any) -> None:
    """Refuses, before anything runs, output places that cannot be written: a folder that is
    a file, a report path that is a folder or lies in a folder that does not exist."""
    folders = [("--out", out_dir)] + ([("--previews", previews.folder)] if previews else [])
    for flag, folder in folders:
        if folder.exists() and not folder.is_dir():
            raise CliError(f"{flag} {folder}: this is a file; give a folder")
    if report_path is None:
        return
    if report_path.is_dir():
        raise CliError(f"--report {report_path}: this is a folder; give a file name")
    if not report_path.resolve().parent.is_dir():
        raise CliError(
            f"--report {report_path}: the folder {report_path.resolve().parent} does not "
            "exist; create it or give another path"
        )
