"""``backup-operator oncall QUERY [--at TIME] [--json]``: who is on call, from a terminal or a script.

``find_schedules`` turns what was typed into schedules (an id, or words such as "ED", "cards",
"pharmacist on call", ranked like the window's on-call questions); ``parse_at`` reads ``--at`` in the
schedule's own zone unless the text carries an offset; ``answer`` gathers, for every tier, who is on
call at that instant, since and until when, who is next, every contact method with its instructions,
and the escalation ladder; ``as_json`` and ``as_text`` write it out.

Text written to a terminal comes from the directory (names, instructions), so every control character
in it is replaced before it is printed (``printable``): a hostile name must not steer the terminal.
This module must never import Qt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from backup_operator.core.model import format_utc
from backup_operator.core.oncall import local_to_utc
from backup_operator.core.session import Entry, OnCallNow, Schedule, Session, wall_time
from backup_operator.errors import ConfigError
from backup_operator.textsafe import shown

__all__ = ["Answer", "answer", "as_json", "as_text", "find_schedules", "parse_at", "printable"]


def printable(text: str) -> str:
    """``text`` safe for a terminal: control and formatting characters shown, never obeyed (textsafe)."""
    return shown(text)


def find_schedules(session: Session, query: str) -> list[Schedule]:
    """The schedules ``query`` names, best first: an exact id, else the on-call question ranking."""
    text = query.strip()
    exact = session.schedule(text)
    if exact is not None:
        return [exact]
    return session.schedules_asked(text)


_CLOCK_ONLY = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_at(text: str | None, schedule: Schedule, now: datetime) -> datetime:
    """``--at``: "now", "21:00" (today, in the schedule's zone), "2026-03-07 21:00" (the schedule's zone),
    or with an offset ("2026-03-07T21:00-05:00", "…Z"). A wall time in a DST gap or fold follows the
    documented rule of ``core.oncall.local_to_utc``."""
    if text is None or text.strip().lower() in ("", "now"):
        return now
    zone = schedule.zone
    match = _CLOCK_ONLY.match(text)
    try:
        if match:
            today = now.astimezone(zone).date()
            wall = datetime(today.year, today.month, today.day, int(match.group(1)), int(match.group(2)))
        else:
            wall = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--at {text!r} is not a time; write it like 21:00, 2026-03-07 21:00 or "
                          "2026-03-07T21:00-05:00.") from None
    if wall.tzinfo is not None:
        return wall.astimezone(now.tzinfo)
    return local_to_utc(wall, zone)


@dataclass(frozen=True)
class Answer:
    schedule: Schedule
    at: datetime
    asked_now: bool
    now: OnCallNow
    others: tuple[Schedule, ...]  # other schedules the words could mean


def answer(session: Session, schedule: Schedule, at: datetime, *, asked_now: bool,
           others: tuple[Schedule, ...] = ()) -> Answer:
    return Answer(schedule, at, asked_now, session.on_call(schedule.id, at), others)


def _in(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds()) // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"in {days} d {hours} h"
    return f"in {hours} h {minutes} min" if hours else f"in {minutes} min"


def _person(entry: Entry | None) -> dict | None:
    if entry is None:
        return None
    return {"id": entry.id, "name": entry.name, "title": entry.title, "department": entry.department,
            "contacts": [{"kind": c.kind, "how": c.caption, "value": c.value, "instructions": c.instructions}
                         for c in entry.contacts]}


def as_json(result: Answer) -> dict:
    zone = result.schedule.zone
    now = result.now

    def moment(value: datetime | None) -> dict | None:
        return None if value is None else {"utc": format_utc(value), "local": wall_time(value, zone)}

    return {
        "schedule": {"id": result.schedule.id, "name": result.schedule.name,
                     "department": result.schedule.department, "site": result.schedule.site,
                     "timezone": result.schedule.timezone},
        "at": moment(result.at),
        "now": result.asked_now,
        "nobody_on_call": now.nobody,
        "tiers": [{"tier": t.tier, "role": t.role, "who": _person(t.who), "since": moment(t.since),
                   "until": moment(t.until), "next": _person(t.next_who), "next_from": moment(t.next_start)}
                  for t in now.tiers],
        "fallback": _person(now.fallback),
        "ladder": [{"step": n, "role": role, "who": entry.name,
                    "first_number": entry.first_number.value if entry.first_number else ""}
                   for n, (role, entry) in enumerate(now.ladder(), 1)],
        "escalation": result.schedule.escalation,
        "other_matches": [{"id": s.id, "name": s.name} for s in result.others],
    }


def as_text(result: Answer) -> str:
    zone = result.schedule.zone
    now = result.now
    s = result.schedule
    lines = [" · ".join(x for x in (f"{s.name} ({s.id})", s.department, s.site) if x),
             f"At {wall_time(result.at, zone)}" + (" (now)" if result.asked_now else "")]
    if now.nobody:
        fallback = now.fallback
        first = fallback.first_number if fallback else None
        lines.append("NOBODY is on call at this time. Call the department line: "
                     + (f"{fallback.name}, {first.caption} {first.value}." if fallback and first
                        else "ask the switchboard supervisor."))
    for t in now.tiers:
        role = f"Tier {t.tier}" + (f" {t.role}" if t.role else "")
        if t.who is None:
            lines.append(f"{role}: nobody")
        else:
            lines.append(f"{role}: {t.who.name}" + (f", {t.who.title}" if t.who.title else ""))
            if t.until:
                lines.append(f"    until {wall_time(t.until, zone)} ({_in(t.until - result.at)})")
            for c in t.who.contacts:
                lines.append(f"    {c.caption} {c.value}" + (f" — {c.instructions}" if c.instructions else ""))
        if t.next_who is not None:
            again = " (again)" if t.who is not None and t.next_who.id == t.who.id else ""
            when = f" from {wall_time(t.next_start, zone)}" if t.next_start else ""
            lines.append(f"    next: {t.next_who.name}{again}{when}")
    ladder = now.ladder()
    if ladder:
        lines.append("Escalation ladder:")
        for n, (role, entry) in enumerate(ladder, 1):
            first = entry.first_number
            lines.append(f"  {n}. {role}: {entry.name}" + (f" — {first.caption} {first.value}" if first else ""))
    if s.escalation:
        lines.append(f"Instructions: {s.escalation}")
    if result.others:
        lines.append("Other schedules these words match: "
                     + "; ".join(f"{o.name} ({o.id})" for o in result.others))
    return "\n".join(printable(line) for line in lines)
