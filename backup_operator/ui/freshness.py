"""How old the data is, in the words the window and the crash sheet use. Plain Python (no Qt).

Rules (issue 5): amber when the snapshot is older than 1.5× its expected export interval, red when
older than 3× or past its expiry. Old data is never refused: the banner says what it means and what
to do, and the operator keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backup_operator.cli import describe_age
from backup_operator.core.model import SnapshotMeta

__all__ = ["AMBER", "OK", "RED", "Freshness", "freshness", "local_when"]

OK, AMBER, RED = "ok", "amber", "red"


@dataclass(frozen=True)
class Freshness:
    level: str  # OK, AMBER or RED
    line: str  # "Data as of 06:00 today (3 h 12 min ago), version 1842"
    banner: str  # empty when OK


def local_when(moment: datetime, now: datetime) -> str:
    """'06:00 today', '21:40 yesterday', '06:00 Tue 3 Mar' in this computer's local time."""
    local, today = moment.astimezone(), now.astimezone().date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return f"{clock} today"
    if local.date() == today - timedelta(days=1):
        return f"{clock} yesterday"
    return f"{clock} {local.strftime('%a')} {local.day} {local.strftime('%b %Y')}"


def _interval_words(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds >= 86400:
        days = seconds // 86400
        return "day" if days == 1 else f"{days} days"
    if seconds % 3600 == 0 and seconds >= 3600:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{max(1, seconds // 60)} minutes"


def freshness(meta: SnapshotMeta, version: int, now: datetime) -> Freshness:
    age = now - meta.created_at
    line = f"Data as of {local_when(meta.created_at, now)} ({describe_age(meta.created_at, now)}), version {version}"
    interval = max(60, int(meta.expected_interval_s or 0))
    expired = now >= meta.expires_at
    seconds = age.total_seconds()
    every = _interval_words(interval)
    if expired or seconds > 3 * interval:
        why = (f"it passed its expiry at {local_when(meta.expires_at, now)}" if expired
               else f"updates normally arrive every {every}")
        banner = (f"OLD DATA: this directory was last updated {describe_age(meta.created_at, now)} and "
                  f"{why}. Numbers and rotas may have changed: if a number fails, call the department line. "
                  "Tell IT now: the exporter or this desktop's inbox has stopped.")
        return Freshness(RED, line, banner)
    if seconds > 1.5 * interval:
        banner = (f"Data is older than usual: last update {describe_age(meta.created_at, now)}, updates "
                  f"normally arrive every {every}. Check rotas with the department if in doubt, and tell IT.")
        return Freshness(AMBER, line, banner)
    return Freshness(OK, line, "")
