"""Fonts and colours: large text by default, an optional high-contrast palette, and banner colours
that still read when printed or seen by someone who cannot tell red from green (words carry the meaning;
colour only repeats it)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

__all__ = ["BANNER_STYLES", "HIGHLIGHT", "apply_theme", "banner_style", "scaled_font"]

HIGHLIGHT = {"normal": QColor("#ffe066"), "contrast": QColor("#ffff00")}

# (background, text, border) per level; "clock" (this computer's clock is behind the data) is amber with
# a dashed black border, so it never reads as the fresh state or as plain "old".
_BANNER_COLOURS = {
    "amber": ("#ffc533", "#000000", "2px solid #8a5a00"),
    "red": ("#b00020", "#ffffff", "3px solid #000000"),
    "clock": ("#ffc533", "#000000", "3px dashed #000000"),
}

# For a single label (a notice, "nobody is on call").
BANNER_STYLES = {"ok": "", **{level: f"background:{bg}; color:{fg}; border:{border}; padding:6px; font-weight:bold;"
                             for level, (bg, fg, border) in _BANNER_COLOURS.items()}}


def banner_style(level: str, name: str) -> str:
    """The style sheet of a framed banner (object name ``name``) whose labels take its text colour."""
    if level not in _BANNER_COLOURS:
        return ""
    bg, fg, border = _BANNER_COLOURS[level]
    return (f"QFrame#{name} {{ background:{bg}; border:{border}; }} "
            f"QFrame#{name} QLabel {{ color:{fg}; background:transparent; border:none; padding:2px 4px; }}")


def scaled_font(base: QFont, factor: float, bold: bool = False) -> QFont:
    font = QFont(base)
    font.setPointSizeF(max(6.0, base.pointSizeF() * factor))
    font.setBold(bold)
    return font


def _contrast_palette() -> QPalette:
    pal = QPalette()
    black, white, yellow = QColor("#000000"), QColor("#ffffff"), QColor("#ffff00")
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        pal.setColor(group, QPalette.ColorRole.Window, black)
        pal.setColor(group, QPalette.ColorRole.WindowText, white)
        pal.setColor(group, QPalette.ColorRole.Base, black)
        pal.setColor(group, QPalette.ColorRole.AlternateBase, QColor("#1a1a1a"))
        pal.setColor(group, QPalette.ColorRole.Text, white)
        pal.setColor(group, QPalette.ColorRole.Button, black)
        pal.setColor(group, QPalette.ColorRole.ButtonText, white)
        pal.setColor(group, QPalette.ColorRole.Highlight, yellow)
        pal.setColor(group, QPalette.ColorRole.HighlightedText, black)
        pal.setColor(group, QPalette.ColorRole.ToolTipBase, black)
        pal.setColor(group, QPalette.ColorRole.ToolTipText, white)
        pal.setColor(group, QPalette.ColorRole.PlaceholderText, QColor("#cccccc"))
        pal.setColor(group, QPalette.ColorRole.Link, QColor("#80c0ff"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#aaaaaa"))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#aaaaaa"))
    return pal


def _normal_palette() -> QPalette:
    pal = QPalette(QColor("#f4f4f4"))
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        pal.setColor(group, QPalette.ColorRole.Base, QColor("#ffffff"))
        pal.setColor(group, QPalette.ColorRole.Text, QColor("#111111"))
        pal.setColor(group, QPalette.ColorRole.WindowText, QColor("#111111"))
        pal.setColor(group, QPalette.ColorRole.Highlight, QColor("#1f5fbf"))
        pal.setColor(group, QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
        pal.setColor(group, QPalette.ColorRole.AlternateBase, QColor("#eef2f7"))
        pal.setColor(group, QPalette.ColorRole.PlaceholderText, QColor("#666666"))
    return pal


def apply_theme(app: QApplication, point_size: int, high_contrast: bool) -> None:
    """Set the whole application's base font and palette; widgets derive their sizes from it."""
    if "Fusion" in QStyleFactory.keys() and app.style().name().lower() != "fusion":  # noqa: SIM118 - a Qt list
        app.setStyle("Fusion")  # same look on every desktop, and it honours the palette fully
    font = QFont(app.font())
    font.setPointSize(point_size)
    app.setFont(font)
    app.setPalette(_contrast_palette() if high_contrast else _normal_palette())
