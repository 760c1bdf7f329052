"""What changed between two snapshots: listings added and removed, numbers and details changed, and
who is on call in the next 72 hours.

Operators trust data they can see changing. The exporter computes the summary against the version it
published before and stores it inside each snapshot (``store_summary``: a ``changes`` table and three
``meta`` keys, ignored by older desktops); a desktop reads it back (``read_summary``) or, when it still
holds both versions, compares them itself (``diff``). The same code does both, so the window, the
``changes`` command and the exporter's ``diff`` always agree.

Comparison runs in SQL with the older database attached, so it costs a few queries, not a Python
object per listing. At most ``MAX_ITEMS`` changes are listed; the counts are always exact.

This module must never import Qt and never write a database to disk.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from backup_operator.core.model import format_utc, parse_utc
from backup_operator.fsutil import atomic_write

__all__ = [
    "HORIZON",
    "MAX_ITEMS",
    "KINDS",
    "Change",
    "ChangeSummary",
    "diff",
    "diff_databases",
    "store_summary",
    "read_summary",
    "last_seen",
    "mark_seen",
]

HORIZON = timedelta(hours=72)
MAX_ITEMS = 5000

# In the order a person reads them: who is on call first, then numbers, then the directory itself.
KINDS = {
    "on call": "On call changed",
    "numbers": "Numbers changed",
    "added": "Listing added",
    "removed": "Listing removed",
    "details": "Details changed",
}


@dataclass(frozen=True)
class Change:
    kind: str          # a key of KINDS
    title: str         # what it is about: a listing's name, or a schedule and shift
    before: str = ""
    after: str = ""
    listing_id: str = ""   # the listing to open (empty when it no longer exists)
    schedule_id: str = ""
    at: str = ""           # for on-call changes: the shift's start, UTC

    @property
    def kind_words(self) -> str:
        return KINDS.get(self.kind, self.kind)


@dataclass
class ChangeSummary:
    version: int
    since_version: int | None     # None: nothing to compare with (the first export, or history lost)
    horizon_start: str = ""
    horizon_end: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    items: list[Change] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def truncated(self) -> bool:
        return self.total > len(self.items)

    def describe_counts(self) -> str:
        if self.since_version is None:
            return "no earlier version to compare with"
        if not self.total:
            return "nothing changed"
        words = {"on call": "on-call change", "numbers": "number change", "added": "listing added",
                 "removed": "listing removed", "details": "detail change"}
        parts = []
        for kind in KINDS:
            n = self.counts.get(kind, 0)
            if n:
                word = words[kind]
                if n != 1:
                    word = word.replace("listing ", "listings ") if kind in ("added", "removed") else word + "s"
                parts.append(f"{n:,} {word}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {"version": self.version, "since_version": self.since_version,
                "horizon_start": self.horizon_start, "horizon_end": self.horizon_end,
                "counts": dict(self.counts), "total": self.total, "truncated": self.truncated,
                "changes": [asdict(c) for c in self.items]}


# --- comparing ---------------------------------------------------------------------------------------


def _numbers_sql(schema: str) -> str:
    return (f"SELECT listing_id, group_concat(kind || ' ' || value, char(31)) FROM "
            f"(SELECT listing_id, kind, value FROM {schema}.contact_methods ORDER BY listing_id, rank, id) "
            "GROUP BY listing_id")


_DETAILS = ("display_name", "title", "department", "site", "building", "floor", "room")


def diff(conn: sqlite3.Connection, *, version: int, since_version: int, now: datetime,
         horizon: timedelta = HORIZON, limit: int = MAX_ITEMS) -> ChangeSummary:
    """Compare ``main`` (the newer snapshot) with ``prev`` (the older one, attached to ``conn``)."""
    start = now.astimezone(timezone.utc).replace(microsecond=0)
    end = start + horizon
    summary = ChangeSummary(version, since_version, format_utc(start), format_utc(end))
    counts: Counter[str] = Counter()
    items: list[Change] = []

    def add(change: Change) -> None:
        counts[change.kind] += 1
        if len(items) < limit:
            items.append(change)

    # On call in the next hours: pair shifts by (schedule, tier, start, end); a different person is a
    # change of assignment, an unpaired shift is a shift that appeared or went away.
    lo, hi = format_utc(start), format_utc(end)
    shift_sql = ("SELECT s.schedule_id, s.tier, s.start_utc, s.end_utc, s.listing_id, "
                 "COALESCE(l.display_name, s.listing_id) FROM {db}.oncall_shifts s "
                 "LEFT JOIN {db}.listings l ON l.id = s.listing_id WHERE s.start_utc < ? AND s.end_utc > ?")
    new_shifts: dict[tuple, list[tuple[str, str]]] = {}
    old_shifts: dict[tuple, list[tuple[str, str]]] = {}
    for db, target in (("main", new_shifts), ("prev", old_shifts)):
        for sched, tier, s, e, lid, name in conn.execute(shift_sql.format(db=db), (hi, lo)):
            target.setdefault((sched, int(tier or 1), s, e), []).append((lid, name))
    schedules = {}
    for db in ("prev", "main"):
        for sid, name, tz in conn.execute(f"SELECT id, name, timezone FROM {db}.oncall_schedules"):
            schedules[sid] = (name, tz)
    for slot in sorted(set(new_shifts) | set(old_shifts), key=lambda k: (k[2], k[0], k[1])):
        after = sorted(new_shifts.get(slot, []))
        before = sorted(old_shifts.get(slot, []))
        if [a[0] for a in after] == [b[0] for b in before]:
            continue
        sched, tier, s, e = slot
        name, tz = schedules.get(sched, (sched, "UTC"))
        add(Change("on call", f"{name}, tier {tier}, {_span(s, e, tz)}",
                   ", ".join(b[1] for b in before) or "nobody", ", ".join(a[1] for a in after) or "nobody",
                   listing_id=after[0][0] if after else "", schedule_id=sched, at=s))

    new_numbers = dict(conn.execute(_numbers_sql("main")))
    old_numbers = dict(conn.execute(_numbers_sql("prev")))
    for lid, name, old_name in conn.execute(
            "SELECT n.id, n.display_name, o.display_name FROM main.listings n JOIN prev.listings o ON o.id = n.id "
            "ORDER BY n.display_name, n.id"):
        before, after = old_numbers.get(lid, ""), new_numbers.get(lid, "")
        if before != after:
            # Name only what went and what came; a change of order alone shows both lists in full.
            old_list, new_list = before.split("\x1f") if before else [], after.split("\x1f") if after else []
            gone = [x for x in old_list if x not in new_list]
            came = [x for x in new_list if x not in old_list]
            if not gone and not came:
                gone, came = old_list, new_list
            add(Change("numbers", name, "; ".join(gone) or "—", "; ".join(came) or "—", listing_id=lid))

    for lid, name, kind, dept in conn.execute(
            "SELECT id, display_name, kind, department FROM main.listings WHERE id NOT IN "
            "(SELECT id FROM prev.listings) ORDER BY display_name, id"):
        add(Change("added", name, "", ", ".join(x for x in (kind, dept) if x), listing_id=lid))
    for lid, name, kind, dept in conn.execute(
            "SELECT id, display_name, kind, department FROM prev.listings WHERE id NOT IN "
            "(SELECT id FROM main.listings) ORDER BY display_name, id"):
        add(Change("removed", name, ", ".join(x for x in (kind, dept) if x), ""))

    cols = ", ".join(f"n.{c}, o.{c}" for c in _DETAILS)
    where = " OR ".join(f"COALESCE(n.{c}, '') <> COALESCE(o.{c}, '')" for c in _DETAILS)
    for row in conn.execute(f"SELECT n.id, {cols} FROM main.listings n JOIN prev.listings o ON o.id = n.id "
                            f"WHERE {where} ORDER BY n.display_name, n.id"):
        lid, values = row[0], row[1:]
        before_parts, after_parts = [], []
        for i, column in enumerate(_DETAILS):
            new, old = values[2 * i] or "", values[2 * i + 1] or ""
            if new != old:
                label = column.replace("display_name", "name").replace("_", " ")
                before_parts.append(f"{label}: {old or '—'}")
                after_parts.append(f"{label}: {new or '—'}")
        add(Change("details", values[0] or lid, "; ".join(before_parts), "; ".join(after_parts), listing_id=lid))

    summary.counts = {k: counts[k] for k in KINDS if counts[k]}
    order = list(KINDS)
    summary.items = sorted(items, key=lambda c: order.index(c.kind))
    return summary


def _span(start: str, end: str, tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except Exception:
        zone = ZoneInfo("UTC")
    a, b = parse_utc(start).astimezone(zone), parse_utc(end).astimezone(zone)
    if a.date() == b.date():
        return f"{a:%a %d %b %H:%M}–{b:%H:%M} {b.tzname()}"
    return f"{a:%a %d %b %H:%M} {a.tzname()} – {b:%a %d %b %H:%M} {b.tzname()}"


def diff_databases(new: bytes, old: bytes, *, version: int, since_version: int, now: datetime,
                   horizon: timedelta = HORIZON, limit: int = MAX_ITEMS) -> ChangeSummary:
    """``diff`` on two databases given as bytes (in memory; nothing touches disk)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.deserialize(new)
        conn.execute("ATTACH ':memory:' AS prev")
        conn.deserialize(old, name="prev")
        return diff(conn, version=version, since_version=since_version, now=now, horizon=horizon, limit=limit)
    finally:
        conn.close()


# --- storing in a snapshot and reading back ------------------------------------------------------------


_TABLE = "changes"
_COLUMNS = ("kind", "title", "before", "after", "listing_id", "schedule_id", "at")


def store_summary(conn: sqlite3.Connection, summary: ChangeSummary) -> None:
    """Write ``summary`` into the snapshot open on ``conn`` (the ``changes`` table and meta keys)."""
    conn.execute(f"DROP TABLE IF EXISTS {_TABLE}")
    conn.execute(f"CREATE TABLE {_TABLE} (n INTEGER PRIMARY KEY, {', '.join(c + ' TEXT' for c in _COLUMNS)})")
    conn.executemany(f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                     [tuple(getattr(c, k) for k in _COLUMNS) for c in summary.items])
    meta = {"changes_since": "" if summary.since_version is None else str(summary.since_version),
            "changes_counts": json.dumps(summary.counts, sort_keys=True),
            "changes_horizon": json.dumps([summary.horizon_start, summary.horizon_end])}
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(meta.items()))


def read_summary(conn: sqlite3.Connection, version: int) -> ChangeSummary | None:
    """The summary the exporter stored in this snapshot, or None (an older exporter stored none)."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN "
                                 "('changes_since', 'changes_counts', 'changes_horizon')").fetchall())
        if "changes_counts" not in meta:
            return None
        since = int(meta["changes_since"]) if meta.get("changes_since") else None
        counts = {str(k): int(v) for k, v in json.loads(meta["changes_counts"]).items()}
        horizon = json.loads(meta.get("changes_horizon") or '["", ""]')
        rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM {_TABLE} ORDER BY n").fetchall()
    except (sqlite3.DatabaseError, ValueError, TypeError, AttributeError):
        return None
    items = [Change(*[str(v or "") for v in row]) for row in rows]
    return ChangeSummary(version, since, str(horizon[0]), str(horizon[1]), counts, items)


# --- what this desktop's operator last looked at --------------------------------------------------------

SEEN_FILE = "changes-seen"


def last_seen(home: Path) -> int:
    """The snapshot version the operator last looked at ("what changed since you last looked"); 0: never."""
    try:
        return max(0, int((Path(home) / SEEN_FILE).read_text().strip() or 0))
    except (OSError, ValueError):
        return 0


def mark_seen(home: Path, version: int) -> None:
    try:
        atomic_write(Path(home) / SEEN_FILE, f"{int(version)}\n".encode())
    except Exception:  # only the badge depends on it; never fail an operator's action over it
        pass
