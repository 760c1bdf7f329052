"""The operator's main window: search as you type, details, on call, data age, new snapshots, printing.

The window gets its ``Desktop`` (and, in tests, a clock and a ready ``Session``) through its
constructor. Work that takes time — unlocking the key, opening a snapshot, installing a new one —
runs through ``background.run_in_background``; widgets are touched only here, on the GUI thread, when
that work reports back. The search field keeps the keyboard whenever the window is active: every
other widget is display-only, navigation keys typed into the field steer them, and only the "as of"
date field (Ctrl+T, or Tab in the on-call view) takes the keyboard until Enter or Esc.

"On call now" is live everywhere: the window asks the session for the next shift boundary of any
schedule and sets a timer for that instant; when it fires, the results, the detail pane and the
on-call view are worked out again, and a copy made after the boundary always re-checks first.
The 30-second clock tick only updates the data's age (and catches a boundary missed while the
computer slept).

New views and dialogs plug in with a few lines: ``add_view`` for a page beside the results and the
on-call view, ``open_dialog`` for a modal dialog that hands the keyboard back to the search field,
and ``_action`` for its menu entry and shortcut (listed in Help and checked against docs/OPERATOR.md).
"""

from __future__ import annotations

import html
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
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
from backup_operator.core.freshness import OK, freshness
from backup_operator.core.session import Result, Session, SyncOutcome, open_session, wall_time
from backup_operator.core.wording import local_when
from backup_operator.errors import NoDesktopKey, WrongPassphrase
from backup_operator.ui.background import run_in_background
from backup_operator.ui.delegates import ResultDelegate
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
    OpeningScreen,
    SearchField,
    StatusLine,
    UnlockScreen,
    ladder_html,
    rescale,
)

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

RESULT_LIMIT = 50
WEEK = timedelta(days=7)
MAX_TIMER_MS = 3_600_000  # a far-off handover is re-checked every hour (clock changes, sleep)
DEFAULT_SIZE = (1280, 820)


def _unlocked(desktop: Desktop) -> bool:
    return desktop.key_unlocked


class _Progress(QObject):
    """Carries progress sentences from the opening worker to the window (a queued signal)."""

    said = Signal(str)


def _close_elsewhere(session: Session) -> None:
    """Close a replaced session on a worker thread, where its memory is also given back: freeing a big
    directory's index on the GUI thread would stall typing."""
    holder = [session]

    def close() -> None:
        old = holder.pop()
        try:
            old.close()
        finally:
            del old

    run_in_background(close, lambda _: None, lambda exc: log.warning("closing the old data failed: %s", exc))


class MainWindow(QMainWindow):
    results_changed = Signal()
    detail_shown = Signal()  # the detail pane shows the current result (just after the results while typing)
    session_changed = Signal(int)  # the version now shown
    notice_shown = Signal(str)  # a one-time notice (a refused file)
    status_shown = Signal(str)
    announced = Signal(str)  # what screen readers were told
    sync_finished = Signal()
    load_failed = Signal(object)
    handover_done = Signal(object)  # the boundary (datetime) whose answers were just refreshed
    opening_stage = Signal(str)  # what opening the directory is doing now

    PAGE_OPENING, PAGE_UNLOCK, PAGE_ERROR, PAGE_MAIN = range(4)
    VIEW_RESULTS, VIEW_ONCALL = range(2)

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
        self.next_handover: datetime | None = None
        self.more_results = False
        self._reported: set[tuple[str, int, int]] = set()
        self._actions: list[QAction] = []
        self._loading = False
        self._manual_check = False
        self._opening_started = 0.0
        self._detail_for: tuple[str, str] | None = None
        self._defer_detail = False  # set while a typed key searches: the detail pane follows after painting
        self._framed = False

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
        self.handover = QTimer(self, singleShot=True)
        self.handover.timeout.connect(self._handover_due)
        self.frame_check = QTimer(self, singleShot=True, interval=200)  # once, after the first show
        self.frame_check.timeout.connect(self._fit_frame)
        self._opening_tick = QTimer(self, interval=500)
        self._opening_tick.timeout.connect(
            lambda: self.opening.show_elapsed(time.monotonic() - self._opening_started))

        if session is not None:
            self._adopt(session)
        else:
            self.reload()

    # --- construction ---------------------------------------------------------------------------

    def _build(self) -> None:
        self.age = QLabel()
        self.age.setWordWrap(True)
        self.age.setProperty("factor", 1.0)
        self.age.setProperty("bold", True)
        self.age.setAccessibleName("Data age")
        self.banner = Banner()
        self.banner.acknowledged.connect(self.acknowledge_banner)
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
        self.search.tabbed.connect(self._tabbed)
        self.find_label = QLabel("Find:")
        self.find_label.setProperty("factor", 1.4)
        self.find_label.setProperty("bold", True)
        self.find_label.setBuddy(self.search)  # screen readers name the field by its label
        find_row = QHBoxLayout()
        find_row.addWidget(self.find_label)
        find_row.addWidget(self.search, 1)

        self.results = ResultsModel(self)
        self.results_view = QListView()
        self.results_view.setModel(self.results)
        self.delegate = ResultDelegate(self.results_view)
        self.results_view.setItemDelegate(self.delegate)
        self.results_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.results_view.setUniformItemSizes(True)
        self.results_view.setAccessibleName("Search results")
        self.results_view.setMinimumWidth(260)
        # While typing, the detail pane is filled in just after the key's results are painted (a 0 ms
        # timer), not within the key's own handling: the key is handled and its results are shown sooner,
        # and the event loop never runs search, painting and the detail pane in one stretch. Anything that
        # reads the detail pane first brings it up to date (detail_now).
        self._detail_soon = QTimer(self, singleShot=True, interval=0)
        self._detail_soon.timeout.connect(self._show_selection_after_key)
        # Then, one more turn later, a listing's "on call now" lines (an on-call answer per schedule of
        # its department): the pane's two halves never run as one stretch either.
        self._lines_soon = QTimer(self, singleShot=True, interval=0)
        self._lines_soon.timeout.connect(self._show_oncall_lines)
        self._lines_for: str | None = None  # the listing whose on-call lines are still to follow
        self._split_lines = False
        self.results_view.selectionModel().currentRowChanged.connect(lambda *_: self._selection_moved())
        self.results_view.doubleClicked.connect(lambda *_: self.activate_selection())
        self.count = QLabel()
        self.count.setWordWrap(True)
        self.count.setProperty("factor", 0.9)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setProperty("factor", 0.9)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.detail = DetailPane()
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.results_view)
        self.split.addWidget(self.detail)
        self.split.setStretchFactor(0, 5)
        self.split.setStretchFactor(1, 6)
        self.split.setChildrenCollapsible(False)
        self.oncall = OnCallPage()
        self.oncall.as_of_changed.connect(self.set_as_of)
        self.oncall.as_of.done.connect(self.focus_search)
        self.views = QStackedWidget()
        self.add_view(self.split)
        self.add_view(self.oncall)

        main = QWidget()
        ml = QVBoxLayout(main)
        ml.setContentsMargins(10, 4, 10, 4)
        ml.setSpacing(4)
        ml.addLayout(find_row)
        info_row = QHBoxLayout()
        info_row.addWidget(self.count, 3)
        info_row.addWidget(self.hint, 4)
        ml.addLayout(info_row)
        ml.addWidget(self.views, 1)
        self.views.currentChanged.connect(self._update_hint)
        self._update_hint()

        self.opening = OpeningScreen()
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
        cl.setContentsMargins(0, 4, 0, 0)
        cl.setSpacing(4)
        inner = QVBoxLayout()
        inner.setContentsMargins(10, 0, 10, 0)
        inner.setSpacing(4)
        inner.addLayout(top)
        inner.addWidget(self.banner)
        inner.addWidget(self.notice)
        cl.addLayout(inner)
        cl.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.statusBar().setProperty("factor", 1.0)
        self.status_line = StatusLine()
        self.statusBar().addWidget(self.status_line, 1)
        self.fit_to_screen()

    def add_view(self, widget: QWidget) -> int:
        """Add a page beside the results and the on-call view; returns its index for ``views``."""
        return self.views.addWidget(widget)

    def fit_to_screen(self, size: tuple[int, int] | None = None) -> None:
        """Start at a comfortable size, but never larger than the screen (a 1024×768 laptop included):
        the window manager's frame (title bar, borders) counts too."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        width, height = size or DEFAULT_SIZE
        if screen is not None:
            room = screen.availableGeometry()
            frame, inner = self.frameGeometry(), self.geometry()
            extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()
            if not self.isVisible() or extra_h <= 0:
                extra_w, extra_h = 0, 40  # not framed yet: leave room for a title bar
            width, height = min(width, room.width() - extra_w), min(height, room.height() - extra_h)
            if self.isVisible() and not self.isMaximized() and not self.isFullScreen():
                x = max(room.left(), min(frame.left(), room.right() - width - extra_w + 1))
                y = max(room.top(), min(frame.top(), room.bottom() - height - extra_h + 1))
                self.move(x, y)
        self.resize(width, height)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self._framed:
            self._framed = True
            # Once the window manager has framed the window, make sure the frame fits the screen too.
            self.frame_check.start()

    def _fit_frame(self) -> None:
        screen = self.screen()
        if screen is None or self.isMaximized() or self.isFullScreen():
            return
        room, frame = screen.availableGeometry(), self.frameGeometry()
        if frame.width() > room.width() or frame.height() > room.height() or not room.contains(frame):
            self.fit_to_screen((min(self.width(), DEFAULT_SIZE[0]), min(self.height(), DEFAULT_SIZE[1])))

    def _update_hint(self, *_):
        if self.views.currentIndex() == self.VIEW_ONCALL:
            self.hint.setText("↑↓ tier · Ctrl+C copy · Tab: time · Ctrl+N now · Esc back · F1 help")
        else:
            self.hint.setText("↑↓ choose · Enter copy/open · Ctrl+C copy · F1 help")
        self.count.setVisible(self.views.currentIndex() == self.VIEW_RESULTS)

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

        find = bar.addMenu("F&ind")
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
        self._action(view, "Hide the notice and shorten the data-age warning", "Ctrl+K", self.dismiss_notice)

        helpmenu = bar.addMenu("&Help")
        self._action(helpmenu, "Keyboard shortcuts and help", "F1", self.show_help)
        self._action(helpmenu, "About this data and desktop", "Ctrl+I", self.show_about)
        self._action(helpmenu, "Kit check: is this computer ready to work offline?", "Ctrl+Shift+K",
                     self.show_kit_check)
        self._action(None, "Type the passphrase", "Ctrl+U", lambda: self._ask_passphrase(""))
        self.menus = {"file": file, "find": find, "oncall": oncall, "view": view, "help": helpmenu}
        from backup_operator.ui.outage import install as install_outage_tools
        install_outage_tools(self)  # journal (Ctrl+J), what changed (badge, Ctrl+Shift+W), Help → Drill

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
        # A layout change, not a reset: the selected result (what Enter copies) stays selected.
        self.results.layoutAboutToBeChanged.emit()
        self.results.layoutChanged.emit()
        self.results_view.doItemsLayout()
        for rows in [self.detail.contacts, *(card.contacts for card in self.oncall.cards)]:
            rows.recolour()  # the highlight in the new colours; what is selected stays selected
        self.oncall.select(self.oncall.current_tier_row())

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
            if not os.environ.get(PASSPHRASE_ENV):
                self._ask_passphrase("")
                return
            # The passphrase is in the environment: the opening waits for the key itself, once it has done
            # what needs none (imports, the open copy's checks, room in RAM) while scrypt runs; a wrong
            # passphrase comes back as WrongPassphrase (_open_failed).
        self._open()

    def _open(self) -> None:
        self._loading = True
        if self.session is None:
            self.pages.setCurrentIndex(self.PAGE_OPENING)
            self._opening_started = time.monotonic()
            self.opening.show_stage("Starting…")
            self.opening.show_elapsed(0)
            self._opening_tick.start()
        desktop = self.desktop
        progress = _Progress(self)
        progress.said.connect(self._opening_stage)
        run_in_background(lambda: open_session(desktop, progress=progress.said.emit), self._opened,
                          self._open_failed)

    def _opening_stage(self, text: str) -> None:
        self.opening.show_stage(text)
        self.opening_stage.emit(text)

    def _opened(self, session: Session) -> None:
        self._loading = False
        self._opening_tick.stop()
        self._adopt(session)
        if self._watch:
            self.watcher.start()
            self.watcher.check_now()  # whatever arrived while the window was closed

    def _open_failed(self, exc: BaseException) -> None:
        self._loading = False
        self._opening_tick.stop()
        if isinstance(exc, WrongPassphrase):
            # Only a passphrase from the environment is tried while opening (a typed one is tried first).
            self._ask_passphrase(f"The passphrase in {PASSPHRASE_ENV} is wrong; type the right one."
                                 if os.environ.get(PASSPHRASE_ENV) else str(exc))
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
        self._unlock_with(secret)

    def _unlock_with(self, secret: str) -> None:
        """A typed passphrase: tried on its own first, so that a wrong one is said at once."""
        self.unlock.busy()
        desktop = self.desktop

        def failed(exc: BaseException) -> None:
            if isinstance(exc, WrongPassphrase):
                self._ask_passphrase("That passphrase is wrong. Check Caps Lock and try again.")
            elif isinstance(exc, NoDesktopKey):
                self.show_error(exc)
            else:
                self.show_error(exc)

        run_in_background(lambda: desktop.key(secret, interactive=False), lambda _key: self._open(), failed)

    def _adopt(self, session: Session, *, search_later: bool = False) -> None:
        """Show ``session``. ``search_later``: a new snapshot while the window is in use; its results come
        on the next turn of the event loop, so that the look's other work (here) and the search for them
        (there) never run back to back with a typed key in between nothing else can run."""
        old, self.session = self.session, session
        self.pages.setCurrentIndex(self.PAGE_MAIN)
        self.refresh_clock()
        if search_later and old is not None and old is not session:
            # Until then the list shows the old results, which read from the old data: it stays open.
            QTimer.singleShot(0, self, lambda: self._show_adopted(old, session))
            return
        self._show_adopted(old, session)

    def _show_adopted(self, old: Session | None, session: Session) -> None:
        if self.session is not session:  # replaced again meanwhile: that switch closes this one
            if old is not None and old is not self.session:
                _close_elsewhere(old)
            return
        # The new data's results now; the detail pane just after they are painted, as for a typed key
        # (the switch to a new snapshot happens while the operator may be typing).
        self._defer_detail = old is not None
        try:
            self._run_search(keep_selection=True)
        finally:
            self._defer_detail = False
        if self.oncall_schedule and session.schedule(self.oncall_schedule) is None:
            self.oncall_schedule = None
            self.views.setCurrentIndex(self.VIEW_RESULTS)
        elif self.oncall_schedule:
            self._refresh_oncall()
        if old is not None and old is not session:
            _close_elsewhere(old)
        self._schedule_handover()
        self.focus_search()
        for path, exc in session.skipped:
            self._notice_once(path, exc)
        if session.degraded:
            self._show_notice(session.degraded)
        self.session_changed.emit(session.version)

    # --- time: data age and handovers ------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def refresh_clock(self) -> None:
        """The 30-second tick: the data's age, any handover the timer missed (the computer slept), and
        the handover timer set again from the clock (the clock was corrected: timers do not follow it)."""
        if self.session is None:
            return
        self._show_age()
        self._catch_up()
        self._arm_handover()

    def _show_age(self) -> None:
        state = freshness(self.session.meta, self.session.version, self.now())
        self.age.setText(state.line)
        before = (self.banner.level, self.banner.compact, self.banner.isVisible())
        self.banner.show_level(state.level, state.banner, state.short,
                               compact=self.settings.acknowledged == self._banner_key(state.level))
        if (self.banner.level, self.banner.compact, self.banner.isVisible()) != before and state.level != OK:
            self.announce(state.short if self.banner.compact else state.banner)

    def _banner_key(self, level: str) -> str:
        return f"{self.session.version}:{level}" if self.session else ""

    def acknowledge_banner(self) -> None:
        """The operator has read the data-age warning: keep it as one line (a worse one shows in full)."""
        if self.session is None or self.banner.level == OK:
            return
        self.settings.acknowledged = self._banner_key(self.banner.level)
        self._show_age()

    def _schedule_handover(self) -> None:
        """Set the timer for the next instant at which any "on call now" answer can change."""
        self.next_handover = self.session.next_change(self.now()) if self.session else None
        self._arm_handover()

    def _arm_handover(self) -> None:
        if self.next_handover is None:
            self.handover.stop()
            return
        wait = (self.next_handover - self.now()).total_seconds() * 1000
        self.handover.start(int(max(0, min(MAX_TIMER_MS, wait + 20))))

    def _handover_due(self) -> None:
        if self.next_handover is not None and self.now() < self.next_handover:
            self._schedule_handover()  # woke early (a long wait is split into hours): wait on
            return
        self.refresh_live()

    def _catch_up(self) -> None:
        if self.next_handover is not None and self.now() >= self.next_handover:
            self.refresh_live()

    def refresh_live(self) -> None:
        """Work out every "on call now" on screen again: results, detail pane, on-call view."""
        if self.session is None:
            return
        boundary = self.next_handover
        self._run_search(keep_selection=True)
        if self.oncall_schedule and self.views.currentIndex() == self.VIEW_ONCALL:
            self._refresh_oncall()
        self._schedule_handover()
        if boundary is not None:
            self.handover_done.emit(boundary)

    # --- search --------------------------------------------------------------------------------

    def _query_changed(self, text: str) -> None:
        if self.session is None:
            return
        if self.views.currentIndex() != self.VIEW_RESULTS:
            self.views.setCurrentIndex(self.VIEW_RESULTS)  # typing searches (docs/OPERATOR.md)
            self._leave_oncall()
        self._defer_detail = self.search.typing
        try:
            self._run_search(keep_selection=False)
        finally:
            self._defer_detail = False

    def _selection_moved(self) -> None:
        if self._defer_detail:
            self._detail_soon.start()
        else:
            self._show_selection()

    @property
    def detail_pending(self) -> bool:
        """True between a typed key's results and the detail pane (all of it) that follows them."""
        return self._detail_soon.isActive() or self._lines_soon.isActive()

    def detail_now(self) -> None:
        """Fill in the detail pane now if it is still to follow the last key typed."""
        if self._detail_soon.isActive():
            self._show_selection()
        if self._lines_soon.isActive():
            self._show_oncall_lines()

    def _run_search(self, keep_selection: bool) -> None:
        if self.session is None:
            return
        previous = self.current_result()
        query = self.search.text().strip()
        if query:
            rows = self.session.search(query, RESULT_LIMIT + 1, at=self.now())
        else:
            rows = self.session.favourite_results(self.settings.favourites, self.now())
        self.more_results = len(rows) > RESULT_LIMIT
        rows = rows[:RESULT_LIMIT]
        self.results.set_results(rows)
        if rows:
            row = 0
            if keep_selection and previous is not None:
                row = next((i for i, r in enumerate(rows) if (r.kind, r.id) == (previous.kind, previous.id)), 0)
            self.results_view.setCurrentIndex(self.results.index(row))
            self.results_view.scrollTo(self.results.index(row))
        else:
            self._show_selection()
        if query:
            if not rows:
                text = f"Nothing matches \"{query}\". Try fewer letters, a surname, or a number."
            elif self.more_results:
                text = (f"More than {RESULT_LIMIT} results: the best {RESULT_LIMIT} are shown. "
                        "Type more to narrow it down.")
            else:
                text = f"{len(rows)} result{'s' if len(rows) != 1 else ''}" + (" (best first)" if len(rows) > 1 else "")
        else:
            text = ("Favourite on-call schedules (Ctrl+D adds one)" if rows
                    else "Type to search the whole directory.")
        self.count.setText(text)
        self.results_changed.emit()

    def current_result(self) -> Result | None:
        index = self.results_view.currentIndex()
        return self.results.result(index.row()) if index.isValid() else None

    def _navigate(self, step: int) -> None:
        if self.views.currentIndex() == self.VIEW_ONCALL:
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

    def _tabbed(self, forward: bool) -> None:
        """Tab in the search field: into the "as of" field in the on-call view; nowhere otherwise."""
        if self.views.currentIndex() == self.VIEW_ONCALL:
            self.oncall.as_of.setFocus(Qt.FocusReason.TabFocusReason)
            self.oncall.as_of.select_part(0 if forward else self.oncall.as_of.sectionCount() - 1)

    def _show_selection(self) -> None:
        self._detail_soon.stop()  # shown now: a pending update would only repeat it
        self._lines_soon.stop()
        self._lines_for = None
        self._update_detail()
        self.detail_shown.emit()

    def _show_selection_after_key(self) -> None:
        self._split_lines = True
        try:
            self._show_selection()
        finally:
            self._split_lines = False

    def _oncall_lines(self, entry) -> str:
        extra = []
        for schedule in self.session.schedules_for(entry):
            now = self.session.on_call(schedule.id, self.now())
            holder = next((t for t in now.tiers if t.who), None)
            who = (f"<b>{html.escape(holder.who.name)}</b> until {html.escape(wall_time(holder.until, schedule.zone))}"
                   if holder and holder.until else "nobody — use this department line")
            extra.append(f"On call now for <b>{html.escape(schedule.name)}</b>: {who}")
        if extra:
            extra.append("Ctrl+O shows the full on-call view.")
        return "<br>".join(extra)

    def _show_oncall_lines(self) -> None:
        self._lines_soon.stop()
        shown, wanted, self._lines_for = self.detail.entry, self._lines_for, None
        if self.session is not None and shown is not None and shown.id == wanted:
            self.detail.set_extra(self._oncall_lines(shown))

    def _update_detail(self) -> None:
        result = self.current_result()
        if self.session is None or result is None:
            self._detail_for = None
            self.detail.show_nothing()
            return
        # Shown again (a handover, new data, a text size change): the highlighted method stays highlighted.
        again = (result.kind, result.id) == self._detail_for
        self._detail_for = (result.kind, result.id)
        if result.kind == "schedule":
            self._show_schedule_detail(result.id, again)
            return
        entry = self.session.entry(result.id)
        if entry is None:
            self.detail.show_nothing()
            return
        selected = self._kept_row(entry.id, again)
        if selected is None and result.number_spans:  # a typed number: that contact method is the one meant
            selected = next((i for i, c in enumerate(entry.contacts) if c.value == result.number), None)
        if self._split_lines and self.session.schedules_for(entry):
            # The lines already shown stay while they are worked out again (the same listing: a handover,
            # new data); another listing's pane starts without them.
            keep = self.detail.extra.text() if again and self.detail.entry is not None else ""
            self.detail.show_entry(entry, keep, selected=selected)
            self._lines_for = entry.id
            self._lines_soon.start()
        else:
            self.detail.show_entry(entry, self._oncall_lines(entry), selected=selected)

    def _kept_row(self, listing_id: str, again: bool) -> int | None:
        shown = self.detail.entry
        if again and shown is not None and shown.id == listing_id and self.detail.current_row() >= 0:
            return self.detail.current_row()
        return None

    def _show_schedule_detail(self, schedule_id: str, again: bool = False) -> None:
        schedule = self.session.schedule(schedule_id)
        now = self.session.on_call(schedule_id, self.now())
        ladder = ladder_html(now) + "<br>Enter shows the full on-call view and the next 7 days."
        holder = next((t for t in now.tiers if t.who), None)
        if holder is None:
            fallback = now.fallback
            if fallback is not None:
                self.detail.show_entry(fallback, ladder, title=schedule.name,
                                       subtitle="Nobody is on call now: use the department line.",
                                       heading=f"{fallback.name} — try in this order",
                                       selected=self._kept_row(fallback.id, again))
            else:
                self.detail.show_schedule_without_holder(schedule, "Nobody is on call now.", ladder)
            return
        until = f" until {wall_time(holder.until, schedule.zone)}" if holder.until else ""
        self.detail.show_entry(holder.who, ladder, title=schedule.name,
                               subtitle=f"On call now ({holder.role or f'tier {holder.tier}'}): "
                                        f"{holder.who.name}{until}",
                               heading=f"{holder.who.name} — try in this order",
                               selected=self._kept_row(holder.who.id, again))

    def activate_selection(self) -> None:
        """Enter: a schedule opens its on-call view; a listing copies its first number to try."""
        if self.views.currentIndex() == self.VIEW_ONCALL:
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
        if self.views.currentIndex() != self.VIEW_RESULTS:
            self.views.setCurrentIndex(self.VIEW_RESULTS)
            self._leave_oncall()
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

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            QTimer.singleShot(0, self._focus_if_idle)

    def _focus_if_idle(self) -> None:
        if not self.oncall.as_of.hasFocus():
            self.focus_search()

    # --- copying ---------------------------------------------------------------------------------

    def _move_contact(self, step: int) -> None:
        self.detail_now()
        if self.views.currentIndex() == self.VIEW_ONCALL:
            card = self.oncall.current_card()
            if card is not None:
                card.contacts.move(step)
        else:
            self.detail.move(step)

    def selected_contact(self, n: int | None = None):
        """(whose name, Contact) for the contact the operator means, or (name, None)."""
        self.detail_now()
        if self.views.currentIndex() == self.VIEW_ONCALL:
            card = self.oncall.current_card()
            if card is None:
                return None, None
            rows = card.contacts
            whose = card.who or (self.oncall.now.fallback if self.oncall.now else None)
        else:
            rows = self.detail.contacts
            whose = self.detail.entry
        row = n if n is not None else rows.selected_row()
        contact = rows.contact(row)
        if contact is not None and n is not None:
            rows.select(row)
        return (whose.name if whose is not None else self.detail.title.text()), contact

    def copy_number(self, n: int | None = None) -> str | None:
        self._catch_up()  # a copy made after a handover copies the new shift's number, whatever the timer did
        whose, contact = self.selected_contact(n)
        if contact is None:
            self.say("Nothing to copy: choose a result first." if n is None
                     else f"There is no contact method {n + 1} here.")
            return None
        QGuiApplication.clipboard().setText(contact.value)
        if contact.dialable:
            self.say(f"Copied {contact.value} — {contact.caption} of {whose}.")
        else:
            self.say(f"Copied \"{contact.value}\" ({contact.caption} of {whose}); it is not a number to dial.")
        return contact.value

    def say(self, text: str) -> None:
        self.status_line.show_text(text)
        self.status_shown.emit(text)
        self.announce(text)

    def status_message(self) -> str:
        """What the status bar says now ("" once its 15 seconds are over)."""
        return self.status_line.text()

    def announce(self, text: str) -> None:
        """Tell screen readers (a polite announcement), e.g. "Copied 4471 …" or a new data-age warning."""
        event = QAccessibleAnnouncementEvent(self, text)
        QAccessible.updateAccessibility(event)
        self.announced.emit(text)

    # --- on call ---------------------------------------------------------------------------------

    def _leave_oncall(self) -> None:
        """Back from the on-call view: the next one opens at "now", not at a time chosen for another."""
        self.oncall_schedule = None
        self.as_of = None

    def open_oncall(self, schedule_id: str) -> None:
        if self.session is None or self.session.schedule(schedule_id) is None:
            return
        if schedule_id != self.oncall_schedule:
            self.as_of = None
        self.oncall_schedule = schedule_id
        self.views.setCurrentIndex(self.VIEW_ONCALL)
        self.oncall.schedule = None  # opened afresh: tier 1 is chosen (a refresh keeps the chosen tier)
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
        if self.views.currentIndex() != self.VIEW_ONCALL:
            self.open_oncall_for_selection()
        if self.views.currentIndex() == self.VIEW_ONCALL:
            self.oncall.focus_as_of()
            self.say("Type the date and time; Tab moves between its parts. Enter or Esc returns to the search.")

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
            self._run_search(keep_selection=True)

    # --- new data ----------------------------------------------------------------------------------

    def check_inbox(self) -> None:
        if self.session is None and self.pages.currentIndex() != self.PAGE_ERROR:
            return
        self._manual_check = True
        self.say("Checking the inbox for new data…")
        self.watcher.check_now()

    def _sync_done(self, outcome: SyncOutcome) -> None:
        manual, self._manual_check = self._manual_check, False
        for signer in outcome.new_signers:
            try:
                self.desktop.pin_endorsed(signer)  # never a key IT withdrew
            except Exception as exc:  # noqa: BLE001 - a settings write failing must not stop the window
                log.warning("could not pin a new signer: %s", exc)
        for path, exc in outcome.refused:
            self._notice_once(path, exc)
        if outcome.session is not None:
            self._adopt(outcome.session, search_later=True)
            if not outcome.refused:
                self.notice.hide()
            self.say(f"New data installed: version {outcome.session.version}. Your search was kept.")
        elif self.session is None and outcome.current:
            self.reload()
        elif manual and self.session is not None:
            checked = local_when(self.now(), self.now())
            if outcome.unreachable and len(outcome.unreachable) == outcome.inboxes:
                self.say(f"The inbox cannot be reached (checked {checked}); version {self.session.version} "
                         "stays in use. That is normal while the network or the servers are down.")
            elif not outcome.refused:
                self.say(f"Nothing new: version {self.session.version} is the newest (checked {checked}).")
        self.sync_finished.emit()

    def _sync_failed(self, exc: BaseException) -> None:
        self._manual_check = False
        if self.session is None:
            self.show_error(exc)
        else:
            text = str(exc) if type(exc).__module__ == "backup_operator.errors" else \
                f"Checking the inbox failed ({type(exc).__name__}); the current data stays. Tell IT."
            self._show_notice(text)
        self.sync_finished.emit()

    def _notice_once(self, path, exc) -> None:
        if isinstance(path, str):  # an http(s) inbox's address (core.pull): once per address and reason
            key, name = (path, str(exc), 0), path
        else:
            name = path.name
            try:
                stat = path.stat()
                key = (str(path), stat.st_size, stat.st_mtime_ns)
            except OSError:
                key = (str(path), -1, -1)
        if key in self._reported:
            return
        self._reported.add(key)
        as_of = local_when(self.session.created_at, self.now()) if self.session else ""
        self._show_notice(refusal_sentence(name, exc, self.session.version if self.session else None,
                                           f"data as of {as_of}" if as_of else ""))

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text + "  (Ctrl+K hides this.)")
        self.notice.show()
        self.notice_shown.emit(text)
        self.announce(text)

    def dismiss_notice(self) -> None:
        """Ctrl+K: hide a notice, and shorten the data-age warning to its one-line form."""
        self.notice.hide()
        if self.banner.isVisible() and not self.banner.compact:
            self.acknowledge_banner()

    # --- dialogs ---------------------------------------------------------------------------------

    def open_dialog(self, make: Callable[[], QDialog | None]) -> int:
        """Run a modal dialog made by ``make`` (None: nothing to show) and give the keyboard back to the
        search field afterwards. Returns the dialog's result (0 when nothing was shown)."""
        dialog = make()
        if dialog is None:
            return 0
        try:
            return dialog.exec()
        finally:
            dialog.deleteLater()
            self.focus_search()

    def _sheet_dialog(self, printing: bool):
        from backup_operator.ui.dialogs import CrashSheetDialog

        if self.session is None:
            self.say("There is no directory data to print.")
            return None
        dialog = CrashSheetDialog(self.session, self.settings, self.now, parent=self)
        if printing:
            dialog.print_mode()
        return dialog

    def print_sheet(self) -> None:
        self.open_dialog(lambda: self._sheet_dialog(True))

    def save_sheet(self) -> None:
        self.open_dialog(lambda: self._sheet_dialog(False))

    def open_settings(self) -> None:
        from backup_operator.ui.dialogs import SettingsDialog

        if self.open_dialog(lambda: SettingsDialog(self.desktop, self.settings, self.session, parent=self)):
            self.apply_display_settings()
            self.watcher.rewatch()
            self._run_search(keep_selection=True)
            self.say("Settings saved.")

    def show_help(self) -> None:
        from backup_operator.ui.dialogs import HelpDialog

        self.open_dialog(lambda: HelpDialog(self.actions_with_shortcuts(), parent=self))

    def show_about(self) -> None:
        from backup_operator.ui.dialogs import AboutDataDialog

        self.open_dialog(lambda: AboutDataDialog(self.desktop, self.session, self.now(), parent=self))

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

        self.open_dialog(lambda: KitCheckDialog(self.kit_check(), parent=self))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.watcher.stop()
        self.tick.stop()
        self.handover.stop()
        try:
            self.settings.set_geometry(self.saveGeometry())
        except Exception:  # never block closing on a settings write
            log.warning("could not save the window's size and place", exc_info=True)
        super().closeEvent(event)
