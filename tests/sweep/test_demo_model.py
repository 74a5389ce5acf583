"""Sweeps on the shipped demo model: a seed × CFG grid loads the checkpoint once and encodes
each prompt once, and ``main.py sweep`` writes the pictures, the grid and the index."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

import main
from core.engine import NodeStarted
from core.engine.sweep import make_sweep, parse_axis
from core.engine.sweep_runs import SweepWorker, run_locally
from core.graph.png import read_text_chunks
from core.graph.workflow import load_workflow
from nodes import build_registry
from nodes.images import PNG_WORKFLOW_KEY

DEFAULT = Path(main.__file__).parent / "resources" / "workflows" / "default.json"
PROMPTS = '2.text="a red circle on the left, blue background","a green square, white background"'

pytestmark = pytest.mark.slow


def test_a_seed_by_cfg_grid_per_prompt_loads_once_and_encodes_each_prompt_once():
    graph = load_workflow(DEFAULT, build_registry()).graph
    graph.set_param(5, "steps", 3)
    axes = [parse_axis(a, graph) for a in ("5.seed=0..3", "5.cfg=3,5,7,9", PROMPTS)]
    plan = make_sweep(graph, axes)
    started: collections.Counter[int] = collections.Counter()

    def count(index: int, event: object) -> None:
        if isinstance(event, NodeStarted):
            started[event.node_id] += 1

    outputs = list(run_locally(plan, SweepWorker(graph.registry, device="cpu"), count))
    assert len(outputs) == 32 and all(o.status == "ok" for o in outputs)
    # Checkpoint #1 once, positive prompt #2 once per prompt, negative prompt #3 once.
    assert (started[1], started[2], started[3]) == (1, 2, 1)
    assert started[5] == 32 and started[7] == 32
    assert sum(o.ran for o in outputs) == plan.stats.distinct_results


def test_main_sweep_writes_pictures_a_grid_and_the_index(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main.main(
        [
            "sweep",
            str(DEFAULT),
            "--axis",
            "5.seed=0,1",
            "--axis",
            PROMPTS,
            "--axis",
            "5.steps=3",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 run(s)" in printed and f"grid: {out / 'grid.png'}" in printed
    index = json.loads((out / "sweep.json").read_text())
    assert [a["name"] for a in index["axes"]] == ["5.seed", "2.text", "5.steps"]
    picture = out / index["runs"][3]["files"][0]
    embedded = json.loads(read_text_chunks(picture.read_bytes())[PNG_WORKFLOW_KEY])
    params = {n["id"]: n["params"] for n in embedded["nodes"]}
    assert (params[5]["seed"], params[5]["steps"]) == (1, 3)
    assert params[2]["text"] == "a green square, white background"
    # Ran once per distinct result: 1 load, 2 + 1 encodes, the guidance patch, the latent,
    # then 4 × (sampler, decode, save).
    assert index["executed"]["ran"] == index["node_executions"]["distinct_results"] == 18


def test_main_sweep_refuses_a_bad_axis_in_one_line(tmp_path, capsys):
    code = main.main(["sweep", str(DEFAULT), "--axis", "5.cfg=3,x", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: axis 5.cfg: 'x' is not a number"
    assert not any(tmp_path.iterdir())
