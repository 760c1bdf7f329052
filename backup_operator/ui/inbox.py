"""Watch the inboxes and install new snapshots without freezing the window.

``QFileSystemWatcher`` notices a file arriving at once on local disks; on network shares it often
hears nothing, so a periodic timer looks too. Either way the look is debounced (an exporter writes a
temp file and renames it: several events for one snapshot) and runs ``core.session.sync_and_open``
on a worker thread; only one look runs at a time, and a request during a look queues one more.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from backup_operator.config import Desktop
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
        self.rewatch()

    @property
    def busy(self) -> bool:
        return self._busy

    def start(self) -> None:
        self._poll.start()

    def stop(self) -> None:
        self._poll.stop()
        self._debounce.stop()

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
        run_in_background(lambda: sync_and_open(desktop, version), self._done, self._failed)

    def _done(self, outcome: SyncOutcome) -> None:
        self._busy = False
        self.finished.emit(outcome)
        self._next()

    def _failed(self, exc: BaseException) -> None:
        self._busy = False
        self.failed.emit(exc)
        self._next()

    def _next(self) -> None:
        if self._again:
            self._debounce.start()
