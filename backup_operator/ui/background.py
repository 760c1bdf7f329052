"""Background work for the window, in the manner of Anki's QueryOp: one helper, two callbacks.

``run_in_background(op, on_success, on_failure)`` runs ``op()`` on Qt's global thread pool and calls
exactly one callback, on the GUI thread, with its result or its exception. ``op`` must never touch a
widget: it gets no Qt object and returns plain data. Callbacks are delivered through a queued
connection to an object living on the GUI thread, which is what makes them land there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal

__all__ = ["BackgroundTask", "run_in_background"]

log = logging.getLogger(__name__)

_running: set[BackgroundTask] = set()  # keeps tasks (and their signal objects) alive until they report


class _Relay(QObject):
    succeeded = Signal(object)
    failed = Signal(object)


class BackgroundTask(QRunnable):
    def __init__(self, op: Callable[[], Any]):
        super().__init__()
        self.setAutoDelete(False)  # Python owns it; released once its result is delivered
        self.op = op
        self.relay = _Relay()  # created on the calling (GUI) thread, so queued slots run there

    def run(self) -> None:  # on a pool thread
        try:
            result = self.op()
        except BaseException as exc:
            log.debug("background operation failed", exc_info=True)
            outcome, value = self.relay.failed, exc
        else:
            outcome, value = self.relay.succeeded, result
        try:
            outcome.emit(value)
        except RuntimeError:
            # The window closed while this ran: there is nobody left to tell (the op's own writes are atomic).
            log.debug("background result dropped: the window is gone")


def run_in_background(op: Callable[[], Any], on_success: Callable[[Any], None],
                      on_failure: Callable[[BaseException], None],
                      pool: QThreadPool | None = None) -> BackgroundTask:
    task = BackgroundTask(op)

    def done(callback, value):
        _running.discard(task)
        callback(value)

    task.relay.succeeded.connect(lambda value: done(on_success, value), Qt.ConnectionType.QueuedConnection)
    task.relay.failed.connect(lambda exc: done(on_failure, exc), Qt.ConnectionType.QueuedConnection)
    _running.add(task)
    (pool or QThreadPool.globalInstance()).start(task)
    return task
