"""Picture sizes that are not whole latent cells are refused, never rounded down."""

from __future__ import annotations

import pytest

from core.engine import Executor, validate
from core.graph.model import Graph
from nodes import build_registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.mark.parametrize("type_id", ["EmptyLatentImage", "LatentNoise", "LatentUpscale"])
def test_sizes_off_the_latent_grid_are_problems_pinned_to_their_field(registry, type_id):
    graph = Graph(registry)
    node = graph.add_node(type_id, params={"width": 17, "height": 23}).id
    problems = {(p.node_id, p.field): p.message for p in validate(graph, outputs=[node])}
    assert "17 is not a multiple of 8 (use 16 or 24)" in problems[(node, "width")]
    assert "23 is not a multiple of 8 (use 16 or 24)" in problems[(node, "height")]


def test_sizes_on_the_grid_and_zero_for_upscale_are_accepted(registry):
    graph = Graph(registry)
    empty = graph.add_node("EmptyLatentImage", params={"width": 64, "height": 24}).id
    up = graph.add_node("LatentUpscale", params={"width": 0, "height": 128}).id
    graph.connect(empty, "LATENT", up, "samples")
    assert validate(graph, outputs=[up]) == []


def test_a_linked_size_off_the_grid_fails_the_node_naming_the_field(registry):
    graph = Graph(registry)
    size = graph.add_node("Int", params={"value": 13}).id
    empty = graph.add_node("EmptyLatentImage").id
    graph.connect(size, "INT", empty, "width")
    entry = Executor(registry).run(graph, outputs=[empty]).entries[empty]
    assert (entry.status, entry.field) == ("failed", "width")
    assert "width is 13 pixels, but it must be a multiple of 8" in entry.message
    assert "use 8 or 16" in entry.message


def test_conditioning_areas_off_the_8_pixel_grid_are_refused(registry):
    graph = Graph(registry)
    area = graph.add_node("ConditioningSetArea", params={"width": 13, "x": 12}).id
    problems = {p.field: p.message for p in validate(graph, outputs=[area])}
    assert "13 is not a multiple of 8 (use 8 or 16)" in problems["width"]
    assert "12 is not a multiple of 8 (use 8 or 16)" in problems["x"]


def test_a_linked_area_size_off_the_grid_fails_the_node_on_its_field(registry):
    from core.engine import NodeError

    set_area = registry.get("ConditioningSetArea").function
    with pytest.raises(NodeError) as info:
        set_area(None, conditioning=[], width=64, height=20, x=0, y=0, strength=1.0)
    assert info.value.field == "height" and "multiple of 8" in str(info.value)
