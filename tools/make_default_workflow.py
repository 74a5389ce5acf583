"""Writes ``resources/workflows/default.json``: text-to-image with the shipped demo model.

    python -m tools.make_default_workflow

Built from the node registry, so the file always matches the current node specs. The
settings are the ones the demo model is evaluated with (``tools/demo_model/evaluate.py``).
"""

from __future__ import annotations

from pathlib import Path

from core.graph.model import Graph
from core.graph.workflow import save_workflow
from nodes import build_registry
from nodes.models import DEMO_CHECKPOINT
from tools.workflow_parts import (
    SamplerSettings,
    add_prompts,
    add_sampling,
    group_prompts,
    link_sampling,
)

OUTPUT = Path(__file__).resolve().parent.parent / "resources" / "workflows" / "default.json"
PROMPT = "a red circle on the left, blue background"
#: The demo model makes 64×64 pictures (its VAE has 4 pixels per latent cell).
SETTINGS = SamplerSettings(size=64, steps=20, cfg=5.0, sampler_name="ddim", scheduler="normal")


def build() -> Graph:
    """The default graph: checkpoint → prompts → empty latent → KSampler → decode → save."""
    graph = Graph(build_registry())
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": DEMO_CHECKPOINT}, pos=(0, 200))
    positive, negative = add_prompts(graph, load, PROMPT, (280, 60), (280, 290))
    run = add_sampling(graph, SETTINGS, ((280, 520), (600, 160), (880, 60), (880, 180)))
    graph.connect(load.id, "MODEL", run.sampler.id, "model")
    graph.connect(load.id, "VAE", run.empty.id, "vae")
    graph.connect(load.id, "VAE", run.decode.id, "vae")
    graph.connect(positive.id, "CONDITIONING", run.sampler.id, "positive")
    graph.connect(negative.id, "CONDITIONING", run.sampler.id, "negative")
    link_sampling(graph, run)
    group_prompts(graph, (positive, negative), (260, 10, 300, 500))
    return graph


def main() -> None:
    save_workflow(build(), OUTPUT, view={"center": [550, 350], "zoom": 0.8})
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
