"""LatentLoom: open the editor, or run workflows headless.

    python main.py                     the editor on the default workflow (headless run when
                                       there is no display)
    python main.py FILE                the editor on a workflow or a PNG with one embedded
    python main.py gui [FILE] [--run] [--screenshot OUT.png]
                                       the editor; run the graph; save a picture and quit
    python main.py run WORKFLOW ...    run headless, write the outputs, print where they are
    python main.py validate WORKFLOW   check a workflow without running it
    python main.py nodes [--json | --markdown]
                                       every node type with its inputs and outputs
    python main.py packs [--json]      the installed node packs, their state and node types
    python main.py export WORKFLOW --format comfyui-api [--out FILE]
                                       write the workflow in ComfyUI's API format (stdout
                                       without --out)
    python main.py sweep WORKFLOW --axis 5.seed=0..15 --axis 5.cfg=3,5,7 [--zip] [--out DIR]
                                       run every combination; pictures, X/Y grids, sweep.json
                                       (--ray auto|local|ADDRESS runs it on a Ray cluster)

Exit codes: 0 success, 1 a node failed (``packs``: a pack failed to load), 2 the workflow is
invalid (nothing was run).

Node packs listed in ``$LATENTLOOM_DISABLED_PACKS`` (comma-separated) are not loaded; a pack
that fails to load is named on stderr and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
DEFAULT_WORKFLOW = ROOT / "resources" / "workflows" / "default.json"
DEFAULT_OUTPUT = Path("output")
COMMANDS = ("run", "validate", "nodes", "packs", "gui", "export", "sweep")
#: The formats ``export`` writes.
EXPORT_FORMATS = ("comfyui-api",)

EXIT_OK, EXIT_NODE_FAILED, EXIT_INVALID = 0, 1, 2


class CliError(Exception):
    """A user mistake on the command line or in the workflow: printed, exit 2."""


class PreviewWriter:
    """Writes every sampler step's preview as a PNG (``node5_step007.png``) and, on request,
    each sampler's denoising as an animated GIF (``node5_denoising.gif``)."""

    #: Previews are at latent resolution (64×64 for a 512² SD image): enlarge them to this.
    MIN_SIDE = 256

    def __init__(self, folder: Path, animation: bool) -> None:
        self.folder, self.animation = folder, animation
        self.frames: dict[int, list[Any]] = {}

    def add(self, node_id: int, payload: Any) -> None:
        from PIL import Image

        from core.diffusion import images

        step = getattr(payload, "step", len(self.frames.get(node_id, ())) + 1)
        picture = images.to_pil(getattr(payload, "image", payload)[0])
        scale = max(1, -(-self.MIN_SIDE // max(picture.size)))
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
        self.folder.mkdir(parents=True, exist_ok=True)
        picture.save(self.folder / f"node{node_id}_step{step:03d}.png")
        self.frames.setdefault(node_id, []).append(picture)

    def finish(self) -> list[Path]:
        """Writes the animations; returns every file written."""
        written = sorted(self.folder.glob("node*_step*.png")) if self.folder.exists() else []
        if not self.animation:
            return written
        for node_id, frames in self.frames.items():
            path = self.folder / f"node{node_id}_denoising.gif"
            frames[0].save(path, save_all=True, append_images=frames[1:], duration=120, loop=0)
            written.append(path)
        return written


def _registry(model_roots: Sequence[Path] = (), announce: bool = True) -> Any:
    """The node registry, its loaders searching ``model_roots`` before the default roots, with
    the node packs not disabled by ``$LATENTLOOM_DISABLED_PACKS``; with ``announce``, each
    pack that failed to load is named on stderr."""
    from core.diffusion.model_paths import ModelPaths
    from nodes import build_registry, default_model_roots
    from nodes.packs import disabled_from_environment, failures

    registry = build_registry(
        ModelPaths.of(*default_model_roots(model_roots)), disabled_from_environment()
    )
    for line in failures(registry.packs) if announce else ():
        print(f"warning: {line}", file=sys.stderr)
    return registry


def _load(path: str | Path, registry: Any) -> Any:
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


def _apply_overrides(graph: Any, overrides: Sequence[str]) -> None:
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


def _print_problems(problems: Sequence[Any], graph: Any) -> None:
    print(
        f"The workflow is not valid ({len(problems)} problem(s)); nothing was run:", file=sys.stderr
    )
    for problem in problems:
        print(f"  - {problem.message}", file=sys.stderr)


def _run_workflow(
    path: Path,
    out_dir: Path,
    overrides: Sequence[str] = (),
    report_path: Path | None = None,
    device: str = "auto",
    model_roots: Sequence[Path] = (),
    previews: PreviewWriter | None = None,
    preview_vae_every: int = 0,
) -> int:
    from tqdm import tqdm

    from core.engine import Executor, ValidationError, events
    from core.files import atomic_write
    from core.graph.workflow import to_dict

    out_dir = Path(out_dir).resolve()  # printed paths say exactly where the files are
    _check_destinations(out_dir, report_path, previews)
    registry = _registry(model_roots)
    workflow = _load(path, registry)
    _apply_overrides(workflow.graph, overrides)
    executor = Executor(registry)
    bar: Any = None

    def on_event(event: Any) -> None:
        nonlocal bar
        if isinstance(event, events.RunStarted):
            bar = tqdm(total=len(event.node_ids), unit="node", desc="run", leave=False)
        elif isinstance(event, events.Preview) and previews is not None:
            previews.add(event.node_id, event.image)
        elif isinstance(event, events.Progress) and bar is not None:
            bar.set_postfix_str(f"#{event.node_id} step {event.step}/{event.total}")
        elif isinstance(event, (events.NodeFinished, events.NodeFailed, events.NodeSkipped)):
            if bar is not None:
                bar.update(1)
        elif isinstance(event, events.RunFinished) and bar is not None:
            bar.close()

    try:
        report = executor.run(
            workflow.graph,
            on_event=on_event,
            output_dir=out_dir,
            workflow=to_dict(workflow.graph, workflow.view),
            device=device,
            preview_vae_every=preview_vae_every,
        )
    except ValidationError as exc:
        if bar is not None:
            bar.close()
        _print_problems(exc.problems, workflow.graph)
        return EXIT_INVALID
    failed_report = False
    if report_path is not None:
        try:
            atomic_write(report_path, report.to_json().encode("utf-8"))
        except OSError as exc:
            print(
                f"error: --report {report_path}: cannot be written ({exc.strerror or exc})",
                file=sys.stderr,
            )
            report_path = None
            failed_report = True
    files = [
        record.value
        for entry in report.entries.values()
        for record in entry.records
        if record.kind == "file"
    ]
    failed = {nid: e for nid, e in report.entries.items() if e.status == "failed"}
    for nid, entry in failed.items():
        print(
            f"node {nid} ({workflow.graph.spec(nid).title}) failed: {entry.message}",
            file=sys.stderr,
        )
    ran = sum(1 for e in report.entries.values() if e.status == "ran")
    cached = sum(1 for e in report.entries.values() if e.status == "cached")
    print(f"{report.status}: {ran} node(s) ran, {cached} cached, in {report.seconds:.2f} s")
    for file in files:
        print(f"wrote {file}")
    if previews is not None:
        written = previews.finish()
        print(f"previews: {len(written)} file(s) in {previews.folder}")
    if report_path is not None:
        print(f"report: {report_path}")
    if failed or report.status != "ok" or failed_report:
        return EXIT_NODE_FAILED
    return EXIT_OK


def _check_destinations(
    out_dir: Path, report_path: Path | None, previews: PreviewWriter | None
) -> None:
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


def _validate(path: Path, model_roots: Sequence[Path] = ()) -> int:
    from core.engine import make_plan, validate_plan

    registry = _registry(model_roots)
    workflow = _load(path, registry)
    plan = make_plan(workflow.graph)
    problems = validate_plan(workflow.graph, plan)
    if problems:
        _print_problems(problems, workflow.graph)
        return EXIT_INVALID
    graph = workflow.graph
    print(
        f"{path}: valid ({len(graph)} nodes, {len(graph.links)} links; a run computes "
        f"{len(plan.order)} of the nodes)"
    )
    return EXIT_OK


def _export(path: Path, fmt: str, out: Path | None = None, model_roots: Sequence[Path] = ()) -> int:
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
    workflow = _load(path, _registry(model_roots))
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


def _describe_nodes(as_json: bool, model_roots: Sequence[Path] = ()) -> int:
    from core.graph.spec import WidgetInput

    registry = _registry(model_roots)
    entries = []
    for spec in sorted(registry, key=lambda s: (s.category, s.type_id)):
        inputs = []
        for inp in spec.inputs:
            item: dict[str, Any] = {"name": inp.name, "type": inp.type}
            if isinstance(inp, WidgetInput):
                item |= {"widget": True, "default": inp.default}
                for key in ("min", "max", "step", "choices_from"):
                    if getattr(inp, key) is not None:
                        item[key] = getattr(inp, key)
                choices = registry.choices(inp)
                if choices is not None:
                    item["choices"] = list(choices)
            else:
                item["optional"] = inp.optional
            inputs.append(item)
        entries.append(
            {
                "type": spec.type_id,
                "title": spec.title,
                "category": spec.category,
                "version": spec.version,
                "output_node": spec.output_node,
                "description": spec.description,
                "inputs": inputs,
                "outputs": [{"name": o.name, "type": o.type} for o in spec.outputs],
            }
        )
        if spec.pack is not None:
            entries[-1]["pack"] = spec.pack
    if as_json:
        print(json.dumps(entries, indent=1))
        return EXIT_OK
    for entry in entries:
        pack = f"  (node pack {entry['pack']})" if "pack" in entry else ""
        print(f"{entry['type']}  [{entry['category']}]  {entry['title']}{pack}")
        for item in entry["inputs"]:
            extra = f" = {item['default']!r}" if item.get("widget") else ""
            print(f"    in   {item['name']}: {item['type']}{extra}")
        for item in entry["outputs"]:
            print(f"    out  {item['name']}: {item['type']}")
    return EXIT_OK


def _describe_packs(as_json: bool) -> int:
    """Lists the installed node packs; exit 1 when one failed to load."""
    from nodes.packs import describe

    reports = _registry(announce=False).packs
    if as_json:
        rows = [{**vars(r), "status": r.status.value} for r in reports]
        print(json.dumps(rows, indent=1))
    else:
        print("\n".join(describe(reports)))
    return EXIT_NODE_FAILED if any(r.status == "failed" for r in reports) else EXIT_OK


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _gui_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("nodeui.app") is not None


def _default(file: str | None, run: bool = False, screenshot: Path | None = None) -> int:
    """No sub-command: the editor when it can open, else a headless run of the workflow.

    ``--screenshot`` always opens the editor, offscreen when there is no display."""
    path = Path(file) if file else DEFAULT_WORKFLOW
    if (_has_display() or screenshot is not None) and _gui_available():
        from nodeui.app import run_app

        return int(run_app(path, run=run, screenshot=screenshot))
    reason = "no display" if not _has_display() else "the editor is not part of this build yet"
    print(f"LatentLoom: {reason}; running {path} headless.")
    return _run_workflow(path, DEFAULT_OUTPUT)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 to switch it off")
    return value


def _folder(text: str) -> Path:
    """A ``--models`` root: a folder that exists (a typo must not be silently searched)."""
    path = Path(text)
    if not path.is_dir():
        reason = "is a file" if path.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"{text} {reason}; give a models folder")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a workflow headless")
    run.add_argument("workflow", type=Path)
    run.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help="output folder")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE_ID.PARAM=VALUE",
        help="override a parameter (repeatable)",
    )
    run.add_argument("--report", type=Path, help="write a JSON run report here")
    run.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    run.add_argument(
        "--previews", type=Path, metavar="DIR", help="write every sampler step's preview here"
    )
    run.add_argument(
        "--animation", action="store_true", help="with --previews: also an animated GIF"
    )
    run.add_argument(
        "--preview-vae-every",
        type=_non_negative,
        default=0,
        metavar="K",
        help="decode the sampler preview with the full VAE every K steps instead of the fast "
        "projection every step (0, the default: never)",
    )
    validate = sub.add_parser("validate", help="check a workflow without running it")
    validate.add_argument("workflow", type=Path)
    nodes = sub.add_parser("nodes", help="list node types")
    nodes_format = nodes.add_mutually_exclusive_group()
    nodes_format.add_argument("--json", action="store_true", help="machine-readable output")
    nodes_format.add_argument(
        "--markdown", action="store_true", help="the node reference (docs/nodes.md) as Markdown"
    )
    packs = sub.add_parser("packs", help="list the installed node packs")
    packs.add_argument("--json", action="store_true", help="machine-readable output")
    export = sub.add_parser("export", help="write a workflow in another tool's format")
    export.add_argument("workflow", type=Path)
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        required=True,
        help="comfyui-api: ComfyUI's API format (what its /prompt endpoint takes)",
    )
    export.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    sweep = _sweep_parser(sub)
    for command in (run, validate, nodes, export, sweep):
        command.add_argument(
            "--models",
            type=_folder,
            action="append",
            default=[],
            metavar="DIR",
            help="a model root (a models/ folder, a ComfyUI or A1111 install); repeatable, "
            "searched before $LATENTLOOM_MODEL_ROOTS, ./models and the shipped demo model",
        )
    gui = sub.add_parser("gui", help="open the editor")
    gui.add_argument("file", nargs="?", help="a workflow or a PNG with one embedded")
    gui.add_argument("--run", action="store_true", help="run the graph once the window opens")
    gui.add_argument(
        "--screenshot",
        type=Path,
        metavar="OUT.png",
        help="save a picture of the window (after the run, with --run) and quit; works "
        "without a display",
    )
    return parser


def _sweep_parser(sub: Any) -> argparse.ArgumentParser:
    sweep = sub.add_parser("sweep", help="run a workflow over axes of values (X/Y grids)")
    sweep.add_argument("workflow", type=Path)
    sweep.add_argument(
        "--axis",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUES",
        help="a list (3,5,7), a range (0..15, 3..9 step 2) or @FILE (one value a line); "
        "repeatable: the first is X, the second Y, the third Z",
    )
    sweep.add_argument("--zip", action="store_true", help="pair the axes' values instead")
    sweep.add_argument("--batch-count", type=_positive, default=1, metavar="N")
    sweep.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help="output folder")
    sweep.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    sweep.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help="run on a Ray cluster (needs latentloom[cluster]): auto joins the running one",
    )
    sweep.add_argument("--workers", type=_positive, metavar="N", help="Ray workers to start")
    return sweep


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("give 1 or more")
    return value


def _sweep(args: argparse.Namespace) -> int:
    import functools

    from core.sweep_command import SweepRequest, run_command
    from nodes.cluster import worker_registry

    out = Path(args.out).resolve()
    _check_destinations(out, None, None)
    registry = _registry(args.models)
    workflow = _load(args.workflow, registry)
    factory = functools.partial(worker_registry, tuple(str(p) for p in args.models))
    request = SweepRequest(
        args.axis, args.zip, args.batch_count, out, args.ray, args.workers, args.device
    )
    return run_command(workflow.graph, workflow.view, registry, factory, request)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in:
        return _guarded(lambda: _default(None))
    if args_in[0] not in COMMANDS and not args_in[0].startswith("-"):
        return _guarded(lambda: _default(args_in[0]))
    args = _parser().parse_args(args_in)
    if args.command == "run":
        return _guarded(
            lambda: _run_workflow(
                args.workflow,
                args.out,
                args.set,
                args.report,
                args.device,
                args.models,
                PreviewWriter(args.previews, args.animation) if args.previews else None,
                args.preview_vae_every,
            )
        )
    if args.command == "validate":
        return _guarded(lambda: _validate(args.workflow, args.models))
    if args.command == "nodes" and args.markdown:
        from nodes.reference import markdown_reference

        print(markdown_reference(_registry(args.models)), end="")
        return EXIT_OK
    if args.command == "nodes":
        return _describe_nodes(args.json, args.models)
    if args.command == "packs":
        return _describe_packs(args.json)
    if args.command == "export":
        return _guarded(lambda: _export(args.workflow, args.format, args.out, args.models))
    if args.command == "sweep":
        return _guarded(lambda: _sweep(args))
    return _guarded(lambda: _default(args.file, args.run, args.screenshot))


def _guarded(action: Any) -> int:
    try:
        return int(action())
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
