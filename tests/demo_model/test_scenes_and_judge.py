"""The demo model's data and its judge: deterministic scenes, honest hold-out, a judge that
reads the renderer's own ground truth correctly."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tools.demo_model import scenes
from tools.demo_model.judge import (
    ATTRIBUTES,
    accuracy,
    judge,
    largest_component,
    shape_accuracy_by_class,
)


def test_scenes_images_and_captions_are_deterministic_for_a_seed() -> None:
    first, second = scenes.training_scenes(64, seed=7), scenes.training_scenes(64, seed=7)
    assert first == second
    assert np.array_equal(scenes.render_batch(first), scenes.render_batch(second))
    captions_a = [scenes.caption(s, random.Random(3)) for s in first]
    captions_b = [scenes.caption(s, random.Random(3)) for s in second]
    assert captions_a == captions_b
    assert scenes.training_scenes(64, seed=8) != first


def test_training_scenes_follow_the_grammar_and_never_show_a_held_out_combination() -> None:
    held_out = scenes.held_out_triples()
    drawn = scenes.training_scenes(3000, seed=0)
    assert not any(obj.triple in held_out for scene in drawn for obj in scene.objects)
    two = [scene for scene in drawn if len(scene.objects) == 2]
    assert 0.15 < len(two) / len(drawn) < 0.3
    for scene in drawn:
        assert scene.background not in {obj.colour for obj in scene.objects}
        assert len({obj.position for obj in scene.objects}) == len(scene.objects)
    seen = {(obj.shape, obj.colour, obj.size, obj.position) for s in drawn for obj in s.objects}
    assert {shape for shape, *_ in seen} == set(scenes.SHAPES)
    assert {colour for _, colour, *_ in seen} == set(scenes.OBJECT_COLOURS)
    assert {position for *_, position in seen} == set(scenes.POSITIONS)


def test_held_out_combinations_cover_every_attribute_value() -> None:
    held_out = scenes.held_out_triples()
    assert len(held_out) == 16
    assert {shape for shape, _, _ in held_out} == set(scenes.SHAPES)
    assert {colour for _, colour, _ in held_out} == set(scenes.OBJECT_COLOURS)
    assert {position for _, _, position in held_out} == set(scenes.POSITIONS)
    assert ("circle", "red", "left") not in held_out  # the default workflow's prompt is trained
    assert all(s.objects[0].triple in held_out for s in scenes.evaluation_scenes(per_triple=2))


def test_trained_triple_scenes_use_only_combinations_training_shows() -> None:
    held_out = scenes.held_out_triples()
    drawn = scenes.trained_triple_scenes(triples=16, per_triple=3)
    triples = [scene.objects[0].triple for scene in drawn]
    assert len(drawn) == 48 and len(set(triples)) == 16
    assert all(len(scene.objects) == 1 for scene in drawn)
    assert not set(triples) & held_out
    training = scenes.training_scenes(3000, seed=0)
    trained = {obj.triple for scene in training for obj in scene.objects}
    assert set(triples) <= trained
    assert scenes.trained_triple_scenes(triples=16, per_triple=3) == drawn  # seeded


def test_captions_name_every_attribute() -> None:
    scene = scenes.Scene(
        background="blue",
        objects=(scenes.SceneObject("circle", "red", "big", "left"),),
    )
    assert scenes.canonical_caption(scene) == "a big red circle on the left, blue background"
    plain = scenes.canonical_caption(scene, size_word=False)
    assert plain == "a red circle on the left, blue background"  # the default workflow's
    rng = random.Random(0)
    for _ in range(20):
        text = scenes.caption(scene, rng)
        assert "red" in text and "blue" in text and "left" in text
        assert any(word in text for word in scenes.SHAPE_WORDS["circle"])


def test_judge_reads_the_renderers_ground_truth() -> None:
    """Every 3rd of all single-object scenes (on-grid) plus jittered training scenes."""
    exhaustive = list(scenes.all_single_object_scenes())[::3]
    jittered = [s for s in scenes.training_scenes(600, seed=1) if len(s.objects) == 1]
    for group in (exhaustive, jittered):
        totals, _ = accuracy(group, scenes.render_batch(group))
        for name in ATTRIBUTES:
            assert totals[name] >= 0.99, (name, totals)


def test_shape_accuracy_by_class_scores_each_asked_shape_on_its_own() -> None:
    """Squares can fail while circles do not; the per-class score keeps them apart, and a
    shape no scene asked for does not appear."""
    asked = ["square", "square", "circle", "square"]
    group = [
        scenes.Scene("black", (scenes.SceneObject(shape, "red", "big", "centre"),))
        for shape in asked
    ]
    results = [{"shape": right} for right in (True, False, True, False)]
    assert shape_accuracy_by_class(group, results) == {
        "circle": 1.0,
        "square": pytest.approx(1 / 3),
    }


def test_judge_finds_no_object_on_a_plain_background() -> None:
    image = np.zeros((64, 64, 3), dtype=np.uint8) + np.array(scenes.COLOURS["grey"], np.uint8)
    result = judge(image)
    assert result.background == "grey"
    assert result.shape is None and result.colour is None and result.position is None


@pytest.mark.parametrize("shape", scenes.SHAPES)
def test_fill_ratio_separates_the_shapes(shape: str) -> None:
    expected = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}[shape]
    obj = scenes.SceneObject(shape, "yellow", "big", "centre")
    result = judge(scenes.render(scenes.Scene("black", (obj,))))
    assert result.fill_ratio == pytest.approx(expected, abs=0.08)


def test_largest_component_keeps_only_the_biggest_region() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[0:2, 0:2] = True
    mask[4:8, 4:8] = True
    assert largest_component(mask).sum() == 16
