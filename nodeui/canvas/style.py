"""Colours, metrics, fonts and pens of the canvas, made once and shared by every item.

Items paint with these pre-built objects so that ``paint`` allocates nothing per frame.
Sizes are device-independent pixels; pens that outline are cosmetic so lines stay crisp at
any zoom and device pixel ratio.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen

from core.graph import types as t

# --- socket colours (one per socket type) ---------------------------------------------------

SOCKET_COLORS: dict[str, str] = {
    t.MODEL: "#b39ddb",
    t.CLIP: "#ffd54f",
    t.VAE: "#ef5350",
    t.UPSCALE_MODEL: "#9575cd",
    t.CONDITIONING: "#ffa726",
    t.LATENT: "#f06292",
    t.IMAGE: "#64b5f6",
    t.MASK: "#81c784",
    t.INT: "#4db6ac",
    t.FLOAT: "#aed581",
    t.STRING: "#90a4ae",
    t.BOOLEAN: "#ce93d8",
    t.COMBO: "#90a4ae",
    t.SAMPLER: "#ecb4b4",
    t.SIGMAS: "#cdffcd",
    t.NOISE: "#b0b0b0",
    t.GUIDER: "#66ffff",
    t.CLIP_VISION: "#a8dadc",
    t.CLIP_VISION_OUTPUT: "#ad7452",
    t.STYLE_MODEL: "#c2ffae",
    t.IPADAPTER: "#7fa7d6",
    t.CONTROL_NET: "#00d78d",
    t.GLIGEN: "#c9a0dc",
    t.ANY: "#bdbdbd",
    "ANY": "#bdbdbd",
}

CATEGORY_COLORS: dict[str, str] = {
    "loaders": "#3d5a80",
    "conditioning": "#8a6a2f",
    "sampling": "#7b3f61",
    "latent": "#6a3b7c",
    "image": "#2f6b73",
    "mask": "#3f6e45",
    "primitives": "#4d535c",
    "utils": "#4d535c",
    "missing": "#a32626",
}
DEFAULT_CATEGORY_COLOR = "#4a5160"

BACKGROUND = QColor("#1e1f22")
GRID_MINOR = QColor("#25272b")
GRID_MAJOR = QColor("#2c2e33")
NODE_BODY = QColor("#2b2d31")
NODE_BORDER = QColor("#3a3d43")
SELECTED = "#f0c674"
TEXT = QColor("#dcdfe4")
TEXT_DIM = QColor("#8b9099")
SUBTITLE = QColor(236, 238, 242, 175)  # the second title line, on the category colour
EDITOR_BG = QColor("#1f2024")
EDITOR_FILL = QColor("#3b5b7c")
EDITOR_ACCENT = QColor("#6aa5e0")
BYPASS_TINT = QColor(150, 60, 200, 90)
MUTE_TINT = QColor(30, 30, 34, 150)
ERROR = QColor("#e05252")
ERROR_BG = QColor("#4a1f22")
RUNNING = QColor("#5fb760")
QUEUED = QColor("#6aa5e0")
CACHED = QColor("#7e8796")
LABEL_BG = QColor(20, 21, 24, 210)

# --- metrics --------------------------------------------------------------------------------

TITLE_HEIGHT = 26.0
ROW_HEIGHT = 22.0
ROW_GAP = 2.0
MULTILINE_HEIGHT = 72.0
NODE_WIDTH = 230.0
#: Nodes widen to fit their title up to this width; room beside the title text (the collapse
#: arrow, the run-state label).
MAX_AUTO_WIDTH = 330.0
TITLE_ROOM = 56.0
#: A resized node gets no narrower than this: its fields' names and values stay readable.
MIN_NODE_WIDTH = 160.0
#: The side of the resize grip in the bottom-right corner of nodes and groups.
GRIP_SIZE = 12.0
SUBTITLE_HEIGHT = 14.0
NODE_RADIUS = 6.0
SOCKET_RADIUS = 5.0
PADDING = 8.0
EDITOR_RADIUS = 8.0
IMAGE_AREA = 200.0
WHICH_CHIP_WIDTH = 64.0  # the x_t / x̂₀ chip of a sampler's history row
REROUTE_RADIUS = 7.0
GROUP_TITLE_HEIGHT = 30.0
LOD_SIMPLE = 0.4  # below this zoom nodes draw as coloured boxes with their title only
FAR_TITLE_PX = 12.0  # the on-screen size of a title at those zooms


@cache
def font(point_size: float = 9.0, bold: bool = False) -> QFont:
    """A shared UI font (made on first use, after the QApplication exists)."""
    f = QFont()
    f.setPointSizeF(point_size)
    f.setBold(bold)
    return f


@cache
def metrics(point_size: float = 9.0, bold: bool = False) -> QFontMetricsF:
    return QFontMetricsF(font(point_size, bold))


@cache
def color(name: str) -> QColor:
    return QColor(name)


@cache
def brush(name: str) -> QBrush:
    return QBrush(QColor(name))


@cache
def pen(name: str, width: float = 1.0, cosmetic: bool = True) -> QPen:
    p = QPen(QColor(name), width)
    p.setCosmetic(cosmetic)
    return p


@cache
def socket_color(kind: str) -> QColor:
    return QColor(SOCKET_COLORS.get(kind, SOCKET_COLORS[t.ANY]))


def category_color(category: str) -> QColor:
    return color(CATEGORY_COLORS.get(category.split("/")[0], DEFAULT_CATEGORY_COLOR))


NO_PEN = QPen(Qt.PenStyle.NoPen)
