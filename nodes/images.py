"""Loading, making and saving images."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput
from nodes.outputs import output_name_problems, write_output

PNG_WORKFLOW_KEY = "latentloom"  # the same key core.graph.workflow reads back


def _load_image(ctx: Any, image: str, mask: str = "") -> tuple[Any, Any]:
    from core.diffusion import images, masks
    from core.engine import NodeError

    try:
        picture, alpha_mask = images.load_image(Path(image).expanduser())
    except images.ImageFileError as exc:
        raise NodeError(str(exc), field="image") from None
    if not mask.strip():
        return picture, alpha_mask
    try:
        painted = masks.load_mask(str(Path(mask).expanduser()), "red")
    except images.ImageFileError as exc:
        raise NodeError(str(exc), field="mask") from None
    if painted.shape[1:] != picture.shape[1:3]:
        height, width = picture.shape[1:3]
        raise NodeError(
            f"mask {mask} is {painted.shape[2]}×{painted.shape[1]} pixels but the picture is "
            f"{width}×{height}: paint the mask again in the Mask Editor or clear 'mask'",
            field="mask",
        )
    return picture, painted


def _image_file_problems(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    if "image" in params:  # absent: the path arrives by a link
        path = Path(str(params["image"])).expanduser()
        if not str(params["image"]).strip():
            yield "image", "no image file chosen: set 'image' to the path of a picture"
        elif not path.is_file():
            yield "image", f"image file {path} does not exist: choose an existing file"
    painted = str(params.get("mask", "")).strip()
    if painted and not Path(painted).expanduser().is_file():
        yield (
            "mask",
            f"mask file {Path(painted).expanduser()} does not exist: paint the mask again "
            "in the Mask Editor or clear 'mask'",
        )


def _file_digest(value: object) -> str:
    path = Path(str(value or "")).expanduser()
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def _image_file_digest(params: Mapping[str, Any]) -> str:
    digest = _file_digest(params.get("image", ""))
    painted = str(params.get("mask", "")).strip()
    return f"{digest}+{_file_digest(painted)}" if painted else digest


def _save_image(ctx: Any, images: Any, filename_prefix: str) -> tuple[()]:
    import json

    from core.diffusion import images as imageio

    text = {PNG_WORKFLOW_KEY: json.dumps(ctx.workflow)} if ctx.workflow else {}
    for picture in images:
        data = imageio.png_bytes(picture, text)
        path = write_output(ctx, "filename_prefix", filename_prefix, ".png", data)
        ctx.record("file", str(path))
    ctx.record("images", images)
    return ()


def _preview_image(ctx: Any, images: Any) -> tuple[()]:
    ctx.record("images", images)
    return ()


def _gradient_image(
    ctx: Any, width: int, height: int, start_color: str, end_color: str, direction: str
) -> Any:
    from core.diffusion import images

    return images.gradient(
        width, height, images.parse_color(start_color), images.parse_color(end_color), direction
    )


def _empty_image(ctx: Any, width: int, height: int, batch_size: int, color: int) -> Any:
    from core.diffusion import images

    return images.empty(width, height, batch_size, color)


def _colour_problems(params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for name in ("start_color", "end_color"):
        if name not in params:
            continue  # the colour arrives by a link
        value = str(params[name])
        digits = value.strip().lstrip("#")
        if len(digits) not in (3, 6) or any(c not in "0123456789abcdefABCDEF" for c in digits):
            yield name, f"{value!r} is not a colour: write it like #ff8800"


_SIZE = {"min": 1, "max": 16384, "step": 8}
#: A colour as ComfyUI's colour widgets store it: one 0xRRGGBB integer.
_COLOR = {"min": 0, "max": 0xFFFFFF, "step": 1, "description": "colour as 0xRRGGBB"}

SPECS = (
    NodeSpec(
        "LoadImage",
        "Load Image",
        "image",
        _load_image,
        inputs=(
            WidgetInput("image", t.STRING, "", description="path of the image file"),
            WidgetInput(
                "mask",
                t.STRING,
                "",
                description="path of a painted mask (white = repaint), written by the Mask "
                "Editor as NAME.mask.png beside the picture; empty: the picture's transparency",
            ),
        ),
        outputs=(Output("IMAGE", t.IMAGE), Output("MASK", t.MASK)),
        description="Reads a picture. Its MASK is the mask painted in the Mask Editor (right-click "
        "the node → Open in Mask Editor) or, without one, the picture's transparency "
        "(transparent = repaint).",
        fingerprint=_image_file_digest,
        check=_image_file_problems,
    ),
    NodeSpec(
        "SaveImage",
        "Save Image",
        "image",
        _save_image,
        inputs=(
            SocketInput("images", t.IMAGE, description="the pictures to save (VAE Decode)"),
            WidgetInput(
                "filename_prefix",
                t.STRING,
                "LatentLoom",
                description="file name before the number; 'folder/name' saves in a subfolder",
            ),
        ),
        output_node=True,
        description="Writes PNGs to the output folder with the workflow embedded, so opening "
        "the picture reopens the graph that made it. Each picture gets the next free number "
        "(PREFIX_00001.png, …); no file is ever replaced, and nothing is written outside the "
        "output folder.",
        check=output_name_problems("filename_prefix"),
    ),
    NodeSpec(
        "PreviewImage",
        "Preview Image",
        "image",
        _preview_image,
        inputs=(SocketInput("images", t.IMAGE, description="the pictures to show"),),
        output_node=True,
        description="Shows images without saving them.",
    ),
    NodeSpec(
        "GradientImage",
        "Gradient Image",
        "image",
        _gradient_image,
        inputs=(
            WidgetInput("width", t.INT, 512, **_SIZE),
            WidgetInput("height", t.INT, 512, **_SIZE),
            WidgetInput("start_color", t.STRING, "#1d2b53"),
            WidgetInput("end_color", t.STRING, "#ff77a8"),
            WidgetInput(
                "direction", t.COMBO, "diagonal", choices=("horizontal", "vertical", "diagonal")
            ),
        ),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="A linear colour gradient: a starting image for image-to-image or a test.",
        check=_colour_problems,
    ),
    NodeSpec(
        "EmptyImage",
        "Empty Image",
        "image",
        _empty_image,
        inputs=(
            WidgetInput("width", t.INT, 512, min=1, max=16384, step=1),
            WidgetInput("height", t.INT, 512, min=1, max=16384, step=1),
            WidgetInput("batch_size", t.INT, 1, min=1, max=4096, step=1),
            WidgetInput("color", t.INT, 0, **_COLOR),
        ),
        outputs=(Output("IMAGE", t.IMAGE),),
        description="Pictures of one solid colour: a canvas to paste into, or a plain start "
        "for image-to-image.",
    ),
)
