"""Deltas on the exporter: the delta from the last published database to this one, sealed and checked.

The exporter keeps the database it last published (``published/last.sqlite3`` in its home, mode 0600:
the same directory data the source server holds, never on a desktop) with its version. On the next run
it computes the row delta to the new database (``backup_operator.core.delta``), applies it to the old
database itself and compares the content hash — a delta that would not rebuild the new content is
never published — and seals it for every recipient like the snapshot (``snapshot/deltafile.py``).

Deltas are sealed to a **group key** (docs/FORMAT.md §12.4), not to each desktop: at 10,000 desktops a
stanza per desktop would weigh 1.3 MB, more than a day of changes. The key rides inside every full
snapshot's database (meta ``delta_key``), so exactly the desktops that can open the full snapshot can
open the deltas after it. It is replaced as soon as a desktop is removed (a removed desktop must read
nothing new): deltas after that are sealed to the new key, and desktops take one full snapshot to get it.

This module must never publish a delta it has not checked, and never block an export: any failure here
means "no delta this time" (desktops then take the full snapshot), logged.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from backup_operator.core import delta as rows
from backup_operator.errors import BackupOperatorError
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import deltafile, envelope
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopPublicKey, SignerKey

from exporter.home import ExporterHome

__all__ = ["SealedDelta", "WebPublication", "prepare_publication", "remember_published", "MAX_DELTA_SHARE",
           "group_key_for", "with_group_key"]

log = logging.getLogger("exporter.delta")

MAX_DELTA_SHARE = 0.5  # a delta that is not well under the full snapshot is not worth publishing


@dataclass(frozen=True)
class SealedDelta:
    filename: str
    data: bytes
    base_version: int
    version: int
    changed_rows: int
    content: bytes | None = None  # the new database's content hash (the next delta's base_content)


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


def _last(home: ExporterHome) -> tuple[int, bytes, bytes | None] | None:
    """(version, database, its content hash if it was recorded) of the last published database."""
    folder = _folder(home)
    try:
        info = json.loads((folder / "last.json").read_text(encoding="utf-8"))
        database = (folder / "last.sqlite3").read_bytes()
        version = int(info["snapshot_version"])
        content = bytes.fromhex(info["content"]) if isinstance(info.get("content"), str) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if content is not None and len(content) != F.CONTENT_HASH_SIZE:
        content = None
    return version, database, content


def remember_published(home: ExporterHome, database: bytes, version: int, content: bytes | None = None) -> None:
    """Keep this run's database as the base of the next run's delta (after it was published), with its
    content hash when this run computed it (the next delta's ``base_content``: not hashed again)."""
    folder = _folder(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(folder / "last.sqlite3", database, mode=0o600)
    info = {"snapshot_version": version, **({"content": content.hex()} if content is not None else {})}
    atomic_write(folder / "last.json", json.dumps(info).encode(), mode=0o600)


def group_key_for(home: ExporterHome, recipients: list[DesktopPublicKey]) -> tuple[str, bytes]:
    """The current delta group key: kept while recipients are only added, replaced once one is removed."""
    folder = _folder(home)
    path = folder / "delta-key.json"
    ids = sorted(r.recipient_id for r in recipients)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        ident, key, members = str(doc["id"]), bytes.fromhex(doc["key"]), set(doc["recipients"])
        if len(key) == 32 and members <= set(ids):
            if set(ids) != members:
                atomic_write(path, json.dumps({**doc, "recipients": ids}).encode(), mode=0o600)
            return ident, key
        log.info("a desktop was removed: the delta group key is replaced (desktops take one full snapshot)")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    ident, key = os.urandom(F.DELTA_KEY_ID_BYTES).hex(), os.urandom(32)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps({"id": ident, "key": key.hex(), "recipients": ids}).encode(), mode=0o600)
    return ident, key


def with_group_key(database: bytes, group_key: tuple[str, bytes]) -> bytes:
    """The database with the delta group key in its meta table (sealed to the recipients with the rest)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(database)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                     (F.META_DELTA_KEY, deltafile.format_group_key(*group_key)))
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()


def _hash(database: bytes) -> bytes:
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(database)
        return rows.content_hash(conn)
    finally:
        conn.close()


def make_delta(old: bytes, old_version: int, new: bytes, version: int, *, created_at: datetime,
               expires_at: datetime, recipients: list[DesktopPublicKey], signer: SignerKey,
               endorsements: list[envelope.Endorsement], full_size: int,
               group_key: tuple[str, bytes] | None = None, base_content: bytes | None = None) -> SealedDelta | None:
    """The sealed, self-checked delta from ``old`` to ``new``, or None when there is none worth publishing.

    Sealed to ``group_key`` when given (then ``recipients`` is not used), else to every recipient.
    ``base_content`` is ``old``'s content hash when it is known (recorded when ``old`` was published);
    the self-check below still proves that the delta rebuilds the new content from ``old``.
    """
    row_delta = rows.compute_delta(old, new)
    if row_delta is None:
        log.info("no delta from %d to %d: the tables changed shape; desktops take the full snapshot",
                 old_version, version)
        return None
    base_content, content = base_content or _hash(old), _hash(new)
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
                                  expires_at=expires_at, recipients=[] if group_key else recipients, signer=signer,
                                  endorsements=endorsements, group_key=group_key)
    if len(sealed) > MAX_DELTA_SHARE * full_size:
        log.info("the delta from %d to %d is %d bytes against %d for the full snapshot; not published",
                 old_version, version, len(sealed), full_size)
        return None
    return SealedDelta(deltafile.delta_filename(old_version, version), sealed, old_version, version,
                       row_delta.changed_rows, content)


def prepare_publication(home: ExporterHome, database: bytes, version: int, *, created_at: datetime,
                        expires_at: datetime, recipients: list[DesktopPublicKey], signer: SignerKey,
                        endorsements: list[envelope.Endorsement], full_size: int,
                        keep_deltas: int = 96, group_key: tuple[str, bytes] | None = None) -> WebPublication:
    """This run's publication for web folders: the delta from the last published version, if any."""
    publication = WebPublication(version, created_at, signer, list(endorsements), keep_deltas=keep_deltas)
    last = _last(home)
    if last is None or last[0] >= version:
        return publication
    try:
        made = make_delta(last[1], last[0], database, version, created_at=created_at, expires_at=expires_at,
                          recipients=recipients, signer=signer, endorsements=endorsements, full_size=full_size,
                          group_key=group_key, base_content=last[2])
    except (BackupOperatorError, sqlite3.Error, ValueError) as exc:
        log.warning("no delta from %d to %d (%s); desktops take the full snapshot", last[0], version, exc)
        made = None
    if made is not None:
        publication.deltas.append(made)
        log.info("delta %s: %d changed rows, %d bytes (%.2f%% of the full snapshot)", made.filename,
                 made.changed_rows, len(made.data), 100 * len(made.data) / max(1, full_size))
    return publication
