"""The dark theme: a Fusion palette plus ``resources/style/dark.qss``.

Sizes in the style sheet are in ``em``/points or left to the style, so the theme scales with
the font on high-DPI screens; Qt 6 handles device-pixel scaling itself.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

STYLE_SHEET = Path(__file__).resolve().parent.parent / "resources" / "style" / "dark.qss"

_COLORS = {
    QPalette.ColorRole.Window: "#232629",
    QPalette.ColorRole.WindowText: "#dfe2e5",
    QPalette.ColorRole.Base: "#1b1d20",
    QPalette.ColorRole.AlternateBase: "#26292d",
    QPalette.ColorRole.ToolTipBase: "#31363b",
    QPalette.ColorRole.ToolTipText: "#eff0f1",
    QPalette.ColorRole.Text: "#dfe2e5",
    QPalette.ColorRole.Button: "#2c3035",
    QPalette.ColorRole.ButtonText: "#dfe2e5",
    QPalette.ColorRole.BrightText: "#ff5555",
    QPalette.ColorRole.Highlight: "#3d7fd9",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6aa9ff",
    QPalette.ColorRole.PlaceholderText: "#7f868d",
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in _COLORS.items():
        palette.setColor(role, QColor(color))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7177"))
    return palette


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style, the dark palette and the style sheet (missing sheet: palette only)."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    with contextlib.suppress(OSError):
        app.setStyleSheet(STYLE_SHEET.read_text(encoding="utf-8"))
