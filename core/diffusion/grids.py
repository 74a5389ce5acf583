"""X/Y grid pictures: one picture per cell, labelled columns and rows, drawn with Pillow.

A sweep's runs are laid out with the X axis across and the Y axis down; the grid knows where
each cell lies so that a click on it can find its run. Small pictures (the demo model's 64×64)
are enlarged by a whole factor with nearest-neighbour sampling so that labels stay readable
next to them and no pixel is blurred.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

#: Cells are enlarged until their shorter side is at least this.
MIN_CELL = 128
PAD = 6
FONT_SIZE = 14
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MISSING = (200, 200, 200)
#: The widest the row labels' column may get, in pixels.
MAX_ROW_LABEL = 220


@dataclass(frozen=True)
class GridCell:
    """Where one picture sits in the grid picture: column, row and its box (x, y, w, h)."""

    column: int
    row: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Grid:
    image: Image.Image
    cells: tuple[GridCell, ...]


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def wrap(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels (long words are cut)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while font.getlength(word) > width and len(word) > 1:
                cut = len(word)
                while cut > 1 and font.getlength(word[:cut]) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def compose_grid(
    pictures: Mapping[tuple[int, int], Image.Image | None],
    column_labels: Sequence[str],
    row_labels: Sequence[str] = ("",),
    x_title: str = "",
    y_title: str = "",
    title: str = "",
) -> Grid:
    """The grid picture of ``pictures[(column, row)]`` (None or absent: a grey cell)."""
    font = _font()
    line = int(font.getbbox("Ag")[3]) + 4
    present = [p for p in pictures.values() if p is not None]
    width = max((p.width for p in present), default=64)
    height = max((p.height for p in present), default=64)
    scale = max(1, -(-MIN_CELL // max(1, min(width, height))))
    cell_w, cell_h = width * scale, height * scale
    columns, rows = max(1, len(column_labels)), max(1, len(row_labels))

    column_lines = [wrap(label, font, cell_w - 2 * PAD) for label in column_labels]
    has_rows = any(row_labels)
    corner = [f"X: {x_title}"] if x_title else []
    if y_title and has_rows:
        corner.append(f"Y: {y_title}")
    row_lines = [wrap(label, font, MAX_ROW_LABEL - 2 * PAD) for label in row_labels]
    label_w = max(
        [font.getlength(text) for lines in row_lines for text in lines]
        + [font.getlength(text) for text in corner]
        + [0]
    )
    left = int(min(MAX_ROW_LABEL, label_w + 2 * PAD)) if (has_rows or corner) else PAD
    title_h = line + PAD if title else 0
    header_h = max([len(lines) for lines in column_lines] + [len(corner), 1]) * line + 2 * PAD
    top = title_h + header_h
    canvas = Image.new(
        "RGB", (left + columns * (cell_w + PAD) + PAD, top + rows * (cell_h + PAD)), BACKGROUND
    )
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((PAD, PAD // 2), title, fill=INK, font=font)
    for index, text in enumerate(corner):
        draw.text((PAD, title_h + PAD + index * line), text, fill=INK, font=font)
    for column, lines in enumerate(column_lines):
        x = left + column * (cell_w + PAD)
        for index, text in enumerate(lines):
            offset = (cell_w - font.getlength(text)) / 2
            draw.text((x + offset, title_h + PAD + index * line), text, fill=INK, font=font)
    cells = []
    for row in range(rows):
        y = top + row * (cell_h + PAD)
        if has_rows:
            lines = row_lines[row]
            start = y + (cell_h - len(lines) * line) / 2
            for index, text in enumerate(lines):
                draw.text((PAD, start + index * line), text, fill=INK, font=font)
        for column in range(columns):
            x = left + column * (cell_w + PAD)
            picture = pictures.get((column, row))
            if picture is None:
                draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=MISSING)
                draw.text((x + PAD, y + PAD), "no picture", fill=INK, font=font)
            else:
                picture = picture.convert("RGB")
                if picture.size != (width, height):
                    picture = picture.resize((width, height), Image.LANCZOS)
                canvas.paste(picture.resize((cell_w, cell_h), Image.NEAREST), (x, y))
            cells.append(GridCell(column, row, (x, y, cell_w, cell_h)))
    return Grid(canvas, tuple(cells))
