"""The main window through the keyboard: typing, navigating, copying, details, on call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication


def type_query(qtbot, w, text):
    for ch in text:
        with qtbot.waitSignal(w.results_changed, timeout=2000):
            qtbot.keyClick(w.search, ch)
    qtbot.waitUntil(lambda: not w.detail_pending, timeout=2000)  # the detail pane follows the results


def test_window_opens_on_the_installed_snapshot(window):
    assert window.session.version == 1842
    assert window.age.text() == "Data as of " + window.age.text().split("Data as of ")[1]
    assert "(3 h 12 min ago), version 1842" in window.age.text()
    assert not window.banner.isVisible()
    assert window.search.hasFocus()


def test_typing_updates_results_on_every_keystroke(qtbot, window):
    seen = []
    window.results_changed.connect(lambda: seen.append([r.name for r in window.results._rows]))
    type_query(qtbot, window, "hart")
    assert len(seen) == 4  # one update per key, no waiting for Enter
    assert seen[-1][0] == "Amelia Hart"
    assert window.detail.title.text() == "Amelia Hart"
    assert window.detail.contacts.contact(0).value == "4471"  # the first method to try comes first
    assert window.detail.current_row() == 0
    qtbot.keyClick(window.search, Qt.Key.Key_Backspace)
    assert window.search.text() == "har"


def test_no_match_says_what_to_try(qtbot, window):
    type_query(qtbot, window, "zzqx")
    assert window.results.rowCount() == 0
    assert "Nothing matches" in window.count.text()


def test_up_down_enter_and_escape(qtbot, window):
    type_query(qtbot, window, "smith")
    assert window.results.rowCount() >= 2
    first, second = window.results.result(0), window.results.result(1)
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    assert window.current_result() == second
    assert window.detail.title.text() == second.name
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    qtbot.keyClick(window.search, Qt.Key.Key_Up)
    qtbot.keyClick(window.search, Qt.Key.Key_Up)
    qtbot.keyClick(window.search, Qt.Key.Key_Up)  # stops at the top
    assert window.current_result() == first
    assert window.search.hasFocus(), "the search field keeps the keyboard"
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)
    assert window.search.text() == ""


def test_enter_copies_the_first_number_and_says_so(qtbot, window):
    type_query(qtbot, window, "amelia")
    with qtbot.waitSignal(window.status_shown) as said:
        qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert QGuiApplication.clipboard().text() == "4471"
    assert "Copied 4471" in said.args[0] and "Amelia Hart" in said.args[0]
    assert "4471" in window.status_message()


def test_ctrl_c_copies_the_selected_contact_method(qtbot, window):
    type_query(qtbot, window, "amelia")
    qtbot.keyClick(window.search, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)  # next method
    qtbot.keyClick(window.search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "608-555-0147"
    qtbot.keyClick(window.search, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)  # method number 3
    assert QGuiApplication.clipboard().text() == "4402"


def test_a_typed_keys_detail_pane_follows_its_results_and_is_never_read_stale(qtbot, window):
    type_query(qtbot, window, "amelia")
    assert window.detail.title.text() == "Amelia Hart"
    window.search.clear()  # set by the program, not typed: everything at once
    assert not window.detail_pending
    for ch in "code blue":  # typed, with no turn of the event loop in between
        qtbot.keyClick(window.search, ch)
    assert window.results.result(0).name == "Code Blue team", "a key's results are there at once"
    assert window.detail_pending, "its detail pane follows just after (once the results are painted)"
    # Copying before the pane followed copies from what the results show, never from the pane's old entry.
    qtbot.keyClick(window.search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "5555"
    assert window.detail.title.text() == "Code Blue team" and not window.detail_pending
    # And left to itself, the pane follows on the next turn of the event loop.
    window.search.clear()
    with qtbot.waitSignal(window.detail_shown, timeout=2000):
        for ch in "hart":
            qtbot.keyClick(window.search, ch)
        assert window.detail_pending and window.detail.title.text() != "Amelia Hart"
    assert window.detail.title.text() == "Amelia Hart" and not window.detail_pending


def test_a_listings_on_call_lines_follow_its_contact_methods(qtbot, window):
    seen = []
    window.detail_shown.connect(lambda: seen.append((window.detail.title.text(), window.detail.extra.text(),
                                                     window.detail_pending)))
    window.search.clear()
    seen.clear()
    for ch in "cardiology department":
        qtbot.keyClick(window.search, ch)
    qtbot.waitUntil(lambda: not window.detail_pending, timeout=2000)
    # First the department line's contact methods (its on-call lines still to come), then the lines.
    assert seen == [("Cardiology department line", "", True)]
    assert window.detail.extra.text().startswith("On call now for <b>Cardiology — attending</b>: <b>Amelia Hart")
    number = window.detail.contacts.contact(window.detail.current_row()).value
    # Copying in between copies its number; the lines are filled in first all the same.
    window.search.clear()
    for ch in "cardiology department":
        qtbot.keyClick(window.search, ch)
    qtbot.keyClick(window.search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == number and not window.detail_pending
    assert "On call now for" in window.detail.extra.text()


def test_ctrl_c_with_text_selected_still_copies_the_text(qtbot, window):
    type_query(qtbot, window, "hart")
    window.search.selectAll()
    qtbot.keyClick(window.search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "hart"


def test_number_finds_its_owner(qtbot, window):
    type_query(qtbot, window, "4471")
    assert window.results.result(0).name == "Amelia Hart"


def test_schedule_result_opens_on_call_view(qtbot, window, env):
    type_query(qtbot, window, "cardiology attending")
    top = window.results.result(0)
    assert top.kind == "schedule"
    # 2026-03-07 14:12 UTC is 09:12 EST: the day shift (08–20) of day 6 (index 6 % 3 = 0 → Hart).
    assert "Amelia Hart" in window.detail.subtitle.text()
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert window.views.currentIndex() == 1
    page = window.oncall
    assert page.title.text() == "Cardiology — attending"
    tiers = [card.tier for card in page.cards]
    assert [(t.tier, t.who.name) for t in tiers] == [(1, "Amelia Hart"), (2, "John Smith")]
    assert page.cards[0].until.text().startswith("Until Sat 07 Mar 20:00 EST")
    assert "Priya Raman" in page.cards[0].next.text()
    assert "EST (UTC−05:00)" in page.zone.text()
    assert "Department line" in page.ladder.text()
    assert page.week_table.text().count("<tr>") > 14
    # Down selects the backup; Ctrl+C copies the backup's first number.
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    qtbot.keyClick(window.search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "4475"
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)
    assert window.views.currentIndex() == 0
    assert window.search.text() == "cardiology attending"


def test_as_of_after_the_dst_change_shows_the_new_offset(qtbot, window, env):
    window.open_oncall("cardio-attending")
    window.set_as_of(datetime(2026, 3, 9, 1, 0, tzinfo=UTC))  # 21:00 EDT on 8 March
    page = window.oncall
    assert "EDT (UTC−04:00)" in page.zone.text()
    assert "chosen time" in page.mode.text()
    qtbot.keyClick(window.search, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert "EST" in page.zone.text() and page.mode.text() == "(now)"


def test_typing_the_as_of_time_uses_the_schedules_zone(qtbot, window):
    window.open_oncall("pharmacy")
    page = window.oncall
    from PySide6.QtCore import QDate, QDateTime, QTime, QTimeZone

    with qtbot.waitSignal(page.as_of_changed) as changed:
        page.as_of.setDateTime(QDateTime(QDate(2026, 3, 10), QTime(9, 30), QTimeZone.utc()))
    assert changed.args[0] == datetime(2026, 3, 10, 13, 30, tzinfo=UTC)  # 09:30 EDT


def test_nobody_on_call_points_to_the_department_line(qtbot, window, env):
    window.open_oncall("ir")  # interventional radiology: weekdays only; 7 March 2026 is a Saturday
    assert window.oncall.nobody.isVisible()
    assert "Radiology reception" in window.oncall.nobody.text()
    assert "5500" in window.oncall.nobody.text()


def test_favourites_show_when_the_search_is_empty(qtbot, window):
    window.open_oncall("pharmacy")
    qtbot.keyClick(window.search, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert window.settings.favourites == ["pharmacy"]
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)
    assert window.results.rowCount() == 1 and window.results.result(0).id == "pharmacy"


def test_every_action_has_a_shortcut_and_help_lists_it(window):
    listed = window.actions_with_shortcuts()
    assert all(keys for _, keys in listed)
    from backup_operator.ui.dialogs import HelpDialog

    dialog = HelpDialog(listed, parent=window)
    text = dialog.text.toPlainText()
    assert "Print crash sheet" in text and "Ctrl+P" in text and "F5" in text


def test_text_size_and_contrast_persist(qtbot, window, env):
    qtbot.keyClick(window.search, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.search, Qt.Key.Key_H,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    from backup_operator.ui.settings import UiSettings

    again = UiSettings(env.home)
    assert again.text_size == "normal" and again.high_contrast
    assert (env.home / "window.ini").is_file()


def test_default_text_is_large(env):
    from backup_operator.ui.settings import UiSettings

    assert UiSettings(env.home).text_size == "large"


def test_typos_and_word_order_are_forgiven(qtbot, window):
    assert not window.session.degraded, "the real search index is in use"
    type_query(qtbot, window, "hrat amelai")
    assert window.results.result(0).name == "Amelia Hart"
    assert window.results.result(0).spans, "the matched part of the name is highlighted"


def test_typing_part_of_a_number_selects_that_number(qtbot, window):
    type_query(qtbot, window, "555-0147")
    top = window.results.result(0)
    assert top.name == "Amelia Hart" and top.number == "608-555-0147" and top.number_spans
    qtbot.keyClick(window.search, Qt.Key.Key_Return)
    assert QGuiApplication.clipboard().text() == "608-555-0147"


def test_operator_guide_lists_every_shortcut(window):
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "OPERATOR.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in guide.splitlines() if line.startswith("| ")}
    for what, keys in window.actions_with_shortcuts():
        assert keys in rows, f"docs/OPERATOR.md does not list {keys} ({what})"


def test_ctrl_t_edits_the_time_and_esc_returns_to_the_search(qtbot, window):
    window.open_oncall("cardio-attending")
    qtbot.keyClick(window.search, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert window.oncall.as_of.hasFocus()
    with qtbot.waitSignal(window.oncall.as_of_changed):
        qtbot.keyClick(window.oncall.as_of, Qt.Key.Key_Up)  # one hour later
    assert "chosen time" in window.oncall.mode.text()
    qtbot.keyClick(window.oncall.as_of, Qt.Key.Key_Escape)
    assert window.search.hasFocus()
    assert window.views.currentIndex() == 1, "Esc in the editor leaves the schedule open"


def test_settings_dialog_saves_text_size_contrast_support_and_inbox(qtbot, window, env, tmp_path):
    from backup_operator.config import Desktop
    from backup_operator.ui.dialogs import SettingsDialog
    from backup_operator.ui.settings import UiSettings

    dialog = SettingsDialog(env.desktop, window.settings, window.session, parent=window)
    qtbot.addWidget(dialog)
    dialog.size.setCurrentIndex(2)
    dialog.contrast.setChecked(True)
    dialog.support.setText("the IT service desk on ext 5555")
    other = tmp_path / "share"
    other.mkdir()
    dialog.inbox.setText(str(other))
    dialog.save()
    saved = UiSettings(env.home)
    assert saved.text_size == "extra large" and saved.high_contrast
    assert saved.support == "the IT service desk on ext 5555"
    assert Desktop(env.home).config.inboxes[0] == str(other)


def test_crash_sheet_dialog_writes_the_ticked_schedules(qtbot, window, tmp_path):
    import subprocess

    from backup_operator.ui.dialogs import CrashSheetDialog

    dialog = CrashSheetDialog(window.session, window.settings, window.now, parent=window)
    qtbot.addWidget(dialog)
    dialog.model.set_all(False)
    row = next(r for r in range(dialog.model.rowCount()) if dialog.model.data(dialog.model.index(r)).startswith("Pharmacy"))
    dialog.list.setCurrentIndex(dialog.model.index(row))
    qtbot.keyClick(dialog.list, Qt.Key.Key_Space)  # tick it from the keyboard
    assert dialog.model.checked_ids() == ["pharmacy"]
    dialog.hours.setValue(24)
    target = dialog.save_pdf(str(tmp_path / "sheet.pdf"))
    text = subprocess.run(["pdftotext", "-raw", str(target), "-"], capture_output=True, text=True, check=True).stdout
    text = " ".join(text.replace("-\n", "-").split())  # a cell may wrap a long name after its hyphen
    assert "Pharmacy — on-call pharmacist" in text and "Mohammed Al-Sayed" in text
    assert window.settings.print_hours == 24


def test_help_menu_runs_the_kit_check(window, env):
    from backup_operator.ui.dialogs import KitCheckDialog

    results = window.kit_check()
    by_name = {r.name: r for r in results}
    assert by_name["signature"].ok and by_name["decrypts"].ok and by_name["PDF"].ok
    assert by_name["data age"].ok  # the window's clock says the data is 3 h 12 min old
    dialog = KitCheckDialog(results)
    assert dialog.ready and "This kit is ready." in dialog.text.toPlainText()

    env.now = env.now + timedelta(days=4)  # past the snapshot's expiry
    aged = {r.name: r for r in window.kit_check()}["data age"]
    assert not aged.ok and "expired" in aged.detail
    assert "NOT ready" in KitCheckDialog(window.kit_check()).text.toPlainText()
    assert not list(env.home.glob("*.pdf")), "the PDF probe cleans up after itself"
