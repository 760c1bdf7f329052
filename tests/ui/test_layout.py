"""The window fits a 1024×768 laptop and a 1366×768 screen: every number and instruction of the shown
person or tier is on screen in full (read from the widgets' visible text), nothing overlaps, and larger
text scrolls down instead of spilling off the side.

"On screen" is checked the way it is drawn: the label is visible, lies inside the window's width, is as
wide as its text (a label that does not wrap) or as tall as its wrapped text needs (one that does).
"""

from __future__ import annotations

import pytest
from layout_checks import no_overlap, only_window, rect_in, rows_have_room, settle, shown_in_full
from PySide6.QtWidgets import QApplication

from backup_operator.ui.widgets import ContactRow

TITLE_BAR = 40  # what a window manager's title bar takes from the screen's height
SCREENS = [(1024, 768), (1366, 768)]


def _type(qtbot, w, text: str) -> None:
    w.search.clear()
    for ch in text:
        qtbot.keyClick(w.search, ch)
    settle(qtbot, w)


@pytest.fixture(params=SCREENS, ids=lambda s: f"{s[0]}x{s[1]}")
def sized(request, window, qtbot):
    width, height = request.param
    settle(qtbot, window)  # the frame fitted to the screen after showing (a timer) before the size is set
    window.resize(width, height - TITLE_BAR)
    settle(qtbot, window)
    assert window.size().width() == width, "nothing resized the window behind the test's back"
    return window


def test_the_window_fits_the_screen_at_every_text_size(qtbot, window):
    for size in ("normal", "large", "extra large", "huge"):
        window.settings.text_size = size
        window.apply_display_settings()
        window.open_oncall("cardio-attending")
        hint = window.minimumSizeHint()
        assert hint.width() <= 1024 and hint.height() <= 768 - TITLE_BAR, (size, hint)


def test_a_persons_every_number_and_instruction_is_shown(qtbot, sized):
    w = sized
    _type(qtbot, w, "amelia hart")
    entry = w.session.entry("p-hart")
    rows = w.detail.contacts.rows
    assert [r.value.text() for r in rows] == [c.value for c in entry.contacts]
    for row, contact in zip(rows, entry.contacts, strict=True):
        for label in (row.value, row.caption):
            shown_in_full(label, w, w.detail)
        if contact.instructions:
            assert row.notes.text() == contact.instructions
            shown_in_full(row.notes, w, w.detail)
    shown_in_full(w.detail.title, w, w.detail)
    rows_have_room(w)
    no_overlap([w.detail.title, w.detail.subtitle, w.detail.heading, *rows, w.detail.extra])
    only_window(w)


def test_every_tier_with_every_method_until_and_next(qtbot, sized):
    w = sized
    w.open_oncall("cardio-attending")
    settle(qtbot, w)
    page = w.oncall
    assert len(page.cards) == 2
    for card in page.cards:
        who = card.who
        shown_in_full(card.name, w, page)
        assert [r.value.text() for r in card.contacts.rows] == [c.value for c in who.contacts], "no method dropped"
        for row, contact in zip(card.contacts.rows, who.contacts, strict=True):
            shown_in_full(row.value, w, page)
            shown_in_full(row.caption, w, page)
            if contact.instructions:
                assert row.notes.text() == contact.instructions
                shown_in_full(row.notes, w, page)
        shown_in_full(card.until, w, page)
        shown_in_full(card.next, w, page)
    assert "Pager" in page.cards[0].contacts.rows[0].caption.text()
    assert page.cards[0].contacts.rows[0].notes.text() == "Page, then wait 5 minutes before trying the mobile"
    shown_in_full(page.ladder, w, page, in_view=False)
    rows_have_room(w)
    assert page.widget().height() >= page.widget().layout().totalHeightForWidth(page.viewport().width())
    no_overlap([page.title, page.subtitle, page.nobody, *page.cards, page.ladder, page.instructions,
                 page.week_title, page.week_table])
    only_window(w)


def test_the_schedules_name_is_in_view_when_it_opens(qtbot, sized):
    """Opened again after the backup tier was shown (the page is reused), the view starts at the top."""
    w = sized
    w.resize(w.width(), 520)  # a page that scrolls, as with the demo hospital's longer tiers and a banner
    w.open_oncall("cardio-attending")
    settle(qtbot, w)
    w._navigate(1)  # the backup tier, further down the page
    settle(qtbot, w)
    assert w.oncall.verticalScrollBar().value() > 0, "the page scrolled down to the backup tier"
    settle(qtbot, w)
    w.escape()
    _type(qtbot, w, "ED on call")
    w.activate_selection()
    settle(qtbot, w)
    page = w.oncall
    assert page.title.text().startswith("Emergency")
    for label in (page.title, page.subtitle, page.cards[0].name):
        shown_in_full(label, w, page)


def test_nobody_on_call_shows_the_department_line_in_full(qtbot, sized):
    w = sized
    w.open_oncall("ir")  # weekdays only; Saturday
    settle(qtbot, w)
    page = w.oncall
    shown_in_full(page.nobody, w, page)
    card = page.cards[0]
    assert card.name.text().startswith("NOBODY")
    assert [r.value.text() for r in card.contacts.rows] == ["5500", "608-555-5500"]
    for row in card.contacts.rows:
        shown_in_full(row.value, w, page)


@pytest.mark.parametrize("size", ["extra large", "huge"])
def test_larger_text_scrolls_down_and_never_sideways(qtbot, window, size):
    window.resize(1024, 768 - TITLE_BAR)
    window.settings.text_size = size
    window.apply_display_settings()
    window.open_oncall("cardio-attending")
    settle(qtbot, window)
    page = window.oncall
    assert page.widget().height() > page.viewport().height(), "the page is taller than the window"
    assert page.verticalScrollBar().isVisible() and not page.horizontalScrollBar().isVisible()
    assert page.widget().width() <= page.viewport().width()
    for card in page.cards:
        for row in card.contacts.rows:
            shown_in_full(row.value, window, page, in_view=False)
            if row.notes.text():
                shown_in_full(row.notes, window, page, in_view=False)
    # Down moves to the backup tier and scrolls it into view.
    window._navigate(1)
    settle(qtbot, window)
    shown_in_full(page.cards[1].name, window, page)
    _type(qtbot, window, "amelia hart")
    for row in window.detail.contacts.rows:
        shown_in_full(row.value, window, window.detail, in_view=False)
    assert not window.detail.horizontalScrollBar().isVisible()


def test_the_banner_fits_and_its_short_form_is_one_line(qtbot, sized, env):
    from datetime import timedelta

    from ui_support import CREATED

    w = sized
    env.now = CREATED + timedelta(hours=13)
    w.refresh_clock()
    settle(qtbot, w)
    shown_in_full(w.banner.text_label, w)
    w.acknowledge_banner()
    settle(qtbot, w)
    label = w.banner.text_label
    assert w.banner.isVisible() and w.banner.compact
    shown_in_full(label, w)
    assert label.heightForWidth(label.width()) <= label.fontMetrics().lineSpacing() * 1.5, "one line"
    assert "13 h 0 min ago" in label.text() and "department line" in label.text()


def test_the_highlight_follows_high_contrast(qtbot, window):
    from PySide6.QtGui import QPalette

    _type(qtbot, window, "amelia hart")
    window.open_oncall("cardio-attending")
    for contrast in (True, False):
        window.settings.high_contrast = contrast
        window.apply_display_settings()
        wanted = QApplication.palette().color(QPalette.ColorRole.Highlight)
        for rows in (window.detail.contacts, window.oncall.cards[0].contacts):
            row = rows.rows[rows.selected_row()]
            assert row.palette().color(QPalette.ColorRole.Window) == wanted, contrast


def test_contact_rows_are_children_never_windows(qtbot, window):
    """A label shown before it has a parent becomes a window of its own (and takes the focus)."""
    from backup_operator.core.session import Contact

    row = ContactRow(1, Contact("pager", "4471", "Pager", 1, "Page twice"), 1.0, window.detail.widget())
    assert not row.notes.isWindow() and not row.value.isWindow()
    window.open_oncall("cardio-attending")
    settle(qtbot, window)
    only_window(window)
    assert window.isActiveWindow()


@pytest.mark.parametrize("size", ["large", "huge"])
def test_a_long_email_address_wraps_inside_the_pane(qtbot, window, size):
    window.resize(1024, 768 - TITLE_BAR)
    window.settings.text_size = size
    window.apply_display_settings()
    _type(qtbot, window, "alsayed")
    rows = window.detail.contacts.rows
    email = next(r for r in rows if r.contact.kind == "email")
    assert email.value.text().replace("\u200b", "") == "m.alsayed@stmarys.example"
    shown_in_full(email.value, window, window.detail, in_view=False)
    shown_in_full(email.caption, window, window.detail, in_view=False)
    assert email.value.wordWrap()
    right = rect_in(email, window).right()
    viewport = rect_in(window.detail.viewport(), window)
    assert right <= viewport.right(), "the row stays inside the pane"


def test_contact_rows_are_reused_for_the_next_listing_and_show_only_its_methods(qtbot, window):
    """The detail pane keeps its rows from one listing to the next; what they show is the new listing's
    methods alone, with their instructions, numbering, highlight and screen-reader names."""
    from backup_operator.core.session import Contact, Entry

    def entry(lid: str, *contacts: Contact) -> Entry:
        return Entry(lid, "person", lid, "", "", "", "", "", (), contacts)

    three = entry("three", Contact("pager", "30412", "Pager", 1, "Page twice"),
                  Contact("extension", "4471", "Extension", 2, ""),
                  Contact("email", "someone.with.a.long.name@hospital.example.org", "Email", 3, "Office hours"))
    one = entry("one", Contact("mobile", "07700 900123", "On-call mobile", 1, ""))
    detail = window.detail
    detail.show_entry(three)
    settle(qtbot, window)
    made = list(detail.contacts.rows)
    detail.show_entry(one)
    settle(qtbot, window)
    assert detail.contacts.rows == made[:1]
    assert [row.isVisible() for row in made] == [True, False, False]
    row = made[0]
    assert (row.index.text(), row.value.text(), row.caption.text()) == ("1.", "07700 900123", "Mobile (On-call mobile)")
    assert not row.notes.isVisible() and not row.value.wordWrap()
    assert row.accessibleName() == "1. Mobile (On-call mobile): 07700 900123"
    assert detail.contacts.selected_row() == 0 and row.property("selected")
    detail.show_entry(three)
    settle(qtbot, window)
    assert detail.contacts.rows == made and all(r.isVisible() for r in made)
    assert made[0].notes.isVisible() and made[0].notes.text() == "Page twice"
    assert made[2].value.wordWrap() and made[2].value.text().replace("\u200b", "") == three.contacts[2].value
    assert [r.property("selected") for r in made] == [True, False, False]
    rows_have_room(window)
    only_window(window)


@pytest.mark.parametrize("size", ["normal", "huge"])
def test_a_long_status_message_is_shown_whole_beside_the_what_changed_button(qtbot, sized, size):
    """QStatusBar's own message was one line clipped at the button: "… of Lakeshore Switchboard Superviso"."""
    w = sized
    w.settings.text_size = size
    w.apply_display_settings()
    badge = w.outage.badge
    badge.setText("What changed: updated (Ctrl+Shift+W)")
    badge.show()
    long = ("The inbox \\\\files01\\switchboard cannot be reached: version 1842 stays in use. Check the "
            "network cable or ask IT; the data you have is good to use meanwhile.")
    for text in ("Copied 8373 — Extension (24/7 line) of Lakeshore Switchboard Supervisor, Main Campus.",
                 long, "Copied 4471."):
        w.say(text)
        settle(qtbot, w)
        assert w.status_message() == text
        shown_in_full(w.status_line, w)
        no_overlap([w.status_line, badge])
        assert rect_in(w.statusBar(), w).bottom() < w.height(), "the status bar runs off the window"
    assert w.status_line.height() == w.status_line.fontMetrics().height(), "a short message is one line again"
