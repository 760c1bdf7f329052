"""Sources: where the directory and the on-call schedules come from, read into plain records.

Each ``[[sources]]`` entry of the config names a type:

* ``sql``   — the site's own queries through SQLAlchemy, all in one consistent read (``sources.sql``)
* ``csv``   — CSV files with a column mapping (``sources.csv_source``)
* ``ical``  — iCalendar on-call feeds from files or URLs (``sources.ical``)
* ``rota``  — rotation rules expanded into shifts, like the demo hospital's (``sources.rota``)

``read_sources`` reads them all and returns one ``DirectoryData``: lists of dicts keyed by the model's
column names (``backup_operator.core.model``), plus warnings (such as calendar names that match no
listing). Shift times may come out of a source as aware datetimes, naive local wall times or UTC text;
they are all turned into the model's UTC text here, naive ones in their schedule's time zone.

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
        check_keys(spec, _keys(str(spec.get("type"))), f"{config.path} source {source_name(spec)!r}")


def read_sources(config, window: ReadWindow) -> DirectoryData:
    """Read every configured source; calendar feeds last, because they match names against listings."""
    validate_sources(config)
    data = DirectoryData()
    ordered = sorted(config.sources, key=lambda s: s.get("type") == "ical")
    for spec in ordered:
        name = source_name(spec)
        read = _reader(spec.get("type"))
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
        data.extend(part)
    _finish_shifts(data)
    return data


def _finish_shifts(data: DirectoryData) -> None:
    """Turn every shift's start and end into the model's UTC text (naive = the schedule's wall time)."""
    zones: dict[str, ZoneInfo | None] = {}
    for schedule in data.schedules:
        try:
            zones[str(schedule.get("id"))] = zone(str(schedule.get("timezone") or ""))
        except ConfigError:
            zones[str(schedule.get("id"))] = None  # the model's validation names this schedule
    for n, shift in enumerate(data.shifts, 1):
        tz = zones.get(str(shift.get("schedule_id")))
        for key in ("start_utc", "end_utc"):
            try:
                shift[key] = instant_text(shift.get(key), tz)
            except ValueError as exc:
                where = shift.pop("_where", None) or f"shift {n} (schedule {shift.get('schedule_id')!r})"
                raise SourceError(f"{where}: {key} {shift.get(key)!r} is not a time ({exc}).") from None
        shift.pop("_where", None)


def instant_text(value: Any, tz: ZoneInfo | None) -> str:
    """UTC text from a datetime, UTC text, or ISO 8601 text with or without an offset."""
    if value is None or value == "":
        raise ValueError("it is empty")
    if isinstance(value, datetime):
        return format_utc(as_utc(value, tz))
    text = str(value).strip()
    try:
        return format_utc(parse_utc(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        raise ValueError("write it like 2026-11-01T05:00:00Z or 2026-11-01 01:00") from None
    if moment.tzinfo is None and tz is None:
        raise ValueError("it has no UTC offset and its schedule has no valid time zone")
    return format_utc(as_utc(moment, tz))


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
