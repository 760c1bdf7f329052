"""The search result row: name with the matched part highlighted, a second line of context, and the
first number to try on the right, large enough to read across a desk."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from backup_operator.ui.models import RecordRole

__all__ = ["ResultDelegate", "fit_segments", "segments"]

KIND_TAGS = {"schedule": "ON CALL", "department": "DEPT", "location": "PLACE", "service": "SERVICE"}


def segments(text: str, spans) -> list[tuple[str, bool]]:
    """Split ``text`` into (piece, matched) runs; overlapping or unordered spans are merged."""
    marks = [False] * len(text)
    for start, end in spans or ():
        for i in range(max(0, start), min(len(text), end)):
            marks[i] = True
    out: list[tuple[str, bool]] = []
    for ch, mark in zip(text, marks):
        if out and out[-1][1] == mark:
            out[-1] = (out[-1][0] + ch, mark)
        else:
            out.append((ch, mark))
    return out


def fit_segments(text: str, spans, x: int, limit: int, measure: Callable[[str, bool], int],
                 elide: Callable[[str, bool, int], str]) -> tuple[list[tuple[str, bool, int, int]], int]:
    """Lay out ``text``'s (piece, matched) runs from ``x`` up to ``limit``: [(piece, matched, x, width)]
    and where the text ends. A piece that does not fit ends in "…" and nothing follows it, so a row
    never shows a stray character after its elided part ("Campus…", not "Campus1")."""
    out: list[tuple[str, bool, int, int]] = []
    pieces = segments(text, spans)
    for n, (piece, matched) in enumerate(pieces):
        width = measure(piece, matched)
        if x + width > limit:
            short = elide(piece, matched, max(0, limit - x))
            if short.strip("…") or not out:
                if short:
                    out.append((short, matched, x, measure(short, matched)))
                return out, limit
            # No room here even for a letter and "…": end the piece before in "…" instead, so the cut
            # always shows ("— on ca…", never a name that just stops).
            before, before_matched, bx, _ = out.pop()
            rest = before + "".join(p for p, _ in pieces[n:])
            short = elide(rest, before_matched, max(0, limit - bx))
            if short:
                out.append((short, before_matched, bx, measure(short, before_matched)))
            return out, limit
        out.append((piece, matched, x, width))
        x += width
    return out, x


class _Face:
    """A font, its bold underlined variant for matched text, and their metrics (made once, not per row)."""

    __slots__ = ("font", "strong", "metrics", "ascent", "height")

    def __init__(self, font: QFont):
        self.font = font
        self.strong = QFont(font)
        self.strong.setBold(True)
        self.strong.setUnderline(True)
        self.metrics = {False: QFontMetrics(font), True: QFontMetrics(self.strong)}
        self.ascent = self.metrics[False].ascent()
        self.height = self.metrics[False].height()


class ResultDelegate(QStyledItemDelegate):
    """Draws a result row. Every keystroke repaints a screenful of rows, so the fonts and their metrics
    are made once per text size (not per row) and the row's record is read directly, not role by role."""

    def __init__(self, parent=None, *, high_contrast: bool = False):
        super().__init__(parent)
        self.high_contrast = high_contrast
        self._font_key: str | None = None
        self._faces: tuple[_Face, _Face, _Face, QFont, QFontMetrics] | None = None

    def _fonts(self, option: QStyleOptionViewItem) -> tuple[_Face, _Face, _Face, QFont, QFontMetrics]:
        """(name, subtitle, number faces, the kind tag's font and metrics) for the option's font."""
        key = option.font.key()
        if key != self._font_key or self._faces is None:
            base = QFont(option.font)
            name = QFont(base)
            name.setPointSizeF(base.pointSizeF() * 1.15)
            small = QFont(base)
            small.setPointSizeF(base.pointSizeF() * 0.9)
            number = QFont(base)
            number.setPointSizeF(base.pointSizeF() * 1.15)
            number.setBold(True)
            tag = QFont(small)
            tag.setBold(True)
            self._faces = (_Face(name), _Face(small), _Face(number), tag, QFontMetrics(tag))
            self._font_key = key
        return self._faces

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        name, small, *_ = self._fonts(option)
        return QSize(200, name.height + small.height + 14)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        style = opt.widget.style() if opt.widget else None
        opt.text = ""
        if style:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        result = index.data(RecordRole)
        if result is None:
            return
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        pal: QPalette = opt.palette
        fg = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        name_face, small_face, number_face, tag_font, tfm = self._fonts(opt)
        rect = opt.rect.adjusted(8, 5, -8, -5)
        painter.save()
        painter.setClipRect(opt.rect)

        mark = QColor("#ffff00") if self.high_contrast else QColor("#ffe066")
        mark_pen = QColor("#000000")
        if self.high_contrast and selected:  # the selected row is already yellow: invert the match
            mark, mark_pen = QColor("#000000"), QColor("#ffff00")

        def runs(x: int, top: int, text: str, spans, face: _Face, limit: int) -> int:
            """Draw text with matched runs bold, underlined, on a highlight (not colour alone)."""
            metrics = face.metrics
            pieces, end = fit_segments(
                text, spans, x, limit, lambda piece, matched: metrics[matched].horizontalAdvance(piece),
                lambda piece, matched, room: metrics[matched].elidedText(piece, Qt.TextElideMode.ElideRight, room))
            for piece, matched, px, width in pieces:
                if matched:
                    painter.fillRect(QRect(px, top, width, metrics[True].height()), mark)
                    painter.setPen(mark_pen)
                else:
                    painter.setPen(fg)
                painter.setFont(face.strong if matched else face.font)
                painter.drawText(px, top + face.ascent, piece)
            return end

        # The number on the right first, so the name knows how much room it has.
        number = result.number or ""
        nfm = number_face.metrics[False]
        # The number is never shortened while there is room for a few letters of the name beside it.
        number_width = min(nfm.horizontalAdvance(number) + 12, max(0, rect.width() - 60)) if number else 0
        if number:
            start = rect.right() - nfm.horizontalAdvance(number)
            runs(max(rect.right() - number_width, start), rect.top(), number, result.number_spans, number_face,
                 rect.right() + 1)

        # A short tag for what kind of entry this is (schedules stand out: they answer "who is on call").
        x = rect.left()
        tag = KIND_TAGS.get(result.kind if result.kind == "schedule" else result.listing_kind, "")
        if tag:
            w = tfm.horizontalAdvance(tag) + 10
            box = QRect(x, rect.top() + (name_face.height - tfm.height()) // 2, w, tfm.height())
            painter.setFont(tag_font)
            painter.setPen(fg)
            painter.drawRect(box.adjusted(0, 0, -1, -1))
            painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), tag)
            x += w + 8
        runs(x, rect.top(), result.name, result.spans, name_face, rect.right() - number_width - 8)

        top = rect.top() + name_face.height + 2
        x = rect.left()
        subtitle = result.subtitle or ""
        if subtitle:
            x = runs(x, top, subtitle, result.subtitle_spans, small_face, rect.right())
        if result.matched and x < rect.right():
            if subtitle:
                x = runs(x, top, " · ", (), small_face, rect.right())
            runs(x, top, result.matched, result.matched_spans, small_face, rect.right())
        painter.restore()
