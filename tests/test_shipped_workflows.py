"""The shipped workflows are what their scripts write, byte for byte, so that a script re-run
after a node spec changes cannot quietly change the sampler, the layout or the ids of a file the
README, the screenshots and the demo model's measured figures rely on."""

from __future__ import annotations

import json

from core.graph.workflow import save_workflow
from tools import make_default_workflow, make_inpaint_workflow


def test_the_default_workflow_is_what_its_script_writes(tmp_path) -> None:
    written = make_default_workflow.write(tmp_path / "default.json")
    assert written.read_bytes() == make_default_workflow.OUTPUT.read_bytes()


def test_the_default_workflow_samples_as_the_demo_model_is_measured(tmp_path) -> None:
    """Read back: Euler on Karras's schedule, guidance only above σ = 1.1, and no VAE link into
    the Empty Latent Image."""
    data = json.loads(make_default_workflow.write(tmp_path / "default.json").read_text())
    nodes = {node["type"]: node for node in data["nodes"]}
    sampler = nodes["KSampler"]["params"]
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("euler", "karras")
    assert (sampler["steps"], sampler["cfg"], sampler["seed"]) == (20, 5.0, 0)
    interval = nodes["GuidanceInterval"]
    assert interval["params"] == {"sigma_low": 1.1, "sigma_high": 1000.0}
    assert [interval["id"], "MODEL", nodes["KSampler"]["id"], "model"] in data["links"]
    empty = nodes["EmptyLatentImage"]["id"]
    assert not [link for link in data["links"] if link[2] == empty]
    titles = {node["title"] for node in data["nodes"] if node["type"] == "CLIPTextEncode"}
    assert titles == {"Positive prompt", "Negative prompt"}
    assert data["ui"]["view"] == {}


def test_the_inpaint_workflow_is_what_its_script_writes(tmp_path) -> None:
    """The inpaint example is built from the shipped default workflow."""
    written = tmp_path / "inpaint.json"
    save_workflow(make_inpaint_workflow.build(), written, view=make_inpaint_workflow.VIEW)
    assert written.read_bytes() == make_inpaint_workflow.OUTPUT.read_bytes()
