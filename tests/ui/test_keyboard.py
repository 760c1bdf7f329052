"""Keyboard and the small things an operator notices: the date field keeps its digits, Tab goes where the
guide says, the selection survives text size and contrast, counts, copies, F5, labels, announcements."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QGuiApplication

CTRL, SHIFT, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier, \
    Qt.KeyboardModifier.AltModifier


def _type(qtbot, widget, text):
    for ch in text:
        qtbot.keyClick(widget, ch)
    # A typed key's detail pane follows its results (a 0 ms timer): wait for it as an operator's eyes would.
    qtbot.waitUntil(lambda: not widget.window().detail_pending, timeout=2000)


def test_the_date_field_keeps_its_digits(qtbot, window):
    """Ctrl+T, hour, Tab, minutes: every digit lands in the field; Enter shows that time."""
    window.open_oncall("cardio-attending")
    qtbot.keyClick(window.search, Qt.Key.Key_T, CTRL)
    editor = window.oncall.as_of
    assert editor.hasFocus() and editor.currentSection() == editor.Section.HourSection
    _type(qtbot, editor, "21")  # a whole hour: the field moves on to the minutes by itself...
    qtbot.keyClick(editor, Qt.Key.Key_Tab)  # ...so this Tab does not move it again
    assert editor.hasFocus() and editor.currentSection() == editor.Section.MinuteSection
    _type(qtbot, editor, "30")
    qtbot.keyClick(editor, Qt.Key.Key_Tab)  # past the last part: round to the first, still in the field
    assert editor.hasFocus() and window.views.currentIndex() == window.VIEW_ONCALL
    assert editor.currentSectionIndex() == 0
    assert window.search.text() == "", "no digit went into the search box"
    with qtbot.waitSignal(window.oncall.as_of_changed) as changed:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert changed.args[0] == datetime(2026, 3, 8, 2, 30, tzinfo=UTC)  # 21:30 EST on Saturday 7 March
    assert window.search.hasFocus(), "Enter hands the keyboard back to the search box"
    assert window.oncall.cards[0].who.name == "Priya Raman" and "chosen time" in window.oncall.mode.text()


def test_tab_walks_the_parts_when_they_are_not_complete(qtbot, window):
    window.open_oncall("cardio-attending")
    qtbot.keyClick(window.search, Qt.Key.Key_T, CTRL)
    editor = window.oncall.as_of
    _type(qtbot, editor, "1")  # could still become 10-19: the field waits
    assert editor.currentSection() == editor.Section.HourSection
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.currentSection() == editor.Section.MinuteSection
    _type(qtbot, editor, "5")
    with qtbot.waitSignal(window.oncall.as_of_changed) as changed:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert changed.args[0] == datetime(2026, 3, 7, 6, 5, tzinfo=UTC)  # 01:05 EST


def test_tab_from_the_search_box(qtbot, window):
    qtbot.keyClick(window.search, Qt.Key.Key_Tab)
    assert window.search.hasFocus(), "in the results there is nowhere else to go"
    window.open_oncall("pharmacy")
    qtbot.keyClick(window.search, Qt.Key.Key_Tab)
    editor = window.oncall.as_of
    assert editor.hasFocus() and editor.currentSectionIndex() == 0
    qtbot.keyClick(editor, Qt.Key.Key_Backtab, SHIFT)
    assert editor.hasFocus() and editor.currentSectionIndex() == editor.sectionCount() - 1
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert window.search.hasFocus() and window.views.currentIndex() == window.VIEW_ONCALL


def test_typing_in_the_search_box_searches(qtbot, window):
    window.open_oncall("pharmacy")
    _type(qtbot, window.search, "hart")
    assert window.views.currentIndex() == window.VIEW_RESULTS, "typing goes to Find (docs/OPERATOR.md)"
    assert window.results.result(0).name == "Amelia Hart"


@pytest.mark.parametrize("keys", [
    [(Qt.Key.Key_Plus, CTRL)], [(Qt.Key.Key_Minus, CTRL)], [(Qt.Key.Key_H, CTRL | SHIFT)],
    [(Qt.Key.Key_Plus, CTRL), (Qt.Key.Key_H, CTRL | SHIFT), (Qt.Key.Key_Minus, CTRL)],
], ids=["larger", "smaller", "contrast", "all three"])
def test_the_selection_survives_text_size_and_contrast(qtbot, window, keys):
    _type(qtbot, window.search, "smith")
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    chosen = window.current_result()
    qtbot.keyClick(window.search, Qt.Key.Key_Down, ALT)  # the second contact method
    row = window.detail.current_row()
    assert row == 1
    for key, mods in keys:
        qtbot.keyClick(window.search, key, mods)
    assert window.current_result() == chosen
    assert window.detail.entry is not None and window.detail.title.text() == chosen.name
    assert window.detail.current_row() == row
    expected = window.session.entry(chosen.id).contacts[1].value
    with qtbot.waitSignal(window.status_shown):
        qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert QGuiApplication.clipboard().text() == expected, "Enter still copies what is highlighted"


def test_enter_on_an_overhead_service_copies_its_number(qtbot, window):
    _type(qtbot, window.search, "code blue")
    top = window.results.result(0)
    assert top.name == "Code Blue team" and top.number == "5555", "the row shows the number to dial"
    assert window.detail.contacts.rows[0].value.text() == "Code Blue", "the overhead page is listed first"
    assert window.detail.current_row() == 1
    with qtbot.waitSignal(window.status_shown) as said:
        qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert QGuiApplication.clipboard().text() == "5555"
    assert "Copied 5555" in said.args[0]
    with qtbot.waitSignal(window.status_shown) as said:
        qtbot.keyClick(window.search, Qt.Key.Key_1, ALT)  # asked for explicitly: the words are copied
    assert "not a number to dial" in said.args[0]


def test_the_count_says_when_the_list_is_cut(qtbot, window, monkeypatch):
    import backup_operator.ui.window as window_module

    monkeypatch.setattr(window_module, "RESULT_LIMIT", 3)
    _type(qtbot, window.search, "a")
    assert window.results.rowCount() == 3 and window.more_results
    assert window.count.text().startswith("More than 3 results: the best 3 are shown")
    window.search.clear()
    _type(qtbot, window.search, "hart")
    assert window.count.text() == "1 result"


def test_the_find_label_names_the_search_box(window):
    assert window.find_label.buddy() is window.search


def test_settings_labels_have_their_fields(qtbot, window, env):
    from backup_operator.ui.dialogs import SettingsDialog

    dialog = SettingsDialog(env.desktop, window.settings, window.session, parent=window)
    qtbot.addWidget(dialog)
    assert dialog.labels["Inbox:"].buddy() is dialog.inbox, "no literal '&' in front of Inbox"
    assert dialog.labels["Paper for the crash sheet:"].buddy() is dialog.paper
    for label in dialog.labels.values():
        if label.text():
            assert label.buddy() is not None


def test_f5_says_when_there_is_nothing_new(qtbot, window):
    with qtbot.waitSignal(window.sync_finished, timeout=15_000):
        qtbot.keyClick(window.search, Qt.Key.Key_F5)
    assert window.status_message().startswith("Nothing new: version 1842 is the newest")


def test_f5_says_when_the_inbox_is_unreachable(qtbot, window, env):
    import shutil

    shutil.rmtree(env.inbox)  # the share is offline
    with qtbot.waitSignal(window.sync_finished, timeout=15_000):
        qtbot.keyClick(window.search, Qt.Key.Key_F5)
    message = window.status_message()
    assert "cannot be reached" in message and "version 1842 stays in use" in message


def test_copies_and_warnings_are_announced(qtbot, window, env):
    from datetime import timedelta

    from ui_support import CREATED

    heard = []
    window.announced.connect(heard.append)
    _type(qtbot, window.search, "amelia")
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert any(text.startswith("Copied 4471") for text in heard)
    env.now = CREATED + timedelta(hours=13)
    window.refresh_clock()
    assert any(text.startswith("OLD DATA") for text in heard), "a new data-age warning is announced"
    count = len(heard)
    window.refresh_clock()
    assert len(heard) == count, "an unchanged banner is not announced again every tick"


def test_the_banner_is_acknowledged_into_one_line_and_comes_back_when_worse(qtbot, window, env):
    from datetime import timedelta

    from ui_support import CREATED, INTERVAL

    env.now = CREATED + timedelta(seconds=INTERVAL * 2)
    window.refresh_clock()
    assert window.banner.level == "amber" and not window.banner.compact
    qtbot.keyClick(window.search, Qt.Key.Key_K, CTRL)
    assert window.banner.isVisible() and window.banner.compact
    assert "Older than usual, updated 8 h 0 min ago" in window.banner.text()
    env.now = CREATED + timedelta(seconds=INTERVAL * 2, minutes=30)
    window.refresh_clock()
    assert window.banner.compact and "8 h 30 min ago" in window.banner.text(), "the short line keeps counting"
    env.now = CREATED + timedelta(seconds=INTERVAL * 4)
    window.refresh_clock()
    assert window.banner.level == "red" and not window.banner.compact, "worse news shows in full again"
    window.banner.button.click()
    assert window.banner.compact
    from backup_operator.ui.settings import UiSettings

    assert UiSettings(env.home).acknowledged == "1842:red", "remembered across a restart of the window"


def test_a_clock_behind_the_data_is_a_warning_not_fresh(window, env):
    from datetime import timedelta

    from ui_support import CREATED

    env.now = CREATED - timedelta(hours=2)
    window.refresh_clock()
    assert window.banner.isVisible() and window.banner.level == "clock"
    assert "clock is behind" in window.banner.text()
    assert "later than this computer's clock" in window.age.text() and "ago" not in window.age.text()


def test_first_launch_names_enrolment_first(qtbot, tmp_path, monkeypatch):
    from backup_operator.config import Desktop
    from backup_operator.ui.window import MainWindow

    monkeypatch.delenv("BACKUP_OPERATOR_PASSPHRASE", raising=False)
    w = MainWindow(Desktop(tmp_path / "fresh-home"), poll_ms=3_600_000)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.load_failed, timeout=10_000):
        w.show()
    assert w.error.title.text() == "This desktop is not set up to read the directory"
    it = w.error.it.text()
    assert it.index("enroll") < it.index("trust"), "enrolment is the first step IT takes"
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_opening_shows_what_it_is_doing(qtbot, env):
    from backup_operator.ui.window import MainWindow

    w = MainWindow(env.desktop, clock=env.clock, poll_ms=3_600_000, watch=False)
    qtbot.addWidget(w)
    stages = []
    w.opening_stage.connect(stages.append)
    assert w.pages.currentIndex() == w.PAGE_OPENING
    assert w.opening.bar.maximum() == 0, "a moving bar while it opens"
    qtbot.waitUntil(lambda: w.session is not None, timeout=15_000)
    assert stages[0].startswith("Checking the signature") and "search index" in stages[-1]
    assert w.opening.stage.text() == stages[-1]
    assert w.pages.currentIndex() == w.PAGE_MAIN
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_a_chosen_time_does_not_follow_into_the_next_schedule(qtbot, window):
    window.open_oncall("cardio-attending")
    qtbot.keyClick(window.search, Qt.Key.Key_T, CTRL)
    _type(qtbot, window.oncall.as_of, "21")
    with qtbot.waitSignal(window.oncall.as_of_changed):
        qtbot.keyClick(window.oncall.as_of, Qt.Key.Key_Return)
    assert "chosen time" in window.oncall.mode.text()
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)  # back to the results
    window.open_oncall("pharmacy")
    assert window.oncall.mode.text() == "(now)", "another schedule opens at now"
    window.set_as_of(datetime(2026, 3, 7, 20, 0, tzinfo=UTC))
    _type(qtbot, window.search, "x")  # typing goes back to the results, and forgets the chosen time
    window.open_oncall("pharmacy")
    assert window.oncall.mode.text() == "(now)"
