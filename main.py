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
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodes.cli.common import EXIT_INVALID, EXIT_NODE_FAILED, EXIT_OK, CliError

ROOT = Path(__file__).resolve().parent
DEFAULT_WORKFLOW = ROOT / "resources" / "workflows" / "default.json"
DEFAULT_OUTPUT = Path("output")
COMMANDS = ("run", "validate", "nodes", "packs", "gui", "export", "sweep")
#: The formats ``export`` writes.
EXPORT_FORMATS = ("comfyui-api",)
#: Re-exported: callers and tests read the exit codes from here.
__all__ = ["EXIT_INVALID", "EXIT_NODE_FAILED", "EXIT_OK", "CliError", "main"]


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
    from nodes.cli.run import run_workflow

    return run_workflow(path, DEFAULT_OUTPUT)


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


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from core.engine.allocator import keep_freed_memory

    keep_freed_memory()  # before any thread has allocated from an arena of its own
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in:
        return _guarded(lambda: _default(None))
    if args_in[0] not in COMMANDS and not args_in[0].startswith("-"):
        return _guarded(lambda: _default(args_in[0]))
    args = _parser().parse_args(args_in)
    if args.command == "run":
        from nodes.cli.run import PreviewWriter, run_workflow

        return _guarded(
            lambda: run_workflow(
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
    return _command(args)


def _command(args: argparse.Namespace) -> int:
    """Every sub-command but ``run``, each imported only when asked for."""
    from nodes.cli import catalogue, common, workflows

    if args.command == "validate":
        return _guarded(lambda: workflows.validate(args.workflow, args.models))
    if args.command == "nodes" and args.markdown:
        from nodes.reference import markdown_reference

        print(markdown_reference(common.registry(args.models)), end="")
        return EXIT_OK
    if args.command == "nodes":
        return catalogue.describe_nodes(args.json, args.models)
    if args.command == "packs":
        return catalogue.describe_packs(args.json)
    if args.command == "export":
        return _guarded(lambda: workflows.export(args.workflow, args.format, args.out, args.models))
    if args.command == "sweep":
        from nodes.cli.run import sweep_workflow

        return _guarded(lambda: sweep_workflow(args))
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


def _exit_now(code: int) -> None:
    """Ends the process without the interpreter's teardown. After a run, torch, diffusers and
    transformers are loaded: unloading their thousands of modules and freeing every object one
    by one took 1.1–1.2 s of CPU on the 2-core VM, for nothing, since the outputs are written
    and closed. Output still buffered is flushed first; atexit handlers do not run."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        code = main()
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    if sys.argv[1:2] == ["run"]:
        _exit_now(code)
    sys.exit(code)
