"""Data age under a fake clock, new snapshots arriving while the window runs, bad files, error screens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ui_support import CREATED, INTERVAL, PASSPHRASE
from PySide6.QtCore import Qt, QThreadPool

from backup_operator.ui.window import MainWindow


def test_fresh_data_has_no_banner(window):
    assert window.banner.level == "ok" and not window.banner.isVisible()


@pytest.mark.parametrize("age, level, words", [
    (timedelta(seconds=INTERVAL * 1.5 + 60), "amber", "older than usual"),
    (timedelta(seconds=INTERVAL * 3 + 60), "red", "OLD DATA"),
    (timedelta(days=4), "red", "passed its expiry"),
])
def test_stale_banner_follows_the_clock(window, env, age, level, words):
    env.now = CREATED + age
    window.refresh_clock()
    assert window.banner.isVisible()
    assert window.banner.level == level
    assert words in window.banner.text()
    assert window.session is not None, "old data is never refused"
    assert window.pages.currentIndex() == window.PAGE_MAIN


def test_the_age_line_counts_on_with_the_timer(qtbot, window, env):
    env.now = CREATED + timedelta(hours=5)
    window.tick.setInterval(10)
    qtbot.waitUntil(lambda: "(5 h 0 min ago)" in window.age.text(), timeout=3000)


def _type(qtbot, w, text):
    for ch in text:
        qtbot.keyClick(w.search, ch)


def test_new_snapshot_in_the_inbox_is_installed_and_keeps_the_search(qtbot, window, env, monkeypatch):
    import threading

    import backup_operator.ui.inbox as inbox_module

    release = threading.Event()
    real = inbox_module.sync_and_open

    def held(*args):  # the worker waits until the test has used the window meanwhile
        release.wait(20)
        return real(*args)

    monkeypatch.setattr(inbox_module, "sync_and_open", held)
    _type(qtbot, window, "hart")

    def rename(data):
        data["listings"][0]["display_name"] = "Amelia Hart-Jones"

    env.drop(1843, created_at=CREATED + timedelta(hours=4), mutate=rename)
    # No F5 and no timer: the file system watcher notices the file by itself.
    qtbot.waitUntil(lambda: window.watcher.busy, timeout=10_000)
    with qtbot.waitSignal(window.results_changed, timeout=2000):
        qtbot.keyClick(window.search, Qt.Key.Key_Backspace)  # the window answers while the install runs
    assert window.results.result(0).name == "Amelia Hart"
    qtbot.keyClick(window.search, "t")
    with qtbot.waitSignal(window.session_changed, timeout=20_000) as changed:
        release.set()
    assert changed.args == [1843]
    assert window.search.text() == "hart"
    assert window.results.result(0).name == "Amelia Hart-Jones"
    # The detail pane follows the new data just after its results (never left on the old snapshot's entry).
    qtbot.waitUntil(lambda: not window.detail_pending, timeout=2000)
    assert window.detail.title.text() == "Amelia Hart-Jones"
    assert "version 1843" in window.age.text()
    assert "1843" in window.status_message()
    assert (env.inbox / "receipts" / "switchboard-1.json").is_file()


def test_the_timer_finds_files_the_watcher_missed(qtbot, window, env):
    window.watcher._watcher.removePaths(window.watcher._watcher.directories())  # like a network share
    window.watcher._poll.setInterval(50)
    window.watcher.rewatch = lambda: None
    with qtbot.waitSignal(window.session_changed, timeout=20_000):
        env.drop(1845)
    assert window.session.version == 1845


def test_a_corrupt_file_is_reported_once_and_current_data_stays(qtbot, window, env):
    good = env.template.seal(1844)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    notices = []
    window.notice_shown.connect(notices.append)
    with qtbot.waitSignal(window.sync_finished, timeout=20_000):
        (env.inbox / "snapshot-001844.bosnap").write_bytes(bytes(bad))
        window.check_inbox()
    qtbot.waitUntil(lambda: len(notices) == 1, timeout=5000)
    assert "snapshot-001844.bosnap" in notices[0]
    assert "was not installed" in notices[0] and "still using version 1842" in notices[0]
    assert "Traceback" not in notices[0]
    assert window.session.version == 1842
    assert window.notice.isVisible()
    # Looking again does not nag about the same file.
    with qtbot.waitSignal(window.sync_finished, timeout=20_000):
        window.check_inbox()
    assert len(notices) == 1
    qtbot.keyClick(window.search, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert not window.notice.isVisible()


def _open(qtbot, env):
    w = MainWindow(env.desktop, clock=env.clock, poll_ms=3_600_000)
    qtbot.addWidget(w)
    w.show()
    return w


def test_no_snapshot_yet_shows_what_to_do(qtbot, env):
    for path in env.desktop.snapshots_dir.glob("*.bosnap"):
        path.unlink()
    (env.desktop.snapshots_dir / "high-water-mark").unlink()
    w = _open(qtbot, env)
    with qtbot.waitSignal(w.load_failed, timeout=10_000):
        pass
    qtbot.waitUntil(lambda: not w.watcher.busy)
    assert w.pages.currentIndex() == w.PAGE_ERROR
    assert w.error.title.text() == "No directory data on this desktop yet"
    assert "backup-operator sync" in w.error.it.text()
    assert "crash sheet" in w.error.operator.text()
    # The first snapshot arriving later opens by itself.
    with qtbot.waitSignal(w.session_changed, timeout=20_000):
        env.drop(1900)
        w.check_inbox()
    assert w.pages.currentIndex() == w.PAGE_MAIN
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_no_exporter_key_pinned(qtbot, env):
    env.desktop.config.trusted_signers = []
    env.desktop.save()
    w = _open(qtbot, env)
    with qtbot.waitSignal(w.load_failed, timeout=10_000):
        pass
    assert w.error.title.text() == "This desktop does not know the hospital's exporter yet"
    assert "backup-operator trust" in w.error.it.text()
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_missing_key_file(qtbot, env):
    (env.home / "desktop-key.json").unlink()
    w = _open(qtbot, env)
    with qtbot.waitSignal(w.load_failed, timeout=10_000):
        pass
    assert w.error.title.text() == "This desktop is not set up to read the directory"
    assert "enroll" in w.error.it.text()
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_unreadable_snapshot(qtbot, env):
    (path,) = env.desktop.snapshots_dir.glob("*.bosnap")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    w = _open(qtbot, env)
    with qtbot.waitSignal(w.load_failed, timeout=10_000):
        pass
    assert w.error.title.text() == "The directory data on this desktop cannot be opened"
    assert "backup-operator verify" in w.error.it.text()
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_passphrase_screen_for_a_key_file_desktop(qtbot, locked_env):
    w = _open(qtbot, locked_env)
    assert w.pages.currentIndex() == w.PAGE_UNLOCK
    qtbot.keyClicks(w.unlock.field, "wrong guess")
    qtbot.keyClick(w.unlock.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.unlock.field.isEnabled(), timeout=10_000)
    assert "wrong" in w.unlock.problem.text()
    assert w.pages.currentIndex() == w.PAGE_UNLOCK
    qtbot.keyClicks(w.unlock.field, PASSPHRASE)
    with qtbot.waitSignal(w.session_changed, timeout=10_000):
        qtbot.keyClick(w.unlock.field, Qt.Key.Key_Return)
    assert w.pages.currentIndex() == w.PAGE_MAIN
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)


def test_wrong_passphrase_in_the_environment_asks_instead(qtbot, locked_env, monkeypatch):
    monkeypatch.setenv("BACKUP_OPERATOR_PASSPHRASE", "not it")
    w = _open(qtbot, locked_env)
    qtbot.waitUntil(lambda: w.pages.currentIndex() == w.PAGE_UNLOCK and w.unlock.field.isEnabled(),
                    timeout=10_000)
    assert "BACKUP_OPERATOR_PASSPHRASE" in w.unlock.problem.text()
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)
