"""Start the window: ``run(desktop) -> exit code`` (called by ``backup-operator`` with no command).

An unexpected error inside the running window is logged to ``ui.log`` in the desktop home and shown
as one plain sentence in the status bar; the operator never sees a traceback and the window stays up.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from backup_operator.config import Desktop
from backup_operator.resources import resource_path

__all__ = ["icon_path", "run"]

log = logging.getLogger("backup_operator.ui")


def icon_path() -> Path | None:
    for name in ("backup-operator.svg", "backup-operator.png"):
        try:
            return resource_path("icons", name)
        except FileNotFoundError:
            continue
    return None


def _log_to(home: Path) -> None:
    try:
        home.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(home / "ui.log", encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("backup_operator").addHandler(handler)
    logging.getLogger("backup_operator").setLevel(logging.INFO)


def _self_test(app, window, query: str, started: float) -> None:
    """Open, search ``query`` like an operator, print the top result and the time it took, then quit.

    IT and the bundle smoke test use it to prove that a built bundle really starts its window.
    """
    import time

    from PySide6.QtCore import QTimer

    def give_up() -> None:
        print("self-test: the window did not show a result within 60 s", file=sys.stderr)
        app.exit(1)

    def opened(_version: int) -> None:
        window.search.setText(query)

    def searched() -> None:
        top = window.results.result(0)
        if top is None or window.session is None:
            return
        elapsed = time.perf_counter() - started
        print(f"self-test: window open on version {window.session.version}; first result for {query!r}: "
              f"{top.name} ({elapsed:.2f} s after start)")
        app.exit(0)

    def failed(exc: BaseException) -> None:
        print(f"self-test: {exc}", file=sys.stderr)
        app.exit(getattr(exc, "exit_code", 1))

    window.session_changed.connect(opened)
    window.results_changed.connect(searched)
    window.load_failed.connect(failed)
    QTimer.singleShot(60_000, give_up)


def run(desktop: Desktop, argv: list[str] | None = None, *, self_test: str | None = None,
        started: float | None = None) -> int:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from backup_operator.ui.window import MainWindow

    _log_to(desktop.home)
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setApplicationName("Backup Operator")
    app.setOrganizationName("Backup Operator")
    icon = icon_path()
    if icon is not None:
        app.setWindowIcon(QIcon(str(icon)))
    window = MainWindow(desktop)

    def on_error(kind, value, tb):
        log.error("unexpected error in the window", exc_info=(kind, value, tb))
        try:
            window.say(f"Something went wrong ({kind.__name__}); the data shown is still correct. "
                       "If it happens again, tell IT (details are in ui.log).")
        except Exception:  # the window itself may be what failed; the log already has it
            log.debug("could not show the error in the status bar", exc_info=True)

    previous, sys.excepthook = sys.excepthook, on_error
    geometry = window.settings.geometry()
    if geometry is not None:
        window.restoreGeometry(geometry)
    if self_test is not None:
        _self_test(app, window, self_test, started or 0.0)
    window.show()
    try:
        return int(app.exec())
    finally:
        sys.excepthook = previous
        from PySide6.QtCore import QThreadPool

        # Let an install that is under way finish (it is atomic either way) before the process ends.
        QThreadPool.globalInstance().waitForDone(10_000)
