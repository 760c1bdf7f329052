"""Write a one-page test PDF with no directory data: the kit check's proof that printing will work."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_test_pdf"]

_keep_alive: list = []


def write_test_pdf(target: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QFont, QPageLayout, QPageSize, QPainter, QPdfWriter
    from PySide6.QtWidgets import QApplication

    # A QApplication (not a bare QGuiApplication), so that a window opened later in the same process works.
    if QApplication.instance() is None:
        _keep_alive.append(QApplication([]))
    writer = QPdfWriter(str(target))
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(15, 15, 15, 15)))
    writer.setTitle("Backup Operator kit check")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write a PDF at {target}")
    try:
        painter.setFont(QFont("DejaVu Sans", 14))
        painter.drawText(200, 400, "Backup Operator kit check: PDF output works.")
    finally:
        painter.end()
