"""``main.py run`` and ``main.py sweep``: run a workflow headless (once, or over axes of
values), write its outputs and say where they are."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodes.cli import common
from nodes.cli.common import EXIT_INVALID, EXIT_NODE_FAILED, EXIT_OK


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


def run_workflow(
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
    common.check_destinations(out_dir, report_path, previews)
    registry = common.registry(model_roots)
    workflow = common.load_workflow(path, registry)
    common.apply_overrides(workflow.graph, overrides)
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
        common.print_problems(exc.problems, workflow.graph)
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


def sweep_workflow(args: Any) -> int:
    """``main.py sweep``: the parsed arguments' workflow over their axes (see
    ``core.sweep_command``), locally or on a Ray cluster."""
    import functools

    from core.sweep_command import SweepRequest, run_command
    from nodes.cluster import worker_registry

    out = Path(args.out).resolve()
    common.check_destinations(out, None, None)
    registry = common.registry(args.models)
    workflow = common.load_workflow(args.workflow, registry)
    factory = functools.partial(worker_registry, tuple(str(p) for p in args.models))
    request = SweepRequest(
        args.axis, args.zip, args.batch_count, out, args.ray, args.workers, args.device
    )
    return run_command(workflow.graph, workflow.view, registry, factory, request)
