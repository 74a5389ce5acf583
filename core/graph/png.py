"""Reading and writing PNG text chunks without decoding the image (no Pillow, no torch)."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PngError(ValueError):
    pass


def read_text_chunks(data: bytes) -> dict[str, str]:
    """Every tEXt, zTXt and iTXt chunk of a PNG as ``{keyword: text}``."""
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG file")
    out: dict[str, str] = {}
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise PngError("truncated chunk")
        pos += 12 + length
        try:
            if kind == b"tEXt":
                key, _, text = body.partition(b"\0")
                out[key.decode("latin-1")] = text.decode("latin-1")
            elif kind == b"zTXt":
                key, _, rest = body.partition(b"\0")
                out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\0")
                compressed, rest = rest[0], rest[2:]
                _lang, _, rest = rest.partition(b"\0")
                _translated, _, text = rest.partition(b"\0")
                if compressed:
                    text = zlib.decompress(text)
                out[key.decode("latin-1")] = text.decode("utf-8")
        except (zlib.error, UnicodeDecodeError, IndexError) as exc:
            raise PngError(f"bad {kind.decode('latin-1')} chunk: {exc}") from None
        if kind == b"IEND":
            return out
    raise PngError("the file ends before its IEND chunk (truncated)")


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
