"""Load Image's painted mask: the MASK output follows the ``mask`` file when one is set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.engine import Executor, ValidationError
from core.graph.model import Graph
from nodes import build_registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _picture(folder, alpha: bool = False):
    rgba = np.full((6, 8, 4), 200, dtype=np.uint8)
    rgba[..., 3] = 255
    if alpha:
        rgba[:, :2, 3] = 0  # the two left columns transparent
    Image.fromarray(rgba, "RGBA").save(folder / "pic.png")
    return folder / "pic.png"


def _run(registry, params):
    graph = Graph(registry)
    node = graph.add_node("LoadImage", params=params)
    report = Executor(registry).run(graph, [node.id])
    return report, node.id


def test_painted_mask_file_is_the_mask_output(tmp_path, registry):
    picture = _picture(tmp_path, alpha=True)
    painted = np.zeros((6, 8), dtype=np.uint8)
    painted[1:4, 5:8] = 255
    painted[5, 0] = 128
    Image.fromarray(painted, "L").save(tmp_path / "pic.mask.png")
    report, node = _run(registry, {"image": str(picture), "mask": str(tmp_path / "pic.mask.png")})
    assert report.status == "ok"
    mask = report.outputs[node][1]
    assert mask.shape == (1, 6, 8)
    assert torch.allclose(mask[0], torch.from_numpy(painted.astype(np.float32) / 255.0))


def test_without_a_painted_mask_the_transparency_is_the_mask(tmp_path, registry):
    report, node = _run(registry, {"image": str(_picture(tmp_path, alpha=True))})
    mask = report.outputs[node][1][0]
    assert mask[:, :2].eq(1).all() and mask[:, 2:].eq(0).all()


def test_a_missing_mask_file_is_reported_on_the_mask_field(tmp_path, registry):
    picture = _picture(tmp_path)
    with pytest.raises(ValidationError) as raised:
        _run(registry, {"image": str(picture), "mask": str(tmp_path / "gone.mask.png")})
    (problem,) = raised.value.problems
    assert problem.field == "mask" and "gone.mask.png" in problem.message


def test_a_mask_of_another_size_says_both_sizes(tmp_path, registry):
    picture = _picture(tmp_path)
    Image.new("L", (4, 4), 255).save(tmp_path / "small.mask.png")
    report, node = _run(registry, {"image": str(picture), "mask": str(tmp_path / "small.mask.png")})
    assert report.status == "failed"
    entry = report.entries[node]
    message = entry.message
    assert entry.field == "mask"
    assert "4×4" in message and "8×6" in message and "Mask Editor" in message


def test_repainting_the_mask_file_changes_the_cache_key(tmp_path, registry):
    picture = _picture(tmp_path)
    path = tmp_path / "pic.mask.png"
    Image.new("L", (8, 6), 0).save(path)
    graph = Graph(registry)
    node = graph.add_node("LoadImage", params={"image": str(picture), "mask": str(path)})
    executor = Executor(registry)
    first = executor.run(graph, [node.id]).outputs[node.id][1]
    Image.new("L", (8, 6), 255).save(path)
    second = executor.run(graph, [node.id]).outputs[node.id][1]
    assert first.eq(0).all() and second.eq(1).all()
