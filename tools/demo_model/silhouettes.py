"""Silhouette hints for the demo ControlNet, drawn from the same scene geometry as its pictures.

A hint is a 64×64 greyscale picture: the object's shape in white (255) on black (0), exactly
where and as large as the object is drawn in the scene, with the same anti-aliased edge. White on
black (not the reverse) because a ControlNet's hint encoder sees zeros where nothing is asked,
so an empty hint gives no control.

Unlike the demo model's scenes, which put an object within 2 px of one of five named places,
control scenes place it anywhere it fits (its box at least ``MARGIN`` px inside the picture):
that is what the prompt cannot say and the silhouette can. Places are split into 8-px tiles and
a quarter of the tiles (``held_out_place``) are never used in training, so evaluation asks for
outlines at places the ControlNet has never drawn an object at.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

from tools.demo_model.scenes import (
    BACKGROUND_COLOURS,
    BACKGROUND_TEMPLATES,
    COLOUR_WORDS,
    COLOURS,
    IMAGE_SIZE,
    OBJECT_COLOURS,
    POSITION_WORDS,
    POSITIONS,
    SHAPE_WORDS,
    SHAPES,
    SIZE_WORDS,
    SIZES,
    Scene,
    SceneObject,
    render,
)

#: Closest a shape's box comes to the picture's edge, in pixels (the judge reads the
#: background from a 2-px border).
MARGIN = 3
#: Side of the tiles that places are held out by, in pixels.
TILE = 8
#: Of every four tiles along a diagonal pattern, the one whose places are held out.
HELD_OUT_TILE = 1
#: Fraction of training captions that also name the nearest of the five places.
PLACE_WORD_FRACTION = 0.5

_SILHOUETTE_BACKGROUND, _SILHOUETTE_FOREGROUND = "black", "white"


def held_out_place(centre: tuple[int, int]) -> bool:
    """Whether a box centre (x, y) lies in a held-out tile: one tile in four, spread over the
    picture in a diagonal pattern so every region keeps some of each."""
    tile_x, tile_y = centre[0] // TILE, centre[1] // TILE
    return (tile_x + 2 * tile_y) % 4 == HELD_OUT_TILE


def centres(size: str) -> range:
    """The box-centre coordinates (x or y) at which a ``size`` shape fits with ``MARGIN``."""
    half = SIZES[size] // 2
    return range(half + MARGIN, IMAGE_SIZE - half - MARGIN + 1)


def nearest_place(centre: tuple[int, int]) -> str:
    """The named place (left, right, top, bottom, centre) nearest to a box centre."""
    x, y = centre
    return min(POSITIONS, key=lambda n: (POSITIONS[n][0] - x) ** 2 + (POSITIONS[n][1] - y) ** 2)


def placed_object(shape: str, colour: str, size: str, centre: tuple[int, int]) -> SceneObject:
    """A scene object whose box is centred on ``centre``: the nearest named place plus an
    offset, so ``scenes.render`` and ``scenes.bounding_box`` draw and measure it unchanged."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {tuple(SIZES)}")
    fits = centres(size)
    if centre[0] not in fits or centre[1] not in fits:
        raise ValueError(
            f"a {size} {shape} centred on {centre} does not fit in the picture; centres must "
            f"lie in {fits.start}..{fits.stop - 1}"
        )
    place = nearest_place(centre)
    anchor = POSITIONS[place]
    offset = (centre[0] - anchor[0], centre[1] - anchor[1])
    return SceneObject(shape=shape, colour=colour, size=size, position=place, offset=offset)


def centre_of(obj: SceneObject) -> tuple[int, int]:
    """The box centre of a scene object, in pixels."""
    anchor = POSITIONS[obj.position]
    return (anchor[0] + obj.offset[0], anchor[1] + obj.offset[1])


def random_control_scene(rng: random.Random, held_out: bool) -> Scene:
    """One object anywhere it fits, at a training place (``held_out`` False) or a held-out
    one, on a background of another colour."""
    while True:
        size = rng.choice(tuple(SIZES))
        centre = (rng.choice(centres(size)), rng.choice(centres(size)))
        if held_out_place(centre) == held_out:
            break
    colour = rng.choice(OBJECT_COLOURS)
    obj = placed_object(rng.choice(SHAPES), colour, size, centre)
    background = rng.choice([c for c in BACKGROUND_COLOURS if c != colour])
    return Scene(background=background, objects=(obj,))


def control_scenes(count: int, seed: int, held_out: bool = False) -> list[Scene]:
    """``count`` single-object control scenes from ``seed``, all at training places or all at
    held-out ones."""
    rng = random.Random(seed)
    return [random_control_scene(rng, held_out) for _ in range(count)]


def silhouette(scene: Scene) -> np.ndarray:
    """The scene's hint: ``[64, 64]`` uint8, its objects white (255) on black (0), edges
    anti-aliased as in the scene itself."""
    white = tuple(replace(obj, colour=_SILHOUETTE_FOREGROUND) for obj in scene.objects)
    drawn = render(Scene(background=_SILHOUETTE_BACKGROUND, objects=white))[..., 0].astype(float)
    low, high = COLOURS[_SILHOUETTE_BACKGROUND][0], COLOURS[_SILHOUETTE_FOREGROUND][0]
    return np.clip(np.round((drawn - low) * 255 / (high - low)), 0, 255).astype(np.uint8)


def silhouette_batch(scenes: list[Scene]) -> np.ndarray:
    """The hints of ``scenes`` as one ``[N, 64, 64]`` uint8 array."""
    return np.stack([silhouette(scene) for scene in scenes])


def control_caption(scene: Scene, rng: random.Random) -> str:
    """A training caption: colour and shape always, size in half the captions, the nearest
    named place in ``PLACE_WORD_FRACTION`` of them, the background in one of the grammar's
    templates. The silhouette, not the caption, says exactly where the object goes."""
    obj = scene.objects[0]
    words = [rng.choice(COLOUR_WORDS[obj.colour]), rng.choice(SHAPE_WORDS[obj.shape])]
    if rng.random() < 0.5:
        words.insert(0, rng.choice(SIZE_WORDS[obj.size]))
    if rng.random() < PLACE_WORD_FRACTION:
        words.append(rng.choice(POSITION_WORDS[obj.position]))
    if rng.random() < 0.7:
        words.insert(0, "a")
    template = rng.choice(BACKGROUND_TEMPLATES)
    return template.format(obj=" ".join(words), bg=rng.choice(COLOUR_WORDS[scene.background]))


def control_prompt(scene: Scene) -> str:
    """The evaluation prompt: colour, shape and background only ("a red circle, blue
    background"); where the object goes and how big it is come from the silhouette alone."""
    obj = scene.objects[0]
    return f"a {obj.colour} {obj.shape}, {scene.background} background"
