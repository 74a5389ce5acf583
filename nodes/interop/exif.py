"""Workflows carried in the EXIF data of WebP and JPEG pictures.

ComfyUI's WebP savers (still and animated) write each piece of metadata as one EXIF text tag
of the first image directory, ``"<key>:<json>"``: the API prompt in 0x0110 (Model) as
``prompt:…``, the UI workflow in 0x010F (Make) as ``workflow:…`` and any further keys in the
tags below it. AUTOMATIC1111 writes its ``parameters`` text into the Exif UserComment (0x9286).
"""

from __future__ import annotations

import io
from typing import Any

#: Where the tags ComfyUI writes start (0x010F, counting down) and the one its prompt takes.
_COMFY_FIRST_TAG, _COMFY_PROMPT_TAG = 0x010F, 0x0110
#: How far below 0x010F ComfyUI's extra keys may go (one tag per key).
_COMFY_TAGS = range(_COMFY_FIRST_TAG - 16, _COMFY_PROMPT_TAG + 1)
_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286
#: The character-code prefixes of an EXIF UserComment.
_COMMENT_CODES = {b"UNICODE\0": "utf-16-be", b"ASCII\0\0\0": "ascii", b"\0" * 8: "utf-8"}


def image_kind(raw: bytes) -> str | None:
    """ "webp" or "jpeg" when ``raw`` starts like one, else None."""
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    if raw[:3] == b"\xff\xd8\xff":
        return "jpeg"
    return None


def read_texts(raw: bytes) -> dict[str, str]:
    """The workflow texts a WebP or JPEG carries, by key ("workflow", "prompt",
    "parameters"); empty when it carries none. Raises ``ValueError`` for a damaged picture."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as picture:
            exif = picture.getexif()
            comment = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    texts: dict[str, str] = {}
    for tag in _COMFY_TAGS:
        value = _text(exif.get(tag))
        key, sep, rest = value.partition(":")
        if sep and key in ("workflow", "prompt") and rest.lstrip().startswith("{"):
            texts.setdefault(key, rest)
    comment_text = _user_comment(comment)
    if comment_text.strip():
        texts["parameters"] = comment_text
    return texts


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\0")
    return value if isinstance(value, str) else ""


def _user_comment(value: Any) -> str:
    """An EXIF UserComment's text: eight bytes naming the encoding, then the text."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        return ""
    encoding = _COMMENT_CODES.get(value[:8])
    if encoding is None:
        return value.decode("utf-8", "replace").rstrip("\0")
    return value[8:].decode(encoding, "replace").rstrip("\0")
