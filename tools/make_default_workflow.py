"""Writes ``resources/workflows/default.json``: text-to-image with the shipped demo model.

    python -m tools.make_default_workflow

Built from the node registry, so the file always matches the current node specs. The
settings are the ones the demo model is evaluated with (``tools/demo_model/evaluate.py``):
20 Euler steps on Karras's schedule, guidance 5 above σ = 1.1, a 64×64 picture.
"""

from __future__ import annotations

from pathlib import Path

from core.graph.model import Graph
from core.graph.workflow import save_workflow
from nodes import build_registry
from nodes.models import DEMO_CHECKPOINT
from tools.workflow_parts import (
    DEMO_SETTINGS,
    add_guidance_interval,
    add_prompts,
    add_sampling,
    group_prompts,
    link_sampling,
)

OUTPUT = Path(__file__).resolve().parent.parent / "resources" / "workflows" / "default.json"
PROMPT = "a red circle on the left, blue background"
#: No saved view: the editor fits the whole graph into the window it opens in, whatever its size.
VIEW: dict[str, object] = {}


def build() -> Graph:
    """The default graph: checkpoint → guidance interval → KSampler; prompts → KSampler; empty
    latent → KSampler → decode → save.

    Laid out in columns, the Guidance Interval above the prompts, so that the checkpoint's VAE
    link to the decoder runs above the prompts and the sampler and no link passes over a node.
    The Empty Latent Image gets no VAE link: ComfyUI's has no such input, so the file stays
    like its counterpart there. The Guidance Interval is added last so that the nodes keep the
    ids they had before it was added.
    """
    graph = Graph(build_registry())
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": DEMO_CHECKPOINT}, pos=(0, 40))
    positive, negative = add_prompts(graph, load, PROMPT, (300, 186), (300, 350))
    run = add_sampling(graph, DEMO_SETTINGS, ((300, 540), (600, 150), (900, 60), (900, 190)))
    interval = add_guidance_interval(graph, (300, 0))
    graph.connect(load.id, "MODEL", interval.id, "model")
    graph.connect(interval.id, "MODEL", run.sampler.id, "model")
    graph.connect(load.id, "VAE", run.decode.id, "vae")
    graph.connect(positive.id, "CONDITIONING", run.sampler.id, "positive")
    graph.connect(negative.id, "CONDITIONING", run.sampler.id, "negative")
    link_sampling(graph, run)
    # Floats, as the editor wrote them when the layout was made there.
    group_prompts(graph, (positive, negative), (284.0, 140.0, 262.0, 361.0))
    return graph


def write(path: Path = OUTPUT) -> Path:
    """Save the default workflow to ``path`` (the shipped file unless told otherwise)."""
    save_workflow(build(), path, view=VIEW)
    return path


def main() -> None:
    print(f"wrote {write()}")


if __name__ == "__main__":
    main()
