"""Sources: where the directory and the on-call schedules come from, read into plain records.

Each ``[[sources]]`` entry of the config names a type:

* ``sql``   — the site's own queries through SQLAlchemy, all in one consistent read (``sources.sql``)
* ``csv``   — CSV files with a column mapping (``sources.csv_source``)
* ``ical``  — iCalendar on-call feeds from files or URLs (``sources.ical``)
* ``rota``  — rotation rules expanded into shifts, like the demo hospital's (``sources.rota``)

``read_sources`` reads them all and returns one ``DirectoryData``: the listings and contact methods
already in the snapshot database being built (streamed in batches: a million listings never exist as
Python objects), the on-call schedules and shifts as lists of dicts keyed by the model's column names
(``backup_operator.core.model``), plus warnings (such as calendar names that match no listing). Each
source writes into a ``part`` of it. Shift times may come out of a source as aware datetimes, times
without an offset, or UTC text; they are all turned into the model's UTC text here. A time without an
offset is read as its source's ``naive_times`` says — ``"local"``: a wall time in the shift's schedule
zone; ``"utc"`` — and when the source does not say, the export is refused with one sentence naming the
option and the zone: guessing would put every on-call shift hours off without any check noticing.

A source that cannot be read completely raises ``SourceError``: the export stops and nothing is
published from a partial read. This package must never write anywhere but that database in memory.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from backup_operator.core.model import SnapshotBuilder, format_utc, parse_utc
from backup_operator.errors import BackupOperatorError, ConfigError

from backup_operator.errors import SourceError
from exporter.sources.localtime import as_utc, zone

__all__ = ["TABLES", "ReadWindow", "DirectoryData", "BulkTable", "read_sources", "validate_sources",
           "source_name"]

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


class BulkTable:
    """Listings or contact methods: held in the snapshot being built (SQLite), not as Python objects.

    Reads like a list of dicts keyed by the model's columns (``len``, iteration, ``[n]``) for the few
    places that want that at small sizes; sources add rows with ``extend``/``append`` (dicts) or
    ``add_rows`` (a source's own tuples, in batches), and everything big is done in SQL on ``builder.conn``.
    A part (``DirectoryData.part``) writes into its parent's database and counts what it added.
    """

    def __init__(self, builder: SnapshotBuilder, name: str, *, whole: bool = True):
        self.builder = builder
        self.name = name
        self.sql_table = "listings" if name == "listings" else "contact_methods"
        self._whole = whole
        self.added = 0

    def __len__(self) -> int:
        return self.builder.count(self.name) if self._whole else self.added

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self._whole:
            raise TypeError("a source's part is read through the whole directory it was added to")
        return iter(self.builder.records(self.name))

    def __getitem__(self, n: int) -> dict[str, Any]:
        if not isinstance(n, int):
            raise TypeError("rows are taken one at a time, by position")
        if n < 0:
            n += len(self)
        for row in itertools.islice(self, n, n + 1):
            return row
        raise IndexError(n)

    def __setitem__(self, where: slice, records: Iterable[Mapping[str, Any]]) -> None:
        if where != slice(None):
            raise TypeError("only the whole table can be replaced ([:] = rows)")
        self.replace(records)

    def replace(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Put ``records`` in place of every row (rows read from this table may be passed back)."""
        if not self._whole:
            raise TypeError("a source's part cannot replace the directory's rows")
        records = list(records)
        self.builder.conn.execute(f'DELETE FROM "{self.sql_table}"')
        self.added = 0
        self.extend(records)

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        self.added += self.builder.add_records(self.name, records)

    def append(self, record: Mapping[str, Any]) -> None:
        self.extend([record])

    def add_rows(self, columns: list[str], rows: Iterable[tuple]) -> int:
        added = self.builder.add_rows(self.name, columns, rows)
        self.added += added
        return added


class DirectoryData:
    """Everything the sources gave, on its way to becoming the snapshot.

    Listings and contact methods (millions at a large site) go straight into the snapshot database being
    built (``builder``, a ``SnapshotBuilder``) as they are read; on-call schedules and shifts (thousands)
    stay lists of dicts, which the calendar and rota sources and the shift checks work on. The build step
    adds those two lists to ``builder`` and finishes it.
    """

    def __init__(self, listings: Iterable[Mapping[str, Any]] = (),
                 contact_methods: Iterable[Mapping[str, Any]] = (),
                 schedules: Iterable[dict[str, Any]] = (), shifts: Iterable[dict[str, Any]] = (),
                 warnings: Iterable[str] = (), descriptions: Iterable[str] = (), *,
                 builder: SnapshotBuilder | None = None):
        whole = builder is None
        self.builder = builder or SnapshotBuilder()
        self._listings = BulkTable(self.builder, "listings", whole=whole)
        self._contact_methods = BulkTable(self.builder, "contact_methods", whole=whole)
        self.schedules: list[dict[str, Any]] = list(schedules)
        self.shifts: list[dict[str, Any]] = list(shifts)
        self.warnings: list[str] = list(warnings)
        self.descriptions: list[str] = list(descriptions)
        self.listings.extend(listings)
        self.contact_methods.extend(contact_methods)

    @property
    def listings(self) -> BulkTable:
        return self._listings

    @listings.setter
    def listings(self, records: Iterable[Mapping[str, Any]]) -> None:
        self._listings.replace(records)

    @property
    def contact_methods(self) -> BulkTable:
        return self._contact_methods

    @contact_methods.setter
    def contact_methods(self, records: Iterable[Mapping[str, Any]]) -> None:
        self._contact_methods.replace(records)

    def part(self) -> "DirectoryData":
        """An empty part for one source: its listings and contact methods go into this directory's
        database at once; ``extend(part)`` then adds its schedules, shifts and warnings."""
        return DirectoryData(builder=self.builder)

    def table(self, name: str):
        return getattr(self, name)

    def extend(self, other: "DirectoryData") -> None:
        if other.builder is not self.builder:
            self.listings.extend(other.listings)
            self.contact_methods.extend(other.contact_methods)
        self.schedules.extend(other.schedules)
        self.shifts.extend(other.shifts)
        self.warnings.extend(other.warnings)
        self.descriptions.extend(other.descriptions)

    @property
    def counts(self) -> dict[str, int]:
        return {"listings": len(self.listings), "contact_methods": len(self.contact_methods),
                "oncall_schedules": len(self.schedules), "oncall_shifts": len(self.shifts)}

    def missing_listings(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that name no listing (one query, whatever the directory's size)."""
        wanted = sorted({str(i) for i in ids})
        if not wanted:
            return set()
        conn = self.builder.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS asked (id TEXT PRIMARY KEY)")
        try:
            conn.executemany("INSERT OR IGNORE INTO asked (id) VALUES (?)", ((i,) for i in wanted))
            return {i for (i,) in
                    conn.execute("SELECT id FROM asked WHERE id NOT IN (SELECT id FROM listings)")}
        finally:
            conn.execute("DELETE FROM asked")


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
        check_keys(spec, _keys(str(spec.get("type"))) | COMMON_KEYS, where)
        if not isinstance(spec.get("allow_overlaps", False), bool):
            raise ConfigError(f"{where}: allow_overlaps must be true or false, not {spec['allow_overlaps']!r}.")
        if "naive_times" in spec and spec["naive_times"] not in NAIVE_TIMES:
            raise ConfigError(f"{where}: naive_times must be \"local\" (wall time in the schedule's zone) or "
                              f"\"utc\", not {spec['naive_times']!r}.")


NAIVE_TIMES = ("local", "utc")
# Keys every source kind takes. allow_overlaps: shifts of this source may overlap each other at one tier
# (a feed that lists a primary and a shadowing colleague both as tier 1): reported, not refused.
COMMON_KEYS = {"allow_overlaps"}
OVERLAPS_ALLOWED = "_overlaps_allowed"  # set on a shift dict from such a source; the build ignores it


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
        if spec.get("allow_overlaps"):
            for shift in part.shifts:
                shift[OVERLAPS_ALLOWED] = True
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
        # One shift's end is usually the next one's start: each distinct time is converted once.
        done: dict[tuple[Any, Any], str] = {}
        for n in range(first, end):
            shift = data.shifts[n]
            tz = zones.get(str(shift.get("schedule_id")))
            for key in ("start_utc", "end_utc"):
                value = shift.get(key)
                try:
                    known = done.get((value, tz))
                except TypeError:  # a value that cannot be a key (the conversion names it)
                    known = None
                if known is not None:
                    shift[key] = known
                    continue
                try:
                    shift[key] = instant_text(value, tz, naive)
                    done[(value, tz)] = shift[key]
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
        return format_utc(moment)
    if naive is None:
        raise NaiveTime("no UTC offset")
    if naive == "utc":
        return format_utc(moment.replace(tzinfo=timezone.utc))
    if tz is None:
        raise ValueError("it has no UTC offset and its schedule has no valid time zone")
    return format_utc(as_utc(moment, tz))


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
