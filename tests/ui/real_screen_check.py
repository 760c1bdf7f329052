"""Run the window on a real X server (xcb, with a window manager when there is one) at 1024×768 and check
what is on screen after each step an operator takes. Started by test_real_screen.py; prints one JSON line.

The offscreen platform lays widgets out a little differently from a real screen (a window manager moves
and resizes the window after it is shown), and once a scrolling page squeezed contact rows on top of each
other only on a real screen, so the same checks run here too.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import conftest as fx  # noqa: E402 - tests/ui/conftest.py: the sample desktop
from layout_checks import only_window, rows_have_room, shown_in_full  # noqa: E402
from PySide6.QtCore import QEventLoop, QThreadPool, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from backup_operator.config import Desktop  # noqa: E402
from backup_operator.ui.widgets import ContactRow  # noqa: E402


def settle(ms: int = 250) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> None:
    os.environ["BACKUP_OPERATOR_PASSPHRASE"] = fx.PASSPHRASE
    app = QApplication.instance() or QApplication(["backup-operator"])
    from backup_operator.ui.window import MainWindow

    root = Path(tempfile.mkdtemp(prefix="bo-real-screen-"))
    fx.build_template(root, inbox=root / "inbox")
    clock = {"now": fx.NOW}
    w = MainWindow(Desktop(root / "home"), clock=lambda: clock["now"], poll_ms=3_600_000)
    w.fit_to_screen()
    w.show()
    for _ in range(200):
        settle(50)
        if w.session is not None and not w.watcher.busy:
            break
    w.activateWindow()
    settle(600)
    steps = []
    screen = w.screen().availableGeometry()
    assert screen.contains(w.frameGeometry()), f"the window's frame {w.frameGeometry()} leaves the screen {screen}"

    def check(step: str) -> None:
        settle()
        try:
            look(step)
        except AssertionError as exc:
            raise AssertionError(f"after '{step}': {exc}") from None

    def look(step: str) -> None:
        rows_have_room(w)
        only_window(w)
        page = w.oncall if w.views.currentIndex() == w.VIEW_ONCALL else w.detail
        for row in (r for r in w.findChildren(ContactRow) if r.isVisible()):
            shown_in_full(row.value, w, page, in_view=False)
            if row.notes.text():
                shown_in_full(row.notes, w, page, in_view=False)
        steps.append(step)

    for query in ("cardio", "amelia", "code blue", "ED on call"):
        w.search.setText(query)
        check(f"search {query}")
    w.search.setText("cardiology attending")
    w.activate_selection()
    check("on call view")
    w._navigate(1)
    check("backup tier")
    for size in ("extra large", "huge", "large"):
        w.settings.text_size = size
        w.apply_display_settings()
        check(f"text {size}")
    w.toggle_contrast()
    check("high contrast")
    w.toggle_contrast()
    w.escape()
    w.search.setText("amelia hart")
    clock["now"] = fx.CREATED + timedelta(hours=30)
    w.refresh_clock()
    check("red banner")
    w.acknowledge_banner()
    check("banner read")
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)
    print(json.dumps({"steps": steps, "window": [w.width(), w.height()], "screen": [screen.width(), screen.height()]}))
    del app


if __name__ == "__main__":
    main()
