"""Reading and writing PNG text chunks without decoding the image (no Pillow, no torch).

A PNG comes from anywhere, so reading is bounded: at most ``MAX_TEXT_CHUNKS`` text chunks,
and at most ``MAX_TEXT_BYTES`` of text per chunk and in all, however well a compressed chunk
inflates (a 400 KB chunk of zeros inflates to 800 MB).
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The most text one chunk, and all text chunks together, may hold once inflated.
MAX_TEXT_BYTES = 32 * 1024 * 1024
#: The most text chunks read from one PNG (LatentLoom, ComfyUI and A1111 write one or two).
MAX_TEXT_CHUNKS = 256
TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")
_MB = MAX_TEXT_BYTES // 2**20


class PngError(ValueError):
    pass


def _inflate(data: bytes, budget: int, key: str) -> bytes:
    """``data`` decompressed, refusing to produce more than ``budget`` bytes."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, budget + 1)
    if len(out) > budget or inflater.unconsumed_tail:
        raise PngError(f"text chunk {key!r} inflates past the {_MB} MB of text read from a PNG")
    if not inflater.eof:
        raise PngError(f"text chunk {key!r} is cut short")
    return out


def read_text_chunks(data: bytes) -> dict[str, str]:
    """Every tEXt, zTXt and iTXt chunk of a PNG as ``{keyword: text}``, within the limits."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG file")
    out: dict[str, str] = {}
    pos = len(SIGNATURE)
    left, count = MAX_TEXT_BYTES, 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        start, pos = pos + 8, pos + 12 + length
        if kind == b"IEND":
            return out
        if kind not in TEXT_KINDS:
            continue
        body = data[start : start + length]
        if len(body) != length:
            raise PngError("truncated chunk")
        count += 1
        if count > MAX_TEXT_CHUNKS:
            raise PngError(f"more than {MAX_TEXT_CHUNKS} text chunks, more than LatentLoom reads")
        key, text, size = _text_of(kind, body, left)
        left -= size
        out[key] = text
    raise PngError("the file ends before its IEND chunk (truncated)")


def _text_of(kind: bytes, body: bytes, budget: int) -> tuple[str, str, int]:
    """The keyword, text and size in bytes of one text chunk, refusing text over ``budget``
    bytes."""
    key_bytes, _, rest = body.partition(b"\0")
    key = key_bytes.decode("latin-1")
    try:
        if kind == b"tEXt":
            raw, encoding = rest, "latin-1"
        elif kind == b"zTXt":
            raw, encoding = _inflate(rest[1:], budget, key), "latin-1"
        else:
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, raw = rest.partition(b"\0")
            raw, encoding = (_inflate(raw, budget, key) if compressed else raw), "utf-8"
        if len(raw) > budget:
            raise PngError(f"text chunk {key!r} goes past the {_MB} MB of text read from a PNG")
        return key, raw.decode(encoding), len(raw)
    except (zlib.error, UnicodeDecodeError, IndexError) as exc:
        raise PngError(f"bad {kind.decode('latin-1')} chunk {key!r}: {exc}") from None


def text_chunks_only(file: BinaryIO) -> bytes:
    """A PNG read from ``file`` (positioned just after its signature) with only its text
    chunks and IEND: the picture data is skipped, so a huge image costs no memory."""
    parts = [SIGNATURE]
    count, size = 0, 0
    while True:
        header = file.read(8)
        if len(header) < 8:
            raise PngError("the file ends before its IEND chunk (truncated)")
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            parts.append(header + b"\0\0\0\0")
            return b"".join(parts)
        if kind not in TEXT_KINDS:
            file.seek(length + 4, 1)
            continue
        count, size = count + 1, size + length
        if count > MAX_TEXT_CHUNKS:
            raise PngError(f"more than {MAX_TEXT_CHUNKS} text chunks, more than LatentLoom reads")
        if size > MAX_TEXT_BYTES:
            raise PngError(f"its text chunks hold more than {_MB} MB, more than LatentLoom reads")
        rest = file.read(length + 4)
        if len(rest) != length + 4:
            raise PngError("truncated chunk")
        parts.append(header + rest)


def add_text_chunk(data: bytes, key: str, text: str) -> bytes:
    """The PNG with an iTXt chunk (UTF-8, zlib-compressed) inserted before IEND."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG file")
    body = key.encode("latin-1") + b"\0\x01\x00\0\0" + zlib.compress(text.encode("utf-8"), 9)
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF)
    iend = data.rfind(b"IEND")
    if iend < 4:
        raise PngError("no IEND chunk")
    return data[: iend - 4] + chunk + data[iend - 4 :]
