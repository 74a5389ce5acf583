"""The Compile Model node against the eager UNet on the demo model's default workflow.

One process: the default workflow runs eagerly, then with a Compile Model node (``background``
off, so the first run waits for the compilation of each shape it meets), then both alternate
for ``--rounds`` more seeds. Prints JSON: the first compiled run's sampler seconds (compilation
included: minutes with an empty inductor cache, much less when ``~/.cache/latentloom/inductor``
already holds this model's graphs), the sampler's seconds per step eager and compiled (min and
median over the later rounds) and the picture PSNR of each compiled run against the eager one
of the same seed. Sampling runs on one thread (what LatentLoom picks for the demo's 8×8 latent).

    python bench/compile.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.diffusion import offline  # noqa: E402, F401  (before diffusers/transformers)

# isort: split
import torch  # noqa: E402

DEFAULT = ROOT / "resources" / "workflows" / "default.json"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else round(10 * math.log10(1.0 / mse), 2)


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--freeze", action="store_true", help="the node's freeze_weights (not cached on disk)"
    )
    args = parser.parse_args()

    from core.engine import Executor, events
    from core.graph.workflow import load_workflow
    from nodes import build_registry

    registry = build_registry()
    graphs = {}
    for name in ("eager", "compiled"):
        graph = load_workflow(DEFAULT, registry).graph
        ids = {node.type_id: node.id for node in graph}
        if name == "compiled":
            params = {"background": False, "freeze_weights": args.freeze}
            node = graph.add_node("CompileModel", params=params).id
            link = graph.disconnect(ids["KSampler"], "model")
            graph.connect(link.src, link.src_output, node, "model")
            graph.connect(node, "MODEL", ids["KSampler"], "model")
        graphs[name] = graph
    executor = Executor(registry)
    steps = int(graphs["eager"].node(ids["KSampler"]).params["steps"])

    def run(name: str, seed: int) -> tuple[float, torch.Tensor]:
        graph = graphs[name]
        graph.set_param(ids["KSampler"], "seed", seed)
        found: list[float] = []

        def record(event: object) -> None:
            if isinstance(event, events.NodeFinished) and event.node_id == ids["KSampler"]:
                found.append(event.seconds)

        report = executor.run(graph, [ids["VAEDecode"]], on_event=record, device="cpu")
        assert report.status == "ok", [e.message for e in report.entries.values()]
        return found[0], report.outputs[ids["VAEDecode"]][0]

    results: dict[str, object] = {"loadavg_start": _loadavg(), "steps": steps}
    eager_first, eager_image = run("eager", 0)
    start = time.perf_counter()
    compiled_first, compiled_image = run("compiled", 0)
    results["first_run_sampler_s"] = {
        "eager": round(eager_first, 3),
        "compiled_with_compilation": round(compiled_first, 3),
    }
    results["first_compiled_run_wall_s"] = round(time.perf_counter() - start, 3)
    psnrs = [_psnr(compiled_image, eager_image)]
    per_step: dict[str, list[float]] = {"eager": [], "compiled": []}
    for number in range(args.rounds):
        images = {}
        for name in ("eager", "compiled") if number % 2 == 0 else ("compiled", "eager"):
            seconds, images[name] = run(name, 1 + number)
            per_step[name].append(seconds / steps)
        psnrs.append(_psnr(images["compiled"], images["eager"]))
    results["s_per_step"] = {
        name: {"min": round(min(v), 4), "median": round(statistics.median(v), 4)}
        for name, v in per_step.items()
    }
    results["speedup_of_medians"] = round(
        statistics.median(per_step["eager"]) / statistics.median(per_step["compiled"]), 2
    )
    results["picture_psnr_db_compiled_vs_eager"] = psnrs
    results["loadavg_end"] = _loadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
