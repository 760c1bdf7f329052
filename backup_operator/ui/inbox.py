"""Watch the inboxes and install new snapshots without freezing the window.

``QFileSystemWatcher`` notices a file arriving at once on local disks; on network shares it often
hears nothing, so a periodic timer looks too. Either way the look is debounced (an exporter writes a
temp file and renames it: several events for one snapshot) and runs ``core.session.sync_and_open``
on a worker thread; only one look runs at a time, and a request during a look queues one more.

The installing itself (verify, decrypt, unpack, write, receipts) runs in a child process
(``core.install.install_in_child``), so that its Python work never holds this process's GIL while the
operator types; the worker thread only waits for it, then opens what it installed. A child still busy
after ``install_timeout_s`` is killed; closing the window kills one that is under way.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from backup_operator.config import Desktop
from backup_operator.core.install import INSTALL_TIMEOUT_S, InstallChild, install_in_child
from backup_operator.core.session import SyncOutcome, sync_and_open
from backup_operator.ui.background import run_in_background

__all__ = ["InboxWatcher"]


class InboxWatcher(QObject):
    started = Signal()
    finished = Signal(object)  # SyncOutcome
    failed = Signal(object)  # the exception

    def __init__(self, desktop: Desktop, showing_version=lambda: 0, *, poll_ms: int = 60_000,
                 debounce_ms: int = 400, parent=None):
        super().__init__(parent)
        self.desktop = desktop
        self._showing_version = showing_version
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._soon)
        self._debounce = QTimer(self, singleShot=True, interval=debounce_ms)
        self._debounce.timeout.connect(self.check_now)
        self._poll = QTimer(self, interval=poll_ms)
        self._poll.timeout.connect(self.check_now)
        self._busy = False
        self._again = False
        self.install_timeout_s = INSTALL_TIMEOUT_S
        self.install_stall: str | None = None  # tests only: core.install's "hang" or "die"
        self._child: InstallChild | None = None
        self.rewatch()

    @property
    def busy(self) -> bool:
        return self._busy

    def start(self) -> None:
        self._poll.start()

    def stop(self) -> None:
        self._poll.stop()
        self._debounce.stop()
        child = self._child
        if child is not None:
            child.kill()  # atomic installs: the next start looks again

    def rewatch(self) -> None:
        """Watch the inboxes that exist now (after settings change, or an inbox appears)."""
        current = set(self._watcher.directories())
        wanted = {str(Path(p)) for p in self.desktop.config.inboxes if Path(p).is_dir()}
        if current - wanted:
            self._watcher.removePaths(list(current - wanted))
        if wanted - current:
            self._watcher.addPaths(sorted(wanted - current))

    def _soon(self, *_):
        self._debounce.start()

    def check_now(self) -> None:
        if self._busy:
            self._again = True
            return
        self.rewatch()
        self._busy = True
        self._again = False
        self.started.emit()
        desktop, version = self.desktop, int(self._showing_version() or 0)
        timeout_s, stall = self.install_timeout_s, self.install_stall

        def install(d):
            return install_in_child(d, timeout_s=timeout_s, stall=stall, started=self._started)

        run_in_background(lambda: sync_and_open(desktop, version, install), self._done, self._failed)

    def _started(self, child: InstallChild) -> None:  # on the worker thread
        self._child = child

    def _done(self, outcome: SyncOutcome) -> None:
        self._busy = False
        self._child = None
        self.finished.emit(outcome)
        self._next()

    def _failed(self, exc: BaseException) -> None:
        self._busy = False
        self._child = None
        self.failed.emit(exc)
        self._next()

    def _next(self) -> None:
        if self._again:
            self._debounce.start()
