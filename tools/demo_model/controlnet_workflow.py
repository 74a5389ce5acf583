"""Writes ``resources/workflows/controlnet.json`` and its hint picture: the demo model steered by
its silhouette ControlNet.

    python -m tools.demo_model.controlnet_workflow

The workflow is the default one (``resources/workflows/default.json``: Euler on Karras's
schedule, 20 steps, guidance 5 above σ = 1.1) with a Load Image of the shipped silhouette, the
ControlNet loaded by name and applied to both prompts. The prompt names colour, shape and
background only; where the object goes comes from the silhouette. The hint's path is relative to
the repository root, where ``python main.py`` is started.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from core.graph.model import Graph, Group
from core.graph.workflow import save_workflow
from nodes import build_registry
from nodes.models import DEMO_CHECKPOINT
from tools.demo_model.components import REPO_ROOT
from tools.demo_model.scenes import Scene
from tools.demo_model.silhouettes import placed_object, silhouette
from tools.demo_model.train_controlnet import CONTROLNET_NAME
from tools.workflow_parts import (
    DEMO_SETTINGS,
    add_guidance_interval,
    add_prompts,
    add_sampling,
    group_prompts,
    link_sampling,
)

OUTPUT = REPO_ROOT / "resources" / "workflows" / "controlnet.json"
#: The hint, relative to the repository root (LoadImage reads paths as given).
HINT = Path("resources") / "hints" / "silhouette-circle.png"
PROMPT = "a red circle, blue background"
#: A big circle up and to the right of the centre: a place none of the five place words names.
HINT_OBJECT = placed_object("circle", "white", "big", (40, 24))
STRENGTH = 1.0
CONTROLNET_FILE = f"{CONTROLNET_NAME}/diffusion_pytorch_model.safetensors"
#: Where the canvas opens: the whole graph in view.
VIEW = {"center": [600, 350], "zoom": 0.8}


def write_hint(path: Path = REPO_ROOT / HINT) -> Path:
    """Draw the shipped hint: ``HINT_OBJECT``'s silhouette as a greyscale PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = silhouette(Scene(background="black", objects=(HINT_OBJECT,)))
    Image.fromarray(picture, mode="L").save(path, optimize=True)
    return path


def build(hint: Path = HINT) -> Graph:
    """checkpoint → guidance interval; prompts → Apply ControlNet (silhouette) → KSampler →
    decode → save."""
    graph = Graph(build_registry())
    load = graph.add_node("LoadCheckpoint", params={"ckpt_name": DEMO_CHECKPOINT}, pos=(0, 40))
    interval = add_guidance_interval(graph, (300, 0))
    positive, negative = add_prompts(graph, load, PROMPT, (300, 186), (300, 350))
    control = graph.add_node(
        "ControlNetLoader", params={"control_net_name": CONTROLNET_FILE}, pos=(0, 520)
    )
    image = graph.add_node(
        "LoadImage", params={"image": hint.as_posix()}, pos=(0, 640), title="Silhouette"
    )
    apply = graph.add_node(
        "ControlNetApplyAdvanced",
        params={"strength": STRENGTH, "start_percent": 0.0, "end_percent": 1.0},
        pos=(600, 300),
    )
    run = add_sampling(graph, DEMO_SETTINGS, ((300, 640), (900, 150), (1200, 60), (1200, 190)))
    graph.connect(load.id, "MODEL", interval.id, "model")
    graph.connect(interval.id, "MODEL", run.sampler.id, "model")
    graph.connect(load.id, "VAE", run.decode.id, "vae")
    graph.connect(positive.id, "CONDITIONING", apply.id, "positive")
    graph.connect(negative.id, "CONDITIONING", apply.id, "negative")
    graph.connect(control.id, "CONTROL_NET", apply.id, "control_net")
    graph.connect(image.id, "IMAGE", apply.id, "image")
    graph.connect(apply.id, "positive", run.sampler.id, "positive")
    graph.connect(apply.id, "negative", run.sampler.id, "negative")
    link_sampling(graph, run)
    group_prompts(graph, (positive, negative), (284, 140, 262, 361))
    graph.add_group(
        Group(2, "Control", frozenset({control.id, image.id}), "#2e4f6b", (-16, 470, 262, 330))
    )
    return graph


def main() -> None:
    write_hint()
    save_workflow(build(), OUTPUT, view=VIEW)
    print(f"wrote {OUTPUT} and {REPO_ROOT / HINT}")


if __name__ == "__main__":
    main()
