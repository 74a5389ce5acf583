"""Wall time of ``main.py`` commands from launch to exit, each round a fresh Python process.

``run``: ``main.py run`` on the default workflow (the demo model, 20 steps at 64²), with the
run report's seconds per node, so the time splits into start-up before the run, the Load
Checkpoint node (importing torch, diffusers and transformers, then reading the weights), the
prompts, the sampler, the decode and the save, and the exit. ``validate``: ``main.py validate``
on the same file. ``gui``: the editor built and drawn offscreen (``main.py gui --screenshot``).

``--threads N`` adds a variant of ``run`` with ``$LATENTLOOM_CPU_THREADS=N`` (e.g. 2, what
torch picks on a 2-core machine by itself), the variants alternating and their order flipping
each round, so a change of the machine's load hits both alike. Prints JSON: min and median of
each measure, every round's numbers and the load average (1, 5, 15 minutes) around each round.

    python bench/startup.py [--rounds 3] [--commands run,validate,gui] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "resources" / "workflows" / "default.json"
COMMANDS = ("run", "validate", "gui")
#: Report labels of the default workflow's nodes, shortened to what they do.
STAGES = {
    "Load Checkpoint": "load_checkpoint",
    "Positive prompt": "prompts",
    "Negative prompt": "prompts",
    "KSampler": "sampler",
    "VAE Decode": "decode",
    "Save Image": "save",
}


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _argv(command: str, folder: Path) -> list[str]:
    main = [sys.executable, str(ROOT / "main.py")]
    if command == "run":
        report = folder / "report.json"
        return [*main, "run", str(DEFAULT), "--out", str(folder / "out"), "--report", str(report)]
    if command == "validate":
        return [*main, "validate", str(DEFAULT)]
    return [*main, "gui", str(DEFAULT), "--screenshot", str(folder / "window.png")]


def measure(command: str, environment: dict[str, str]) -> dict[str, object]:
    """One fresh process: wall and CPU seconds, the load before, and for ``run`` the stages."""
    with tempfile.TemporaryDirectory(prefix="latentloom-startup-") as name:
        folder = Path(name)
        env = dict(os.environ, HF_HUB_OFFLINE="1", **environment)
        if command == "gui":
            env.setdefault("QT_QPA_PLATFORM", "offscreen")
        load = _loadavg()
        cpu = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(
            _argv(command, folder), capture_output=True, text=True, env=env, cwd=folder
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{command} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        row: dict[str, object] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(_children_cpu() - cpu, 3),
            "loadavg_before": load,
        }
        if command == "run":
            report = json.loads((folder / "report.json").read_text())
            stages: dict[str, float] = {}
            for node in report["nodes"]:
                stage = STAGES.get(node["label"].rsplit(" #", 1)[0], "other_nodes")
                stages[stage] = stages.get(stage, 0.0) + float(node["seconds"])
            row |= {f"{k}_s": round(v, 3) for k, v in stages.items()}
            row["outside_run_s"] = round(wall - float(report["seconds"]), 3)
        return row


def _summary(rows: list[dict[str, object]]) -> dict[str, object]:
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    return {
        k: {
            "min": min(float(r[k]) for r in rows),  # type: ignore[arg-type]
            "median": round(statistics.median(float(r[k]) for r in rows), 3),  # type: ignore[arg-type]
        }
        for k in keys
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commands", default="run,validate,gui")
    parser.add_argument("--threads", type=int, help="also run with $LATENTLOOM_CPU_THREADS=N")
    args = parser.parse_args()
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    unknown = sorted(set(commands) - set(COMMANDS))
    if unknown:
        parser.error(f"--commands: unknown {', '.join(unknown)}; choose from {COMMANDS}")
    variants: dict[str, tuple[str, dict[str, str]]] = {c: (c, {}) for c in commands}
    if args.threads is not None:
        variants[f"run_threads{args.threads}"] = (
            "run",
            {"LATENTLOOM_CPU_THREADS": str(args.threads)},
        )
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in variants}
    for round_index in range(args.rounds):
        order = list(variants)
        if round_index % 2:
            order.reverse()
        for name in order:
            command, environment = variants[name]
            rows[name].append(measure(command, environment))
            print(f"round {round_index + 1} {name}: {rows[name][-1]}", file=sys.stderr)
    print(
        json.dumps(
            {
                "machine": {
                    "cpu": _cpu_model(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "torch": metadata.version("torch"),
                },
                "rounds": args.rounds,
                "results": {
                    name: {"summary": _summary(r), "rounds": r} for name, r in rows.items()
                },
                "loadavg_end": _loadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
