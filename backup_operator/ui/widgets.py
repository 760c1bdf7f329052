"""The window's building blocks: the search field, the detail pane, the on-call page, the banner and
the screens shown instead of the directory (opening, locked, error). Each takes plain records from
``core.session``; none of them opens files or runs background work."""

from __future__ import annotations

import html
from datetime import datetime, timedelta

from PySide6.QtCore import QDateTime, QEvent, Qt, QTime, QTimeZone, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateTimeEdit,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from backup_operator.core.oncall import local_to_utc
from backup_operator.core.session import Entry, OnCallNow, Schedule, wall_time, zone_offsets
from backup_operator.ui.messages import Explanation
from backup_operator.ui.models import ContactsModel, OnCallModel, ShiftsModel
from backup_operator.ui.theme import BANNER_STYLES, scaled_font

__all__ = ["Banner", "DetailPane", "MessageScreen", "OnCallPage", "SearchField", "UnlockScreen"]


def _label(text: str = "", *, factor: float = 1.0, bold: bool = False, wrap: bool = True,
           selectable: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setFont(scaled_font(label.font(), factor, bold))
    label.setProperty("factor", factor)
    label.setProperty("bold", bold)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def rescale(widget: QWidget) -> None:
    """Re-derive every labelled font from the application font (after the text size changes)."""
    from PySide6.QtWidgets import QApplication

    base = QApplication.font()
    for child in [widget, *widget.findChildren(QWidget)]:
        factor = child.property("factor")
        if factor is not None:
            child.setFont(scaled_font(base, float(factor), bool(child.property("bold"))))


def _table(model, *, stretch: int = -1) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the search field keeps the keyboard
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setWordWrap(True)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    view.setShowGrid(False)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    if stretch >= 0:
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    header.setStretchLastSection(True)
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return view


def fit_height(view: QTableView, minimum_rows: int = 1) -> None:
    """Make a short table exactly as tall as its rows, so what follows it sits right below."""
    view.resizeRowsToContents()
    rows = view.verticalHeader().length()
    if view.model().rowCount() < minimum_rows:
        rows += view.verticalHeader().defaultSectionSize() * (minimum_rows - view.model().rowCount())
    view.setFixedHeight(rows + view.horizontalHeader().height() + 2 * view.frameWidth() + 2)


class SearchField(QLineEdit):
    """The big search box. It keeps the keyboard; navigation keys are handed to the window."""

    navigate = Signal(int)  # +1/-1 a row, ±page
    activated = Signal()
    escaped = Signal()
    copy_requested = Signal()

    PAGE = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPlaceholderText("Type a name, department, role or number…")
        self.setClearButtonEnabled(False)
        self.setProperty("factor", 1.6)
        self.setProperty("bold", False)
        self.setFont(scaled_font(self.font(), 1.6))
        self.setAccessibleName("Search the directory")
        self.setMinimumHeight(48)

    def event(self, event: QEvent) -> bool:
        # QLineEdit claims Ctrl+C even with nothing selected; with nothing selected it means "copy number".
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.matches(QKeySequence.StandardKey.Copy) and not self.hasSelectedText():
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
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
            super().keyPressEvent(event)
            return
        event.accept()


class Banner(QLabel):
    """The staleness banner: hidden when the data is fresh, amber then red as it ages."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.level = "ok"
        self.setProperty("factor", 1.05)
        self.setProperty("bold", True)
        self.setAccessibleName("Data age warning")
        self.hide()

    def show_level(self, level: str, text: str) -> None:
        self.level = level
        self.setText(text)
        self.setStyleSheet(BANNER_STYLES.get(level, ""))
        self.setVisible(level != "ok" and bool(text))


class DetailPane(QWidget):
    """Everything about the selected result: who or what it is, and every way to reach it, in order."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = _label(factor=1.5, bold=True, selectable=True)
        self.subtitle = _label(factor=1.0)
        self.where = _label(factor=0.95)
        self.notes = _label(factor=0.95)
        self.heading = _label("Contact methods — try them in this order", factor=0.95, bold=True)
        self.contacts = ContactsModel(self)
        self.table = _table(self.contacts, stretch=3)
        self.table.setAccessibleName("Contact methods")
        self.extra = QLabel()
        self.extra.setWordWrap(True)
        self.extra.setTextFormat(Qt.TextFormat.RichText)
        self.extra.setProperty("factor", 1.0)
        self.empty = _label("Type to search. Up and Down choose a result; Enter opens an on-call schedule; "
                            "Ctrl+C copies the number.", factor=1.0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 4, 4, 4)
        for w in (self.title, self.subtitle, self.where, self.notes, self.heading):
            layout.addWidget(w)
        layout.addWidget(self.table)
        layout.addSpacing(8)
        layout.addWidget(self.extra)
        layout.addWidget(self.empty)
        layout.addStretch(1)
        self.show_nothing()

    def _set_visible(self, on: bool) -> None:
        for w in (self.title, self.subtitle, self.heading, self.table):
            w.setVisible(on)
        self.empty.setVisible(not on)

    def show_nothing(self, hint: str | None = None) -> None:
        self.contacts.set_entry(None)
        self._set_visible(False)
        for w in (self.where, self.notes, self.extra):
            w.hide()
        if hint:
            self.empty.setText(hint)

    def show_entry(self, entry: Entry, extra_html: str = "", heading: str | None = None,
                   title: str | None = None, subtitle: str | None = None) -> None:
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
        self.contacts.set_entry(entry)
        if entry.contacts:
            self.table.selectRow(0)
        fit_height(self.table)
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
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else (0 if self.contacts.rowCount() else -1)

    def move(self, step: int) -> None:
        count = self.contacts.rowCount()
        if count:
            self.table.selectRow(max(0, min(count - 1, self.current_row() + step)))


def _ladder_html(now: OnCallNow) -> str:
    steps = []
    for n, (role, entry) in enumerate(now.ladder(), 1):
        first = entry.first_contact
        how = f" — {html.escape(first.caption)} <b>{html.escape(first.value)}</b>" if first else ""
        steps.append(f"{n}. {html.escape(role)}: <b>{html.escape(entry.name)}</b>{how}")
    if not steps:
        return ""
    return "<b>Escalation:</b> " + " &nbsp;→&nbsp; ".join(steps)


class OnCallPage(QWidget):
    """One schedule: who is on call at the chosen instant, the ladder, and the next seven days."""

    as_of_changed = Signal(object)  # datetime (aware, UTC) or None for "now"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.schedule: Schedule | None = None
        self.now_model = OnCallModel(self)
        self.week_model = ShiftsModel(self)
        self.title = _label(factor=1.5, bold=True)
        self.subtitle = _label(factor=0.95)
        self.as_of = QDateTimeEdit()
        # The editor holds the schedule's wall time; it is kept in UTC so that no local-zone rule of
        # this computer (a DST gap) can move what the operator typed.
        self.as_of.setTimeZone(QTimeZone.utc())
        self.as_of.setDisplayFormat("ddd d MMM yyyy  HH:mm")
        self.as_of.setCalendarPopup(True)
        self.as_of.setProperty("factor", 1.1)
        self.as_of.setAccessibleName("Show who is on call at this date and time")
        self.as_of.setKeyboardTracking(False)
        self.zone = _label(factor=1.1, bold=True, wrap=False)
        self.mode = _label(factor=0.95, wrap=False)
        self.now_button = QPushButton("Now (Ctrl+N)")
        self.now_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.now_button.clicked.connect(lambda: self.as_of_changed.emit(None))
        self.as_of.dateTimeChanged.connect(self._typed)
        row = QHBoxLayout()
        row.addWidget(_label("As of (Ctrl+T):", factor=1.1, wrap=False))
        row.addWidget(self.as_of)
        row.addWidget(self.zone)
        row.addWidget(self.mode)
        row.addStretch(1)
        row.addWidget(self.now_button)
        self.nobody = _label(factor=1.1, bold=True)
        self.nobody.setStyleSheet(BANNER_STYLES["amber"])
        self.nobody.hide()
        self.now_table = _table(self.now_model, stretch=2)
        self.now_table.setAccessibleName("On call now, by tier")
        self.ladder = QLabel()
        self.ladder.setWordWrap(True)
        self.ladder.setTextFormat(Qt.TextFormat.RichText)
        self.ladder.setProperty("factor", 1.0)
        self.instructions = _label(factor=1.0)
        self.week_title = _label("Next 7 days", factor=1.05, bold=True)
        self.week_table = _table(self.week_model, stretch=3)
        self.week_table.setAccessibleName("Shifts over the next seven days")
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        for w in (self.title, self.subtitle):
            tl.addWidget(w)
        tl.addLayout(row)
        tl.addWidget(self.nobody)
        tl.addWidget(self.now_table)
        tl.addWidget(self.ladder)
        tl.addWidget(self.instructions)
        tl.addStretch(1)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.week_title)
        bl.addWidget(self.week_table, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(split)
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

    def show_on_call(self, now: OnCallNow, week, at_is_now: bool) -> None:
        self.schedule = now.schedule
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
        offset = wall_time(now.at, zone, "").strip()
        self.zone.setText(offset)
        self.mode.setText("(now)" if at_is_now else "(chosen time — Ctrl+N for now)")
        self.now_model.set_on_call(now)
        if self.now_model.rowCount() and not self.now_table.selectionModel().selectedRows():
            self.now_table.selectRow(0)
        fit_height(self.now_table)
        if now.nobody:
            fallback = now.fallback
            line = fallback.first_contact if fallback else None
            self.nobody.setText("Nobody is on call at this time. Use the department line: "
                                + (f"{fallback.name}, {line.caption} {line.value}." if fallback and line
                                   else "ask the switchboard supervisor."))
        self.nobody.setVisible(now.nobody)
        self.ladder.setText(_ladder_html(now))
        self.instructions.setText(f"Instructions: {now.schedule.escalation}" if now.schedule.escalation else "")
        self.instructions.setVisible(bool(now.schedule.escalation))
        self.week_model.set_shifts(week, zone, now.at)

    def current_tier_row(self) -> int:
        rows = self.now_table.selectionModel().selectedRows()
        return rows[0].row() if rows else (0 if self.now_model.rowCount() else -1)

    def move(self, step: int) -> None:
        count = self.now_model.rowCount()
        if count:
            self.now_table.selectRow(max(0, min(count - 1, self.current_tier_row() + step)))


def wall_to_utc(wall: datetime, schedule: Schedule) -> datetime:
    """A wall time typed for the schedule's zone, as a UTC instant.

    In a DST gap (02:30 on the spring-forward night) the wall time does not exist; it is read with the
    offset from before the gap, which lands after the gap (03:30) — the same rule ``zoneinfo`` applies.
    In a fold (01:30 twice in autumn) the first occurrence is meant.
    """
    return local_to_utc(wall, schedule.zone)


class MessageScreen(QWidget):
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
        inner.setContentsMargins(28, 24, 28, 24)
        inner.setSpacing(12)
        for w in (self.title, self.what, self.operator_head, self.operator, self.it_head, self.it):
            inner.addWidget(w)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.unlock_button)
        buttons.addStretch(1)
        inner.addLayout(buttons)
        _centre(self, box)

    def show_explanation(self, e: Explanation) -> None:
        self.explanation = e
        self.title.setText(e.title)
        self.what.setText(e.what)
        self.operator.setText(e.operator)
        self.it.setText(e.it)
        self.unlock_button.setVisible(e.unlock)


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
        inner.setContentsMargins(28, 24, 28, 24)
        inner.setSpacing(12)
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
