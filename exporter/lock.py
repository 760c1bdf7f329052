"""A lock file so that only one export runs at a time, across processes and threads.

``run``, every scheduled job and ``serve`` itself take locks in the exporter home; a second exporter
(another ``serve``, a ``run`` by hand during a scheduled one) is refused at once with who holds it,
rather than waiting or racing on the version counter and the inboxes.

The OS releases the lock when the holder dies, so a crash never leaves a stale lock behind; the pid
written inside is only there to name the holder in the message. This module must never delete a lock
file another process may hold.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from backup_operator.errors import ExporterBusy

__all__ = ["ExclusiveLock"]

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class ExclusiveLock:
    """``with ExclusiveLock(path, "an export"):`` — raises ExporterBusy if someone else holds it."""

    # flock is per open file, so two threads of one process also exclude each other; the thread
    # lock makes that true on Windows too.
    _threads = threading.Lock()
    _held: set[str] = set()

    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "ExclusiveLock":
        key = str(self.path.resolve())
        with ExclusiveLock._threads:
            if key in ExclusiveLock._held:
                raise ExporterBusy(f"{self.what.capitalize()} is already running in this exporter; "
                                   "this one was skipped.")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if not _try_lock(fd):
                holder = self._holder(fd)
                os.close(fd)
                raise ExporterBusy(f"{self.what.capitalize()} is already running ({holder}); this one was "
                                   "not started. Wait for it to finish, or stop the other exporter.")
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%SZ}\n".encode())
            self._fd = fd
            ExclusiveLock._held.add(key)
        return self

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 200).decode("ascii", "replace").strip()
            return text or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._fd is None:
            return
        with ExclusiveLock._threads:
            ExclusiveLock._held.discard(str(self.path.resolve()))
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "ExclusiveLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
