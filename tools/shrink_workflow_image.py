"""Shrinks PNG and WebP pictures that carry a workflow to tiny ones that carry the same bytes.

    python tools/shrink_workflow_image.py SOURCE [SOURCE ...] --out FOLDER [--size 8]
    python tools/shrink_workflow_image.py SOURCE --to TARGET.png

The picture itself is redrawn at ``--size`` pixels on its longer side (8 by default); every
metadata chunk that may hold a workflow is copied byte for byte (length, type, data and CRC
for a PNG's ``tEXt``/``zTXt``/``iTXt``/``eXIf``; the whole ``EXIF``/``XMP `` chunk for a WebP),
in its original order. Other chunks (colour profiles, physical size, animation frames) are
dropped. The result is checked before it is written: it must decode, and its metadata chunks
must equal the source's. Used to keep test corpora of workflow images small.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG chunks kept verbatim: where ComfyUI, A1111 and LatentLoom write their text.
PNG_KEPT = (b"tEXt", b"zTXt", b"iTXt", b"eXIf")
#: WebP chunks kept verbatim: ComfyUI writes its workflow into the EXIF chunk.
WEBP_KEPT = (b"EXIF", b"XMP ")
#: VP8X feature flags for the kept chunks.
_WEBP_FLAGS = {b"EXIF": 0x08, b"XMP ": 0x04}


class ShrinkError(ValueError):
    """The file is not a PNG or WebP this tool can shrink."""


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk of a PNG as ``(type, raw bytes of the whole chunk)``, up to IEND."""
    if not data.startswith(PNG_SIGNATURE):
        raise ShrinkError("not a PNG file")
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ShrinkError(f"PNG chunk {kind!r} is cut short")
        yield kind, data[pos:end]
        if kind == b"IEND":
            return
        pos = end
    raise ShrinkError("the PNG ends before its IEND chunk")


def webp_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk of a WebP's RIFF container as ``(type, raw bytes incl. header and pad)``."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ShrinkError("not a WebP file")
    (riff_size,) = struct.unpack("<I", data[4:8])
    stop = min(len(data), 8 + riff_size)
    pos = 12
    while pos + 8 <= stop:
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > stop:
            raise ShrinkError(f"WebP chunk {kind!r} is cut short")
        yield kind, data[pos:end]
        pos = end


def _tiny_picture(data: bytes, size: int) -> Image.Image:
    with Image.open(io.BytesIO(data)) as picture:
        picture.seek(0)
        rgb = picture.convert("RGB")
    scale = size / max(rgb.size)
    shape = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(shape, Image.Resampling.BOX)


def shrink_png(data: bytes, size: int = 8) -> bytes:
    """A tiny PNG with ``data``'s text and EXIF chunks, byte for byte and in their order."""
    chunks = list(png_chunks(data))
    kept_before, kept_after, seen_image = [], [], False
    for kind, raw in chunks:
        if kind == b"IDAT":
            seen_image = True
        elif kind in PNG_KEPT:
            (kept_after if seen_image else kept_before).append(raw)
    buffer = io.BytesIO()
    _tiny_picture(data, size).save(buffer, "PNG", optimize=True)
    tiny = list(png_chunks(buffer.getvalue()))
    header = [raw for kind, raw in tiny if kind == b"IHDR"]
    image = [raw for kind, raw in tiny if kind == b"IDAT"]
    end = [raw for kind, raw in tiny if kind == b"IEND"]
    return b"".join([PNG_SIGNATURE, *header, *kept_before, *image, *kept_after, *end])


def shrink_webp(data: bytes, size: int = 8) -> bytes:
    """A tiny still WebP with ``data``'s EXIF and XMP chunks, byte for byte and in order."""
    kept = [(kind, raw) for kind, raw in webp_chunks(data) if kind in WEBP_KEPT]
    picture = _tiny_picture(data, size)
    buffer = io.BytesIO()
    picture.save(buffer, "WEBP", lossless=True)
    bitstream = [raw for kind, raw in webp_chunks(buffer.getvalue()) if kind in (b"VP8L", b"VP8 ")]
    if len(bitstream) != 1:
        raise ShrinkError("Pillow wrote a WebP without exactly one image chunk")
    flags = 0
    for kind, _raw in kept:
        flags |= _WEBP_FLAGS[kind]
    width, height = picture.size
    canvas = struct.pack("<I", flags) + (width - 1).to_bytes(3, "little")
    canvas += (height - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + struct.pack("<I", len(canvas)) + canvas
    body = b"WEBP" + vp8x + bitstream[0] + b"".join(raw for _kind, raw in kept)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def kept_chunks(data: bytes) -> list[bytes]:
    """The metadata chunks this tool keeps, as raw bytes, in file order."""
    if data.startswith(PNG_SIGNATURE):
        return [raw for kind, raw in png_chunks(data) if kind in PNG_KEPT]
    return [raw for kind, raw in webp_chunks(data) if kind in WEBP_KEPT]


def shrink(data: bytes, size: int = 8) -> bytes:
    """``data`` (a PNG or a WebP) shrunk, checked to decode and to keep its metadata."""
    if data.startswith(PNG_SIGNATURE):
        out = shrink_png(data, size)
        for _kind, raw in png_chunks(out):  # every CRC of the result is right
            body = raw[4:-4]
            if zlib.crc32(body) != struct.unpack(">I", raw[-4:])[0]:
                raise ShrinkError(f"chunk {body[:4]!r} has a wrong CRC")
    elif data[:4] == b"RIFF":
        out = shrink_webp(data, size)
    else:
        raise ShrinkError("neither a PNG nor a WebP file")
    if kept_chunks(out) != kept_chunks(data):
        raise ShrinkError("the metadata chunks changed while shrinking")
    with Image.open(io.BytesIO(out)) as check:
        check.load()
        if max(check.size) > size:
            raise ShrinkError(f"the result is {check.size}, larger than {size} pixels")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="folder for the shrunk files (same names)")
    where.add_argument("--to", type=Path, help="the shrunk file (one source only)")
    parser.add_argument("--size", type=int, default=8, help="pixels on the longer side")
    args = parser.parse_args(argv)
    if args.to is not None and len(args.sources) != 1:
        parser.error("--to takes exactly one source")
    for source in args.sources:
        target = args.to if args.to is not None else args.out / source.name
        try:
            out = shrink(source.read_bytes(), args.size)
        except (ShrinkError, OSError) as exc:
            print(f"{source}: {exc}", file=sys.stderr)
            return 1
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(out)
        print(f"{source} ({source.stat().st_size} bytes) -> {target} ({len(out)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
