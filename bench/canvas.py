"""Canvas benchmark: opening a 1,000-node workflow and repainting the view.

Builds a workflow of 100 chains of ten real node types (loader → prompts → latent → sampler
→ decode → image ops → save, all linked), saves it as a file, then times:

- ``open_s``: ``load_workflow`` + building the scene + the first shown, painted frame
  (target < 1 s);
- ``repaint_100_ms``: a full repaint of the viewport at 100 % zoom, median of 20
  (target < 16 ms), and the same rendered into a ``QImage``;
- ``repaint_all_visible_ms``: the whole graph in view (10 % zoom, simplified drawing);
- the baseline, in the same run: the 100 % repaint with node caching turned off.

Runs offscreen (raster). Prints one JSON object. On a shared machine timings are noisy.

    python bench/canvas.py [--nodes 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtGui import QImage, QPainter, QUndoStack
from PySide6.QtWidgets import QApplication, QGraphicsItem

from core.graph.model import Graph
from core.graph.spec import NodeRegistry
from core.graph.workflow import load_workflow, save_workflow
from nodes import build_registry
from nodeui.canvas import GraphScene, GraphView

#: One chain: (type id, links into it as (offset of the source in the chain, output, input)).
CHAIN: tuple[tuple[str, tuple[tuple[int, str, str], ...]], ...] = (
    ("LoadCheckpoint", ()),
    ("CLIPTextEncode", ((0, "CLIP", "clip"),)),
    ("CLIPTextEncode", ((0, "CLIP", "clip"),)),
    ("EmptyLatentImage", ()),
    (
        "KSampler",
        (
            (0, "MODEL", "model"),
            (1, "CONDITIONING", "positive"),
            (2, "CONDITIONING", "negative"),
            (3, "LATENT", "latent_image"),
        ),
    ),
    ("VAEDecode", ((4, "LATENT", "samples"), (0, "VAE", "vae"))),
    ("ImageInvert", ((5, "IMAGE", "image"),)),
    ("ImageScaleBy", ((6, "IMAGE", "image"),)),
    ("ImageToMask", ((7, "IMAGE", "image"),)),
    ("SaveImage", ((7, "IMAGE", "images"),)),
)
COLUMN_WIDTH, ROW_HEIGHT = 270.0, 460.0
#: Chains side by side, so that the whole graph fits the view at the smallest zoom.
CHAINS_PER_ROW = 5


def build_workflow(registry: NodeRegistry, count: int) -> Graph:
    """``count`` nodes (rounded to whole chains), each chain on its own row, all linked."""
    graph = Graph(registry)
    chains = max(1, count // len(CHAIN))
    for c in range(chains):
        ids = []
        for i, (type_id, links) in enumerate(CHAIN):
            left = (c % CHAINS_PER_ROW) * (len(CHAIN) * COLUMN_WIDTH + 200.0)
            x, y = left + i * COLUMN_WIDTH, (c // CHAINS_PER_ROW) * ROW_HEIGHT + (i % 3) * 40.0
            node = graph.add_node(type_id, pos=(x, y))
            ids.append(node.id)
            for src, output, input_name in links:
                graph.connect(ids[src], output, node.id, input_name)
    return graph


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    registry = build_registry()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.json"
        save_workflow(build_workflow(registry, args.nodes), path)

        start = time.perf_counter()
        workflow = load_workflow(path, registry)
        loaded = time.perf_counter()
        scene = GraphScene(workflow.graph, registry, QUndoStack())
        built = time.perf_counter()
        view = GraphView(scene)
        view.resize(1600, 1000)
        view.set_view_state({"center": [800.0, 500.0], "zoom": 1.0})
        view.show()
        view.viewport().repaint()
        app.processEvents()
        shown = time.perf_counter()

    viewport = view.viewport()
    visible = sum(
        1
        for item in scene.nodes.values()
        if view.visible_scene_rect().intersects(item.sceneBoundingRect())
    )
    repaint_100 = median_ms(viewport.repaint, args.repeat)
    image = QImage(viewport.size(), QImage.Format.Format_ARGB32_Premultiplied)

    def render() -> None:
        painter = QPainter(image)
        view.render(painter)
        painter.end()

    render_100 = median_ms(render, args.repeat)
    view.frame_all()
    all_visible = sum(
        1
        for item in scene.nodes.values()
        if view.visible_scene_rect().contains(item.sceneBoundingRect())
    )
    viewport.repaint()
    zoomed_out = median_ms(viewport.repaint, args.repeat)
    zoom_out = view.zoom()
    view.set_zoom(1.0)
    view.centerOn(800.0, 500.0)
    for item in scene.nodes.values():
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    baseline = median_ms(viewport.repaint, args.repeat)

    open_s = shown - start
    result = {
        "nodes": len(workflow.graph),
        "links": len(workflow.graph.links),
        "visible_nodes_at_100": visible,
        "viewport": [viewport.width(), viewport.height()],
        "platform": QApplication.platformName(),
        "load_workflow_s": round(loaded - start, 4),
        "build_scene_s": round(built - loaded, 4),
        "open_s": round(open_s, 4),
        "repaint_100_ms": round(repaint_100, 3),
        "render_qimage_100_ms": round(render_100, 3),
        "repaint_all_visible_ms": round(zoomed_out, 3),
        "all_visible": {"zoom": round(zoom_out, 3), "nodes_in_view": all_visible},
        "baseline_repaint_100_nocache_ms": round(baseline, 3),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "targets": {
            "open_s": {"target": 1.0, "pass": open_s < 1.0},
            "repaint_100_ms": {"target": 16.0, "pass": repaint_100 < 16.0},
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
