"""Checks of what the window really shows, shared by the offscreen layout tests and the real-screen run.

"On screen in full" is checked the way it is drawn: the label is visible, lies inside the window's width,
is as wide as its text (a label that does not wrap) or as tall as its wrapped text needs (one that does),
and (optionally) lies inside its scrolling page's viewport.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QRect
from PySide6.QtWidgets import QApplication, QLabel, QScrollArea, QWidget

from backup_operator.ui.widgets import ContactRow, ScrollingPage


def _shape(window) -> list:
    return [(w, w.isVisible(), w.geometry()) for w in [window, *window.findChildren(QWidget)]]


def settle(qtbot, window, timeout: int = 10_000) -> None:
    """Run the event loop until the window's layout is at rest, however slow the machine is.

    A fixed wait is not enough: laying out wrapped labels takes several turns of the event loop (a
    scrolling page refits its content on a zero-time timer after each layout request, which asks for
    another layout), and on a loaded machine 50 ms can end in the middle of that. At rest means no
    layout request waiting, no page waiting to refit, and every widget's geometry unchanged over a turn.
    """
    last: list = []

    def at_rest() -> bool:
        nonlocal last
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        QApplication.processEvents()
        pending = any(page._refit.isActive() for page in window.findChildren(ScrollingPage))
        shape = _shape(window)
        still = not pending and shape == last
        last = shape
        return still

    qtbot.waitUntil(at_rest, timeout=timeout)


def rect_in(widget, ancestor) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def shown_in_full(label: QLabel, window, area: QScrollArea | None = None, *, in_view: bool = True) -> None:
    assert label.isVisible(), f"{label.text()!r} is hidden"
    rect = rect_in(label, window)
    assert rect.left() >= 0 and rect.right() < window.width(), f"{label.text()!r} sticks out sideways: {rect}"
    if label.wordWrap():
        need = label.heightForWidth(label.width())
        assert label.height() >= need, f"{label.text()!r} is cut off: {label.height()} px of {need}"
    else:
        need = label.fontMetrics().horizontalAdvance(label.text()) + label.contentsMargins().left() \
            + label.contentsMargins().right()
        assert label.width() >= need - 1, f"{label.text()!r} is elided: {label.width()} px of {need}"
    if area is not None and in_view:
        view = rect_in(area.viewport(), window)
        assert view.contains(rect), f"{label.text()!r} is scrolled out of sight ({rect} not in {view})"


def no_overlap(widgets) -> None:
    shown = [w for w in widgets if w.isVisible()]
    for i, a in enumerate(shown):
        for b in shown[i + 1:]:
            ra, rb = rect_in(a, a.window()), rect_in(b, b.window())
            assert not ra.intersects(rb), f"{type(a).__name__} {ra} overlaps {type(b).__name__} {rb}"


def only_window(window) -> None:
    stray = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w is not window]
    assert stray == [], f"widgets shown as windows of their own: {stray}"



def rows_have_room(window) -> None:
    """Every contact row on screen is at least as tall as it needs: no row squeezed onto the next."""
    for row in window.findChildren(ContactRow):
        if row.isVisible():
            need = max(row.minimumSizeHint().height(), row.heightForWidth(row.width()))
            assert row.height() >= need, f"row {row.value.text()!r} is squeezed: {row.height()} px of {need}"
