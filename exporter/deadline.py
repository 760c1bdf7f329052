"""Time limits for an export: every wait on a source has a timeout, and the whole export has a deadline.

A hung database, a CSV that is a FIFO nobody writes to, or a calendar server that never answers must
never hold the exporter lock for ever: the scheduled runs after it would all be skipped and desktops
would go stale without anyone noticing. So:

* each source waits at most its own timeout (``query_timeout_s``, ``timeout_s``) for any one thing;
* the whole export (``[export] deadline_minutes``) has a deadline; every source timeout is cut to the
  time left, and the pipeline checks it between stages.

The pipeline sets the deadline for the current export (``export_deadline``); sources ask
``seconds_left(their own timeout)``. Outside an export (a test reading a source directly) there is no
deadline, only the source's own timeout. This module must never sleep or wait itself.
"""

from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from typing import Iterator

from backup_operator.errors import ExportTimedOut

__all__ = ["Deadline", "export_deadline", "seconds_left", "check_deadline", "current_deadline", "timed_out",
           "note", "deadline_message"]


class Deadline:
    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds = float(seconds)
        self.clock = clock
        self.ends = clock() + self.seconds
        self.where = "while exporting"  # what the export was doing, for the message when it is stopped

    def left(self) -> float:
        return self.ends - self.clock()

    def expired(self) -> bool:
        return self.left() <= 0

    def describe(self) -> str:
        minutes = self.seconds / 60
        return f"{minutes:g} minutes" if minutes >= 1 else f"{self.seconds:g} s"


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("export_deadline", default=None)


def current_deadline() -> Deadline | None:
    return _current.get()


@contextmanager
def export_deadline(seconds: float | None) -> Iterator[Deadline | None]:
    """Within this block, sources and stages are held to ``seconds`` in all (None: no deadline)."""
    deadline = Deadline(seconds) if seconds else None
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def note(where: str) -> None:
    """Say what the export is doing now ("while reading source 'hr'"), for a deadline message."""
    deadline = _current.get()
    if deadline is not None:
        deadline.where = where


def seconds_left(own_timeout: float | None) -> float | None:
    """The time a wait may take: its own timeout, cut to what is left of the export's deadline.

    Raises ExportTimedOut when the deadline has already passed.
    """
    deadline = _current.get()
    if deadline is None:
        return own_timeout
    left = deadline.left()
    if left <= 0:
        raise ExportTimedOut(deadline_message(deadline, "before the next step could start"))
    return left if own_timeout is None else min(float(own_timeout), left)


def check_deadline(stage: str) -> None:
    """Between stages: stop (and release the lock) once the export is past its deadline."""
    deadline = _current.get()
    if deadline is not None and deadline.expired():
        raise ExportTimedOut(deadline_message(deadline, stage))


def deadline_message(deadline: Deadline, where: str) -> str:
    return (f"The export took longer than its deadline of {deadline.describe()} ([export] deadline_minutes) "
            f"and was stopped {where}; nothing was published and the lock is released. Look for a slow or "
            "hung source in the log, or raise deadline_minutes.")


def timed_out(what: str, seconds: float) -> str:
    """One sentence for a source that did not answer in time (raised as SourceError)."""
    return (f"{what} did not answer within {seconds:.3g} s; nothing was published and the lock is released, "
            "the next run will try again")
