"""IMAGE operations: scale, crop, flip, rotate, batch, blend, blur, sharpen, quantize, invert."""

from __future__ import annotations

from typing import Any

from core.graph import types as t
from core.graph.spec import NodeSpec, Output, SocketInput, WidgetInput

#: ComfyUI's order: nearest-exact is the default; lanczos runs through Pillow.
UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
CROP_MODES = ("disabled", "center")
BLEND_MODES = ("normal", "multiply", "screen", "overlay", "soft_light", "difference")
DITHERS = ("none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16")
FLIP_METHODS = ("x-axis: vertically", "y-axis: horizontally")
ROTATIONS = ("none", "90 degrees", "180 degrees", "270 degrees")
_IMAGE_OUT = (Output("IMAGE", t.IMAGE),)
_SIZE = {"min": 1, "max": 16384, "step": 1}
_POS = {"min": 0, "max": 16384, "step": 1}


def _image_scale(
    ctx: Any, image: Any, upscale_method: str, width: int, height: int, crop: str
) -> Any:
    from core.diffusion import images

    return images.scale(image, width, height, upscale_method, crop)


def _image_scale_by(ctx: Any, image: Any, upscale_method: str, scale_by: float) -> Any:
    from core.diffusion import images

    height = max(1, round(image.shape[1] * scale_by))
    width = max(1, round(image.shape[2] * scale_by))
    return images.scale(image, width, height, upscale_method, "disabled")


def _scale_to_total_pixels(
    ctx: Any, image: Any, upscale_method: str, megapixels: float, resolution_steps: int
) -> Any:
    from core.diffusion import images

    return images.scale_to_total_pixels(image, upscale_method, megapixels, resolution_steps)


def _image_invert(ctx: Any, image: Any) -> Any:
    return 1.0 - image


def _image_crop(ctx: Any, image: Any, width: int, height: int, x: int, y: int) -> Any:
    from core.diffusion import images

    return images.crop(image, width, height, x, y)


def _image_flip(ctx: Any, image: Any, flip_method: str) -> Any:
    from core.diffusion import images

    return images.flip(image, flip_method)


def _image_rotate(ctx: Any, image: Any, rotation: str) -> Any:
    from core.diffusion import images

    return images.rotate(image, rotation)


def _image_batch(ctx: Any, image1: Any, image2: Any) -> Any:
    from core.diffusion import images

    return images.batch(image1, image2)


def _repeat_batch(ctx: Any, image: Any, amount: int) -> Any:
    return image.repeat(amount, 1, 1, 1)


def _from_batch(ctx: Any, image: Any, batch_index: int, length: int) -> Any:
    from core.diffusion import images

    return images.from_batch(image, batch_index, length)


def _image_size(ctx: Any, image: Any) -> tuple[int, int, int]:
    return int(image.shape[2]), int(image.shape[1]), int(image.shape[0])


def _add_noise(ctx: Any, image: Any, seed: int, strength: float) -> Any:
    from core.diffusion import images

    return images.add_noise(image, seed, strength)


def _image_blend(ctx: Any, image1: Any, image2: Any, blend_factor: float, blend_mode: str) -> Any:
    from core.diffusion import images

    return images.blend(image1, image2, blend_factor, blend_mode)


def _image_blur(ctx: Any, image: Any, blur_radius: int, sigma: float) -> Any:
    from core.diffusion import images

    return images.blur(image, blur_radius, sigma)


def _image_sharpen(ctx: Any, image: Any, sharpen_radius: int, sigma: float, alpha: float) -> Any:
    from core.diffusion import images

    return images.sharpen(image, sharpen_radius, sigma, alpha)


def _image_quantize(ctx: Any, image: Any, colors: int, dither: str) -> Any:
    from core.diffusion import images

    return images.quantize(image, colors, dither)


SPECS = (
    NodeSpec(
        "ImageScale",
        "Upscale Image",
        "image/upscaling",
        _image_scale,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
            WidgetInput("width", t.INT, 512, min=0, max=16384, step=1),
            WidgetInput("height", t.INT, 512, min=0, max=16384, step=1),
            WidgetInput("crop", t.COMBO, "disabled", choices=CROP_MODES),
        ),
        outputs=_IMAGE_OUT,
        description="Resizes images (0 keeps the aspect ratio); center crop avoids stretching.",
    ),
    NodeSpec(
        "ImageScaleBy",
        "Upscale Image By",
        "image/upscaling",
        _image_scale_by,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
            WidgetInput("scale_by", t.FLOAT, 1.0, min=0.01, max=8.0, step=0.01),
        ),
        outputs=_IMAGE_OUT,
        description="Resizes images by a factor.",
    ),
    NodeSpec(
        "ImageScaleToTotalPixels",
        "Scale Image to Total Pixels",
        "image/upscaling",
        _scale_to_total_pixels,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("upscale_method", t.COMBO, "nearest-exact", choices=UPSCALE_METHODS),
            WidgetInput("megapixels", t.FLOAT, 1.0, min=0.01, max=16.0, step=0.01),
            WidgetInput("resolution_steps", t.INT, 1, min=1, max=256, step=1),
        ),
        outputs=_IMAGE_OUT,
        description="Resizes images to about this many million (1024²) pixels, keeping the "
        "aspect ratio, each side a multiple of resolution_steps: brings any picture to the size "
        "a model was trained at before image-to-image (use 8 for whole latent cells).",
    ),
    NodeSpec(
        "ImageCrop",
        "Crop Image",
        "image/transform",
        _image_crop,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("width", t.INT, 512, **_SIZE),
            WidgetInput("height", t.INT, 512, **_SIZE),
            WidgetInput("x", t.INT, 0, **_POS),
            WidgetInput("y", t.INT, 0, **_POS),
        ),
        outputs=_IMAGE_OUT,
        description="Keeps the width × height rectangle whose top-left corner is at (x, y); "
        "parts beyond the picture are left out.",
    ),
    NodeSpec(
        "ImageFlip",
        "Flip Image",
        "image/transform",
        _image_flip,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("flip_method", t.COMBO, FLIP_METHODS[0], choices=FLIP_METHODS),
        ),
        outputs=_IMAGE_OUT,
        description="Mirrors images: x-axis turns them upside down, y-axis swaps left and right.",
    ),
    NodeSpec(
        "ImageRotate",
        "Rotate Image",
        "image/transform",
        _image_rotate,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("rotation", t.COMBO, "none", choices=ROTATIONS),
        ),
        outputs=_IMAGE_OUT,
        description="Turns images clockwise by quarter turns.",
    ),
    NodeSpec(
        "ImageBatch",
        "Batch Images",
        "image",
        _image_batch,
        inputs=(SocketInput("image1", t.IMAGE), SocketInput("image2", t.IMAGE)),
        outputs=_IMAGE_OUT,
        description="Joins two image batches into one; image2 is resized (centre-cropped) to "
        "image1's size if they differ.",
    ),
    NodeSpec(
        "RepeatImageBatch",
        "Repeat Image Batch",
        "image/batch",
        _repeat_batch,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("amount", t.INT, 1, min=1, max=4096, step=1),
        ),
        outputs=_IMAGE_OUT,
        description="Repeats the whole image batch, e.g. to encode one picture for several "
        "image-to-image variations.",
    ),
    NodeSpec(
        "ImageFromBatch",
        "Image From Batch",
        "image/batch",
        _from_batch,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("batch_index", t.INT, 0, min=0, max=4095, step=1),
            WidgetInput("length", t.INT, 1, min=1, max=4096, step=1),
        ),
        outputs=_IMAGE_OUT,
        description="Picks pictures out of a batch: length of them from batch_index on "
        "(clipped to the batch).",
    ),
    NodeSpec(
        "GetImageSize",
        "Get Image Size",
        "image",
        _image_size,
        inputs=(SocketInput("image", t.IMAGE),),
        outputs=(Output("width", t.INT), Output("height", t.INT), Output("batch_size", t.INT)),
        description="The width, height and batch size of images, to drive other nodes' sizes.",
    ),
    NodeSpec(
        "ImageAddNoise",
        "Image Add Noise",
        "image",
        _add_noise,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("seed", t.INT, 0, min=0, max=2**64 - 1, step=1, control_after_run=True),
            WidgetInput("strength", t.FLOAT, 0.5, min=0.0, max=1.0, step=0.01),
        ),
        outputs=_IMAGE_OUT,
        description="Adds seeded Gaussian noise (film grain) to images; a picture with some "
        "noise often makes a better image-to-image start.",
    ),
    NodeSpec(
        "ImageBlend",
        "Image Blend",
        "image/postprocessing",
        _image_blend,
        inputs=(
            SocketInput("image1", t.IMAGE),
            SocketInput("image2", t.IMAGE),
            WidgetInput("blend_factor", t.FLOAT, 0.5, min=0.0, max=1.0, step=0.01),
            WidgetInput("blend_mode", t.COMBO, "normal", choices=BLEND_MODES),
        ),
        outputs=_IMAGE_OUT,
        description="Mixes image2 over image1 with a blend mode, as layers in a photo editor: "
        "blend_factor 0 keeps image1, 1 gives the full blend.",
    ),
    NodeSpec(
        "ImageBlur",
        "Image Blur",
        "image/postprocessing",
        _image_blur,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("blur_radius", t.INT, 1, min=1, max=31, step=1),
            WidgetInput("sigma", t.FLOAT, 1.0, min=0.1, max=10.0, step=0.1),
        ),
        outputs=_IMAGE_OUT,
        description="Gaussian blur over a (2·radius + 1)-pixel window; sigma is relative to "
        "the radius (1 = one radius), edges are mirrored.",
    ),
    NodeSpec(
        "ImageSharpen",
        "Image Sharpen",
        "image/postprocessing",
        _image_sharpen,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("sharpen_radius", t.INT, 1, min=1, max=31, step=1),
            WidgetInput("sigma", t.FLOAT, 1.0, min=0.1, max=10.0, step=0.01),
            WidgetInput("alpha", t.FLOAT, 1.0, min=0.0, max=5.0, step=0.01),
        ),
        outputs=_IMAGE_OUT,
        description="Unsharp masking: adds alpha × 10 times the difference from a Gaussian "
        "blur of the given radius and sigma, crisping soft decodes.",
    ),
    NodeSpec(
        "ImageQuantize",
        "Quantize Image",
        "image/postprocessing",
        _image_quantize,
        inputs=(
            SocketInput("image", t.IMAGE),
            WidgetInput("colors", t.INT, 256, min=1, max=256, step=1),
            WidgetInput("dither", t.COMBO, "none", choices=DITHERS),
        ),
        outputs=_IMAGE_OUT,
        description="Reduces each picture to a palette of this many colours, with optional "
        "Floyd–Steinberg or ordered (Bayer) dithering: for pixel-art or poster looks.",
    ),
    NodeSpec(
        "ImageInvert",
        "Invert Image",
        "image",
        _image_invert,
        inputs=(SocketInput("image", t.IMAGE),),
        outputs=_IMAGE_OUT,
        description="1 − each colour value.",
    ),
)
