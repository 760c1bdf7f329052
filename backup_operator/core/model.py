"""The snapshot's data model: the SQLite schema, its validation, and building and opening a database.

A snapshot is one SQLite database. The exporter builds it here (``build_database``) from plain
records; the desktop opens the decrypted bytes here (``open_database``) entirely in memory (once:
``core.ramdb``).

Times are UTC instants written ``YYYY-MM-DDTHH:MM:SSZ`` (text that sorts like the instant it names);
shifts are half-open, ``[start_utc, end_utc)``. Wall-clock times exist only in the UI, in the
schedule's IANA zone.

This module must never write a database to disk, and never import Qt or cryptography.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backup_operator.core.ramdb import RamFile, RamImage
from backup_operator.errors import CorruptSnapshot, ValidationError

__all__ = [
    "SCHEMA_VERSION",
    "LISTING_KINDS",
    "CONTACT_KINDS",
    "SnapshotMeta",
    "SnapshotBuilder",
    "build_database",
    "open_database",
    "read_meta",
    "format_utc",
    "parse_utc",
    "digits_of",
]

SCHEMA_VERSION = 1

LISTING_KINDS = ("person", "department", "location", "service")
CONTACT_KINDS = ("extension", "phone", "mobile", "pager", "fax", "email", "voip", "overhead")

LISTING_COLUMNS = {
    "id": str,
    "kind": str,
    "display_name": str,
    "family_name": str,
    "given_name": str,
    "middle_name": str,
    "title": str,
    "department": str,
    "site": str,
    "building": str,
    "floor": str,
    "room": str,
    "aliases": str,  # JSON array of strings
    "keywords": str,  # JSON array of strings
    "notes": str,
    "updated_at": str,
}
CONTACT_COLUMNS = {
    "id": int,
    "listing_id": str,
    "kind": str,
    "value": str,
    "digits": str,  # the value's digits alone, for number search and reverse lookup
    "label": str,
    "rank": int,
    "instructions": str,
}
SCHEDULE_COLUMNS = {
    "id": str,
    "name": str,
    "department": str,
    "site": str,
    "timezone": str,
    "escalation": str,
    "fallback_listing_id": str,
}
SHIFT_COLUMNS = {
    "id": int,
    "schedule_id": str,
    "tier": int,
    "role": str,
    "listing_id": str,
    "start_utc": str,
    "end_utc": str,
    "notes": str,
}

_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def format_utc(moment: datetime) -> str:
    """An aware datetime as the model's UTC text. Naive datetimes are refused: they hide a zone."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; give an aware one")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    if not _UTC_RE.match(text or ""):
        raise ValueError(f"{text!r} is not a UTC time like 2026-11-01T05:00:00Z")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date and time") from None


_NON_DIGITS = re.compile(r"\D+")


def digits_of(value: str) -> str:
    return _NON_DIGITS.sub("", value)


@dataclass(frozen=True)
class SnapshotMeta:
    """What a snapshot says about itself (the ``meta`` table)."""

    snapshot_version: int
    schema_version: int
    created_at: datetime
    expires_at: datetime
    expected_interval_s: int
    source: str
    counts: Mapping[str, int]


def _text(value: Any) -> str:
    if type(value) is str:  # the common case, first: this runs for every field of every row
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return json.dumps([str(v) for v in value], ensure_ascii=False)
    return str(value).strip()


def _json_list(value: Any) -> str:
    """Aliases and keywords: a list, a JSON array, or text separated by ';' or '|'."""
    if value is None or value == "":
        return "[]"
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        text = str(value).strip()
        if text.startswith("["):
            try:
                items = [str(v).strip() for v in json.loads(text)]
            except json.JSONDecodeError:
                items = [text]
        else:
            items = [part.strip() for part in re.split(r"[;|]", text)]
    return json.dumps([item for item in items if item], ensure_ascii=False)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _whole(raw: Any, minimum: int) -> int | None:
    """A rank or tier: a whole number of at least ``minimum`` (1 when empty), or None when it is not one."""
    value = raw if type(raw) is int else (_as_int(raw) if raw not in (None, "") else 1)
    return value if value is not None and value >= minimum else None


# --- converting a batch of rows, one column at a time --------------------------------------------------
# Each converter takes one column of a batch and returns the stored values. Built-in methods mapped over
# a column cost a fraction of a Python call per value: a million listings go through here in seconds.

_ASCII_NON_DIGITS = {code: None for code in range(128) if not 48 <= code <= 57}
_NONE = type(None)
_NONE_AS_EMPTY = {None: ""}


def _text_column(values: Sequence[Any]) -> list[str] | None:
    """The column's values as stripped text, or None when every value is NULL (none given)."""
    kinds = set(map(type, values))
    if kinds == {_NONE}:
        return None
    if kinds <= {str}:
        return list(map(str.strip, values))
    if kinds <= {str, _NONE}:  # NULL columns: None -> "" and strip, both in C (dict.get(v, v) keeps v)
        return list(map(str.strip, map(_NONE_AS_EMPTY.get, values, values)))
    return list(map(_text, values))


def _list_column(values: Sequence[Any]) -> list[str]:
    return ["[]" if value is None or value == "" else _json_list(value) for value in values]


_ASCII_NON_DIGITS_BUT_NEWLINE = bytes(code for code in range(128) if not 48 <= code <= 57 and code != 10)


def _digits_column(values: Sequence[str], kinds: Sequence[str]) -> list[str]:
    # The usual column (ASCII numbers, no line breaks) in one pass of bytes.translate over the whole
    # column: a per-value str.translate cost more than the SQLite insert of those rows.
    joined = "\n".join(values)
    out: list[str] = []
    if joined.isascii():
        out = joined.encode("ascii").translate(None, _ASCII_NON_DIGITS_BUT_NEWLINE).decode("ascii").split("\n")
    if len(out) != len(values):  # other scripts' digits, or a value with a line break: value by value
        out = [digits if digits.isascii() else digits_of(value)
               for digits, value in zip(map(str.translate, values, itertools.repeat(_ASCII_NON_DIGITS)), values)]
    if "email" in kinds:
        out = ["" if kind == "email" else digits for digits, kind in zip(out, kinds)]
    return out


_DEFAULTS = {"aliases": "'[]'", "keywords": "'[]'", "rank": "1", "tier": "1"}


@dataclass(frozen=True)
class _Table:
    name: str                    # the table in the snapshot
    columns: Mapping[str, type]  # every column of the model
    stored: tuple[str, ...]      # the columns an insert binds (an integer id is the row's own number)
    ddl: str


def _ddl(name: str, columns: Mapping[str, type], *, not_null: set[str], references: Mapping[str, str] = {},
         integer_id: bool = False) -> str:
    lines = []
    for column, kind in columns.items():
        if column == "id":
            lines.append('"id" INTEGER PRIMARY KEY' if integer_id else '"id" TEXT PRIMARY KEY')
            continue
        line = f'"{column}" {"INTEGER" if kind is int else "TEXT"}'
        if column in not_null:
            line += " NOT NULL"
        # What a column no source gave holds (an insert then leaves it out instead of binding it per row).
        line += f" DEFAULT {_DEFAULTS.get(column, chr(39) * 2)}"
        if column in references:
            line += f' REFERENCES "{references[column]}"("id")'
        lines.append(line)
    return f'CREATE TABLE "{name}" (\n   ' + ",\n   ".join(lines) + "\n)"


_TABLES = {
    "listings": _Table("listings", LISTING_COLUMNS, tuple(LISTING_COLUMNS), _ddl(
        "listings", LISTING_COLUMNS, not_null={"kind", "display_name"})),
    "contact_methods": _Table(
        "contact_methods", CONTACT_COLUMNS, tuple(c for c in CONTACT_COLUMNS if c != "id"), _ddl(
        "contact_methods", CONTACT_COLUMNS, not_null={"listing_id", "kind", "value"},
        references={"listing_id": "listings"}, integer_id=True)),
    "schedules": _Table("oncall_schedules", SCHEDULE_COLUMNS, tuple(SCHEDULE_COLUMNS), _ddl(
        "oncall_schedules", SCHEDULE_COLUMNS, not_null={"name", "timezone"})),
    "shifts": _Table("oncall_shifts", SHIFT_COLUMNS, tuple(c for c in SHIFT_COLUMNS if c != "id"), _ddl(
        "oncall_shifts", SHIFT_COLUMNS, not_null={"schedule_id", "listing_id", "start_utc", "end_utc"},
        references={"schedule_id": "oncall_schedules", "listing_id": "listings"}, integer_id=True)),
}
BUILD_TABLES = tuple(_TABLES)  # what build_database and SnapshotBuilder call the four tables
# A well-formed UTC time that is a real instant: through a Julian day number and back it comes out the same
# (February 30 comes back as March 2). Rows this lets through are parsed again by parse_utc for the message.
_GOOD_TIME = ("({col} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'"
              " AND {col} >= '0001' AND strftime('%Y-%m-%dT%H:%M:%SZ', julianday({col})) IS {col})")


class SnapshotBuilder:
    """A snapshot database being built: rows go in by batches, are validated where they are, and it is
    finished into the bytes that are sealed.

    Rows are converted a column at a time as they arrive (``add_rows`` for a source's tuples, ``add_records``
    for dicts) and inserted with ``executemany``; nothing keeps a Python object per row. The database in
    memory is the snapshot itself: the exporter's checks read it with SQL, ``validate`` names every bad row
    and field exactly as before, and ``finish`` adds the indexes and ``meta``. ``conn`` is open for the
    exporter's own steps (checks, the search index, the change summary) until ``serialize``.

    Listing and schedule ids get their unique index only when validation has shown them unique, so a
    duplicate is reported by row, not as an insert error. Deleted rows are overwritten (``secure_delete``):
    a listing dropped from a snapshot does not travel inside its free pages.
    """

    BATCH = 20_000

    def __init__(self) -> None:
        # Filled on the exporter's reading thread, then checked and finished on the export's own: one
        # thread at a time, handed over when the read ends. In a RAM file where there is one, so that the
        # finished database can leave without a copy (core.ramdb.RamFile); else in SQLite's memory.
        self._file = RamFile.create()
        self.conn = self._file.conn if self._file else sqlite3.connect(":memory:", check_same_thread=False)
        pragmas = ["journal_mode = OFF", "secure_delete = ON", "temp_store = MEMORY"]
        if self._file:
            # Nothing here needs to survive a crash; reads of what was written come from the map.
            pragmas += ["synchronous = OFF", "locking_mode = EXCLUSIVE", "cache_size = -65536",
                        f"mmap_size = {8 << 30}"]
        for pragma in pragmas:
            self.conn.execute(f"PRAGMA {pragma}")
        for table in _TABLES.values():
            self.conn.execute(table.ddl)
        self.conn.execute('CREATE TABLE "meta" (\n   "key" TEXT PRIMARY KEY,\n   "value" TEXT\n)')
        # Rank and tier values that are not whole numbers, by row: (table, rowid) -> what the source gave.
        self._bad_numbers: dict[tuple[str, int], Any] = {}
        # Rows of listings and schedules whose id was already there (a primary key takes each id once):
        # kept aside, by table, as (position among the rows given, row as stored) for validation to name.
        self._repeated: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._given: dict[str, int] = {}  # rows given so far, by table
        self._validated = False

    # --- putting rows in ------------------------------------------------------------------------------

    def add_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Add rows given as sequences in ``columns`` order (a source's own tuples); returns how many."""
        spec = _TABLES[table]
        unknown = [c for c in columns if c not in spec.columns]
        if unknown:
            raise ValueError(f"{table} has no column {unknown[0]!r}")
        added = 0
        rows = iter(rows)
        while batch := list(itertools.islice(rows, self.BATCH)):
            self._insert(spec, dict(zip(columns, zip(*batch))), len(batch))
            added += len(batch)
        return added

    def add_records(self, table: str, records: Iterable[Mapping[str, Any]]) -> int:
        """Add rows given as mappings keyed by the model's column names; returns how many."""
        spec = _TABLES[table]
        added = 0
        records = iter(records)
        while batch := list(itertools.islice(records, self.BATCH)):
            self._insert(spec, {c: [r.get(c) for r in batch] for c in spec.stored}, len(batch))
            added += len(batch)
        return added

    def _insert(self, spec: _Table, given: Mapping[str, Sequence[Any]], n: int) -> None:
        self._validated = False
        values: dict[str, Sequence] = {}
        for column in spec.stored:
            raw = given.get(column)
            if raw is None or column == "digits":
                continue  # not given: the column's default, without binding a value per row
            if column in ("aliases", "keywords", "rank", "tier"):
                if raw.count(None) == n:
                    continue
                values[column] = _list_column(raw) if column in ("aliases", "keywords") else \
                    self._numbers(spec, raw, 0 if column == "rank" else 1)
            else:
                text = _text_column(raw)
                if text is not None:  # None: every value NULL, the column's default as above
                    values[column] = text
        if "digits" in spec.stored:
            blank = ("",) * n
            values["digits"] = _digits_column(values.get("value", blank), values.get("kind", blank))
        names = [c for c in spec.stored if c in values]
        if not names:  # rows without a single value: still rows (validation names them)
            names = [spec.stored[0]]
            values[names[0]] = ("",) * n
        columns = ", ".join(f'"{c}"' for c in names)
        sql = f'INSERT INTO "{spec.name}" ({columns}) VALUES ({", ".join("?" * len(names))})'
        first = self._given.get(spec.name, 0)
        self._given[spec.name] = first + n
        keyed = "id" in names
        rows = list(zip(*(values[c] for c in names))) if keyed else zip(*(values[c] for c in names))
        last = f'SELECT coalesce(max(rowid), 0) FROM "{spec.name}"'
        before = self.conn.execute(last).fetchone()[0] if keyed else 0
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError:
            # An id already taken: the rows before it went in (no rollback without a journal); the rest go
            # one at a time, and each repeat is kept aside to be named by validate().
            done = self.conn.execute(last).fetchone()[0] - before
            self._one_by_one(spec, sql, names, rows, done, first)

    def _one_by_one(self, spec: _Table, sql: str, names: list[str], rows: list[tuple], done: int,
                    first: int) -> None:
        defaults = {c: ("[]" if c in ("aliases", "keywords") else 1 if c in ("rank", "tier") else "")
                    for c in spec.stored}
        repeated = self._repeated.setdefault(spec.name, [])
        for offset in range(done, len(rows)):
            try:
                self.conn.execute(sql, rows[offset])
            except sqlite3.IntegrityError:
                repeated.append((first + offset + 1, {**defaults, **dict(zip(names, rows[offset]))}))

    def _numbers(self, spec: _Table, raw: Sequence[Any], minimum: int) -> list:
        if set(map(type, raw)) <= {int} and (not raw or min(raw) >= minimum):
            return list(raw)  # the usual case: every value already a good whole number
        first = self.conn.execute(f'SELECT coalesce(max(rowid), 0) + 1 FROM "{spec.name}"').fetchone()[0]
        out = []
        for offset, value in enumerate(raw):
            number = _whole(value, minimum)
            if number is None:
                self._bad_numbers[(spec.name, first + offset)] = value
            out.append(number)
        return out

    # --- reading back ---------------------------------------------------------------------------------

    def count(self, table: str) -> int:
        return self.conn.execute(f'SELECT count(*) FROM "{_TABLES[table].name}"').fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {"listings": self.count("listings"), "contact_methods": self.count("contact_methods"),
                "oncall_schedules": self.count("schedules"), "oncall_shifts": self.count("shifts")}

    def records(self, table: str) -> Iterable[dict[str, Any]]:
        """Every row of ``table`` as a dict, in the order added (for small tables and tests)."""
        spec = _TABLES[table]
        names = list(spec.columns)
        for row in self.conn.execute(f'SELECT {", ".join(names)} FROM "{spec.name}" ORDER BY rowid'):
            yield dict(zip(names, row))

    # --- validating -----------------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise ``ValidationError`` naming every bad row and field (``problems`` lists them all), in
        table order and then row order, as an operator reading the source would go through them."""
        if self._validated:
            return
        problems = self._listing_problems()
        problems += self._contact_problems()
        problems += self._schedule_problems()
        problems += self._shift_problems()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ValidationError(f"The directory data is not valid: {problems[0]}{more}.", problems)
        self._validated = True

    def positions(self, table: str, rowids: Sequence[int]) -> list[int]:
        """Each row's position (1 for the first) among the rows given to ``table`` (a model table name)
        and still in it."""
        position = self._position_of(_TABLES[table].name) if rowids else int
        return [position(rowid) for rowid in rowids]

    def _position_of(self, table: str) -> Callable[[int], int]:
        rows, last = self.conn.execute(f'SELECT count(*), max(rowid) FROM "{table}"').fetchone()
        if rows == last:
            index = int  # no row was deleted: a row's number among the rows in the table is its rowid
        else:
            rowids = [r for (r,) in self.conn.execute(f'SELECT rowid FROM "{table}" ORDER BY rowid')]

            def index(rowid: int) -> int:
                return bisect.bisect_left(rowids, rowid) + 1
        skipped = sorted(p for p, _ in self._repeated.get(table, []))
        if not skipped:
            return index

        def position(rowid: int) -> int:
            # Count the repeated rows that were given before this one (and are not in the table).
            k = index(rowid)
            p = k
            while (q := k + bisect.bisect_right(skipped, p)) != p:
                p = q
            return p
        return position

    def _positions(self, table: str, found: list[tuple[int, int, str, str]],
                   given: Sequence[tuple[int, int, str, str]] = ()) -> list[str]:
        """``head n tail`` for each problem, in row order, where n is the row's position among the rows the
        sources gave (as the old list-based check counted). ``found`` holds rows by rowid; ``given``, rows
        kept out of the table, by position."""
        position = self._position_of(table) if found else int
        items = [(position(rowid), order, head, tail) for rowid, order, head, tail in found] + list(given)
        items.sort(key=lambda item: (item[0], item[1]))
        return [f"{head} {n}{tail}" for n, _, head, tail in items]

    def _repeats(self, table: str, noun: str, checks: Callable[[dict[str, Any]], list[tuple[int, str]]]
                 ) -> list[tuple[int, int, str, str]]:
        """The rows kept out of ``table`` because their id was taken, with what else is wrong with them."""
        out = []
        for position, row in self._repeated.get(table, []):
            ident = row.get("id", "")
            out.append((position, 0, noun, ": the id is empty" if not ident else
                        f" (id {ident!r}): the id is used twice"))
            out += [(position, order, noun, tail) for order, tail in checks(row)]
        return out

    def _listing_problems(self) -> list[str]:
        found = [(rowid, 0, "listing", ": the id is empty")
                 for (rowid,) in self.conn.execute("SELECT rowid FROM listings WHERE id = ''")]
        for rowid, ident, kind in self.conn.execute(
                f"SELECT rowid, id, kind FROM listings WHERE kind NOT IN ({_quoted(LISTING_KINDS)})"):
            found.append((rowid, 1, "listing", f" (id {ident!r}): kind {kind!r} is not one of "
                                               f"{', '.join(LISTING_KINDS)}"))
        for rowid, ident in self.conn.execute("SELECT rowid, id FROM listings WHERE display_name = ''"):
            found.append((rowid, 2, "listing", f" (id {ident!r}): display_name is empty"))

        def checks(row: dict[str, Any]) -> list[tuple[int, str]]:
            ident, out = row.get("id", ""), []
            if row.get("kind") not in LISTING_KINDS:
                out.append((1, f" (id {ident!r}): kind {row.get('kind')!r} is not one of "
                               f"{', '.join(LISTING_KINDS)}"))
            if not row.get("display_name"):
                out.append((2, f" (id {ident!r}): display_name is empty"))
            return out
        return self._positions("listings", found, self._repeats("listings", "listing", checks))

    def _contact_problems(self) -> list[str]:
        found = []
        head = "contact method"
        for rowid, listing in self.conn.execute(
                "SELECT rowid, listing_id FROM contact_methods "
                "WHERE listing_id NOT IN (SELECT id FROM listings)"):
            found.append((rowid, 0, head, f" (listing {listing!r}): listing_id names no listing"))
        for rowid, listing, kind in self.conn.execute(
                "SELECT rowid, listing_id, kind FROM contact_methods "
                f"WHERE kind NOT IN ({_quoted(CONTACT_KINDS)})"):
            found.append((rowid, 1, head, f" (listing {listing!r}): kind {kind!r} is not one of "
                                          f"{', '.join(CONTACT_KINDS)}"))
        for rowid, listing in self.conn.execute(
                "SELECT rowid, listing_id FROM contact_methods WHERE value = ''"):
            found.append((rowid, 2, head, f" (listing {listing!r}): value is empty"))
        for rowid, listing, raw in self._bad_rows("contact_methods", "listing_id"):
            found.append((rowid, 3, head, f" (listing {listing!r}): rank {raw!r} is not a whole number of 0 "
                                          "or more"))
        return self._positions("contact_methods", found)

    def _bad_rows(self, table: str, column: str) -> list[tuple[int, Any, Any]]:
        """Rows still in ``table`` whose rank or tier was not a whole number: (rowid, column value, raw)."""
        bad = {rowid: raw for (name, rowid), raw in self._bad_numbers.items() if name == table}
        out = []
        for rowid in sorted(bad):
            row = self.conn.execute(f'SELECT "{column}" FROM "{table}" WHERE rowid = ?', (rowid,)).fetchone()
            if row is not None:
                out.append((rowid, row[0], bad[rowid]))
        return out

    def _schedule_problems(self) -> list[str]:
        head = "on-call schedule"
        found = [(rowid, 0, head, ": the id is empty")
                 for (rowid,) in self.conn.execute("SELECT rowid FROM oncall_schedules WHERE id = ''")]

        def checks(ident: str, name: str, tz: str, fallback: str, known: bool) -> list[tuple[int, str]]:
            where, out = f" (id {ident!r})", []
            if not name:
                out.append((1, f"{where}: name is empty"))
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                out.append((2, f"{where}: timezone {tz!r} is not an IANA time zone (like America/New_York)"))
            if not known:
                out.append((3, f"{where}: fallback_listing_id {fallback!r} names no listing"))
            return out

        for rowid, ident, name, tz, fallback, known in self.conn.execute(
                "SELECT rowid, id, name, timezone, fallback_listing_id, "
                "  fallback_listing_id = '' OR fallback_listing_id IN (SELECT id FROM listings) "
                "FROM oncall_schedules ORDER BY rowid"):
            found += [(rowid, order, head, tail) for order, tail in checks(ident, name, tz, fallback, known)]

        def repeat_checks(row: dict[str, Any]) -> list[tuple[int, str]]:
            fallback = row.get("fallback_listing_id", "")
            known = not fallback or self.conn.execute("SELECT 1 FROM listings WHERE id = ?",
                                                      (fallback,)).fetchone() is not None
            return checks(row.get("id", ""), row.get("name", ""), row.get("timezone", ""), fallback, known)
        return self._positions("oncall_schedules", found, self._repeats("oncall_schedules", head, repeat_checks))

    def _shift_problems(self) -> list[str]:
        found = []
        head = "shift"
        for rowid, schedule in self.conn.execute(
                "SELECT rowid, schedule_id FROM oncall_shifts "
                "WHERE schedule_id NOT IN (SELECT id FROM oncall_schedules)"):
            found.append((rowid, 0, head, f" (schedule {schedule!r}): schedule_id names no on-call schedule"))
        for rowid, schedule, listing in self.conn.execute(
                "SELECT rowid, schedule_id, listing_id FROM oncall_shifts "
                "WHERE listing_id NOT IN (SELECT id FROM listings)"):
            found.append((rowid, 1, head, f" (schedule {schedule!r}): listing_id {listing!r} names no "
                                          "listing"))
        for rowid, schedule, raw in self._bad_rows("oncall_shifts", "schedule_id"):
            found.append((rowid, 2, head, f" (schedule {schedule!r}): tier {raw!r} is not a whole number "
                                          "of 1 or more"))
        good = f'{_GOOD_TIME.format(col="start_utc")} AND {_GOOD_TIME.format(col="end_utc")}'
        for rowid, schedule, start, end in self.conn.execute(
                f"SELECT rowid, schedule_id, start_utc, end_utc FROM oncall_shifts "
                f"WHERE NOT ({good}) OR end_utc <= start_utc"):
            try:
                parse_utc(start), parse_utc(end)
            except ValueError as exc:
                found.append((rowid, 3, head, f" (schedule {schedule!r}): {exc}"))
                continue
            if end <= start:
                found.append((rowid, 3, head, f" (schedule {schedule!r}): end_utc {end} is not after "
                                              f"start_utc {start}"))
        return self._positions("oncall_shifts", found)

    # --- finishing ------------------------------------------------------------------------------------

    def finish(self, *, snapshot_version: int, created_at: datetime, expires_at: datetime,
               expected_interval_s: int, source: str) -> None:
        """Validate, then add the indexes and ``meta``: the database is a snapshot from here on."""
        self.validate()
        if snapshot_version < 1:
            raise ValidationError(f"The snapshot version must be 1 or more, not {snapshot_version}.")
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "snapshot_version": str(snapshot_version),
            "created_at": format_utc(created_at),
            "expires_at": format_utc(expires_at),
            "expected_interval_s": str(int(expected_interval_s)),
            "source": source,
            "counts": json.dumps(self.counts(), sort_keys=True),
        }
        self.conn.execute('CREATE INDEX IF NOT EXISTS "idx_contact_methods_listing_id_rank" '
                          'ON "contact_methods" ("listing_id", "rank")')
        self.conn.execute('CREATE INDEX IF NOT EXISTS "idx_oncall_shifts_schedule_id_start_utc" '
                          'ON "oncall_shifts" ("schedule_id", "start_utc")')
        self.conn.executemany('INSERT OR REPLACE INTO "meta" ("key", "value") VALUES (?, ?)', meta.items())
        self.conn.commit()

    def _committed(self) -> None:
        self.conn.commit()
        if self.conn.execute("PRAGMA freelist_count").fetchone()[0]:
            self.conn.execute("VACUUM")  # rows were dropped: leave no empty pages in what is sent

    def reader(self) -> sqlite3.Connection | None:
        """A second, read-only connection on the database for another thread (``RamFile.reader``), or
        None when the database is in SQLite's memory (there is no second connection on it then)."""
        return self._file.reader() if self._file else None

    def serialize(self) -> bytes | bytearray:
        """The finished database's bytes, and the builder closed (it holds the only other copy)."""
        try:
            self._committed()
            return self._file.take() if self._file else self.conn.serialize()
        finally:
            self.close()

    def close(self) -> None:
        if self._file:
            self._file.close()
        else:
            self.conn.close()


def _quoted(words: Iterable[str]) -> str:
    return ", ".join(f"'{word}'" for word in words)


def build_database(
    *,
    listings: Iterable[Mapping[str, Any]],
    contact_methods: Iterable[Mapping[str, Any]] = (),
    schedules: Iterable[Mapping[str, Any]] = (),
    shifts: Iterable[Mapping[str, Any]] = (),
    snapshot_version: int,
    created_at: datetime,
    expires_at: datetime,
    expected_interval_s: int,
    source: str,
) -> bytes:
    """Validate the records and return a finished SQLite database as bytes (built in memory)."""
    builder = SnapshotBuilder()
    try:
        for table, records in (("listings", listings), ("contact_methods", contact_methods),
                               ("schedules", schedules), ("shifts", shifts)):
            builder.add_records(table, records)
        builder.finish(snapshot_version=snapshot_version, created_at=created_at, expires_at=expires_at,
                       expected_interval_s=expected_interval_s, source=source)
    except BaseException:
        builder.close()
        raise
    return builder.serialize()


def open_database(data: bytes | bytearray | RamImage, *, check: bool | str = True,
                  keep_source: bool = False) -> sqlite3.Connection:
    """Open a decrypted database in memory, read-only, after an integrity check.

    ``data`` is the database's bytes, or a ``RamImage`` they were written into as they were decrypted
    (then they are in memory once, see ``core.ramdb``). The plaintext never reaches a disk.

    ``check``: True runs ``PRAGMA quick_check`` (every page): for a database this desktop assembled
    itself (a delta chain applied in memory) or that did not come authenticated. ``"structure"`` is for
    a full snapshot whose signature verified and whose decrypted database matched the SHA-256 the
    exporter sealed inside it: those bytes are exactly what the exporter's SQLite wrote, so a page-by-page
    check can only find a fault of the exporter's own SQLite, and costs a pass over every page (a second
    at a million listings). What is checked instead is what a damaged or mis-built file would break
    first: the page count times the page size is the database's size, the schema parses, every table's
    root page reads, and the meta table is whole (docs/FORMAT.md §7). False (no check) only for a
    snapshot that passed its check when it was installed, opened again from the same bytes.
    ``keep_source`` is passed to ``RamImage.connect``.
    """
    image = data if isinstance(data, RamImage) else None
    head = image.head if image is not None else bytes(data[:16])
    if not head.startswith(b"SQLite format 3\x00"):
        if image is not None:
            image.close()
        raise CorruptSnapshot("The snapshot decrypted, but what is inside is not a directory database; "
                              "ask IT to run the exporter again.")
    if image is None:
        image = RamImage.create()
        image.write(data)
    conn = image.connect(keep_source=keep_source)
    try:
        # Sorts and temporary indexes must not spill decrypted rows into a temp file.
        conn.execute("PRAGMA temp_store = MEMORY")
        if check == "structure":
            _check_structure(conn, image.size)
        elif check:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                # SQLite's report runs over several lines; an error message is one line (errors.py).
                summary = " ".join(verdict.replace("*** in database main ***", "").split())[:160]
                raise CorruptSnapshot(f"The snapshot's database failed its integrity check ({summary}); "
                                      "ask IT to run the exporter again.")
        read_meta(conn)
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CorruptSnapshot(f"The snapshot's database cannot be read ({exc}); "
                              "ask IT to run the exporter again.") from exc
    except CorruptSnapshot:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


def _check_structure(conn: sqlite3.Connection, size: int) -> None:
    """The cheap structural check of an authenticated snapshot (``open_database(check="structure")``)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    if pages * page_size != size:
        raise CorruptSnapshot(f"The snapshot's database is {size} bytes but says it has {pages} pages of "
                              f"{page_size}; ask IT to run the exporter again.")
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'")]
    if "meta" not in tables:
        raise CorruptSnapshot("The snapshot's database has no meta table; ask IT to run the exporter again.")
    for name in tables:
        # NOT INDEXED: the table's own b-tree, from its root page (SELECT 1 alone may scan an index).
        conn.execute(f'SELECT 1 FROM "{name.replace(chr(34), chr(34) * 2)}" NOT INDEXED LIMIT 1').fetchall()


def read_meta(conn: sqlite3.Connection) -> SnapshotMeta:
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        schema = int(meta["schema_version"])
        if schema != SCHEMA_VERSION:
            raise CorruptSnapshot(f"The snapshot uses data schema {schema}, which this program does not "
                                  "read; update Backup Operator.")
        return SnapshotMeta(
            snapshot_version=int(meta["snapshot_version"]),
            schema_version=schema,
            created_at=parse_utc(meta["created_at"]),
            expires_at=parse_utc(meta["expires_at"]),
            expected_interval_s=int(meta["expected_interval_s"]),
            source=meta.get("source", ""),
            counts=json.loads(meta.get("counts", "{}")),
        )
    except (KeyError, ValueError, TypeError, sqlite3.DatabaseError) as exc:
        raise CorruptSnapshot(f"The snapshot's meta table is damaged ({exc}); "
                              "ask IT to run the exporter again.") from exc
