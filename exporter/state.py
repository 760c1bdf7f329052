"""The exporter's own state: the snapshot version counter, run history, destination results, receipts.

One SQLite file in the exporter home (``state.sqlite``). The version counter is committed before a
snapshot is sealed, so a version is never reused, even after a run that failed halfway: desktops
refuse anything not newer than what they hold, and a reused number would be refused or, worse, shadow
a different snapshot of the same number.

This module must never store directory data or key material; only numbers, times and messages.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backup_operator.core.model import format_utc
from backup_operator.errors import StorageError

__all__ = ["State", "RunRecord", "ReceiptRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    trigger TEXT NOT NULL,
    result TEXT NOT NULL,
    snapshot_version INTEGER,
    counts TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    message TEXT NOT NULL DEFAULT '',
    forced INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER
);
CREATE TABLE IF NOT EXISTS destination_results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    destination TEXT NOT NULL,
    ok INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    seconds REAL
);
CREATE TABLE IF NOT EXISTS receipts (
    public_key TEXT NOT NULL,
    desktop TEXT NOT NULL,
    destination TEXT NOT NULL,
    snapshot_version INTEGER NOT NULL,
    installed_at TEXT NOT NULL,
    read_at TEXT NOT NULL,
    verified TEXT NOT NULL DEFAULT 'unsigned',
    PRIMARY KEY (public_key, destination)
);
"""

# Versions travel as JSON numbers (headers, receipts, manifests): exact up to 2^53, and far from int64.
MAX_VERSION = 2**53

# Results of a run, in operator words: published everywhere, published to some, refused by a check,
# failed before publishing, only checked (``check`` command), or skipped (another export held the lock,
# or the scheduler could not start it in time).
RESULTS = ("running", "published", "partial", "refused", "failed", "checked", "skipped")


@dataclass
class RunRecord:
    id: int
    started_at: str
    finished_at: str | None
    trigger: str
    result: str
    snapshot_version: int | None
    counts: dict[str, int]
    warnings: list[str]
    message: str
    forced: bool
    size_bytes: int | None


@dataclass
class ReceiptRecord:
    public_key: str
    desktop: str
    destination: str
    snapshot_version: int
    installed_at: str
    read_at: str
    verified: str = "signed"  # exporter/receipts.py: "signed", or why it is not trusted


def _now() -> str:
    return format_utc(datetime.now(timezone.utc))


class State:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as conn:
                conn.executescript(_SCHEMA)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(receipts)")}
                if "verified" not in columns:  # a state from before receipts were signed: none is trusted
                    conn.execute("ALTER TABLE receipts ADD COLUMN verified TEXT NOT NULL DEFAULT 'unsigned'")
        except sqlite3.Error as exc:
            raise StorageError(f"The exporter state {path} cannot be opened ({exc}); check the disk and "
                               "the folder's permissions.") from None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        # FULL: a committed version number must survive a power cut before the snapshot leaves.
        conn.execute("PRAGMA synchronous = FULL")
        conn.row_factory = sqlite3.Row
        return conn

    def _write(self, sql: str, params: tuple = ()) -> int:
        try:
            with closing(self._connect()) as conn:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(sql, params)
                conn.execute("COMMIT")
                return cur.lastrowid
        except sqlite3.Error as exc:
            raise StorageError(f"The exporter state {self.path} cannot be written ({exc}); "
                               "check free space.") from None

    # --- snapshot versions -------------------------------------------------------------------

    def last_version(self) -> int:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT value FROM counters WHERE name = 'snapshot_version'").fetchone()
        return int(row[0]) if row else 0

    def allocate_version(self, floor: int = 0) -> int:
        """The next snapshot version, committed before it is used; above ``floor`` (this run's own number
        less one: the pipeline passes the number it read, never one from an inbox or a receipt)."""
        try:
            with closing(self._connect()) as conn:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute("SELECT value FROM counters WHERE name = 'snapshot_version'").fetchone()
                version = max(int(row[0]) if row else 0, floor) + 1
                if not 0 < version <= MAX_VERSION:
                    conn.execute("ROLLBACK")
                    raise StorageError(f"The snapshot version counter in {self.path} is out of range ({version}); "
                                       "it only ever counts up from 1 by one per export. Restore the state from a "
                                       "backup, or ask for help.")
                conn.execute("INSERT INTO counters(name, value) VALUES ('snapshot_version', ?) "
                             "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (version,))
                conn.execute("COMMIT")
                return version
        except sqlite3.Error as exc:
            raise StorageError(f"The exporter state {self.path} cannot be written ({exc}); "
                               "no snapshot was published.") from None

    # --- runs ----------------------------------------------------------------------------------

    def start_run(self, trigger: str) -> int:
        return self._write("INSERT INTO runs(started_at, trigger, result) VALUES (?, ?, 'running')",
                           (_now(), trigger))

    def finish_run(self, run_id: int, *, result: str, snapshot_version: int | None = None,
                   counts: dict[str, int] | None = None, warnings: list[str] | None = None,
                   message: str = "", forced: bool = False, size_bytes: int | None = None) -> None:
        assert result in RESULTS
        self._write("UPDATE runs SET finished_at = ?, result = ?, snapshot_version = ?, counts = ?, "
                    "warnings = ?, message = ?, forced = ?, size_bytes = ? WHERE id = ?",
                    (_now(), result, snapshot_version, json.dumps(counts or {}, sort_keys=True),
                     json.dumps(warnings or []), message, int(forced), size_bytes, run_id))

    def record_destination(self, run_id: int, destination: str, ok: bool, attempts: int, message: str,
                           seconds: float | None) -> None:
        self._write("INSERT INTO destination_results(run_id, destination, ok, attempts, message, seconds) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (run_id, destination, int(ok), attempts, message, seconds))

    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        return RunRecord(row["id"], row["started_at"], row["finished_at"], row["trigger"], row["result"],
                         row["snapshot_version"], json.loads(row["counts"]), json.loads(row["warnings"]),
                         row["message"], bool(row["forced"]), row["size_bytes"])

    def runs(self, limit: int = 10) -> list[RunRecord]:
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._run(r) for r in rows]

    def last_published(self) -> RunRecord | None:
        """The newest run whose snapshot reached at least one destination (the baseline for drop checks)."""
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT * FROM runs WHERE result IN ('published', 'partial') "
                               "ORDER BY id DESC LIMIT 1").fetchone()
        return self._run(row) if row else None

    def destination_results(self, run_id: int) -> list[dict[str, Any]]:
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT * FROM destination_results WHERE run_id = ? ORDER BY destination",
                                (run_id,)).fetchall()
        return [dict(r) for r in rows]

    def mark_interrupted_runs(self) -> int:
        """Runs left 'running' by a crash or kill are recorded as failed, so status does not lie."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute("UPDATE runs SET result = 'failed', finished_at = COALESCE(finished_at, ?), "
                               "message = 'interrupted (the exporter stopped during this run)' "
                               "WHERE result = 'running'", (_now(),))
            conn.execute("COMMIT")
            return cur.rowcount

    # --- receipts -------------------------------------------------------------------------------

    def save_receipts(self, receipts: list[ReceiptRecord]) -> None:
        if not receipts:
            return
        try:
            with closing(self._connect()) as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(public_key, destination) "
                    "DO UPDATE SET desktop = excluded.desktop, snapshot_version = excluded.snapshot_version, "
                    "installed_at = excluded.installed_at, read_at = excluded.read_at, "
                    "verified = excluded.verified",
                    [(r.public_key, r.desktop, r.destination, min(r.snapshot_version, MAX_VERSION), r.installed_at,
                      r.read_at, r.verified) for r in receipts])
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"The exporter state {self.path} cannot be written ({exc}).") from None

    def receipts(self) -> list[ReceiptRecord]:
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT * FROM receipts ORDER BY desktop, destination").fetchall()
        return [ReceiptRecord(**dict(r)) for r in rows]
