"""Text-to-image benchmark: LatentLoom's app path against diffusers on one single-file checkpoint.

A random-weight SD 1.5 checkpoint at full size, in the original single-file layout and float16
(``bench/sd15_checkpoint.py``, cached under ``tmp/cache/bench``), is loaded by each system in
a fresh process per measurement (``bench/sampling_worker.py``): LatentLoom through its own
loader and executor on a workflow, diffusers through ``from_single_file`` with the shipped
configs (offline). Measurements alternate between the systems, the order flipping each round,
and each prints load, text encoding, per-step, decode, whole-run and process times and the
process's peak RSS, in float32 and bfloat16. Prints one JSON object with every round, the min
and median per metric and the LatentLoom / diffusers ratios of both. Timings on a shared
machine are noisy: compare ratios, and read the load average printed with them.

``--device cuda`` runs both systems on the GPU in float16 and bfloat16 (the default dtypes
there), each time stamp taken after ``torch.cuda.synchronize``, and adds each process's peak
VRAM (``torch.cuda.max_memory_allocated``) beside its peak RSS. Both keep their default
attention (PyTorch's scaled-dot-product attention). Without a CUDA device it stops with a
message saying so.

    python bench/sampling.py [--quick] [--rounds 3] [--dtypes float32,bfloat16] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "bench" / "sampling_worker.py"
METRICS = (
    "load_s",
    "encode_s",
    "per_step_s",
    "sample_s",
    "decode_s",
    "run_s",
    "process_s",
    "peak_rss_mib",
)
#: Only on a GPU: the peak bytes of tensors on it.
CUDA_METRICS = ("peak_vram_mib",)
DEFAULT_DTYPES = {"cpu": "float32,bfloat16", "cuda": "float16,bfloat16"}


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def measure_once(system: str, checkpoint: Path, options: argparse.Namespace, dtype: str) -> dict:
    """One run of ``system`` in a fresh Python process, with its wall time from launch."""
    command = [sys.executable, str(WORKER), system, str(checkpoint), "--dtype", dtype]
    command += ["--size", str(options.size), "--steps", str(options.steps)]
    command += ["--device", options.device]
    if system == "latentloom":
        command += ["--aux-dtype", options.aux_dtype]
        if options.feature_cache:
            command += ["--feature-cache", options.feature_cache]
    environment = dict(os.environ, HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{system} {dtype} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = round(wall, 3)
    result["loadavg"] = _loadavg()
    return result


def metrics(device: str) -> tuple[str, ...]:
    """The metrics every measurement on ``device`` reports."""
    return METRICS if device == "cpu" else METRICS + CUDA_METRICS


def summarise(rounds: list[dict], device: str = "cpu") -> dict[str, dict[str, float]]:
    """Min and median of every metric over the rounds."""
    return {
        metric: {
            "min": min(r[metric] for r in rounds),
            "median": round(statistics.median(r[metric] for r in rounds), 3),
        }
        for metric in metrics(device)
    }


def cuda_problem() -> str | None:
    """Why ``--device cuda`` cannot run here, or None when it can."""
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        why = f"torch {torch.__version__} is built without CUDA"
    else:
        why = f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU"
    return f"--device cuda: no CUDA device ({why}); run without --device for the CPU"


def _machine(device: str) -> str:
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    if device == "cpu":
        return cpu
    import torch

    return f"{torch.cuda.get_device_name()} (torch {torch.__version__}), {cpu}"


def run(options: argparse.Namespace) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from bench.sd15_checkpoint import checkpoint_path

    checkpoint = checkpoint_path(options.quick)
    results: dict[str, object] = {
        "machine": _machine(options.device),
        "device": options.device,
        "date": time.strftime("%Y-%m-%d"),
        "checkpoint": f"{checkpoint.name} ({checkpoint.stat().st_size / 2**30:.2f} GiB)",
        "size": options.size,
        "steps": options.steps,
        "cfg": 7.0,
        "sampler": "euler",
        "latentloom_vae_clip_dtype": options.aux_dtype,
        "loadavg_start": _loadavg(),
        "note": "shared CPU under other load: compare ratios, not absolutes",
    }
    if options.device != "cpu":
        results["note"] = "GPU times taken after torch.cuda.synchronize; peak VRAM per process"
    systems = ("latentloom", "diffusers")
    for dtype in options.dtypes.split(","):
        rounds: dict[str, list[dict]] = {system: [] for system in systems}
        for number in range(options.rounds):
            order = systems if number % 2 == 0 else systems[::-1]
            for system in order:
                rounds[system].append(measure_once(system, checkpoint, options, dtype))
                print(f"{dtype} round {number} {system}: {rounds[system][-1]}", file=sys.stderr)
        summary = {system: summarise(rounds[system], options.device) for system in systems}
        ratios = {
            metric: {
                which: round(
                    summary["latentloom"][metric][which] / summary["diffusers"][metric][which], 3
                )
                for which in ("min", "median")
            }
            for metric in metrics(options.device)
            if summary["diffusers"][metric]["min"] > 0
        }
        results[dtype] = {"summary": summary, "latentloom_over_diffusers": ratios, "rounds": rounds}
    results["loadavg_end"] = _loadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small model at 128², 2 steps")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where both systems run"
    )
    parser.add_argument(
        "--dtypes", default=None, help="default: float32,bfloat16 (cpu), float16,bfloat16 (cuda)"
    )
    parser.add_argument("--size", type=int, default=None, help="pixels per side (default 512)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default 4)")
    parser.add_argument(
        "--aux-dtype", default="auto", help="LatentLoom's VAE and text encoder precision"
    )
    parser.add_argument(
        "--feature-cache", default="", help="LatentLoom with a Feature Cache: 'interval,depth'"
    )
    options = parser.parse_args()
    if options.device == "cuda" and (problem := cuda_problem()) is not None:
        parser.exit(2, f"{parser.prog}: {problem}\n")
    options.dtypes = options.dtypes or DEFAULT_DTYPES[options.device]
    options.size = options.size or (128 if options.quick else 512)
    options.steps = options.steps or (3 if options.quick else 4)
    print(json.dumps(run(options), indent=2))


if __name__ == "__main__":
    main()
