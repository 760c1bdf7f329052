"""The operator's main window: search as you type, details, on call, data age, new snapshots, printing.

The window gets its ``Desktop`` (and, in tests, a clock and a ready ``Session``) through its
constructor. Work that takes time — unlocking the key, opening and indexing a snapshot, installing a
new one — runs through ``background.run_in_background``; widgets are touched only here, on the GUI
thread, when that work reports back. The search field keeps the keyboard whenever the window is
active: every other widget is display-only, and navigation keys typed into the field steer them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListView,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from backup_operator.config import PASSPHRASE_ENV, Desktop
from backup_operator.core.session import Result, Session, SyncOutcome, open_session, wall_time
from backup_operator.errors import NoDesktopKey, WrongPassphrase
from backup_operator.ui.background import run_in_background
from backup_operator.ui.delegates import ResultDelegate
from backup_operator.core.freshness import OK, freshness
from backup_operator.core.wording import local_when
from backup_operator.ui.inbox import InboxWatcher
from backup_operator.ui.messages import explain, refusal_sentence
from backup_operator.ui.models import ResultsModel
from backup_operator.ui.settings import UiSettings
from backup_operator.ui.theme import BANNER_STYLES, apply_theme
from backup_operator.ui.widgets import (
    Banner,
    DetailPane,
    MessageScreen,
    OnCallPage,
    SearchField,
    UnlockScreen,
    rescale,
)

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

RESULT_LIMIT = 50
WEEK = timedelta(days=7)


def _unlocked(desktop: Desktop) -> bool:
    return desktop.key_unlocked


class MainWindow(QMainWindow):
    results_changed = Signal()
    session_changed = Signal(int)  # the version now shown
    notice_shown = Signal(str)  # a one-time notice (a refused file)
    status_shown = Signal(str)
    sync_finished = Signal()
    load_failed = Signal(object)

    PAGE_OPENING, PAGE_UNLOCK, PAGE_ERROR, PAGE_MAIN = range(4)

    def __init__(self, desktop: Desktop, *, session: Session | None = None,
                 clock: Callable[[], datetime] | None = None, settings: UiSettings | None = None,
                 poll_ms: int = 60_000, watch: bool = True):
        super().__init__()
        self.desktop = desktop
        self.clock = clock or (lambda: datetime.now(UTC))
        self.settings = settings or UiSettings(desktop.home)
        self.session: Session | None = None
        self.as_of: datetime | None = None  # None: follow the clock
        self.oncall_schedule: str | None = None
        self._reported: set[tuple[str, int, int]] = set()
        self._actions: list[QAction] = []
        self._loading = False

        self.setWindowTitle("Backup Operator — hospital directory")
        self._build()
        self._build_actions()
        self.apply_display_settings()

        self.watcher = InboxWatcher(desktop, lambda: self.session.version if self.session else 0,
                                    poll_ms=poll_ms, parent=self)
        self.watcher.finished.connect(self._sync_done)
        self.watcher.failed.connect(self._sync_failed)
        self._watch = watch

        self.tick = QTimer(self, interval=30_000)
        self.tick.timeout.connect(self.refresh_clock)
        self.tick.start()

        if session is not None:
            self._adopt(session)
        else:
            self.reload()

    # --- construction ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.age = QLabel()
        self.age.setProperty("factor", 1.0)
        self.age.setProperty("bold", True)
        self.age.setAccessibleName("Data age")
        self.banner = Banner()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(BANNER_STYLES["amber"])
        self.notice.setProperty("factor", 1.0)
        self.notice.hide()
        self.search = SearchField()
        self.search.textChanged.connect(self._query_changed)
        self.search.navigate.connect(self._navigate)
        self.search.activated.connect(self.activate_selection)
        self.search.escaped.connect(self.escape)
        self.search.copy_requested.connect(lambda: self.copy_number())
        find_label = QLabel("Find:")
        find_label.setProperty("factor", 1.4)
        find_label.setProperty("bold", True)
        find_row = QHBoxLayout()
        find_row.addWidget(find_label)
        find_row.addWidget(self.search, 1)

        self.results = ResultsModel(self)
        self.results_view = QListView()
        self.results_view.setModel(self.results)
        self.delegate = ResultDelegate(self.results_view)
        self.results_view.setItemDelegate(self.delegate)
        self.results_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.results_view.setUniformItemSizes(True)
        self.results_view.setAccessibleName("Search results")
        self.results_view.selectionModel().currentRowChanged.connect(lambda *_: self._show_selection())
        self.results_view.doubleClicked.connect(lambda *_: self.activate_selection())
        self.count = QLabel()
        self.count.setProperty("factor", 0.9)
        self.hint = QLabel()
        self.hint.setProperty("factor", 0.9)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.results_view, 1)
        self.detail = DetailPane()
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(left)
        self.split.addWidget(self.detail)
        self.split.setStretchFactor(0, 5)
        self.split.setStretchFactor(1, 6)
        self.oncall = OnCallPage()
        self.oncall.as_of_changed.connect(self.set_as_of)
        self.oncall.as_of.editingFinished.connect(self.focus_search)
        self.views = QStackedWidget()
        self.views.addWidget(self.split)
        self.views.addWidget(self.oncall)

        main = QWidget()
        ml = QVBoxLayout(main)
        ml.setContentsMargins(10, 6, 10, 6)
        ml.addLayout(find_row)
        info_row = QHBoxLayout()
        info_row.addWidget(self.count, 1)
        info_row.addWidget(self.hint)
        ml.addLayout(info_row)
        ml.addWidget(self.views, 1)
        self.views.currentChanged.connect(self._update_hint)
        self.views.currentChanged.connect(lambda i: self.count.setVisible(i == 0))
        self._update_hint()

        self.opening = QLabel("Opening the directory…")
        self.opening.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.opening.setProperty("factor", 1.6)
        self.unlock = UnlockScreen()
        self.unlock.submitted.connect(self._try_passphrase)
        self.error = MessageScreen()
        self.error.retry.connect(self.reload)
        self.error.unlock.connect(lambda: self._ask_passphrase(""))
        self.pages = QStackedWidget()
        for page in (self.opening, self.unlock, self.error, main):
            self.pages.addWidget(page)
        self.pages.currentChanged.connect(
            lambda i: self.check_button.setVisible(i in (self.PAGE_ERROR, self.PAGE_MAIN)))

        top = QHBoxLayout()
        top.addWidget(self.age, 1)
        self.check_button = QPushButton("Check inbox (F5)")
        self.check_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.check_button.clicked.connect(self.check_inbox)
        top.addWidget(self.check_button)
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(0, 6, 0, 0)
        inner = QVBoxLayout()
        inner.setContentsMargins(10, 0, 10, 0)
        inner.addLayout(top)
        inner.addWidget(self.banner)
        inner.addWidget(self.notice)
        cl.addLayout(inner)
        cl.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.statusBar().setProperty("factor", 1.0)
        self.resize(1280, 820)

    def _update_hint(self, *_):
        if self.views.currentIndex() == 1:
            self.hint.setText("↑↓ tier · Ctrl+C copy number · Ctrl+T as of · Ctrl+N now · Esc back · F1 help")
        else:
            self.hint.setText("↑↓ choose · Enter open / copy · Ctrl+C copy number · Ctrl+P print · F1 help")

    def _action(self, menu, text: str, keys, slot, *, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        seqs = [QKeySequence(k) if not isinstance(k, QKeySequence) else k
                for k in (keys if isinstance(keys, (list, tuple)) else [keys])]
        action.setShortcuts(seqs)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        if menu is not None:
            menu.addAction(action)
        else:
            self.addAction(action)
        self._actions.append(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.act_check = self._action(file, "Check the inbox for new data now", "F5", self.check_inbox)
        self.act_print = self._action(file, "Print crash sheet…", "Ctrl+P", self.print_sheet)
        self.act_pdf = self._action(file, "Save crash sheet as PDF…", "Ctrl+Shift+S", self.save_sheet)
        file.addSeparator()
        self.act_settings = self._action(file, "Settings…", "Ctrl+,", self.open_settings)
        self.act_quit = self._action(file, "Quit", "Ctrl+Q", self.close)

        find = bar.addMenu("&Find")
        self._action(find, "Go to the search field", ["Ctrl+F", "Ctrl+L"], self.focus_search)
        self._action(find, "Clear the search / go back", "Esc", self.escape)
        self.act_copy = self._action(find, "Copy the selected number", "Ctrl+C", self.copy_number)
        for n in range(1, 10):
            self._action(None, f"Copy contact method {n}", f"Alt+{n}",
                         lambda _=False, n=n: self.copy_number(n - 1))
        self._action(find, "Next contact method", "Alt+Down", lambda: self._move_contact(1))
        self._action(find, "Previous contact method", "Alt+Up", lambda: self._move_contact(-1))

        oncall = bar.addMenu("&On call")
        self._action(oncall, "Open on call for the selected schedule or department", "Ctrl+O",
                     self.open_oncall_for_selection)
        self._action(oncall, "Choose the \"as of\" date and time", "Ctrl+T", self.choose_as_of)
        self._action(oncall, "Back to now", "Ctrl+N", lambda: self.set_as_of(None))
        self._action(oncall, "Add or remove the schedule from favourites", "Ctrl+D", self.toggle_favourite)

        view = bar.addMenu("&View")
        self._action(view, "Larger text", ["Ctrl++", "Ctrl+="], lambda: self.step_text(1))
        self._action(view, "Smaller text", "Ctrl+-", lambda: self.step_text(-1))
        self.act_contrast = self._action(view, "High contrast", "Ctrl+Shift+H", self.toggle_contrast,
                                         checkable=True)
        self._action(view, "Dismiss the notice", "Ctrl+K", self.dismiss_notice)

        helpmenu = bar.addMenu("&Help")
        self._action(helpmenu, "Keyboard shortcuts and help", "F1", self.show_help)
        self._action(helpmenu, "About this data and desktop", "Ctrl+I", self.show_about)
        self._action(helpmenu, "Kit check: is this computer ready to work offline?", "Ctrl+Shift+K",
                     self.show_kit_check)
        self._action(None, "Type the passphrase", "Ctrl+U", lambda: self._ask_passphrase(""))

    def actions_with_shortcuts(self) -> list[tuple[str, str]]:
        """(what it does, keys) for the Help screen — built from the real actions, so it cannot drift."""
        out, seen = [], set()
        for action in self._actions:
            keys = " or ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
            text = action.text().replace("&", "")
            if text.startswith("Copy contact method "):
                if "Copy contact method N" in seen:
                    continue
                seen.add("Copy contact method N")
                text, keys = "Copy contact method 1…9 of the selection", "Alt+1 … Alt+9"
            out.append((text, keys))
        return out

    # --- display settings --------------------------------------------------------------------------

    def apply_display_settings(self) -> None:
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, self.settings.point_size, self.settings.high_contrast)
        self.delegate.high_contrast = self.settings.high_contrast
        self.act_contrast.setChecked(self.settings.high_contrast)
        rescale(self)
        self.results_view.reset()

    def step_text(self, step: int) -> None:
        size = self.settings.step_text_size(step)
        self.apply_display_settings()
        self.say(f"Text size: {size}.")

    def toggle_contrast(self) -> None:
        self.settings.high_contrast = not self.settings.high_contrast
        self.apply_display_settings()
        self.say("High contrast on." if self.settings.high_contrast else "High contrast off.")

    # --- opening -----------------------------------------------------------------------------------

    def reload(self) -> None:
        """Open the newest installed snapshot (unlocking the key first if it needs a passphrase)."""
        if self._loading:
            return
        if self.desktop.config.key_store == "file" and not _unlocked(self.desktop):
            secret = os.environ.get(PASSPHRASE_ENV)
            if not secret:
                self._ask_passphrase("")
                return
            self._unlock_with(secret, from_environment=True)
            return
        self._open()

    def _open(self) -> None:
        self._loading = True
        if self.session is None:
            self.pages.setCurrentIndex(self.PAGE_OPENING)
        desktop = self.desktop
        run_in_background(lambda: open_session(desktop), self._opened, self._open_failed)

    def _opened(self, session: Session) -> None:
        self._loading = False
        self._adopt(session)
        if self._watch:
            self.watcher.start()
            self.watcher.check_now()  # whatever arrived while the window was closed

    def _open_failed(self, exc: BaseException) -> None:
        self._loading = False
        if isinstance(exc, WrongPassphrase):
            self._ask_passphrase(str(exc))
            return
        self.show_error(exc)
        if self._watch:
            self.watcher.start()  # a first snapshot arriving later opens by itself

    def show_error(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception) or type(exc).__module__ != "backup_operator.errors":
            log.error("could not open the directory", exc_info=(type(exc), exc, exc.__traceback__))
        self.error.show_explanation(explain(exc, self.settings.support))
        if self.session is None:
            self.pages.setCurrentIndex(self.PAGE_ERROR)
            self.age.setText("No directory data is open.")
            self.banner.show_level(OK, "")
        self.load_failed.emit(exc)

    def _ask_passphrase(self, problem: str) -> None:
        if self.desktop.config.key_store != "file":
            return
        self.pages.setCurrentIndex(self.PAGE_UNLOCK)
        self.age.setText("The directory is locked.")
        self.unlock.ask(problem)

    def _try_passphrase(self, secret: str) -> None:
        if not secret:
            self.unlock.ask("Type the passphrase first, then press Enter.")
            return
        self._unlock_with(secret, from_environment=False)

    def _unlock_with(self, secret: str, *, from_environment: bool) -> None:
        self.unlock.busy()
        desktop = self.desktop

        def failed(exc: BaseException) -> None:
            if isinstance(exc, WrongPassphrase):
                why = (f"The passphrase in {PASSPHRASE_ENV} is wrong; type the right one."
                       if from_environment else "That passphrase is wrong. Check Caps Lock and try again.")
                self._ask_passphrase(why)
            elif isinstance(exc, NoDesktopKey):
                self.show_error(exc)
            else:
                self.show_error(exc)

        run_in_background(lambda: desktop.key(secret, interactive=False), lambda _key: self._open(), failed)

    def _adopt(self, session: Session) -> None:
        old, self.session = self.session, session
        self.pages.setCurrentIndex(self.PAGE_MAIN)
        self.refresh_clock()
        self._query_changed(self.search.text(), keep_selection=True)
        if self.oncall_schedule and session.schedule(self.oncall_schedule) is None:
            self.oncall_schedule = None
            self.views.setCurrentIndex(0)
        elif self.oncall_schedule:
            self._refresh_oncall()
        if old is not None and old is not session:
            old.close()
        self.focus_search()
        for path, exc in session.skipped:
            self._notice_once(path, exc)
        if session.degraded:
            self._show_notice(session.degraded)
        self.session_changed.emit(session.version)

    # --- time and data age ------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def refresh_clock(self) -> None:
        if self.session is None:
            return
        state = freshness(self.session.meta, self.session.version, self.now())
        self.age.setText(state.line)
        self.banner.show_level(state.level, state.banner)
        if self.oncall_schedule and self.as_of is None and self.views.currentIndex() == 1:
            self._refresh_oncall()

    # --- search --------------------------------------------------------------------------------

    def _query_changed(self, text: str, keep_selection: bool = False) -> None:
        if self.session is None:
            return
        if self.views.currentIndex() == 1 and not keep_selection:
            self.views.setCurrentIndex(0)
        previous = self.current_result()
        query = text.strip()
        if query:
            rows = self.session.search(query, RESULT_LIMIT, at=self.now())
        else:
            rows = self.session.favourite_results(self.settings.favourites, self.now())
        self.results.set_results(rows)
        if rows:
            row = 0
            if keep_selection and previous is not None:
                row = next((i for i, r in enumerate(rows) if (r.kind, r.id) == (previous.kind, previous.id)), 0)
            self.results_view.setCurrentIndex(self.results.index(row))
        else:
            self._show_selection()
        if query:
            self.count.setText(f"{len(rows)} result{'s' if len(rows) != 1 else ''}"
                               + (" (best first)" if len(rows) > 1 else "") if rows else
                               f"Nothing matches \"{query}\". Try fewer letters, a surname, or a number.")
        else:
            self.count.setText("Favourite on-call schedules (Ctrl+D adds one)" if rows
                               else "Type to search the whole directory.")
        self.results_changed.emit()

    def current_result(self) -> Result | None:
        index = self.results_view.currentIndex()
        return self.results.result(index.row()) if index.isValid() else None

    def _navigate(self, step: int) -> None:
        if self.views.currentIndex() == 1:
            self.oncall.move(step)
            return
        count = self.results.rowCount()
        if not count:
            return
        index = self.results_view.currentIndex()
        row = index.row() if index.isValid() else -1
        row = max(0, min(count - 1, row + step))
        self.results_view.setCurrentIndex(self.results.index(row))
        self.results_view.scrollTo(self.results.index(row))

    def _show_selection(self) -> None:
        result = self.current_result()
        if self.session is None or result is None:
            self.detail.show_nothing()
            return
        if result.kind == "schedule":
            self._show_schedule_detail(result.id)
            return
        entry = self.session.entry(result.id)
        if entry is None:
            self.detail.show_nothing()
            return
        extra = []
        for schedule in self.session.schedules_for(entry):
            now = self.session.on_call(schedule.id, self.now())
            holder = next((t for t in now.tiers if t.who), None)
            who = (f"<b>{_esc(holder.who.name)}</b> until {_esc(wall_time(holder.until, schedule.zone))}"
                   if holder and holder.until else "nobody — use this department line")
            extra.append(f"On call now for <b>{_esc(schedule.name)}</b>: {who}")
        if extra:
            extra.append("Ctrl+O shows the full on-call view.")
        self.detail.show_entry(entry, "<br>".join(extra))
        if result.number_spans:  # the operator typed a number: that contact method is the one meant
            row = next((i for i, c in enumerate(entry.contacts) if c.value == result.number), 0)
            self.detail.table.selectRow(row)

    def _show_schedule_detail(self, schedule_id: str) -> None:
        schedule = self.session.schedule(schedule_id)
        now = self.session.on_call(schedule_id, self.now())
        from backup_operator.ui.widgets import _ladder_html

        ladder = _ladder_html(now) + "<br>Enter shows the full on-call view and the next 7 days."
        holder = next((t for t in now.tiers if t.who), None)
        if holder is None:
            fallback = now.fallback
            if fallback is not None:
                self.detail.show_entry(fallback, ladder, title=schedule.name,
                                       subtitle="Nobody is on call now: use the department line.",
                                       heading=f"{fallback.name} — try in this order")
            else:
                self.detail.show_schedule_without_holder(schedule, "Nobody is on call now.", ladder)
            return
        until = f" until {wall_time(holder.until, schedule.zone)}" if holder.until else ""
        self.detail.show_entry(holder.who, ladder, title=schedule.name,
                               subtitle=f"On call now ({holder.role or f'tier {holder.tier}'}): "
                                        f"{holder.who.name}{until}",
                               heading=f"{holder.who.name} — try in this order")

    def activate_selection(self) -> None:
        """Enter: a schedule opens its on-call view; a listing copies its first number to try."""
        if self.views.currentIndex() == 1:
            self.copy_number()
            return
        result = self.current_result()
        if result is None:
            return
        if result.kind == "schedule":
            self.open_oncall(result.id)
        else:
            self.copy_number()

    def escape(self) -> None:
        if self.oncall.as_of.hasFocus():  # leave the date-time editor, stay on the schedule
            self.focus_search()
            return
        if self.views.currentIndex() == 1:
            self.views.setCurrentIndex(0)
            self.oncall_schedule = None
            self.focus_search()
            return
        if self.search.text():
            self.search.clear()
        self.focus_search()

    def focus_search(self) -> None:
        if self.pages.currentIndex() == self.PAGE_UNLOCK:
            self.unlock.field.setFocus()
            return
        self.search.setFocus(Qt.FocusReason.OtherFocusReason)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            QTimer.singleShot(0, self._focus_if_idle)

    def _focus_if_idle(self) -> None:
        if not self.oncall.as_of.hasFocus():
            self.focus_search()

    # --- copying ---------------------------------------------------------------------------------

    def _move_contact(self, step: int) -> None:
        if self.views.currentIndex() == 1:
            self.oncall.move(step)
        else:
            self.detail.move(step)

    def selected_contact(self, n: int | None = None):
        """(whose, Contact) for the contact the operator means, or (None, None)."""
        if self.views.currentIndex() == 1:
            tier = self.oncall.now_model.tier(self.oncall.current_tier_row())
            who = tier.who if tier else None
            if who is None and self.oncall.now_model._now is not None:
                who = self.oncall.now_model._now.fallback
            if who is None or not who.contacts:
                return None, None
            index = n if n is not None else 0
            return (who, who.contacts[index]) if index < len(who.contacts) else (who, None)
        model = self.detail.contacts
        row = n if n is not None else self.detail.current_row()
        contact = model.contact(row)
        if contact is not None and n is not None:
            self.detail.table.selectRow(row)
        return (self.detail.title.text(), contact)

    def copy_number(self, n: int | None = None) -> str | None:
        whose, contact = self.selected_contact(n)
        if contact is None:
            self.say("Nothing to copy: choose a result first." if n is None
                     else f"There is no contact method {n + 1} here.")
            return None
        QGuiApplication.clipboard().setText(contact.value)
        name = whose.name if hasattr(whose, "name") else str(whose)
        self.say(f"Copied {contact.value} — {contact.caption} of {name}.")
        return contact.value

    def say(self, text: str) -> None:
        self.statusBar().showMessage(text, 15_000)
        self.status_shown.emit(text)

    # --- on call ---------------------------------------------------------------------------------

    def open_oncall(self, schedule_id: str) -> None:
        if self.session is None or self.session.schedule(schedule_id) is None:
            return
        self.oncall_schedule = schedule_id
        self.views.setCurrentIndex(1)
        self._refresh_oncall()
        self.focus_search()

    def open_oncall_for_selection(self) -> None:
        result = self.current_result()
        if result is None or self.session is None:
            return
        if result.kind == "schedule":
            self.open_oncall(result.id)
            return
        entry = self.session.entry(result.id)
        schedules = self.session.schedules_for(entry) if entry else []
        if schedules:
            self.open_oncall(schedules[0].id)
        else:
            self.say(f"{result.name} has no on-call schedule.")

    def set_as_of(self, moment: datetime | None) -> None:
        self.as_of = moment
        if self.oncall_schedule:
            self._refresh_oncall()
        if moment is None:
            self.focus_search()
            self.say("Showing who is on call now.")

    def choose_as_of(self) -> None:
        if self.views.currentIndex() != 1:
            self.open_oncall_for_selection()
        if self.views.currentIndex() == 1:
            self.oncall.focus_as_of()
            self.say("Type the date and time (Up/Down change the part under the cursor); Enter or Esc returns.")

    def _refresh_oncall(self) -> None:
        if self.session is None or not self.oncall_schedule:
            return
        at = self.as_of or self.now()
        now = self.session.on_call(self.oncall_schedule, at)
        week = self.session.shifts(self.oncall_schedule, at, at + WEEK)
        self.oncall.show_on_call(now, week, self.as_of is None)
        self.results_changed.emit()

    def toggle_favourite(self) -> None:
        schedule_id = self.oncall_schedule
        if schedule_id is None:
            result = self.current_result()
            schedule_id = result.id if result is not None and result.kind == "schedule" else None
        if schedule_id is None or self.session is None:
            self.say("Choose an on-call schedule first, then Ctrl+D.")
            return
        name = self.session.schedule(schedule_id).name
        on = self.settings.toggle_favourite(schedule_id)
        self.say(f"{name} {'is now a favourite' if on else 'is no longer a favourite'}.")
        if not self.search.text().strip():
            self._query_changed("", keep_selection=True)

    # --- new data ----------------------------------------------------------------------------------

    def check_inbox(self) -> None:
        if self.session is None and self.pages.currentIndex() != self.PAGE_ERROR:
            return
        self.say("Checking the inbox for new data…")
        self.watcher.check_now()

    def _sync_done(self, outcome: SyncOutcome) -> None:
        for signer in outcome.new_signers:
            try:
                self.desktop.trust(signer.to_text())
            except Exception as exc:  # noqa: BLE001 - a settings write failing must not stop the window
                log.warning("could not pin a new signer: %s", exc)
        for path, exc in outcome.refused:
            self._notice_once(path, exc)
        if outcome.session is not None:
            self._adopt(outcome.session)
            self.dismiss_notice() if not outcome.refused else None
            self.say(f"New data installed: version {outcome.session.version}. Your search was kept.")
        elif self.session is None and outcome.current:
            self.reload()
        self.sync_finished.emit()

    def _sync_failed(self, exc: BaseException) -> None:
        if self.session is None:
            self.show_error(exc)
        else:
            text = str(exc) if type(exc).__module__ == "backup_operator.errors" else \
                f"Checking the inbox failed ({type(exc).__name__}); the current data stays. Tell IT."
            self._show_notice(text)
        self.sync_finished.emit()

    def _notice_once(self, path, exc) -> None:
        try:
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = (str(path), -1, -1)
        if key in self._reported:
            return
        self._reported.add(key)
        as_of = local_when(self.session.created_at, self.now()) if self.session else ""
        self._show_notice(refusal_sentence(path.name, exc, self.session.version if self.session else None,
                                           f"data as of {as_of}" if as_of else ""))

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text + "  (Ctrl+K hides this.)")
        self.notice.show()
        self.notice_shown.emit(text)

    def dismiss_notice(self) -> None:
        self.notice.hide()

    # --- dialogs ---------------------------------------------------------------------------------

    def _sheet_dialog(self):
        from backup_operator.ui.dialogs import CrashSheetDialog

        if self.session is None:
            self.say("There is no directory data to print.")
            return None
        return CrashSheetDialog(self.session, self.settings, self.now, parent=self)

    def print_sheet(self) -> None:
        dialog = self._sheet_dialog()
        if dialog is not None:
            dialog.print_mode()
            dialog.exec()
            self.focus_search()

    def save_sheet(self) -> None:
        dialog = self._sheet_dialog()
        if dialog is not None:
            dialog.exec()
            self.focus_search()

    def open_settings(self) -> None:
        from backup_operator.ui.dialogs import SettingsDialog

        dialog = SettingsDialog(self.desktop, self.settings, self.session, parent=self)
        if dialog.exec():
            self.apply_display_settings()
            self.watcher.rewatch()
            self._query_changed(self.search.text(), keep_selection=True)
            self.say("Settings saved.")
        self.focus_search()

    def show_help(self) -> None:
        from backup_operator.ui.dialogs import HelpDialog

        HelpDialog(self.actions_with_shortcuts(), parent=self).exec()
        self.focus_search()

    def show_about(self) -> None:
        from backup_operator.ui.dialogs import AboutDataDialog

        AboutDataDialog(self.desktop, self.session, self.now(), parent=self).exec()
        self.focus_search()

    def kit_check(self):
        """Run the kit self-check here (it reuses the unlocked key; the PDF probe needs this thread)."""
        from backup_operator.core.kit import run_kit_checks
        from backup_operator.ui.pdfprobe import write_test_pdf

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            return run_kit_checks(self.desktop, now=self.now(), write_pdf=write_test_pdf)
        finally:
            QApplication.restoreOverrideCursor()

    def show_kit_check(self) -> None:
        from backup_operator.ui.dialogs import KitCheckDialog

        KitCheckDialog(self.kit_check(), parent=self).exec()
        self.focus_search()

    def closeEvent(self, event) -> None:
        self.watcher.stop()
        self.tick.stop()
        try:
            self.settings.set_geometry(self.saveGeometry())
        except Exception:  # never block closing on a settings write
            log.warning("could not save the window's size and place", exc_info=True)
        super().closeEvent(event)


def _esc(text: str) -> str:
    import html

    return html.escape(text)
