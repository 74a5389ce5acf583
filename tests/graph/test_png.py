"""PNG text chunks are read within limits, whatever the file claims."""

from __future__ import annotations

import io
import struct
import zlib

import pytest

from core.graph import png


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return struct.pack(">I", len(body)) + kind + body + crc


def _png(*chunks: bytes) -> bytes:
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    pixels = _chunk(b"IDAT", zlib.compress(b"\0\0"))
    return png.SIGNATURE + header + pixels + b"".join(chunks) + _chunk(b"IEND", b"")


def _ztxt(key: str, text: bytes) -> bytes:
    return _chunk(b"zTXt", key.encode() + b"\0\0" + zlib.compress(text, 9))


def test_a_compressed_chunk_that_inflates_past_the_limit_is_refused():
    bomb = _png(_ztxt("workflow", bytes(png.MAX_TEXT_BYTES + 1)))
    assert len(bomb) < 100_000
    with pytest.raises(png.PngError, match="'workflow' inflates past the 32 MB"):
        png.read_text_chunks(bomb)


def test_compressed_itxt_is_limited_too():
    body = b"big\0\x01\x00\0\0" + zlib.compress(bytes(png.MAX_TEXT_BYTES + 1), 9)
    with pytest.raises(png.PngError, match="'big' inflates past"):
        png.read_text_chunks(_png(_chunk(b"iTXt", body)))


def test_the_limit_holds_for_all_text_chunks_together():
    half = bytes(png.MAX_TEXT_BYTES // 2 + 1)
    with pytest.raises(png.PngError, match="'b' inflates past the 32 MB"):
        png.read_text_chunks(_png(_ztxt("a", half), _ztxt("b", half)))


def test_too_many_text_chunks_are_refused():
    many = [_chunk(b"tEXt", f"k{i}\0v".encode()) for i in range(png.MAX_TEXT_CHUNKS + 1)]
    with pytest.raises(png.PngError, match="more than 256 text chunks"):
        png.read_text_chunks(_png(*many))
    with pytest.raises(png.PngError, match="more than 256 text chunks"):
        png.text_chunks_only(io.BytesIO(_png(*many)[len(png.SIGNATURE) :]))


def test_a_cut_short_compressed_chunk_is_reported():
    body = b"k\0\0" + zlib.compress(b"some text" * 50)[:-10]
    with pytest.raises(png.PngError, match="'k' is cut short"):
        png.read_text_chunks(_png(_chunk(b"zTXt", body)))


def test_text_chunks_only_skips_the_picture_and_keeps_the_text():
    data = png.add_text_chunk(_png(_chunk(b"IDAT", bytes(10_000))), "latentloom", "{}")
    file = io.BytesIO(data)
    file.read(len(png.SIGNATURE))
    kept = png.text_chunks_only(file)
    assert b"IDAT" not in kept and len(kept) < 100
    assert png.read_text_chunks(kept) == png.read_text_chunks(data) == {"latentloom": "{}"}
    with pytest.raises(png.PngError, match="truncated"):
        png.text_chunks_only(io.BytesIO(data[len(png.SIGNATURE) : 60]))


def test_an_uncompressed_chunk_counts_towards_the_limit():
    text = _chunk(b"tEXt", b"t\0" + bytes(png.MAX_TEXT_BYTES // 2 + 1))
    with pytest.raises(png.PngError, match="'t' goes past the 32 MB"):
        png.read_text_chunks(_png(_ztxt("a", bytes(png.MAX_TEXT_BYTES // 2)), text))
