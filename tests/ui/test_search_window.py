"""The main window through the keyboard: typing, navigating, copying, details."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QGuiApplication

from backup_operator.ui.window import MainWindow


@pytest.fixture
def window(qtbot, env):
    w = MainWindow(env.desktop, clock=env.clock, poll_ms=3_600_000)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.session is not None and not w.watcher.busy, timeout=15_000)
    yield w
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def type_query(qtbot, w, text):
    w.search.clear()
    for ch in text:
        with qtbot.waitSignal(w.results_changed, timeout=2000):
            qtbot.keyClick(w.search, ch)


def test_window_opens_on_the_installed_snapshot(window):
    assert window.session.version == 1842
    assert "version 1842" in window.age.text()
    assert "3 h 12 min ago" in window.age.text()
    assert window.search.hasFocus()


def test_typing_updates_results_every_keystroke(qtbot, window):
    seen = []
    window.results_changed.connect(lambda: seen.append([r.name for r in window.results._rows]))
    type_query(qtbot, window, "hart")
    assert len(seen) == 4  # one update per key
    assert window.results.result(0).name == "Amelia Hart"
    assert window.detail.title.text() == "Amelia Hart"
    assert window.detail.contacts.contact(0).value == "4471"


def test_down_enter_copies_and_says_so(qtbot, window):
    type_query(qtbot, window, "cardiology")
    names = [window.results.result(i).name for i in range(window.results.rowCount())]
    assert names, "cardiology matches something"
    qtbot.keyClick(window.search, Qt.Key.Key_Down)
    second = window.current_result()
    assert second == window.results.result(1)
    qtbot.keyClick(window.search, Qt.Key.Key_Up)
    assert window.current_result() == window.results.result(0)
