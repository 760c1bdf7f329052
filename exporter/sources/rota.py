"""Rotas: rotation rules in local wall time, expanded into UTC shifts for the export window.

Many departments do not keep a list of shifts at all, only a rule: "the cardiology attendings rotate
07:00-19:00 and 19:00-07:00", "interventional radiology hands over every Monday at 08:00". A rota file
(JSON) holds such rules; each export expands them for the window around now, so shifts always cover
the day the export runs. The demo hospital's on-call schedules are rotas (resources/demo/rotas.json).

File layout::

    {"rotas": [
      {"schedule_id": "oc-cardiology", "tier": 1, "role": "Attending",
       "anchor": "2026-01-05",                 # a date the rotation starts counting from
       "daily": ["07:00", "19:00"],            # handovers every day at these wall times, or ...
       "weekly": {"weekday": "monday", "at": "08:00"},   # ... one handover a week
       "members": ["p-00012", "p-00013"],      # listing ids, in rotation order
       "notes": "..."}
    ]}

Slot k (counted from the first handover on the anchor date, negative before it) goes to
``members[k % len(members)]``. Wall times become UTC with exporter.sources.localtime's single rule, in
the schedule's time zone; consecutive shifts share a boundary, so they meet exactly across DST.

This module must never read the clock: the window is given to it.
"""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from typing import Any

from backup_operator.core.model import format_utc
from backup_operator.errors import ConfigError

from backup_operator.errors import SourceError
from exporter.sources import DirectoryData, ReadWindow, source_name
from exporter.sources.localtime import wall_to_utc, zone
from exporter.sources.files import DEFAULT_TIMEOUT_S, read_bytes
from exporter.sources.mapping import check_keys, positive

__all__ = ["read", "expand_rota", "Rota"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_KEYS = {"type", "name", "allow_overlaps", "path", "timeout_s"}
MAX_ROTA_BYTES = 16 * 2**20
_ROTA_KEYS = {"schedule_id", "tier", "role", "anchor", "daily", "weekly", "members", "notes"}


def _wall(text: str, where: str) -> time:
    try:
        return time.fromisoformat(text)
    except (TypeError, ValueError):
        raise SourceError(f"{where}: {text!r} is not a wall time like 07:00.") from None


class Rota:
    def __init__(self, doc: dict[str, Any], where: str):
        check_keys(doc, _ROTA_KEYS, where)
        try:
            self.schedule_id = str(doc["schedule_id"])
            self.members = [str(m) for m in doc["members"]]
            self.anchor = date.fromisoformat(str(doc["anchor"]))
        except KeyError as exc:
            raise SourceError(f"{where}: {exc.args[0]} is missing.") from None
        except ValueError:
            raise SourceError(f"{where}: anchor {doc.get('anchor')!r} is not a date like 2026-01-05.") from None
        if not self.members:
            raise SourceError(f"{where}: members is empty; a rota needs at least one listing id.")
        self.tier = int(doc.get("tier", 1))
        self.role = str(doc.get("role", ""))
        self.notes = str(doc.get("notes", ""))
        self.where = where
        if ("daily" in doc) == ("weekly" in doc):
            raise SourceError(f"{where}: give either daily handover times or one weekly handover.")
        if "daily" in doc:
            self.daily = sorted(_wall(t, where) for t in doc["daily"])
            if not self.daily or len(set(self.daily)) != len(self.daily):
                raise SourceError(f"{where}: daily needs distinct wall times like [\"07:00\", \"19:00\"].")
            self.weekly = None
        else:
            weekly = doc["weekly"]
            day = str(weekly.get("weekday", "")).lower()
            if day not in WEEKDAYS:
                raise SourceError(f"{where}: weekly weekday {day!r} is not a day name like monday.")
            self.weekly = (WEEKDAYS.index(day), _wall(weekly.get("at", "08:00"), where))
            self.daily = None

    def handovers(self, first: date, last: date) -> list[tuple[int, date, time]]:
        """(slot index, local date, wall time) of every handover from ``first`` to ``last`` inclusive."""
        out = []
        if self.daily is not None:
            per_day = len(self.daily)
            day = first
            while day <= last:
                offset = (day - self.anchor).days
                for i, at in enumerate(self.daily):
                    out.append((offset * per_day + i, day, at))
                day += timedelta(days=1)
        else:
            weekday, at = self.weekly
            # The anchor week's handover day is the first such weekday on or after the anchor.
            base = self.anchor + timedelta(days=(weekday - self.anchor.weekday()) % 7)
            day = first + timedelta(days=(weekday - first.weekday()) % 7)
            while day <= last:
                out.append(((day - base).days // 7, day, at))
                day += timedelta(days=7)
        return out


def expand_rota(rota: Rota, timezone_name: str, window: ReadWindow) -> list[dict[str, Any]]:
    """The rota's shifts that overlap the window, as model rows with UTC text times."""
    tz = zone(timezone_name, rota.where)
    # Local dates a little wider than the window, so the shifts at both edges are whole.
    first = window.start.astimezone(tz).date() - timedelta(days=8)
    last = window.end.astimezone(tz).date() + timedelta(days=8)
    marks = [(k, wall_to_utc(day, at, tz)) for k, day, at in rota.handovers(first, last)]
    shifts = []
    for (k, start), (_, end) in zip(marks, marks[1:]):
        if end <= window.start or start >= window.end or end <= start:
            continue
        shifts.append({
            "schedule_id": rota.schedule_id,
            "tier": rota.tier,
            "role": rota.role,
            "listing_id": rota.members[k % len(rota.members)],
            "start_utc": format_utc(start),
            "end_utc": format_utc(end),
            "notes": rota.notes,
        })
    return shifts


def read(spec: dict[str, Any], config, window: ReadWindow, so_far: DirectoryData) -> DirectoryData:
    name = source_name(spec)
    where = f"{config.path} source {name!r}"
    check_keys(spec, _KEYS, where)
    if "path" not in spec:
        raise ConfigError(f"{where}: a rota source needs a path to its rota file.")
    path = config.resolve(spec["path"])
    raw = read_bytes(path, where=f"Source {name!r} (rota file)", max_bytes=MAX_ROTA_BYTES,
                     timeout_s=positive(spec, "timeout_s", DEFAULT_TIMEOUT_S, where))
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"Source {name!r}: the rota file {path} cannot be read ({exc}).") from None
    zones = {str(s.get("id")): str(s.get("timezone") or "") for s in so_far.schedules}
    data = so_far.part()
    for n, item in enumerate(doc.get("rotas", []), 1):
        rota = Rota(item, f"Source {name!r} ({path.name}), rota {n}")
        if rota.schedule_id not in zones:
            raise SourceError(f"{rota.where}: schedule {rota.schedule_id!r} is not defined by an earlier "
                              "source (list schedules before the rota in the config).")
        data.shifts.extend(expand_rota(rota, zones[rota.schedule_id], window))
    data.descriptions.append(f"{name} ({path.name})")
    return data
