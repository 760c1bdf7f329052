"""Deltas on the exporter: the delta from the last published database to this one, sealed and checked.

The exporter keeps the database it last published (``published/last.sqlite3`` in its home, mode 0600:
the same directory data the source server holds, never on a desktop) with its version. On the next run
it computes the row delta to the new database (``backup_operator.core.delta``), applies it to the old
database itself and compares the content hash — a delta that would not rebuild the new content is
never published — and seals it for every recipient like the snapshot (``snapshot/deltafile.py``).

This module must never publish a delta it has not checked, and never block an export: any failure here
means "no delta this time" (desktops then take the full snapshot), logged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from backup_operator.core import delta as rows
from backup_operator.errors import BackupOperatorError
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import deltafile, envelope
from backup_operator.snapshot.keys import DesktopPublicKey, SignerKey

from exporter.home import ExporterHome

__all__ = ["SealedDelta", "WebPublication", "prepare_publication", "remember_published", "MAX_DELTA_SHARE"]

log = logging.getLogger("exporter.delta")

MAX_DELTA_SHARE = 0.5  # a delta that is not well under the full snapshot is not worth publishing


@dataclass(frozen=True)
class SealedDelta:
    filename: str
    data: bytes
    base_version: int
    version: int
    changed_rows: int


@dataclass
class WebPublication:
    """What a published web folder gets this run besides the snapshot: the new delta and who signs."""

    version: int
    created_at: datetime
    signer: SignerKey
    endorsements: list[envelope.Endorsement] = field(default_factory=list)
    deltas: list[SealedDelta] = field(default_factory=list)
    keep_deltas: int = 96


def _folder(home: ExporterHome):
    return home.root / "published"


def _last(home: ExporterHome) -> tuple[int, bytes] | None:
    folder = _folder(home)
    try:
        info = json.loads((folder / "last.json").read_text(encoding="utf-8"))
        database = (folder / "last.sqlite3").read_bytes()
        version = int(info["snapshot_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return version, database


def remember_published(home: ExporterHome, database: bytes, version: int) -> None:
    """Keep this run's database as the base of the next run's delta (after it was published)."""
    folder = _folder(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(folder / "last.sqlite3", database, mode=0o600)
    atomic_write(folder / "last.json", json.dumps({"snapshot_version": version}).encode(), mode=0o600)


def _hash(database: bytes) -> bytes:
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(database)
        return rows.content_hash(conn)
    finally:
        conn.close()


def make_delta(old: bytes, old_version: int, new: bytes, version: int, *, created_at: datetime,
               expires_at: datetime, recipients: list[DesktopPublicKey], signer: SignerKey,
               endorsements: list[envelope.Endorsement], full_size: int) -> SealedDelta | None:
    """The sealed, self-checked delta from ``old`` to ``new``, or None when there is none worth publishing."""
    row_delta = rows.compute_delta(old, new)
    if row_delta is None:
        log.info("no delta from %d to %d: the tables changed shape; desktops take the full snapshot",
                 old_version, version)
        return None
    base_content, content = _hash(old), _hash(new)
    check = sqlite3.connect(":memory:")
    try:
        check.deserialize(old)
        rows.apply_chain(check, [rows.decode_delta(rows.encode_delta(row_delta))])
        rebuilt = rows.content_hash(check)
    finally:
        check.close()
    if rebuilt != content:
        log.error("the delta from %d to %d does not rebuild the new content; not published", old_version, version)
        return None
    sealed = deltafile.seal_delta(rows.encode_delta(row_delta), base_version=old_version, base_content=base_content,
                                  content=content, snapshot_version=version, created_at=created_at,
                                  expires_at=expires_at, recipients=recipients, signer=signer,
                                  endorsements=endorsements)
    if len(sealed) > MAX_DELTA_SHARE * full_size:
        log.info("the delta from %d to %d is %d bytes against %d for the full snapshot; not published",
                 old_version, version, len(sealed), full_size)
        return None
    return SealedDelta(deltafile.delta_filename(old_version, version), sealed, old_version, version,
                       row_delta.changed_rows)


def prepare_publication(home: ExporterHome, database: bytes, version: int, *, created_at: datetime,
                        expires_at: datetime, recipients: list[DesktopPublicKey], signer: SignerKey,
                        endorsements: list[envelope.Endorsement], full_size: int,
                        keep_deltas: int = 96) -> WebPublication:
    """This run's publication for web folders: the delta from the last published version, if any."""
    publication = WebPublication(version, created_at, signer, list(endorsements), keep_deltas=keep_deltas)
    last = _last(home)
    if last is None or last[0] >= version:
        return publication
    try:
        made = make_delta(last[1], last[0], database, version, created_at=created_at, expires_at=expires_at,
                          recipients=recipients, signer=signer, endorsements=endorsements, full_size=full_size)
    except (BackupOperatorError, sqlite3.Error, ValueError) as exc:
        log.warning("no delta from %d to %d (%s); desktops take the full snapshot", last[0], version, exc)
        made = None
    if made is not None:
        publication.deltas.append(made)
        log.info("delta %s: %d changed rows, %d bytes (%.2f%% of the full snapshot)", made.filename,
                 made.changed_rows, len(made.data), 100 * len(made.data) / max(1, full_size))
    return publication
