"""Writes ``resources/workflows/default.json``: text-to-image with the shipped demo model.

    python -m tools.make_default_workflow

Built from the node registry, so the file always matches the current node specs. The
settings are the ones the demo model is evaluated with (``tools/demo_model/evaluate.py``).
"""

from __future__ import annotations

from pathlib import Path

from core.graph.model import Graph, Group
from core.graph.workflow import save_workflow
from nodes import build_registry
from nodes.models import DEMO_CHECKPOINT

OUTPUT = Path(__file__).resolve().parent.parent / "resources" / "workflows" / "default.json"
PROMPT = "a red circle on the left, blue background"
#: The demo model makes 64×64 pictures (its VAE has 4 pixels per latent cell).
SIZE = 64
STEPS, CFG, SAMPLER, SCHEDULE = 20, 5.0, "ddim", "normal"


def build() -> Graph:
    """The default graph: checkpoint → prompts → empty latent → KSampler → decode → save."""
    graph = Graph(build_registry())
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": DEMO_CHECKPOINT}, pos=(0, 200))
    positive = graph.add_node(
        "CLIPTextEncode", params={"text": PROMPT}, pos=(280, 60), title="Positive prompt"
    )
    negative = graph.add_node(
        "CLIPTextEncode", params={"text": ""}, pos=(280, 290), title="Negative prompt"
    )
    empty = graph.add_node(
        "EmptyLatentImage", params={"width": SIZE, "height": SIZE}, pos=(280, 520)
    )
    sampler = graph.add_node(
        "KSampler",
        params={
            "seed": 0,
            "steps": STEPS,
            "cfg": CFG,
            "sampler_name": SAMPLER,
            "scheduler": SCHEDULE,
        },
        pos=(600, 160),
    )
    decode = graph.add_node("VAEDecode", pos=(880, 60))
    save = graph.add_node("SaveImage", params={"filename_prefix": "LatentLoom"}, pos=(880, 180))
    for encoder in (positive, negative):
        graph.connect(load.id, "CLIP", encoder.id, "clip")
    graph.connect(load.id, "MODEL", sampler.id, "model")
    graph.connect(load.id, "VAE", empty.id, "vae")
    graph.connect(load.id, "VAE", decode.id, "vae")
    graph.connect(positive.id, "CONDITIONING", sampler.id, "positive")
    graph.connect(negative.id, "CONDITIONING", sampler.id, "negative")
    graph.connect(empty.id, "LATENT", sampler.id, "latent_image")
    graph.connect(sampler.id, "LATENT", decode.id, "samples")
    graph.connect(decode.id, "IMAGE", save.id, "images")
    graph.add_group(
        Group(1, "Prompts", frozenset({positive.id, negative.id}), "#6b5a2e", (260, 10, 300, 500))
    )
    return graph


def main() -> None:
    save_workflow(build(), OUTPUT, view={"center": [550, 350], "zoom": 0.8})
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
