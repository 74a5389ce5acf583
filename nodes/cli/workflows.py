"""``main.py validate`` and ``main.py export``: check a workflow, or write it in another tool's
format, without running it (and without importing torch)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nodes.cli import common
from nodes.cli.common import EXIT_INVALID, EXIT_OK, CliError


def validate(path: Path, model_roots: Sequence[Path] = ()) -> int:
    from core.engine import make_plan, validate_plan
    from core.engine.expand import expand, has_instances
    from core.engine.subgraph_run import lift_problems

    registry = common.registry(model_roots)
    workflow = common.load_workflow(path, registry)
    graph = workflow.graph
    if has_instances(graph):
        # What runs is the flat graph, so the nodes inside subgraphs are checked too (missing
        # model files, unknown types), each problem pinned to its instance.
        expansion = expand(graph)
        plan = make_plan(expansion.graph, labels=expansion.labels)
        problems = lift_problems(expansion, validate_plan(expansion.graph, plan))
    else:
        plan = make_plan(graph)
        problems = validate_plan(graph, plan)
    if problems:
        common.print_problems(problems, graph)
        return EXIT_INVALID
    print(
        f"{path}: valid ({len(graph)} nodes, {len(graph.links)} links; a run computes "
        f"{len(plan.order)} of the nodes)"
    )
    return EXIT_OK


def export(path: Path, fmt: str, out: Path | None = None, model_roots: Sequence[Path] = ()) -> int:
    """Writes the workflow in another tool's format, to ``out`` (atomically) or stdout."""
    from core.files import atomic_write
    from nodes.interop import ComfyExportError, to_comfy_api

    if out is not None and out.is_dir():
        raise CliError(f"--out {out}: this is a folder; give a file name")
    if out is not None and not out.resolve().parent.is_dir():
        raise CliError(
            f"--out {out}: the folder {out.resolve().parent} does not exist; create it or "
            "give another path"
        )
    workflow = common.load_workflow(path, common.registry(model_roots))
    try:
        text = json.dumps(to_comfy_api(workflow.graph), indent=2) + "\n"
    except ComfyExportError as exc:
        raise CliError(f"{path}: {exc}") from None
    if out is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        atomic_write(out, text.encode("utf-8"))
    except OSError as exc:
        raise CliError(f"--out {out}: cannot be written ({exc.strerror or exc})") from None
    print(f"wrote {out} ({fmt}, {len(workflow.graph)} nodes)")
    return EXIT_OK
