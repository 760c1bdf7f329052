"""Sources: where the directory and the on-call schedules come from, read into plain records.

Each ``[[sources]]`` entry of the config names a type:

* ``sql``   — the site's own queries through SQLAlchemy, all in one consistent read (``sources.sql``)
* ``csv``   — CSV files with a column mapping (``sources.csv_source``)
* ``ical``  — iCalendar on-call feeds from files or URLs (``sources.ical``)
* ``rota``  — rotation rules expanded into shifts, like the demo hospital's (``sources.rota``)

``read_sources`` reads them all and returns one ``DirectoryData``: lists of dicts keyed by the model's
column names (``backup_operator.core.model``), plus warnings (such as calendar names that match no
listing). Shift times may come out of a source as aware datetimes, times without an offset, or UTC
text; they are all turned into the model's UTC text here. A time without an offset is read as its
source's ``naive_times`` says — ``"local"``: a wall time in the shift's schedule zone; ``"utc"`` — and
when the source does not say, the export is refused with one sentence naming the option and the zone:
guessing would put every on-call shift hours off without any check noticing.

A source that cannot be read completely raises ``SourceError``: the export stops and nothing is
published from a partial read. This package must never write anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from backup_operator.core.model import format_utc, parse_utc
from backup_operator.errors import BackupOperatorError, ConfigError

from backup_operator.errors import SourceError
from exporter.sources.localtime import as_utc, zone

__all__ = ["TABLES", "ReadWindow", "DirectoryData", "read_sources", "validate_sources", "source_name"]

log = logging.getLogger("exporter.sources")

TABLES = ("listings", "contact_methods", "schedules", "shifts")


@dataclass(frozen=True)
class ReadWindow:
    """The stretch of time the snapshot covers: shifts are expanded or kept from ``start`` to ``end``."""

    now: datetime
    start: datetime
    end: datetime

    @classmethod
    def around(cls, now: datetime, days_back: int, days_ahead: int) -> "ReadWindow":
        return cls(now, now - timedelta(days=days_back), now + timedelta(days=days_ahead))


@dataclass
class DirectoryData:
    listings: list[dict[str, Any]] = field(default_factory=list)
    contact_methods: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    shifts: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)

    def table(self, name: str) -> list[dict[str, Any]]:
        return getattr(self, name)

    def extend(self, other: "DirectoryData") -> None:
        for name in TABLES:
            self.table(name).extend(other.table(name))
        self.warnings.extend(other.warnings)
        self.descriptions.extend(other.descriptions)

    @property
    def counts(self) -> dict[str, int]:
        return {"listings": len(self.listings), "contact_methods": len(self.contact_methods),
                "oncall_schedules": len(self.schedules), "oncall_shifts": len(self.shifts)}


def source_name(spec: dict[str, Any]) -> str:
    return str(spec.get("name") or spec.get("type"))


def _reader(kind: str):
    # Imported on demand: a site with only CSV files needs neither SQLAlchemy nor icalendar.
    if kind == "csv":
        from exporter.sources import csv_source
        return csv_source.read
    if kind == "rota":
        from exporter.sources import rota
        return rota.read
    if kind == "sql":
        from exporter.sources import sql
        return sql.read
    if kind == "ical":
        from exporter.sources import ical
        return ical.read
    raise ConfigError(f"Source type {kind!r} is not known; use sql, csv, ical or rota.")


def _keys(kind: str) -> set[str]:
    if kind == "csv":
        from exporter.sources.csv_source import _KEYS
    elif kind == "rota":
        from exporter.sources.rota import _KEYS
    elif kind == "sql":
        from exporter.sources.sql import _KEYS
    elif kind == "ical":
        from exporter.sources.ical import _KEYS
    else:
        raise ConfigError(f"Source type {kind!r} is not known; use sql, csv, ical or rota.")
    return _KEYS


def validate_sources(config) -> None:
    """Refuse unknown source types and keys before anything is read (a typo fails fast, by name)."""
    from exporter.sources.mapping import check_keys

    if not config.sources:
        raise ConfigError(f"No sources are configured in {config.path}; add a [[sources]] table "
                          "(see resources/examples/exporter.toml).")
    for spec in config.sources:
        where = f"{config.path} source {source_name(spec)!r}"
        check_keys(spec, _keys(str(spec.get("type"))), where)
        if "naive_times" in spec and spec["naive_times"] not in NAIVE_TIMES:
            raise ConfigError(f"{where}: naive_times must be \"local\" (wall time in the schedule's zone) or "
                              f"\"utc\", not {spec['naive_times']!r}.")


NAIVE_TIMES = ("local", "utc")


def read_sources(config, window: ReadWindow) -> DirectoryData:
    """Read every configured source; calendar feeds last, because they match names against listings."""
    from exporter.deadline import check_deadline, note

    validate_sources(config)
    data = DirectoryData()
    ordered = sorted(config.sources, key=lambda s: s.get("type") == "ical")
    naive_rules: list[tuple[int, int, str | None, str]] = []  # (first shift, end, naive_times, source)
    for spec in ordered:
        name = source_name(spec)
        read = _reader(spec.get("type"))
        check_deadline(f"before reading source {name!r}")
        note(f"while reading source {name!r}")
        try:
            part = read(spec, config, window, data)
        except BackupOperatorError:
            raise
        except Exception as exc:  # a driver or parser error we did not foresee: still one sentence
            log.debug("source %s failed", name, exc_info=True)
            raise SourceError(f"Source {name!r} could not be read ({type(exc).__name__}: {exc}); nothing "
                              "was published.") from exc
        log.info("source %s: %s", name, ", ".join(f"{len(part.table(t))} {t}" for t in TABLES
                                                  if part.table(t)) or "nothing")
        before = len(data.shifts)
        data.extend(part)
        naive_rules.append((before, len(data.shifts), spec.get("naive_times"), name))
    note("after reading the sources")
    _finish_shifts(data, naive_rules)
    return data


class NaiveTime(ValueError):
    """A shift time without a UTC offset from a source that did not say how to read such times."""


def _finish_shifts(data: DirectoryData, naive_rules: list[tuple[int, int, str | None, str]] | None = None) -> None:
    """Turn every shift's start and end into the model's UTC text, each source's naive times its way."""
    zones: dict[str, ZoneInfo | None] = {}
    for schedule in data.schedules:
        try:
            zones[str(schedule.get("id"))] = zone(str(schedule.get("timezone") or ""))
        except ConfigError:
            zones[str(schedule.get("id"))] = None  # the model's validation names this schedule
    rules = naive_rules if naive_rules is not None else [(0, len(data.shifts), None, "the sources")]
    for first, end, naive, source in rules:
        for n in range(first, end):
            shift = data.shifts[n]
            tz = zones.get(str(shift.get("schedule_id")))
            for key in ("start_utc", "end_utc"):
                try:
                    shift[key] = instant_text(shift.get(key), tz, naive)
                except NaiveTime:
                    sid = shift.get("schedule_id")
                    zone_name = tz.key if tz is not None else "its schedule's zone"
                    raise SourceError(
                        f"Source {source!r} gives shift times without a UTC offset (schedule {sid!r}: "
                        f"{key} {shift.get(key)!s}); set naive_times = \"local\" in that [[sources]] entry to "
                        f"read them as wall time in the schedule's zone ({zone_name}), or naive_times = \"utc\" "
                        "if they are UTC.") from None
                except ValueError as exc:
                    where = shift.pop("_where", None) or f"shift {n + 1} (schedule {shift.get('schedule_id')!r})"
                    raise SourceError(f"{where}: {key} {shift.get(key)!r} is not a time ({exc}).") from None
            shift.pop("_where", None)


def instant_text(value: Any, tz: ZoneInfo | None, naive: str | None = "local") -> str:
    """UTC text from a datetime, UTC text, or ISO 8601 text with or without an offset.

    A time without an offset is a wall time in ``tz`` (naive = "local"), UTC (naive = "utc"), or
    refused with NaiveTime (naive = None).
    """
    if value is None or value == "":
        raise ValueError("it is empty")
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            return format_utc(parse_utc(text))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
        except ValueError:
            raise ValueError("write it like 2026-11-01T05:00:00Z or 2026-11-01 01:00") from None
    if moment.tzinfo is not None:
        return format_utc(moment.astimezone(timezone.utc))
    if naive is None:
        raise NaiveTime("no UTC offset")
    if naive == "utc":
        return format_utc(moment.replace(tzinfo=timezone.utc))
    if tz is None:
        raise ValueError("it has no UTC offset and its schedule has no valid time zone")
    return format_utc(as_utc(moment, tz))


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
