"""A shift at the switchboard, compressed: the real window, more than 5,000 key presses.

Realistic queries typed key by key (names, typos, departments, numbers, "ED on call"), Up/Down, Enter and
copies, the on-call view and back, text size and contrast changes, every dialog opened and closed, two
new snapshots installed in the background while typing, and a clock that jumps to just before each
handover so that the window's own timer fires at the boundary — across midnight and the night the
clocks go forward. After every handover the visible answers are checked against the rota itself
(``sample_hospital.records``, not the code under test). The process must stay alive (a binding that
leaks references to None aborts it long before 5,000 keys) and its memory must stay bounded.

Marked ``slow`` (about a minute on a busy 2-core machine); CI runs every test, slow ones included.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication
from sample_hospital import records
from ui_support import FIRST_DAY, NOW, type_text

from backup_operator.ui.window import MainWindow

pytestmark = pytest.mark.slow

CTRL, SHIFT, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier, \
    Qt.KeyboardModifier.AltModifier
NEW_YORK = ZoneInfo("America/New_York")

# What operators type, and (for some) what must come first.
QUERIES = [
    ("amelia hart", "Amelia Hart"), ("hrat amelai", "Amelia Hart"), ("smtih jonh", "John Smith"),
    ("4471", "Amelia Hart"), ("555-0147", "Amelia Hart"), ("o'connor", "Liam O'Connor"),
    ("muller", "Lukas Müller"), ("Müller", "Lukas Müller"), ("pharmacy on call", "Pharmacy — on-call pharmacist"),
    ("ED on call", "Emergency — physician in charge"), ("cards", None), ("icu", None),
    ("security", None), ("helipad", "Helipad"), ("interpreter", "Interpreter service"),
    ("code blue", "Code Blue team"), ("cardiology attending", "Cardiology — attending"), ("radiology", None),
    ("watanabe", "Kenji Watanabe"), ("priya", "Priya Raman"), ("7100", None), ("switchboard", None),
    ("grace kim", "Grace Kim"), ("alsayed", "Mohammed Al-Sayed"), ("zzqx", None),
]
SCHEDULE_QUERIES = {"cardio-attending": "cardiology attending", "ed-physician": "emergency physician in charge",
                    "pharmacy": "pharmacy on call", "ir": "radiology interventional"}


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


ROTA = records(FIRST_DAY)  # the oracle: the records the snapshots are built from (changed as they are)


def holder(schedule_id: str, at: datetime) -> str | None:
    """Tier 1 of a schedule at an instant, read straight from the rota's records."""
    names = {listing["id"]: listing["display_name"] for listing in ROTA["listings"]}
    for shift in ROTA["shifts"]:
        start = datetime.strptime(shift["start_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        end = datetime.strptime(shift["end_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if shift["schedule_id"] == schedule_id and shift["tier"] == 1 and start <= at < end:
            return names[shift["listing_id"]]
    return None


class Clock:
    """Runs in real time from ``base``; ``jump`` moves it (the soak skips the hours between handovers)."""

    def __init__(self, base: datetime):
        self.base, self.t0 = base, time.monotonic()

    def __call__(self) -> datetime:
        return self.base + timedelta(seconds=time.monotonic() - self.t0)

    def jump(self, to: datetime) -> None:
        self.base, self.t0 = to, time.monotonic()


class Operator:
    def __init__(self, qtbot, window: MainWindow):
        self.qtbot, self.w, self.keys = qtbot, window, 0

    def key(self, key, mods=Qt.KeyboardModifier.NoModifier) -> None:
        target = self.w.search if not self.w.oncall.as_of.hasFocus() else self.w.oncall.as_of
        if isinstance(key, str) and not key.isascii():
            type_text(target, key)  # qtbot.keyClick(w, "ü") types "Ã", the first byte of its UTF-8
        else:
            self.qtbot.keyClick(target, key, mods)
        self.keys += 1
        if self.keys % 5 == 0:
            self.qtbot.wait(1)  # let it paint, and deliver background results, as a real event loop would

    def type(self, text: str) -> None:
        for ch in text:
            self.key(ch)

    def clear(self) -> None:
        while self.w.search.text():
            self.key(Qt.Key.Key_Backspace)


def close_modal_soon(qtbot, action=None) -> None:
    """When the next modal dialog is up, do ``action`` with it (if any), then press Esc on it."""
    def close() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, close)
            return
        if action is not None:
            action(dialog)
        if dialog.isVisible():
            qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    QTimer.singleShot(20, close)


def back_to(qtbot, window) -> None:
    """After a dialog closes the window manager activates the window again (offscreen, the test does)."""
    qtbot.wait(10)
    if not window.isActiveWindow():
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow, timeout=5_000)


def check_on_call(op: Operator, at: datetime) -> None:
    """Every schedule's visible answers (result row, detail, on-call view, copy) match the rota at ``at``."""
    w = op.w
    for schedule_id, query in SCHEDULE_QUERIES.items():
        expected = holder(schedule_id, at)
        op.clear()
        op.type(query)
        row = next(r for r in w.results._rows if r.kind == "schedule" and r.id == schedule_id)
        if expected is None:
            assert row.subtitle.startswith("Nobody on call now"), (schedule_id, at, row.subtitle)
        else:
            assert f"On call now: {expected} (" in row.subtitle, (schedule_id, at, row.subtitle)
        w.open_oncall(schedule_id)
        card = w.oncall.cards[0]
        assert (card.who.name if card.who else None) == expected, (schedule_id, at)
        op.key(Qt.Key.Key_C, CTRL)
        person = card.who or w.oncall.now.fallback
        assert QGuiApplication.clipboard().text() == person.first_number.value
        op.key(Qt.Key.Key_Escape)


def test_a_shift_of_typing(qtbot, env):
    clock = Clock(NOW)
    w = MainWindow(env.desktop, clock=clock, poll_ms=3_600_000)
    qtbot.addWidget(w)
    w.resize(1024, 728)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.session is not None and not w.watcher.busy, timeout=15_000)
    w.activateWindow()
    w.focus_search()
    w.tick.setInterval(200)  # the 30-second clock tick, compressed like the rest of the shift
    op = Operator(qtbot, w)
    crossed: list[datetime] = []
    w.handover_done.connect(crossed.append)
    installs = {1843: lambda d: d["listings"].append(
        {"id": "p-new", "kind": "person", "display_name": "Nadia Okonkwo", "given_name": "Nadia",
         "family_name": "Okonkwo", "title": "Locum anaesthetist", "department": "Anaesthesia", "site": "St Mary's"}),
        1844: lambda d: d["listings"][8].update(display_name="Grace Kim-Lee", family_name="Kim-Lee")}
    dialogs_seen: set[str] = set()
    rss_start = None
    round_no = 0

    timings: dict[str, float] = {}
    mark = time.monotonic()

    def spent(what: str) -> None:
        nonlocal mark
        now = time.monotonic()
        timings[what] = timings.get(what, 0.0) + now - mark
        mark = now

    while op.keys < 5_000:
        round_no += 1
        spent("typing")
        query, first = QUERIES[round_no % len(QUERIES)]
        op.clear()
        op.type(query)
        assert w.search.text() == query, (w.search.text(), query)  # typed as written, "Müller" too
        if first is not None:
            assert w.results.result(0) is not None and w.results.result(0).name.startswith(first), (query, op.keys)
        op.key(Qt.Key.Key_Down)
        op.key(Qt.Key.Key_Up)
        if w.results.rowCount():
            op.key(Qt.Key.Key_Down, ALT)  # the next contact method
            chosen = w.detail.contacts.contact(w.detail.current_row())
            op.key(Qt.Key.Key_Return)
            if w.views.currentIndex() == w.VIEW_ONCALL:  # a schedule: its on-call view opened
                op.key(Qt.Key.Key_Down)
                op.key(Qt.Key.Key_C, CTRL)
                op.key(Qt.Key.Key_Escape)
            elif chosen is not None:
                assert QGuiApplication.clipboard().text() == chosen.value, (query, op.keys)

        if round_no % 7 == 0:
            op.key(Qt.Key.Key_Plus if round_no % 14 else Qt.Key.Key_Minus, CTRL)
        if round_no % 11 == 0:
            op.key(Qt.Key.Key_H, CTRL | SHIFT)

        if round_no == 20:  # warmed up: caches, fonts, the first dialogs' code
            gc.collect()
            rss_start = rss_mb()

        if round_no % 9 == 0:  # the next handover: jump to just before it and let the window's timer fire
            boundary = w.next_handover
            clock.jump(boundary - timedelta(milliseconds=250))
            spent("typing")
            with qtbot.waitSignal(w.handover_done, timeout=10_000):
                pass
            spent("waiting for handovers")
            check_on_call(op, clock())
            spent("checking handovers")

        # Two new snapshots arrive while the operator keeps typing.
        if round_no in (12, 40):
            version = 1843 if round_no == 12 else 1844
            env.drop(version, mutate=installs[version])
            installs[version](ROTA)
            w.check_inbox()
            for extra, _ in QUERIES[:4]:
                op.clear()
                op.type(extra)
            spent("typing")
            qtbot.waitUntil(lambda v=version: w.session.version == v, timeout=30_000)
            spent("waiting for installs")
            op.clear()
            op.type("okonkwo" if version == 1843 else "kim-lee")
            assert w.results.result(0).name == ("Nadia Okonkwo" if version == 1843 else "Grace Kim-Lee")

        # Every dialog, opened from the keyboard and closed again.
        if round_no == 15:
            spent("typing")
            for name, keys in (("help", (Qt.Key.Key_F1,)), ("about", (Qt.Key.Key_I, CTRL)),
                               ("settings", (Qt.Key.Key_Comma, CTRL)), ("kit", (Qt.Key.Key_K, CTRL | SHIFT)),
                               ("print", (Qt.Key.Key_P, CTRL))):
                close_modal_soon(qtbot, lambda d, name=name: dialogs_seen.add(name))
                op.key(*keys)
                back_to(qtbot, w)
            target = env.home.parent / "soak-sheet.pdf"
            close_modal_soon(qtbot, lambda d, target=target: (dialogs_seen.add("pdf"), d.save_pdf(str(target))))
            op.key(Qt.Key.Key_S, CTRL | SHIFT)
            back_to(qtbot, w)
            assert target.exists(), dialogs_seen
            assert target.stat().st_size > 1000
            assert w.search.hasFocus()
            # The outage tools: a journal entry (modal, cancelled), the journal list, what changed and the
            # drill (windows of their own, closed with Esc).
            close_modal_soon(qtbot, lambda d: dialogs_seen.add("journal entry"))
            op.key(Qt.Key.Key_J, CTRL)
            back_to(qtbot, w)
            for name, keys, opened in (
                    ("journal list", (Qt.Key.Key_J, CTRL | SHIFT), lambda: w.outage.journal.list_window),
                    ("what changed", (Qt.Key.Key_W, CTRL | SHIFT), lambda: getattr(w.outage, "changes_dialog", None)),
                    ("drill", (Qt.Key.Key_R, CTRL | SHIFT), lambda: w.outage.drill_dialog)):
                op.key(*keys)
                dialog = opened()
                if dialog is not None and dialog.isVisible():
                    dialogs_seen.add(name)
                    dialog.activateWindow()  # a window manager activates a new window (offscreen, the test does)
                    qtbot.waitUntil(dialog.isActiveWindow, timeout=5_000)
                    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
                    qtbot.waitUntil(lambda d=dialog: not d.isVisible(), timeout=5_000)
                back_to(qtbot, w)
            assert w.search.hasFocus()
            spent("dialogs")

    gc.collect()
    growth = rss_mb() - rss_start
    assert op.keys >= 5_000
    assert len(crossed) >= 6, crossed
    local_days = {c.astimezone(NEW_YORK).date() for c in crossed}
    assert len(local_days) >= 2, "the clock crossed midnight"
    assert any(c.astimezone(NEW_YORK).utcoffset() != crossed[0].astimezone(NEW_YORK).utcoffset()
               for c in crossed), "and the night the clocks go forward"
    assert dialogs_seen == {"help", "about", "settings", "kit", "print", "pdf", "journal entry", "journal list",
                            "what changed", "drill"}
    assert w.session.version == 1844
    assert growth < 60, f"memory grew by {growth:.0f} MB over {op.keys} keys"
    print(f"\nsoak: {op.keys} keys, {round_no} rounds, {len(crossed)} handovers, memory growth {growth:.1f} MB; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    w.close()
