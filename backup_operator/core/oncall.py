"""On-call resolution: who is on call for a schedule at an instant, and whether a schedule is covered.

Instants are compared in UTC, always: shifts are stored as UTC instants, half-open ``[start, end)``, so
"who is on call" never depends on a clock change or on the computer's own time zone. Wall-clock time
exists only for people: ``wall_time`` shows an instant in the schedule's IANA zone with its abbreviation
("01:30 GMT", "01:30 BST"), and ``local_to_utc`` turns a wall time that a rota was written in into the
instant to store.

The wall-time rule (``local_to_utc``), the one the exporter applies to every shift boundary:

- A wall time that happens once is that instant.
- A wall time that happens twice (the repeated hour when clocks go back, a *fold*) is the **first**
  occurrence, still on the earlier (summer) offset: 01:30 on 2026-10-25 in Europe/London is 00:30 UTC.
- A wall time that never happens (the skipped hour when clocks go forward, a *gap*) is moved **forward
  by the length of the gap**, i.e. read with the offset in force before the change: 02:30 on 2026-03-08
  in America/New_York is 07:30 UTC, which the clocks there show as 03:30 EDT.

This is the rule of PEP 495 with ``fold=0`` and of java.time's default resolver. Its important property:
it is a function of the wall time alone, so two shifts that meet at the same wall time ("nights end at
02:30, days start at 02:30") meet at the same instant — no gap and no overlap is invented by a clock
change. ``strict=True`` refuses both kinds instead (``NonexistentWallTime``, ``AmbiguousWallTime``).

Coverage (``coverage``) reports the gaps and overlaps of one tier of a schedule over a period; it takes
either a snapshot connection and a schedule id or plain shift tuples, so the exporter's checks can run it
on the rows it is about to publish.

This module must never read the process's local time zone (no naive ``datetime.now()``, no
``time.localtime``, no ``astimezone()`` without a zone), never import Qt or cryptography, and never write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from backup_operator.core.model import format_utc, parse_utc

__all__ = [
    "Shift",
    "Interval",
    "Overlap",
    "Coverage",
    "OnCallEntry",
    "TierStatus",
    "Fallback",
    "OnCallStatus",
    "WallTimeError",
    "NonexistentWallTime",
    "AmbiguousWallTime",
    "local_to_utc",
    "wall_time",
    "as_utc",
    "on_call_at",
    "shifts_between",
    "coverage",
]

UTC = timezone.utc


class WallTimeError(ValueError):
    """A wall time that ``local_to_utc(strict=True)`` refuses."""


class NonexistentWallTime(WallTimeError):
    """The wall time falls in the hour skipped when clocks go forward."""


class AmbiguousWallTime(WallTimeError):
    """The wall time happens twice, in the hour repeated when clocks go back."""


def _zone(zone: str | ZoneInfo) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


def as_utc(moment: datetime | str) -> datetime:
    """An instant as an aware UTC datetime; accepts the model's ``YYYY-MM-DDTHH:MM:SSZ`` text.

    Naive datetimes are refused: they would silently mean the computer's own zone.
    """
    if isinstance(moment, str):
        return parse_utc(moment)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no time zone; give an aware one (or UTC text)")
    return moment.astimezone(UTC)


def local_to_utc(wall: datetime, zone: str | ZoneInfo, *, strict: bool = False) -> datetime:
    """The UTC instant of wall-clock time ``wall`` (naive) in ``zone``, by the module's documented rule.

    Folds resolve to the first occurrence, gaps move forward by the gap; with ``strict`` both raise.
    """
    if wall.tzinfo is not None:
        raise ValueError("give the wall time without a zone; the zone is the second argument")
    tz = _zone(zone)
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    instant = first.astimezone(UTC)
    round_trip = instant.astimezone(tz).replace(tzinfo=None)
    if round_trip != wall:
        if strict:
            raise NonexistentWallTime(f"{wall:%Y-%m-%d %H:%M} does not happen in {tz.key} (the clocks go "
                                      f"forward); {round_trip:%H:%M} is the time an hour like it becomes")
        return instant
    if first.utcoffset() != second.utcoffset() and strict:
        raise AmbiguousWallTime(f"{wall:%Y-%m-%d %H:%M} happens twice in {tz.key} (the clocks go back); "
                                "say which one")
    return instant


def wall_time(moment: datetime | str, zone: str | ZoneInfo, fmt: str = "%H:%M %Z") -> str:
    """An instant as wall-clock text in ``zone`` with its abbreviation: "01:30 GMT", "01:30 BST"."""
    return as_utc(moment).astimezone(_zone(zone)).strftime(fmt)


# ------------------------------------------------------------------------------------------- shifts


@dataclass(frozen=True)
class Shift:
    """One shift: ``listing_id`` is on call at ``tier`` during ``[start, end)`` (aware UTC datetimes)."""

    listing_id: str
    start: datetime
    end: datetime
    tier: int = 1
    role: str = ""
    shift_id: int | None = None
    notes: str = ""

    @classmethod
    def of(cls, value: "Shift | Sequence") -> "Shift":
        """A ``Shift`` from itself or a plain tuple ``(listing_id, start, end[, tier[, role]])``;
        start and end may be aware datetimes or the model's UTC text."""
        if isinstance(value, Shift):
            return value
        listing_id, start, end, *rest = value
        tier = int(rest[0]) if len(rest) > 0 and rest[0] is not None else 1
        role = str(rest[1]) if len(rest) > 1 and rest[1] is not None else ""
        return cls(str(listing_id), as_utc(start), as_utc(end), tier, role)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def _shift_from_row(row: Sequence) -> Shift:
    shift_id, tier, role, listing_id, start, end, notes = row
    return Shift(listing_id, parse_utc(start), parse_utc(end), int(tier or 1), role or "", shift_id, notes or "")


_SHIFT_COLUMNS = "id, tier, role, listing_id, start_utc, end_utc, notes"


def shifts_between(conn: sqlite3.Connection, schedule_id: str, start: datetime | str, end: datetime | str,
                   *, tier: int | None = None) -> list[Shift]:
    """The schedule's shifts that overlap ``[start, end)``, by start then tier."""
    lo, hi = format_utc(as_utc(start)), format_utc(as_utc(end))
    sql = (f"SELECT {_SHIFT_COLUMNS} FROM oncall_shifts WHERE schedule_id = ? AND start_utc < ? AND end_utc > ?"
           + (" AND tier = ?" if tier is not None else "") + " ORDER BY start_utc, tier, id")
    args: tuple = (schedule_id, hi, lo) + ((tier,) if tier is not None else ())
    return [_shift_from_row(r) for r in conn.execute(sql, args)]


# ------------------------------------------------------------------------------------------ coverage


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Overlap:
    """``[start, end)`` during which more than one shift of the tier runs; ``listing_ids`` names them."""

    start: datetime
    end: datetime
    listing_ids: tuple[str, ...]

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Coverage:
    """Gaps (nobody on call) and overlaps (more than one on call) of one tier over a period."""

    start: datetime
    end: datetime
    tier: int
    gaps: tuple[Interval, ...]
    overlaps: tuple[Overlap, ...]

    @property
    def complete(self) -> bool:
        """Exactly one shift at every instant of the period."""
        return not self.gaps and not self.overlaps


def coverage(source: sqlite3.Connection | Iterable[Shift | Sequence], start: datetime | str,
             end: datetime | str, *, schedule_id: str | None = None, tier: int = 1) -> Coverage:
    """The gaps and overlaps of ``tier`` over ``[start, end)``.

    ``source`` is a snapshot connection (then give ``schedule_id``) or plain shifts: ``Shift`` objects or
    tuples ``(listing_id, start, end[, tier])``. Shifts of other tiers are ignored. Adjacent shifts
    (one ends when the next starts) are neither a gap nor an overlap; a shift listed twice is an overlap.
    """
    lo, hi = as_utc(start), as_utc(end)
    if hi <= lo:
        raise ValueError("the end of the period must be after its start")
    if isinstance(source, sqlite3.Connection):
        if schedule_id is None:
            raise ValueError("give the schedule_id to check with a connection")
        shifts = shifts_between(source, schedule_id, lo, hi, tier=tier)
    else:
        shifts = [s for s in map(Shift.of, source) if s.tier == tier and s.start < hi and s.end > lo]
    # sweep over boundaries: +1 at a start, -1 at an end (ends sort first at equal instants: half-open)
    events: list[tuple[datetime, int, int]] = []
    for i, s in enumerate(shifts):
        events.append((max(s.start, lo), 1, i))
        events.append((min(s.end, hi), -1, i))
    events.sort(key=lambda e: (e[0], e[1]))
    gaps: list[Interval] = []
    overlaps: list[Overlap] = []
    active: dict[int, None] = {}
    cursor = lo
    for when, delta, i in events:
        if when > cursor:
            if not active:
                gaps.append(Interval(cursor, when))
            elif len(active) > 1:
                ids = tuple(shifts[j].listing_id for j in active)
                if overlaps and overlaps[-1].end == cursor and overlaps[-1].listing_ids == ids:
                    overlaps[-1] = Overlap(overlaps[-1].start, when, ids)
                else:
                    overlaps.append(Overlap(cursor, when, ids))
            cursor = when
        if delta > 0:
            active[i] = None
        else:
            active.pop(i, None)
    if cursor < hi:
        gaps.append(Interval(cursor, hi))
    return Coverage(lo, hi, tier, tuple(gaps), tuple(overlaps))


# ----------------------------------------------------------------------------------------- on call now


@dataclass(frozen=True)
class OnCallEntry:
    """A person (listing) on call, with the shift's instants and their wall times in the schedule's zone."""

    listing_id: str
    name: str
    tier: int
    role: str
    start: datetime
    end: datetime
    since: str   # wall time of start, e.g. "Sat 24 Oct 18:00 BST"
    until: str   # wall time of end, e.g. "Sun 25 Oct 06:00 GMT"
    shift_id: int | None = None


@dataclass(frozen=True)
class TierStatus:
    """One tier at the instant asked about: who is on call now (empty: nobody), and who comes next."""

    tier: int
    current: tuple[OnCallEntry, ...]
    next: OnCallEntry | None

    @property
    def nobody(self) -> bool:
        return not self.current


@dataclass(frozen=True)
class Fallback:
    """Whom to call when nobody is on call: the schedule's fallback listing and its first number."""

    listing_id: str
    name: str
    contact_kind: str
    contact_value: str


@dataclass(frozen=True)
class OnCallStatus:
    """The answer to "who is on call for this schedule at this instant?"."""

    schedule_id: str
    schedule_name: str
    timezone: str
    at: datetime                 # the instant asked about, UTC
    at_wall: str                 # the same in the schedule's zone, e.g. "Sun 25 Oct 01:30 GMT"
    tiers: tuple[TierStatus, ...]
    fallback: Fallback | None
    escalation: str = ""

    @property
    def nobody_on_call(self) -> bool:
        """True when the primary tier (the lowest tier the schedule has, normally 1) is empty."""
        return not self.tiers or self.tiers[0].nobody

    def tier(self, number: int) -> TierStatus | None:
        return next((t for t in self.tiers if t.tier == number), None)


_WALL = "%a %d %b %H:%M %Z"


def on_call_at(conn: sqlite3.Connection, schedule_id: str, at: datetime | str) -> OnCallStatus:
    """Who is on call for ``schedule_id`` at instant ``at``, at every tier the schedule has, since when,
    until when, and who is next. Nobody on call is an explicit answer: ``nobody_on_call`` with the
    schedule's ``fallback``. Raises ``KeyError`` for an unknown schedule."""
    when = as_utc(at)
    stamp = format_utc(when)
    sched = conn.execute("SELECT name, timezone, fallback_listing_id, escalation FROM oncall_schedules"
                         " WHERE id = ?", (schedule_id,)).fetchone()
    if sched is None:
        raise KeyError(schedule_id)
    name, tz_name, fallback_id, escalation = sched[0], sched[1], sched[2], sched[3]
    tz = ZoneInfo(tz_name)
    names: dict[str, str] = {}

    def display(listing_id: str) -> str:
        if listing_id not in names:
            row = conn.execute("SELECT display_name FROM listings WHERE id = ?", (listing_id,)).fetchone()
            names[listing_id] = row[0] if row else listing_id
        return names[listing_id]

    def entry(s: Shift) -> OnCallEntry:
        return OnCallEntry(s.listing_id, display(s.listing_id), s.tier, s.role, s.start, s.end,
                           s.start.astimezone(tz).strftime(_WALL), s.end.astimezone(tz).strftime(_WALL),
                           s.shift_id)

    tiers = [r[0] for r in conn.execute("SELECT DISTINCT tier FROM oncall_shifts WHERE schedule_id = ?"
                                        " ORDER BY tier", (schedule_id,))]
    if not tiers:
        tiers = [1]
    statuses = []
    for tier in tiers:
        current = [_shift_from_row(r) for r in conn.execute(
            f"SELECT {_SHIFT_COLUMNS} FROM oncall_shifts WHERE schedule_id = ? AND tier = ? AND start_utc <= ?"
            " AND end_utc > ? ORDER BY start_utc, id", (schedule_id, tier, stamp, stamp))]
        upcoming = conn.execute(
            f"SELECT {_SHIFT_COLUMNS} FROM oncall_shifts WHERE schedule_id = ? AND tier = ? AND start_utc > ?"
            " ORDER BY start_utc, id LIMIT 1", (schedule_id, tier, stamp)).fetchone()
        statuses.append(TierStatus(tier, tuple(entry(s) for s in current),
                                   entry(_shift_from_row(upcoming)) if upcoming else None))
    fallback = None
    if fallback_id:
        contact = conn.execute("SELECT kind, value FROM contact_methods WHERE listing_id = ?"
                               " ORDER BY rank, id LIMIT 1", (fallback_id,)).fetchone()
        fallback = Fallback(fallback_id, display(fallback_id), contact[0] if contact else "",
                            contact[1] if contact else "")
    return OnCallStatus(schedule_id, name, tz_name, when, when.astimezone(tz).strftime(_WALL),
                        tuple(statuses), fallback, escalation or "")
