"""On call is live everywhere: at the handover instant the result list, the detail pane, the on-call view
and the copy action all switch to the new shift, driven by the timer the window sets for that instant.

The clock is injected: ``RunningClock`` starts a little before a handover and runs in real time, so the
window's own timer really fires at the boundary (no test calls the refresh itself).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QGuiApplication

from backup_operator.ui.window import MAX_TIMER_MS, MainWindow

# Cardiology (America/New_York): day 08–20 and night 20–08. On Sat 7 March 2026 the day shift is Amelia
# Hart's and the night Priya Raman's; 20:00 EST is 01:00 UTC on the 8th.
HANDOVER = datetime(2026, 3, 8, 1, 0, tzinfo=UTC)


class RunningClock:
    """A clock that starts at ``start`` and then runs in real time; ``jump`` moves it (a computer that slept).

    It starts held: time stands still while the window opens and the test types, however slow a loaded
    machine is, and ``release`` lets it run (the window's timer, set while it was held, fires early, finds
    the boundary not reached and waits on, as after any early wake-up).
    """

    def __init__(self, start: datetime):
        self.base, self.t0, self.held = start, time.monotonic(), True

    def __call__(self) -> datetime:
        return self.base if self.held else self.base + timedelta(seconds=time.monotonic() - self.t0)

    def release(self) -> None:
        self.jump(self.base)

    def jump(self, to: datetime) -> None:
        self.base, self.t0, self.held = to, time.monotonic(), False


@pytest.fixture
def live(qtbot, env):
    clock = RunningClock(HANDOVER - timedelta(seconds=1.2))
    w = MainWindow(env.desktop, clock=clock, poll_ms=3_600_000, watch=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.session is not None, timeout=15_000)
    w.activateWindow()
    w.focus_search()
    w.clock_under_test = clock
    yield w
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def _type(qtbot, w, text):
    for ch in text:
        qtbot.keyClick(w.search, ch)
    qtbot.waitUntil(lambda: not w.detail_pending, timeout=2000)  # the detail pane follows the results


def test_the_window_sets_a_timer_for_the_next_boundary(qtbot, window, env):
    # 14:12 UTC; the next boundary of any schedule is the ED's 15:00 EST (20:00 UTC), 5 h 48 min away.
    assert window.next_handover == datetime(2026, 3, 7, 20, 0, tzinfo=UTC)
    assert window.handover.isActive() and window.handover.isSingleShot()
    assert abs(window.handover.remainingTime() - MAX_TIMER_MS) < 5_000, "a far handover is re-checked hourly"


def test_results_detail_and_copy_switch_at_the_handover(qtbot, live):
    w = live
    _type(qtbot, w, "cardiology attending")
    top = w.results.result(0)
    assert top.kind == "schedule" and "Amelia Hart" in top.subtitle
    assert "Amelia Hart" in w.detail.subtitle.text() and w.detail.contacts.contact(0).value == "4471"
    assert w.next_handover == HANDOVER
    w.clock_under_test.release()
    with qtbot.waitSignal(w.handover_done, timeout=5_000) as fired:
        pass  # nothing is done by the test: the window's timer fires at 20:00 EST
    assert fired.args[0] == HANDOVER and w.now() >= HANDOVER
    top = w.results.result(0)
    assert "Priya Raman" in top.subtitle and top.number == "4473"
    assert w.detail.subtitle.text().startswith("On call now (Primary): Priya Raman until Sun 08 Mar 08:00 EDT")
    assert w.search.text() == "cardiology attending", "the operator's search is kept"
    with qtbot.waitSignal(w.status_shown):
        qtbot.keyClick(w.search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "4473", "the new shift's number is copied"
    assert w.next_handover == datetime(2026, 3, 8, 4, 0, tzinfo=UTC), "the next boundary is scheduled at once"


def test_the_on_call_view_switches_at_the_handover(qtbot, live):
    w = live
    w.open_oncall("cardio-attending")
    assert [c.who.name for c in w.oncall.cards] == ["Amelia Hart", "John Smith"]
    w.clock_under_test.release()
    with qtbot.waitSignal(w.handover_done, timeout=5_000):
        pass
    assert [c.who.name for c in w.oncall.cards] == ["Priya Raman", "John Smith"]
    assert w.oncall.cards[0].until.text().startswith("Until Sun 08 Mar 08:00 EDT")
    qtbot.keyClick(w.search, Qt.Key.Key_Return)  # Enter in the on-call view copies the selected tier
    assert QGuiApplication.clipboard().text() == "4473"


def test_a_copy_after_a_missed_boundary_checks_first(qtbot, live):
    """The computer slept through the handover: the timer has not fired, but a copy must not be stale."""
    w = live
    _type(qtbot, w, "cardiology attending")
    assert "Amelia Hart" in w.results.result(0).subtitle
    w.handover.stop()  # as if the timer never got to run
    w.clock_under_test.jump(HANDOVER + timedelta(hours=3))
    qtbot.keyClick(w.search, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "4473"
    assert "Priya Raman" in w.results.result(0).subtitle


def test_the_clock_tick_catches_a_missed_boundary(qtbot, live):
    w = live
    w.open_oncall("cardio-attending")
    w.handover.stop()
    w.clock_under_test.jump(HANDOVER + timedelta(minutes=5))
    with qtbot.waitSignal(w.handover_done, timeout=5_000):
        w.tick.setInterval(10)
    assert w.oncall.cards[0].who.name == "Priya Raman"


def test_a_chosen_time_stays_chosen_across_a_handover(qtbot, live):
    w = live
    w.open_oncall("cardio-attending")
    w.set_as_of(datetime(2026, 3, 7, 15, 0, tzinfo=UTC))  # 10:00 EST: Amelia Hart's day
    w.clock_under_test.release()
    with qtbot.waitSignal(w.handover_done, timeout=5_000):
        pass
    assert w.oncall.cards[0].who.name == "Amelia Hart" and "chosen time" in w.oncall.mode.text()
    qtbot.keyClick(w.search, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert w.oncall.cards[0].who.name == "Priya Raman"


def test_a_far_handover_wakes_hourly_and_waits_on(qtbot, window, env):
    """The hourly wake-up before a distant boundary refreshes nothing and sets the timer again."""
    seen = []
    window.handover_done.connect(seen.append)
    env.now = datetime(2026, 3, 7, 15, 12, tzinfo=UTC)  # an hour later, still before 20:00 UTC
    window.handover.timeout.emit()
    assert seen == [] and window.handover.isActive()
    assert window.next_handover == datetime(2026, 3, 7, 20, 0, tzinfo=UTC)
