"""The snapshot's data model: the SQLite schema, its validation, and building and opening a database.

A snapshot is one SQLite database. The exporter builds it here (``build_database``) from plain
records; the desktop opens the decrypted bytes here (``open_database``) entirely in memory.

Times are UTC instants written ``YYYY-MM-DDTHH:MM:SSZ`` (text that sorts like the instant it names);
shifts are half-open, ``[start_utc, end_utc)``. Wall-clock times exist only in the UI, in the
schedule's IANA zone.

This module must never write a database to disk, and never import Qt or cryptography.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

from backup_operator.errors import CorruptSnapshot, ValidationError

__all__ = [
    "SCHEMA_VERSION",
    "LISTING_KINDS",
    "CONTACT_KINDS",
    "SnapshotMeta",
    "build_database",
    "open_database",
    "read_meta",
    "validate",
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


def _keep(value: Any) -> Any:
    return value  # whole numbers are checked by validate(), which also fills in defaults


def _normalise(records: Iterable[Mapping[str, Any]], columns: Mapping[str, type]) -> list[list]:
    """Rows as lists in the columns' order (no per-row dicts: this runs for every row of a big export)."""
    converters = [(name, _json_list if name in ("aliases", "keywords") else _keep if kind is int else _text)
                  for name, kind in columns.items()]
    return [[convert(record.get(name)) for name, convert in converters] for record in records]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _columns(columns: Mapping[str, type]) -> dict[str, int]:
    return {name: n for n, name in enumerate(columns)}


_L, _C, _S, _H = (_columns(c) for c in (LISTING_COLUMNS, CONTACT_COLUMNS, SCHEDULE_COLUMNS, SHIFT_COLUMNS))


def validate(listings: list[list], contact_methods: list[list], schedules: list[list], shifts: list[list]) -> None:
    """Check normalised rows (from ``_normalise``); raise ``ValidationError`` naming every bad row and field.

    Also fills in what the model derives: default rank and tier, and each contact method's digits.
    """
    problems: list[str] = []

    listing_ids: set[str] = set()
    for n, row in enumerate(listings, 1):
        ident = row[_L["id"]]
        where = f"listing {n} (id {ident!r})"
        if not ident:
            problems.append(f"listing {n}: the id is empty")
        elif ident in listing_ids:
            problems.append(f"{where}: the id is used twice")
        listing_ids.add(ident)
        if row[_L["kind"]] not in LISTING_KINDS:
            problems.append(f"{where}: kind {row[_L['kind']]!r} is not one of {', '.join(LISTING_KINDS)}")
        if not row[_L["display_name"]]:
            problems.append(f"{where}: display_name is empty")

    c_listing, c_kind, c_value, c_rank, c_digits = (_C[k] for k in ("listing_id", "kind", "value", "rank", "digits"))
    for n, row in enumerate(contact_methods, 1):
        if row[c_listing] not in listing_ids:
            problems.append(f"contact method {n} (listing {row[c_listing]!r}): listing_id names no listing")
        kind = row[c_kind]
        if kind not in CONTACT_KINDS:
            problems.append(f"contact method {n} (listing {row[c_listing]!r}): kind {kind!r} is not one of "
                            f"{', '.join(CONTACT_KINDS)}")
        if not row[c_value]:
            problems.append(f"contact method {n} (listing {row[c_listing]!r}): value is empty")
        raw = row[c_rank]
        rank = raw if type(raw) is int else (_as_int(raw) if raw not in (None, "") else 1)
        if rank is None or rank < 0:
            problems.append(f"contact method {n} (listing {row[c_listing]!r}): rank {raw!r} is not a whole "
                            "number of 0 or more")
        row[c_rank] = rank
        row[c_digits] = digits_of(row[c_value]) if kind != "email" else ""

    schedule_ids: set[str] = set()
    for n, row in enumerate(schedules, 1):
        ident = row[_S["id"]]
        where = f"on-call schedule {n} (id {ident!r})"
        if not ident:
            problems.append(f"on-call schedule {n}: the id is empty")
        elif ident in schedule_ids:
            problems.append(f"{where}: the id is used twice")
        schedule_ids.add(ident)
        if not row[_S["name"]]:
            problems.append(f"{where}: name is empty")
        try:
            ZoneInfo(row[_S["timezone"]])
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{where}: timezone {row[_S['timezone']]!r} is not an IANA time zone "
                            "(like America/New_York)")
        fallback = row[_S["fallback_listing_id"]]
        if fallback and fallback not in listing_ids:
            problems.append(f"{where}: fallback_listing_id {fallback!r} names no listing")

    for n, row in enumerate(shifts, 1):
        where = f"shift {n} (schedule {row[_H['schedule_id']]!r})"
        if row[_H["schedule_id"]] not in schedule_ids:
            problems.append(f"{where}: schedule_id names no on-call schedule")
        if row[_H["listing_id"]] not in listing_ids:
            problems.append(f"{where}: listing_id {row[_H['listing_id']]!r} names no listing")
        raw = row[_H["tier"]]
        tier = raw if type(raw) is int else (_as_int(raw) if raw not in (None, "") else 1)
        if tier is None or tier < 1:
            problems.append(f"{where}: tier {raw!r} is not a whole number of 1 or more")
        row[_H["tier"]] = tier
        start_text, end_text = row[_H["start_utc"]], row[_H["end_utc"]]
        try:
            start, end = parse_utc(start_text), parse_utc(end_text)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
        else:
            if end <= start:
                problems.append(f"{where}: end_utc {end_text} is not after start_utc {start_text}")

    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValidationError(f"The directory data is not valid: {problems[0]}{more}.", problems)


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
    listing_rows = _normalise(listings, LISTING_COLUMNS)
    contact_rows = _normalise(contact_methods, CONTACT_COLUMNS)
    schedule_rows = _normalise(schedules, SCHEDULE_COLUMNS)
    shift_rows = _normalise(shifts, SHIFT_COLUMNS)
    validate(listing_rows, contact_rows, schedule_rows, shift_rows)
    for n, row in enumerate(contact_rows, 1):
        row[_C["id"]] = n
    for n, row in enumerate(shift_rows, 1):
        row[_H["id"]] = n
    if snapshot_version < 1:
        raise ValidationError(f"The snapshot version must be 1 or more, not {snapshot_version}.")

    conn = sqlite3.connect(":memory:")
    db = sqlite_utils.Database(conn)
    db["listings"].create(LISTING_COLUMNS, pk="id", not_null={"kind", "display_name"})
    db["contact_methods"].create(
        CONTACT_COLUMNS, pk="id", not_null={"listing_id", "kind", "value"},
        foreign_keys=[("listing_id", "listings", "id")],
    )
    db["oncall_schedules"].create(SCHEDULE_COLUMNS, pk="id", not_null={"name", "timezone"})
    db["oncall_shifts"].create(
        SHIFT_COLUMNS, pk="id", not_null={"schedule_id", "listing_id", "start_utc", "end_utc"},
        foreign_keys=[("schedule_id", "oncall_schedules", "id"), ("listing_id", "listings", "id")],
    )
    db["meta"].create({"key": str, "value": str}, pk="key")

    # Plain executemany with tuples: sqlite-utils' insert_all converts every value and was most of the
    # export's time at a hundred thousand listings.
    for table, columns, rows in (("listings", LISTING_COLUMNS, listing_rows),
                                 ("contact_methods", CONTACT_COLUMNS, contact_rows),
                                 ("oncall_schedules", SCHEDULE_COLUMNS, schedule_rows),
                                 ("oncall_shifts", SHIFT_COLUMNS, shift_rows)):
        names = list(columns)
        conn.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                         rows)
    db["contact_methods"].create_index(["listing_id", "rank"])
    db["contact_methods"].create_index(["digits"])
    db["oncall_shifts"].create_index(["schedule_id", "start_utc"])

    counts = {
        "listings": len(listing_rows),
        "contact_methods": len(contact_rows),
        "oncall_schedules": len(schedule_rows),
        "oncall_shifts": len(shift_rows),
    }
    meta = {
        "schema_version": str(SCHEMA_VERSION),
        "snapshot_version": str(snapshot_version),
        "created_at": format_utc(created_at),
        "expires_at": format_utc(expires_at),
        "expected_interval_s": str(int(expected_interval_s)),
        "source": source,
        "counts": json.dumps(counts, sort_keys=True),
    }
    db["meta"].insert_all([{"key": k, "value": v} for k, v in meta.items()])
    conn.commit()
    conn.execute("VACUUM")
    data = conn.serialize()
    conn.close()
    return data


def open_database(data: bytes) -> sqlite3.Connection:
    """Open decrypted database bytes in memory, read-only in spirit, after an integrity check.

    The bytes are never written to disk: ``deserialize`` gives SQLite its own in-memory copy.
    """
    if not data.startswith(b"SQLite format 3\x00"):
        raise CorruptSnapshot("The snapshot decrypted, but what is inside is not a directory database; "
                              "ask IT to run the exporter again.")
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        conn.deserialize(data)
        # Sorts and temporary indexes must not spill decrypted rows into a temp file.
        conn.execute("PRAGMA temp_store = MEMORY")
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
