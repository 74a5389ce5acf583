"""tools/shrink_workflow_image.py: tiny pictures that carry the same workflow bytes."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, PngImagePlugin

from core.graph import png
from tools.shrink_workflow_image import (
    ShrinkError,
    kept_chunks,
    main,
    png_chunks,
    shrink,
    webp_chunks,
)

WORKFLOW = json.dumps({"nodes": [{"id": 1, "type": "KSampler"}], "links": [], "version": 0.4})
PROMPT = json.dumps({"1": {"class_type": "KSampler", "inputs": {}}})


def _png(size=(96, 64), compressed_prompt=False) -> bytes:
    picture = Image.new("RGB", size, (200, 30, 90))
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", PROMPT, zip=compressed_prompt)
    info.add_itxt("workflow", WORKFLOW)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize("compressed", [False, True])
def test_a_png_shrinks_and_keeps_its_text_chunks_byte_for_byte(compressed):
    original = _png(compressed_prompt=compressed)
    small = shrink(original)
    assert kept_chunks(small) == kept_chunks(original)
    assert len(kept_chunks(small)) == 2
    assert png.read_text_chunks(small) == {"prompt": PROMPT, "workflow": WORKFLOW}
    with Image.open(io.BytesIO(small)) as picture:
        assert picture.size == (8, 5)
        assert picture.getpixel((0, 0)) == (200, 30, 90)
    kinds = [kind for kind, _raw in png_chunks(small)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"


def test_a_webp_keeps_its_exif_chunk_byte_for_byte():
    exif = Image.Exif()
    exif[0x010E] = "Workflow:" + WORKFLOW
    exif[0x010F] = "Prompt:" + PROMPT
    buffer = io.BytesIO()
    Image.new("RGB", (40, 80), (10, 120, 250)).save(buffer, "WEBP", exif=exif.tobytes())
    original = buffer.getvalue()
    small = shrink(original, size=8)
    assert [kind for kind, _raw in webp_chunks(small) if kind == b"EXIF"] == [b"EXIF"]
    assert kept_chunks(small) == kept_chunks(original) != []
    with Image.open(io.BytesIO(small)) as picture:
        assert picture.size == (4, 8)
        assert picture.getexif()[0x010E] == "Workflow:" + WORKFLOW


def test_other_files_are_refused():
    with pytest.raises(ShrinkError):
        shrink(b"GIF89a not a png")
    with pytest.raises(ShrinkError):
        shrink(_png()[:200])  # cut short before IEND


def test_the_command_line_writes_the_shrunk_file(tmp_path, capsys):
    source = tmp_path / "workflow.png"
    source.write_bytes(_png())
    assert main([str(source), "--out", str(tmp_path / "small")]) == 0
    written = (tmp_path / "small" / "workflow.png").read_bytes()
    assert png.read_text_chunks(written)["workflow"] == WORKFLOW
    assert len(written) < source.stat().st_size
    assert "workflow.png" in capsys.readouterr().out
