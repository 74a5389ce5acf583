"""Workflows in pictures: ComfyUI's WebP outputs (EXIF), JPEGs, and PNGs whose UI workflow was
read out of place while their API prompt names every value."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from core.graph.workflow import WorkflowError
from nodes.interop import SourceFormat, open_bytes, open_workflow
from nodes.interop.exif import image_kind, read_texts
from tests.interop.conftest import FIXTURES, write_png
from tests.interop.test_a1111 import TEXT as A1111_TEXT

UI_TEXT = (FIXTURES / "txt2img_ui04.json").read_text()
API_TEXT = (FIXTURES / "txt2img_api.json").read_text()


def _picture(path: Path, fmt: str, exif: Image.Exif | None = None, frames: int = 1) -> Path:
    """A tiny picture, saved as ComfyUI's savers do: EXIF text tags, optionally animated."""
    first = Image.new("RGB", (16, 16), (30, 90, 160))
    more = [Image.new("RGB", (16, 16), (i * 40, 20, 20)) for i in range(1, frames)]
    options: dict = {"exif": exif} if exif is not None else {}
    if more:
        options |= {"save_all": True, "append_images": more, "duration": 100}
    first.save(path, fmt, **options)
    return path


def _comfy_exif(workflow: str | None = UI_TEXT, prompt: str | None = API_TEXT) -> Image.Exif:
    exif = Image.Exif()
    if prompt is not None:
        exif[0x0110] = "prompt:" + prompt
    if workflow is not None:
        exif[0x010F] = "workflow:" + workflow
    return exif


@pytest.mark.parametrize("frames", [1, 3])
def test_comfyui_webp_opens_its_ui_workflow(registry, tmp_path, frames):
    path = _picture(tmp_path / "ComfyUI_00001_.webp", "WEBP", _comfy_exif(), frames)
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.COMFYUI_UI
    assert result.report.label == "ComfyUI workflow (UI format 0.4) in a WebP"
    graph = result.workflow.graph
    assert len(graph) == 7 and graph.node(7).pos == (413.0, 389.0)


def test_webp_with_only_the_prompt_opens_it(registry, tmp_path):
    path = _picture(tmp_path / "out.webp", "WEBP", _comfy_exif(workflow=None))
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.COMFYUI_API
    assert result.report.container == "webp"


def test_a1111_jpeg_user_comment_opens(registry, tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + A1111_TEXT.encode("utf-16-be")
    path = _picture(tmp_path / "00001.jpg", "JPEG", exif)
    assert read_texts(path.read_bytes())["parameters"] == A1111_TEXT
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.A1111
    assert result.report.summary().startswith("Opened an AUTOMATIC1111 generation parameters")


@pytest.mark.parametrize(("name", "fmt"), [("photo.jpg", "JPEG"), ("plain.webp", "WEBP")])
def test_pictures_without_a_workflow_say_so(registry, tmp_path, name, fmt):
    path = _picture(tmp_path / name, fmt)
    with pytest.raises(WorkflowError, match="carries no workflow") as info:
        open_workflow(path, registry)
    assert str(path) in str(info.value) and ("JPEG" in str(info.value) or "WebP" in str(info.value))


def test_damaged_webp_is_named(registry):
    raw = b"RIFF\x10\x00\x00\x00WEBPVP8 garbage"
    assert image_kind(raw) == "webp"
    with pytest.raises(WorkflowError, match="damaged WebP picture"):
        open_bytes(raw, registry, "broken.webp")


def _shifted_ui() -> str:
    """The default workflow as a ComfyUI whose positional values the importer misreads."""
    data = json.loads(UI_TEXT)
    sampler = next(n for n in data["nodes"] if n["id"] == 3)
    sampler["widgets_values"] = [7, "randomize", "euler", "normal", 2, 8.0, 1.0]
    return json.dumps(data)


def test_png_workflow_read_out_of_place_opens_the_prompt_instead(registry, tmp_path):
    path = write_png(tmp_path / "shifted.png", {"workflow": _shifted_ui(), "prompt": API_TEXT})
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.COMFYUI_API
    graph = result.workflow.graph
    assert graph.node(3).params["steps"] == 2 and graph.node(3).params["sampler_name"] == "euler"
    assert graph.node(7).pos == (413.0, 389.0)  # where the UI workflow put it
    assert "'workflow' text has values out of place" in result.report.warnings[0]
    assert (
        "'prompt' text, which names every value, is opened instead" in (result.report.warnings[0])
    )


def test_png_workflow_out_of_place_without_a_prompt_keeps_it_and_reports(registry, tmp_path):
    path = write_png(tmp_path / "shifted.png", {"workflow": _shifted_ui()})
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.COMFYUI_UI
    assert result.report.misfits


def test_png_workflow_that_fails_says_the_prompt_is_opened_instead(registry, tmp_path):
    path = write_png(tmp_path / "bad.png", {"workflow": "{not json", "prompt": API_TEXT})
    result = open_workflow(path, registry)
    assert result.report.source_format is SourceFormat.COMFYUI_API
    [note] = [w for w in result.report.warnings if "'workflow'" in w]
    assert "not valid JSON" in note and "'prompt' text" in note and "opened instead" in note


def test_image_kind_tells_webp_and_jpeg_by_their_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "JPEG")
    assert image_kind(buffer.getvalue()) == "jpeg"
    assert image_kind(b"{}") is None
