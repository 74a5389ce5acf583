"""The shipped inpainting example repaints the masked circle as its prompt asks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.engine import Executor
from nodes import build_registry
from nodes.interop import open_workflow

WORKFLOWS = Path(__file__).resolve().parents[2] / "resources" / "workflows"


def test_inpaint_example_repaints_the_red_circle_green_and_keeps_the_rest():
    registry = build_registry()
    graph = open_workflow(WORKFLOWS / "inpaint.json", registry).workflow.graph
    load = next(n for n in graph if n.type_id == "LoadImage")
    # Named relative to the workflow's folder, opened as full paths wherever the run starts.
    assert Path(load.params["image"]).is_absolute() and Path(load.params["mask"]).is_file()
    decode = next(n.id for n in graph if n.type_id == "VAEDecode")
    report = Executor(registry).run(graph, [decode])
    assert report.status == "ok", report.to_dict()
    result = report.outputs[decode][0][0].numpy() * 255.0

    source = np.asarray(Image.open(load.params["image"]).convert("RGB"), dtype=np.float32)
    painted = np.asarray(Image.open(load.params["mask"])) > 127
    background = np.median(source[0], axis=0)
    red, green = source[..., 0], source[..., 1]
    assert (red > 150).sum() > 100 and (
        green < 110
    ).mean() > 0.95  # the source: a red circle on blue

    inside = result[painted]
    object_pixels = inside[np.abs(inside - background).sum(axis=-1) > 90]
    assert len(object_pixels) > 60, "the masked area holds a new object"
    r, g, b = object_pixels.mean(axis=0)
    assert g > r + 60 and g > b + 20, f"the new object is green, not {r:.0f}, {g:.0f}, {b:.0f}"
    assert ((inside[..., 0] > 150) & (inside[..., 1] < 80)).sum() < 10, "no red is left"

    outside = np.abs(result[~painted] - source[~painted]).mean()
    assert outside < 6.0, f"outside the mask the picture changed by {outside:.1f} on average"
