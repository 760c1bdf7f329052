"""Words shared by the command line, the window and the crash sheet: the age of the data, counts, times.

Both ``backup_operator.cli`` and ``backup_operator.ui`` import this module (and neither imports the
other), so a sentence an operator reads in the window is the sentence a terminal user reads too.

This module must never import Qt, never read a file, and never decide anything: it only words what
the caller hands it. ``local_when`` is the one place that shows a moment in this computer's own zone
(the data's age is about this desk's clock, not a schedule's zone).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

__all__ = ["CLOCK_SLACK", "describe_age", "describe_counts", "interval_words", "local_when"]

# Exporter and desktop clocks are never exactly together: data "from the future" by less than this is
# just made, not a sign that this computer's clock is wrong.
CLOCK_SLACK = timedelta(minutes=5)


def describe_age(created: datetime, now: datetime | None = None) -> str:
    """'3 h 12 min ago' — the age of the data in the words the window, the sheet and the CLI use."""
    seconds = int(((now or datetime.now(timezone.utc)) - created).total_seconds())
    if seconds < -CLOCK_SLACK.total_seconds():
        return "dated in the future by this computer's clock (check the clock)"
    seconds = max(0, seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h ago"
    if hours:
        return f"{hours} h {minutes} min ago"
    return f"{minutes} min ago"


_COUNT_WORDS = (("listings", "listings"), ("contact_methods", "contact methods"),
                ("oncall_schedules", "on-call schedules"), ("oncall_shifts", "shifts"))


def describe_counts(counts: Mapping[str, int]) -> str:
    """'2,697 listings, 9,829 contact methods, 51 on-call schedules, 8,386 shifts'."""
    return ", ".join(f"{counts[key]:,} {words}" for key, words in _COUNT_WORDS if key in counts)


def interval_words(seconds: int) -> str:
    """'15 minutes', 'hour', '4 hours', 'day': how often updates normally come, after 'every'."""
    if seconds % 86400 == 0 and seconds >= 86400:
        days = seconds // 86400
        return "day" if days == 1 else f"{days} days"
    if seconds % 3600 == 0 and seconds >= 3600:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{max(1, seconds // 60)} minutes"


def local_when(moment: datetime, now: datetime) -> str:
    """'06:00 today', '21:40 yesterday', '06:00 Tue 3 Mar 2026' in this computer's local time."""
    local, today = moment.astimezone(), now.astimezone().date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return f"{clock} today"
    if local.date() == today - timedelta(days=1):
        return f"{clock} yesterday"
    if local.date() == today + timedelta(days=1):
        return f"{clock} tomorrow"
    return f"{clock} {local.strftime('%a')} {local.day} {local.strftime('%b %Y')}"
