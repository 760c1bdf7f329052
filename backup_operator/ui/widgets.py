"""The window's building blocks: the search field, the detail pane, the on-call page, the banner and
the screens shown instead of the directory (opening, locked, error). Each takes plain records from
``core.session``; none of them opens files or runs background work.

Every number and instruction is a label of its own that wraps rather than elides, inside a page that
scrolls: at 1024×768 nothing is cut off, and at larger text the page scrolls instead of spilling off
the screen. Nothing has a fixed height.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta

from PySide6.QtCore import QDateTime, QEvent, Qt, QTime, QTimer, QTimeZone, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QDateTimeEdit,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpacerItem,
    QVBoxLayout,
    QWidget,
)

from backup_operator.core.oncall import local_to_utc
from backup_operator.core.session import (
    Contact,
    Entry,
    OnCallNow,
    Schedule,
    ShiftRow,
    TierNow,
    wall_time,
    zone_offsets,
)
from backup_operator.ui.messages import Explanation
from backup_operator.ui.theme import BANNER_STYLES, banner_style, scaled_font

__all__ = ["AsOfEdit", "Banner", "ContactRow", "ContactRows", "DetailPane", "MessageScreen", "OnCallPage",
           "OpeningScreen", "ScrollingPage", "SearchField", "StatusLine", "TierCard", "UnlockScreen", "breakable", "ladder_html",
           "rescale"]


def _label(text: str = "", *, factor: float = 1.0, bold: bool = False, wrap: bool = True,
           selectable: bool = False, rich: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setFont(scaled_font(label.font(), factor, bold))
    label.setProperty("factor", factor)
    label.setProperty("bold", bold)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def rescale(widget: QWidget) -> None:
    """Re-derive every labelled font from the application font (after the text size changes)."""
    base = QApplication.font()
    for child in [widget, *widget.findChildren(QWidget)]:
        factor = child.property("factor")
        if factor is not None:
            child.setFont(scaled_font(base, float(factor), bool(child.property("bold"))))


class StatusLine(QLabel):
    """The status bar's message ("Copied 4471 — Extension of …", "The inbox cannot be reached: …"), on as
    many lines as it needs beside the status bar's buttons, cleared after ``timeout_ms``.

    QStatusBar's own message is one line clipped at its buttons' edge: at 1024 wide, with the "What
    changed" button shown, it cut "… of Lakeshore Switchboard Superviso" and the advice at a message's end.
    """

    def __init__(self, timeout_ms: int = 15_000):
        super().__init__()
        self.setWordWrap(True)
        self.setContentsMargins(4, 0, 4, 0)  # off the window's edge, as QStatusBar drew its message
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setProperty("factor", 1.0)
        # Ignored across: a long message wraps instead of widening the window; its height is set by fit().
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._clear = QTimer(self, singleShot=True, interval=timeout_ms)
        self._clear.timeout.connect(lambda: self.show_text(""))
        self.fit()

    def show_text(self, text: str) -> None:
        self.setText(text)
        self.fit()
        if text:
            self._clear.start()

    def fit(self) -> None:
        """Exactly as tall as the text needs at the label's width (one line at least)."""
        self.setMinimumHeight(0)  # QLabel's height for a width never goes below its minimum height
        self.setMaximumHeight(16_777_215)
        line = self.fontMetrics().height()
        needed = self.heightForWidth(self.width()) if self.text() and self.width() > 50 else line
        self.setFixedHeight(max(line, needed))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            QTimer.singleShot(0, self.fit)  # not inside the layout pass that resized it

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self.fit()


class ScrollingPage(QScrollArea):
    """A page that scrolls down (never sideways) when its content is taller than the window.

    Its content is at least as tall as its wrapped text needs at the page's width: a scroll area does
    not always ask, and then squeezes rows of wrapped labels on top of each other.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the search field keeps the keyboard
        self._refit = QTimer(self, singleShot=True, interval=0)
        self._refit.timeout.connect(self.refit)

    def set_content(self, content: QWidget) -> None:
        self.setWidget(content)
        content.installEventFilter(self)

    def refit(self) -> None:
        content = self.widget()
        if content is None or content.layout() is None:
            return
        # Lay the rows out first (their pending layout requests), so that their heights are current.
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        need = content.layout().totalHeightForWidth(self.viewport().width()) \
            if content.layout().hasHeightForWidth() else content.layout().totalMinimumSize().height()
        if need > 0 and content.minimumHeight() != need:
            content.setMinimumHeight(need)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._refit.start()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.refit()


def _clear(layout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
            item.widget().hide()
        elif item.layout() is not None:
            _clear(item.layout())


class SearchField(QLineEdit):
    """The big search box. It keeps the keyboard; navigation keys are handed to the window."""

    navigate = Signal(int)  # +1/-1 a row, ±page
    activated = Signal()
    escaped = Signal()
    copy_requested = Signal()
    tabbed = Signal(bool)  # Tab (True) or Shift+Tab (False): the window decides where it goes

    PAGE = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.typing = False  # True while a typed key is being handled
        self.setPlaceholderText("Type a name, department, role or number…")
        self.setClearButtonEnabled(False)
        self.setProperty("factor", 1.6)
        self.setProperty("bold", False)
        self.setFont(scaled_font(self.font(), 1.6))
        self.setAccessibleName("Search the directory")
        self.setMinimumHeight(40)

    def event(self, event: QEvent) -> bool:
        # QLineEdit claims Ctrl+C even with nothing selected; with nothing selected it means "copy number".
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.matches(QKeySequence.StandardKey.Copy) and not self.hasSelectedText():
            event.accept()
            return True
        return super().event(event)

    def focusNextPrevChild(self, forward: bool) -> bool:  # noqa: N802 - Qt's name
        self.tabbed.emit(forward)
        return True

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        key, mods = event.key(), event.modifiers()
        plain = not (mods & (Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ControlModifier))
        if plain and key == Qt.Key.Key_Down:
            self.navigate.emit(1)
        elif plain and key == Qt.Key.Key_Up:
            self.navigate.emit(-1)
        elif plain and key == Qt.Key.Key_PageDown:
            self.navigate.emit(self.PAGE)
        elif plain and key == Qt.Key.Key_PageUp:
            self.navigate.emit(-self.PAGE)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and plain:
            self.activated.emit()
        elif key == Qt.Key.Key_Escape:
            self.escaped.emit()
        elif event.matches(QKeySequence.StandardKey.Copy) and not self.hasSelectedText():
            self.copy_requested.emit()
        else:
            self.typing = True  # the text changes because a key was typed (not set by the program)
            try:
                super().keyPressEvent(event)
            finally:
                self.typing = False
            return
        event.accept()


class Banner(QFrame):
    """The data-age warning: hidden when the data is fresh; amber, red, or "clock behind" otherwise.

    Once the operator has read it (Ctrl+K or its button) it shrinks to one line that stays on screen
    and still says the age; a worse verdict (amber becomes red) shows the whole text again.
    """

    acknowledged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.level = "ok"
        self.full_text = ""
        self.short_text = ""
        self.compact = False
        self.text_label = _label(factor=1.05, bold=True, selectable=True)
        self.text_label.setAccessibleName("Data age warning")
        self.button = QPushButton("Got it (Ctrl+K)")
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.button.setToolTip("Shrink this warning to one line; it stays on screen")
        self.button.clicked.connect(self.acknowledged)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text_label, 1)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def text(self) -> str:
        return self.text_label.text()

    def show_level(self, level: str, full: str, short: str = "", compact: bool = False) -> None:
        self.level, self.full_text, self.short_text = level, full, short or full
        self.compact = compact and bool(short)
        self.text_label.setText(self.short_text if self.compact else self.full_text)
        self.text_label.setProperty("factor", 0.95 if self.compact else 1.05)
        rescale(self.text_label)
        self.button.setVisible(not self.compact)
        self.setStyleSheet(banner_style(level, "banner"))
        self.setVisible(level != "ok" and bool(full))


LONG_VALUE = 22  # characters: a longer value (an email address) may wrap, at its punctuation
_BREAK_AFTER = "@._-/"


def breakable(value: str) -> str:
    """``value`` with invisible break opportunities after its punctuation, so that a long email address
    wraps inside a narrow pane instead of running off its edge (what is copied is the value itself)."""
    return "".join(ch + "\u200b" if ch in _BREAK_AFTER else ch for ch in value)


class ContactRow(QFrame):
    """One contact method: "1.  4471  Pager", its instructions wrapped underneath. A row is reused for
    the next listing's method (``show_contact``): building one per method on every key cost a tenth of
    a typed key's time on the window's thread."""

    def __init__(self, n: int, contact: Contact, factor: float = 1.0, parent=None):
        super().__init__(parent)
        self.setObjectName("contact")
        self.index = _label(factor=factor, wrap=False)
        self.value = _label(factor=factor * 1.15, bold=True, selectable=True)
        self.caption = _label(factor=factor)
        self.notes = _label(factor=factor * 0.95)
        box = QVBoxLayout(self)  # the layouts belong to the row before anything goes in (no stray windows)
        box.setContentsMargins(6, 3, 6, 3)
        box.setSpacing(0)
        self._line = QHBoxLayout()
        box.addLayout(self._line)
        self._line.setSpacing(10)
        self._line.addWidget(self.index, 0, Qt.AlignmentFlag.AlignBaseline)
        self._line.addWidget(self.value, 0, Qt.AlignmentFlag.AlignBaseline)
        self._line.addWidget(self.caption, 1, Qt.AlignmentFlag.AlignBaseline)
        self._indent = QHBoxLayout()
        box.addLayout(self._indent)
        self._under_index = QSpacerItem(0, 0, QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Minimum)
        self._indent.addItem(self._under_index)
        self._indent.addWidget(self.notes, 1)
        self.show_contact(n, contact)

    def show_contact(self, n: int, contact: Contact) -> None:
        """Show method ``n`` (from 1), ``contact``, in this row."""
        self.contact = contact
        self.index.setText(f"{n}.")
        # A long value (an email address) gets the room and wraps only if it must; a number never wraps.
        long = len(contact.value) > LONG_VALUE
        self.value.setWordWrap(long)
        self.value.setText(breakable(contact.value) if long else contact.value)
        self._line.setStretchFactor(self.value, 3 if long else 0)
        self.caption.setText(contact.caption)
        self.notes.setText(contact.instructions)
        self._under_index.changeSize(self.index.sizeHint().width() + 10, 0, QSizePolicy.Policy.Fixed,
                                     QSizePolicy.Policy.Minimum)
        self._indent.invalidate()
        self.setAccessibleName(f"{n}. {contact.caption}: {contact.value}"
                               + (f". {contact.instructions}" if contact.instructions else ""))
        # Only now that it has a parent: showing or hiding a parentless label makes it a window of its own.
        self.notes.setVisible(bool(contact.instructions))

    def labels(self) -> list[QLabel]:
        return [self.index, self.value, self.caption, self.notes]

    def set_selected(self, on: bool, *, again: bool = False) -> None:
        """Highlight the row (or not). ``again``: the colours changed (high contrast), paint it anew."""
        if self.property("selected") == on and not (on and again):
            return
        self.setProperty("selected", on)
        # The palette, not a style sheet: re-styling a row costs a style pass over its labels on every key.
        # The application's palette is the source: it is the one the theme has just set.
        self.setAutoFillBackground(on)
        if on:
            palette = QPalette(QApplication.palette())
            palette.setColor(QPalette.ColorRole.Window, palette.color(QPalette.ColorRole.Highlight))
            palette.setColor(QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.HighlightedText))
            self.setPalette(palette)
        else:
            self.setPalette(QPalette())
            self.setAttribute(Qt.WidgetAttribute.WA_SetPalette, False)  # follow the application's palette again


class ContactRows(QWidget):
    """Every way to reach one listing, in the order to try them, each with its instructions.

    One label per piece, wrapped, never elided; the selected method (what Ctrl+C copies) is highlighted.
    """

    def __init__(self, name: str = "Contact methods", parent=None, *, factor: float = 1.0):
        super().__init__(parent)
        self.setAccessibleName(name)
        self.factor = factor
        self.rows: list[ContactRow] = []  # the rows in use, in order: the first of ``_made``
        self._made: list[ContactRow] = []  # every row made so far, kept (hidden) for the next listing
        self._selected = -1
        self.active = True  # highlight the selected method (off in an on-call tier that is not chosen)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(2)

    def set_contacts(self, contacts: Sequence[Contact], selected: int = -1) -> None:
        if [r.contact for r in self.rows] == list(contacts) and self.rows:
            self.select(selected if selected >= 0 else 0)  # the same methods again: keep the labels
            return
        for n, contact in enumerate(contacts, 1):
            if n <= len(self._made):
                row = self._made[n - 1]
                row.show_contact(n, contact)
            else:
                row = ContactRow(n, contact, self.factor, self)
                rescale(row)
                self.box.addWidget(row)
                self._made.append(row)
            row.show()  # at once (it has a parent: shown with it, never as a window of its own)
        for row in self._made[len(contacts):]:
            row.set_selected(False)  # so that it is painted in the colours of the day when used again
            row.hide()
        self.rows = self._made[:len(contacts)]
        self.select(selected if selected >= 0 else (0 if self.rows else -1))

    def count(self) -> int:
        return len(self.rows)

    def contact(self, row: int) -> Contact | None:
        return self.rows[row].contact if 0 <= row < len(self.rows) else None

    def selected_row(self) -> int:
        return self._selected

    def select(self, row: int) -> None:
        self._selected = row if 0 <= row < len(self.rows) else -1
        for n, contact_row in enumerate(self.rows):
            contact_row.set_selected(self.active and n == self._selected)

    def set_active(self, on: bool) -> None:
        self.active = on
        self.select(self._selected)

    def recolour(self) -> None:
        """The theme changed (high contrast on or off): highlight the selected method in the new colours."""
        for n, row in enumerate(self.rows):
            row.set_selected(self.active and n == self._selected, again=True)

    def move(self, step: int) -> None:
        if self.rows:
            self.select(max(0, min(len(self.rows) - 1, (self._selected if self._selected >= 0 else 0) + step)))

    def labels(self) -> list[QLabel]:
        return [label for row in self.rows for label in row.labels()]


class DetailPane(ScrollingPage):
    """Everything about the selected result: who or what it is, and every way to reach it, in order."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = _label(factor=1.5, bold=True, selectable=True)
        self.subtitle = _label(factor=1.0)
        self.where = _label(factor=0.95)
        self.notes = _label(factor=0.95)
        self.heading = _label("Contact methods — try them in this order", factor=0.95, bold=True)
        self.contacts = ContactRows("Contact methods")
        self.extra = _label(factor=1.0, rich=True)
        self.empty = _label("Type to search. Up and Down choose a result; Enter copies the number or opens an "
                            "on-call schedule; Ctrl+C copies the highlighted number.", factor=1.0)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(12, 4, 8, 4)
        for w in (self.title, self.subtitle, self.where, self.notes, self.heading, self.contacts):
            layout.addWidget(w)
        layout.addSpacing(8)
        layout.addWidget(self.extra)
        layout.addWidget(self.empty)
        layout.addStretch(1)
        self.set_content(content)
        self.entry: Entry | None = None
        self.show_nothing()

    def _set_visible(self, on: bool) -> None:
        for w in (self.title, self.subtitle, self.heading, self.contacts):
            w.setVisible(on)
        self.empty.setVisible(not on)

    def show_nothing(self, hint: str | None = None) -> None:
        self.entry = None
        self.contacts.set_contacts([])
        self._set_visible(False)
        for w in (self.where, self.notes, self.extra):
            w.hide()
        if hint:
            self.empty.setText(hint)

    def show_entry(self, entry: Entry, extra_html: str = "", heading: str | None = None,
                   title: str | None = None, subtitle: str | None = None, selected: int | None = None) -> None:
        self.entry = entry
        self._set_visible(True)
        self.title.setText(title or entry.name)
        self.subtitle.setText(subtitle if subtitle is not None else entry.subtitle)
        self.where.setText(f"Where: {entry.location}" if entry.location else "")
        self.where.setVisible(bool(entry.location))
        notes = entry.notes
        if entry.aliases:
            notes = (notes + "\n" if notes else "") + "Also known as: " + ", ".join(entry.aliases)
        self.notes.setText(notes)
        self.notes.setVisible(bool(notes))
        self.heading.setText(heading or "Contact methods — try them in this order")
        # The highlighted method is the one Enter and Ctrl+C copy: the first one that can be dialled.
        self.contacts.set_contacts(entry.contacts, entry.first_number_row if selected is None else selected)
        self.extra.setText(extra_html)
        self.extra.setVisible(bool(extra_html))
        self.verticalScrollBar().setValue(0)

    def set_extra(self, extra_html: str) -> None:
        """Replace the lines under the contact methods (the on-call lines, which follow a moment later)."""
        self.extra.setText(extra_html)
        self.extra.setVisible(bool(extra_html))

    def show_schedule_without_holder(self, schedule: Schedule, text: str, extra_html: str) -> None:
        self.show_nothing()
        self.title.setText(schedule.name)
        self.title.show()
        self.subtitle.setText(text)
        self.subtitle.show()
        self.extra.setText(extra_html)
        self.extra.setVisible(bool(extra_html))
        self.empty.hide()

    def current_row(self) -> int:
        return self.contacts.selected_row()

    def move(self, step: int) -> None:
        self.contacts.move(step)


def _in(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds()) // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {minutes} min"
    return f"in {minutes} min"


def ladder_html(now: OnCallNow) -> str:
    """The escalation ladder: each tier's holder with their first number, then the department line."""
    steps = []
    for n, (role, entry) in enumerate(now.ladder(), 1):
        first = entry.first_number
        how = f" — {html.escape(first.caption)} <b>{html.escape(first.value)}</b>" if first else ""
        steps.append(f"{n}.&nbsp;{html.escape(role)}: <b>{html.escape(entry.name)}</b>{how}")
    if not steps:
        return ""
    return "<b>Escalation:</b> " + " &nbsp;→&nbsp; ".join(steps)


class TierCard(QFrame):
    """One tier of a schedule: who holds it, every way to reach them, until when, who comes next."""

    def __init__(self, tier: TierNow, now: OnCallNow, parent=None):
        super().__init__(parent)
        self.tier = tier
        self.setObjectName("tier")
        self.setFrameShape(QFrame.Shape.NoFrame)
        zone = now.schedule.zone
        self.role = _label(f"Tier {tier.tier}" + (f" · {tier.role}" if tier.role else ""), factor=0.9, bold=True)
        who = tier.who
        if who is None:
            fallback = now.fallback
            self.name = _label("NOBODY — use the department line", factor=1.2, bold=True)
            self.what = _label(f"{fallback.name}:" if fallback else "Ask the switchboard supervisor.")
            people = fallback
        else:
            self.name = _label(who.name, factor=1.2, bold=True, selectable=True)
            self.what = _label(who.title)
            people = who
        self.contacts = ContactRows(f"How to reach {people.name}" if people else "How to reach")
        self.contacts.set_contacts(people.contacts if people else [], people.first_number_row if people else -1)
        if tier.until:
            until = f"Until {wall_time(tier.until, zone)} ({_in(tier.until - now.at)})"
        else:
            until = ""
        self.until = _label(until, factor=1.0, bold=True)
        if tier.next_who is None:
            nxt = "Next: nobody scheduled"
        else:
            again = " (again)" if who is not None and tier.next_who.id == who.id else ""
            when = f" from {wall_time(tier.next_start, zone)}" if tier.next_start else ""
            nxt = f"Next: {tier.next_who.name}{again}{when}"
        self.next = _label(nxt, factor=0.95)
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 4, 8, 6)
        grid.setVerticalSpacing(2)
        main = QVBoxLayout()
        main.setSpacing(1)
        for w in (self.role, self.name, self.what, self.contacts):
            main.addWidget(w)
        side = QVBoxLayout()
        side.addWidget(self.until)
        side.addWidget(self.next)
        side.addStretch(1)
        grid.addLayout(main, 0, 0)
        grid.addLayout(side, 0, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        self.what.setVisible(bool(self.what.text()))  # after it has a parent (else it is a window of its own)
        self.setAccessibleName(f"Tier {tier.tier}: {self.name.text()}")

    @property
    def who(self) -> Entry | None:
        return self.tier.who

    def set_selected(self, on: bool) -> None:
        self.setProperty("selected", on)
        self.contacts.set_active(on)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        # The border is painted, not styled: a style sheet here would re-polish the contact rows and put
        # back their old colours after a switch to or from high contrast.
        super().paintEvent(event)
        selected = bool(self.property("selected"))
        palette = QApplication.palette()
        painter = QPainter(self)
        pen = QPen(palette.color(QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Mid))
        pen.setWidth(3 if selected else 1)
        painter.setPen(pen)
        inset = pen.width() // 2
        painter.drawRect(self.rect().adjusted(inset, inset, -inset - 1, -inset - 1))
        painter.end()


def _week_html(rows: Sequence[ShiftRow], zone, at: datetime) -> str:
    if not rows:
        return "<i>No shifts in the next 7 days.</i>"
    out = ["<table cellspacing='0' cellpadding='3' width='100%'>",
           "<tr><th align='left'>From</th><th align='left'>To</th><th align='left'>Tier</th>"
           "<th align='left'>Who</th><th align='left'>First number</th></tr>"]
    for s in rows:
        first = s.who.first_number
        cells = (wall_time(s.start, zone, offset=False), wall_time(s.end, zone, offset=False),
                 f"{s.tier}. {s.role}" if s.role else f"Tier {s.tier}", s.who.name,
                 f"{first.caption}: {first.value}" if first else "")
        now = s.start <= at < s.end
        tag = ("<b>", "</b>") if now else ("", "")
        out.append("<tr>" + "".join(f"<td valign='top'>{tag[0]}{html.escape(c)}{tag[1]}</td>" for c in cells)
                   + "</tr>")
    out.append("</table>")
    return "".join(out)


class AsOfEdit(QDateTimeEdit):
    """The "as of" date and time. Tab and Shift+Tab walk its parts (day, month, year, hour, minute) and
    wrap around, so typed digits never leave the field; Enter or Esc hands the keyboard back.

    Typing a whole part already moves on to the next one ("21" in the hour moves to the minutes); a Tab
    right after that is the Tab the operator meant, so it does not move a second time: "21 Tab 30" is
    21:30 whether or not the field moved by itself.
    """

    done = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._moved_by_itself = False

    def focusNextPrevChild(self, forward: bool) -> bool:  # noqa: N802 - Qt's name
        if self._moved_by_itself and forward:
            self._moved_by_itself = False
            return True
        self._moved_by_itself = False
        count = self.sectionCount()
        if count:
            self.select_part((self.currentSectionIndex() + (1 if forward else -1)) % count)
        return True

    def select_part(self, index: int) -> None:
        """Go to part ``index`` with its text selected, so that typing replaces it."""
        self.setCurrentSectionIndex(index)
        self.setSelectedSection(self.sectionAt(index))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            super().keyPressEvent(event)  # commits the value (dateTimeChanged) first
            self._moved_by_itself = False
            self.done.emit()
            return
        before = self.currentSectionIndex()
        super().keyPressEvent(event)
        self._moved_by_itself = bool(event.text()) and event.text().isalnum() and \
            self.currentSectionIndex() != before

    def focusInEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._moved_by_itself = False
        super().focusInEvent(event)


class OnCallPage(ScrollingPage):
    """One schedule: who is on call at the chosen instant, the ladder, and the next seven days."""

    as_of_changed = Signal(object)  # datetime (aware, UTC) or None for "now"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.schedule: Schedule | None = None
        self.now: OnCallNow | None = None
        self.week: list[ShiftRow] = []
        self.cards: list[TierCard] = []
        self._selected = 0
        self.title = _label(factor=1.5, bold=True)
        self.subtitle = _label(factor=0.95)
        self.as_of = AsOfEdit()
        # The editor holds the schedule's wall time; it is kept in UTC so that no local-zone rule of
        # this computer (a DST gap) can move what the operator typed.
        self.as_of.setTimeZone(QTimeZone.utc())
        self.as_of.setDisplayFormat("ddd d MMM yyyy  HH:mm")
        self.as_of.setCalendarPopup(True)
        self.as_of.setProperty("factor", 1.1)
        self.as_of.setAccessibleName("Show who is on call at this date and time")
        self.as_of.setKeyboardTracking(False)
        self.as_of.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # reached with Ctrl+T or Tab from the search
        self.zone = _label(factor=1.1, bold=True)
        self.mode = _label(factor=0.95)
        self.now_button = QPushButton("Now (Ctrl+N)")
        self.now_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.now_button.clicked.connect(lambda: self.as_of_changed.emit(None))
        self.as_of.dateTimeChanged.connect(self._typed)
        # Two short lines rather than one long one: at large text one line would be wider than a laptop.
        row = QVBoxLayout()
        row.setSpacing(2)
        first = QHBoxLayout()
        first.addWidget(_label("As of (Ctrl+T):", factor=1.1, wrap=False))
        first.addWidget(self.as_of)
        first.addStretch(1)
        first.addWidget(self.now_button)
        second = QHBoxLayout()
        second.addWidget(self.zone)
        second.addWidget(self.mode, 1)
        row.addLayout(first)
        row.addLayout(second)
        self.nobody = _label(factor=1.1, bold=True)
        self.nobody.setStyleSheet(BANNER_STYLES["amber"])
        self.nobody.hide()
        self.tiers = QVBoxLayout()
        self.tiers.setSpacing(6)
        self.ladder = _label(factor=1.0, rich=True)
        self.instructions = _label(factor=1.0)
        self.week_title = _label("Next 7 days", factor=1.05, bold=True)
        self.week_table = _label(factor=0.95, rich=True)
        self.week_table.setAccessibleName("Shifts over the next seven days")
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(8, 4, 8, 4)
        for w in (self.title, self.subtitle):
            layout.addWidget(w)
        layout.addLayout(row)
        layout.addWidget(self.nobody)
        layout.addLayout(self.tiers)
        layout.addWidget(self.ladder)
        layout.addWidget(self.instructions)
        layout.addSpacing(6)
        layout.addWidget(self.week_title)
        layout.addWidget(self.week_table)
        layout.addStretch(1)
        self.set_content(content)
        self._updating = False

    def _typed(self, value: QDateTime) -> None:
        if self._updating or self.schedule is None:
            return
        date, time = value.date(), value.time()
        wall = datetime(date.year(), date.month(), date.day(), time.hour(), time.minute())
        self.as_of_changed.emit(wall_to_utc(wall, self.schedule))

    def focus_as_of(self) -> None:
        self.as_of.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.as_of.setSelectedSection(QDateTimeEdit.Section.HourSection)

    def show_on_call(self, now: OnCallNow, week: list[ShiftRow], at_is_now: bool) -> None:
        same_schedule = self.schedule is not None and self.schedule.id == now.schedule.id
        self.schedule, self.now, self.week = now.schedule, now, list(week)
        zone = now.schedule.zone
        self.title.setText(now.schedule.name)
        offsets = ", ".join(zone_offsets(zone, now.at, now.at + timedelta(days=7)))
        bits = [now.schedule.department, now.schedule.site, f"times in {now.schedule.timezone} ({offsets})"]
        self.subtitle.setText(" · ".join(b for b in bits if b))
        local = now.at.astimezone(zone)
        if not self.as_of.hasFocus() or at_is_now:
            self._updating = True
            self.as_of.setDateTime(QDateTime(local.date(), QTime(local.hour, local.minute), QTimeZone.utc()))
            self._updating = False
        self.zone.setText(wall_time(now.at, zone, "").strip())
        self.mode.setText("(now)" if at_is_now else "(chosen time — Ctrl+N for now)")
        keep = self._selected if same_schedule else 0
        _clear(self.tiers)
        self.cards = [TierCard(t, now, self.widget()) for t in now.tiers]
        for card in self.cards:
            rescale(card)
            self.tiers.addWidget(card)
            card.show()  # now, not on a later turn of the event loop: no frame without the tiers
        self.select(min(keep, len(self.cards) - 1))
        if now.nobody:
            fallback = now.fallback
            line = fallback.first_number if fallback else None
            self.nobody.setText("Nobody is on call at this time. Use the department line: "
                                + (f"{fallback.name}, {line.caption} {line.value}." if fallback and line
                                   else "ask the switchboard supervisor."))
        self.nobody.setVisible(now.nobody)
        self.ladder.setText(ladder_html(now))
        self.instructions.setText(f"Instructions: {now.schedule.escalation}" if now.schedule.escalation else "")
        self.instructions.setVisible(bool(now.schedule.escalation))
        self.week_table.setText(_week_html(self.week, zone, now.at))
        self.refit()

    def tier_count(self) -> int:
        return len(self.cards)

    def current_tier_row(self) -> int:
        return self._selected if self.cards else -1

    def current_card(self) -> TierCard | None:
        return self.cards[self._selected] if 0 <= self._selected < len(self.cards) else None

    def select(self, row: int) -> None:
        self._selected = max(0, row)
        for n, card in enumerate(self.cards):
            card.set_selected(n == self._selected)
        card = self.current_card()
        if self._selected == 0:
            # The first tier: from the top, so the schedule's name, its zone and the "as of" time are in
            # view too (scrolled only as far as the card, a page reused after the backup tier hid them).
            self.verticalScrollBar().setValue(0)
        elif card is not None:
            self.ensureWidgetVisible(card, 0, 0)

    def move(self, step: int) -> None:
        if self.cards:
            self.select(max(0, min(len(self.cards) - 1, self._selected + step)))


def wall_to_utc(wall: datetime, schedule: Schedule) -> datetime:
    """A wall time typed for the schedule's zone, as a UTC instant.

    In a DST gap (02:30 on the spring-forward night) the wall time does not exist; it is read with the
    offset from before the gap, which lands after the gap (03:30) — the same rule ``zoneinfo`` applies.
    In a fold (01:30 twice in autumn) the first occurrence is meant.
    """
    return local_to_utc(wall, schedule.zone)


def _centre(screen: QWidget, box: QWidget) -> None:
    """Put ``box`` in the middle of a full-window screen, a little above centre, where eyes land first."""
    outer = QVBoxLayout(screen)
    outer.addStretch(1)
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(box, 4)
    row.addStretch(1)
    outer.addLayout(row)
    outer.addStretch(2)


class OpeningScreen(QWidget):
    """Shown while the directory opens: what is happening now, a moving bar and the seconds so far."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = _label("Opening the directory…", factor=1.6, bold=True)
        self.stage = _label("Starting…", factor=1.1)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy: the steps take an unknown share of the time
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName("Opening the directory")
        self.elapsed = _label("", factor=0.95)
        box = QFrame()
        box.setMaximumWidth(900)
        inner = QVBoxLayout(box)
        inner.setSpacing(10)
        for w in (self.title, self.stage, self.bar, self.elapsed):
            inner.addWidget(w)
        _centre(self, box)

    def show_stage(self, text: str) -> None:
        self.stage.setText(text)

    def show_elapsed(self, seconds: float) -> None:
        self.elapsed.setText(f"{seconds:.0f} s so far. Large directories take a few seconds." if seconds >= 1 else "")


class MessageScreen(ScrollingPage):
    """Shown instead of the directory when it cannot be opened: what is wrong and what to do."""

    retry = Signal()
    unlock = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = _label(factor=1.8, bold=True, selectable=True)
        self.what = _label(factor=1.2, selectable=True)
        self.operator_head = _label("What to do now", factor=1.2, bold=True)
        self.operator = _label(factor=1.2, selectable=True)
        self.it_head = _label("For IT", factor=1.0, bold=True)
        self.it = _label(factor=1.0, selectable=True)
        self.retry_button = QPushButton("Try again (F5)")
        self.retry_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.retry_button.clicked.connect(self.retry)
        self.unlock_button = QPushButton("Type the passphrase (Ctrl+U)")
        self.unlock_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.unlock_button.clicked.connect(self.unlock)
        box = QFrame()
        box.setFrameShape(QFrame.Shape.StyledPanel)
        box.setMaximumWidth(1000)
        inner = QVBoxLayout(box)
        inner.setContentsMargins(24, 20, 24, 20)
        inner.setSpacing(10)
        for w in (self.title, self.what, self.operator_head, self.operator, self.it_head, self.it):
            inner.addWidget(w)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.unlock_button)
        buttons.addStretch(1)
        inner.addLayout(buttons)
        content = QWidget()
        _centre(content, box)
        self.set_content(content)

    def show_explanation(self, e: Explanation) -> None:
        self.explanation = e
        self.title.setText(e.title)
        self.what.setText(e.what)
        self.operator.setText(e.operator)
        self.it.setText(e.it)
        self.unlock_button.setVisible(e.unlock)


class UnlockScreen(QWidget):
    """The passphrase prompt for desktops whose key is in a passphrase-protected file (portable kits)."""

    submitted = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = _label("Unlock the directory", factor=1.8, bold=True)
        self.text = _label("This desktop keeps its key in a file protected by a passphrase. Type the "
                           "passphrase and press Enter. It is on the sealed card in the kit; if it is lost, "
                           "call IT.", factor=1.15)
        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setProperty("factor", 1.5)
        self.field.setFont(scaled_font(self.field.font(), 1.5))
        self.field.setAccessibleName("Passphrase")
        self.field.returnPressed.connect(lambda: self.submitted.emit(self.field.text()))
        self.problem = _label(factor=1.15, bold=True)
        self.problem.setStyleSheet(BANNER_STYLES["amber"])
        self.problem.hide()
        self.button = QPushButton("Unlock (Enter)")
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.button.clicked.connect(lambda: self.submitted.emit(self.field.text()))
        box = QFrame()
        box.setFrameShape(QFrame.Shape.StyledPanel)
        box.setMaximumWidth(900)
        inner = QVBoxLayout(box)
        inner.setContentsMargins(24, 20, 24, 20)
        inner.setSpacing(10)
        for w in (self.title, self.text, self.field, self.problem, self.button):
            inner.addWidget(w)
        _centre(self, box)

    def ask(self, problem: str = "") -> None:
        self.field.clear()
        self.field.setEnabled(True)
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        self.field.setFocus()

    def busy(self) -> None:
        self.field.setEnabled(False)
        self.problem.setText("Checking the passphrase…")
        self.problem.show()
