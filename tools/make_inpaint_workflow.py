"""Writes ``resources/workflows/inpaint.json`` and its pictures: inpainting with the demo model.

    python -m tools.make_inpaint_workflow

The picture is the default workflow's own (a red circle on the left, blue background); the
painted mask covers the circle and a margin round it; the workflow repaints what the mask
covers with a green circle and keeps the rest. Pictures live in ``resources/workflows/input``,
the folder a workflow's pictures are kept in, and the workflow names them relative to itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from core.files import atomic_write
from core.graph.model import Graph
from core.graph.workflow import load_workflow, save_workflow
from nodes import build_registry

WORKFLOWS = Path(__file__).resolve().parent.parent / "resources" / "workflows"
OUTPUT = WORKFLOWS / "inpaint.json"
PICTURE = "input/inpaint_circle.png"
MASK = "input/inpaint_circle.mask.png"
PROMPT = "a green circle on the left, blue background"
#: How far (pixels) the painted mask reaches beyond the circle's edge, as a brush would.
MARGIN = 4
#: Where the canvas opens.
VIEW = {"center": [500, 400], "zoom": 0.56}


def render_picture() -> np.ndarray:
    """The default workflow's picture as ``[H, W, 3]`` uint8."""
    from core.engine import Executor

    graph = load_workflow(WORKFLOWS / "default.json", build_registry()).graph
    decode = next(n.id for n in graph if n.type_id == "VAEDecode")
    report = Executor(graph.registry).run(graph, [decode])
    if report.status != "ok":
        raise SystemExit(f"the default workflow failed: {report.to_dict()}")
    image = report.outputs[decode][0][0]
    return (image.clamp(0, 1).mul(255).round().byte().numpy()).astype(np.uint8)


def paint_mask(picture: np.ndarray) -> np.ndarray:
    """White (repaint) over the pixels unlike the background, grown by ``MARGIN``."""
    border = np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])
    background = np.median(border, axis=0)
    distance = np.abs(picture.astype(np.float32) - background).sum(axis=-1)
    shape = Image.fromarray(((distance > 90) * 255).astype(np.uint8))
    grown = shape.filter(ImageFilter.MaxFilter(2 * MARGIN + 1))
    return np.asarray(grown)


def build() -> Graph:
    """The default graph with its empty latent replaced by the picture, encoded and masked."""
    graph = load_workflow(WORKFLOWS / "default.json", build_registry()).graph
    by_type = {node.type_id: node.id for node in graph}
    positive = next(n for n in graph if n.title == "Positive prompt")
    graph.set_param(positive.id, "text", PROMPT)
    graph.remove_node(by_type["EmptyLatentImage"])
    checkpoint, sampler = by_type["LoadCheckpoint"], by_type["KSampler"]
    graph.set_param(by_type["SaveImage"], "filename_prefix", "inpaint")
    load = graph.add_node("LoadImage", params={"image": PICTURE, "mask": MASK}, pos=(0, 540))
    encode = graph.add_node("VAEEncode", pos=(280, 560))
    masked = graph.add_node("SetLatentNoiseMask", pos=(280, 680))
    graph.connect(load.id, "IMAGE", encode.id, "pixels")
    graph.connect(checkpoint, "VAE", encode.id, "vae")
    graph.connect(encode.id, "LATENT", masked.id, "samples")
    graph.connect(load.id, "MASK", masked.id, "mask")
    graph.connect(masked.id, "LATENT", sampler, "latent_image")
    return graph


def _png(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    picture = render_picture()
    (WORKFLOWS / "input").mkdir(exist_ok=True)
    atomic_write(WORKFLOWS / PICTURE, _png(picture))
    atomic_write(WORKFLOWS / MASK, _png(paint_mask(picture)))
    save_workflow(build(), OUTPUT, view=VIEW)
    print(f"wrote {OUTPUT}, {WORKFLOWS / PICTURE} and {WORKFLOWS / MASK}")


if __name__ == "__main__":
    main()
