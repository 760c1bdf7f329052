"""One rule for turning a local wall time in a schedule's time zone into a UTC instant.

The rule (the same one RFC 5545 §3.3.5 gives for iCalendar, and PEP 495's ``fold=0``), so rotas,
CSV files and calendar feeds all agree:

* A wall time that happens once maps to that instant.
* A wall time that happens twice (the fall-back hour, e.g. 01:30 on 2026-11-01 in New York) means its
  FIRST occurrence, the one still on summer time (01:30 EDT = 05:30Z).
* A wall time that never happens (the spring-forward gap, e.g. 02:30 on 2026-03-08 in New York) is
  read with the UTC offset in force just before the gap, so it lands as far past the end of the gap as
  it was into it: 02:00 becomes 03:00 EDT (07:00Z, the instant the gap ends), 02:30 becomes 03:30 EDT.

Consecutive shifts share their boundary's wall time, so they are mapped by the same call and always
meet exactly: a 19:00-07:00 night over the fall-back night is 13 hours, over spring-forward 11 hours.

This module must never use a fixed UTC offset for a named zone, or the server's local time zone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backup_operator.core.oncall import local_to_utc
from backup_operator.errors import ConfigError

__all__ = ["zone", "wall_to_utc", "as_utc"]


def zone(name: str, where: str = "") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"{where + ': ' if where else ''}{name!r} is not an IANA time zone "
                          "(like America/Chicago or Europe/London).") from None


def wall_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall time ``at`` on ``day`` in ``tz`` (see the module docstring for gaps).

    The rule itself lives in ``backup_operator.core.oncall.local_to_utc``, so that the exporter and the
    desktop's "as of" picker can never disagree about a DST night.
    """
    return local_to_utc(datetime.combine(day, at.replace(tzinfo=None, fold=0)), tz)


def as_utc(moment: datetime, tz: ZoneInfo | None) -> datetime:
    """An aware datetime in UTC; a naive one is a wall time in ``tz`` (same rule as ``wall_to_utc``)."""
    if moment.tzinfo is None:
        if tz is None:
            raise ValueError("a time without a UTC offset needs a time zone")
        return wall_to_utc(moment.date(), moment.time(), tz)
    return moment.astimezone(timezone.utc)
