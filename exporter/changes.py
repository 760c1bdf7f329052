"""The exporter's side of "what changed": the summary stored in each snapshot, its history, and ``diff``.

Each export compares the database it is about to seal with the one it published last and stores the
summary inside the snapshot (``annotate``), with the exporter's receiving key that desktops seal their
journals to. To have "the one it published last", the exporter keeps its own copies of the last
``HISTORY_KEEP`` published snapshots in ``<home>/history/``, sealed like every other copy (the receiving
key is one more recipient), so no directory data lies on the server's disk in the clear.

``diff`` lets IT see, before anything is published, what the next export would change — or compare two
kept versions.

This module must never write a decrypted database to disk, and never publish.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from backup_operator.core import changes as core_changes
from backup_operator.core.ramdb import AttachedImage
from backup_operator.errors import BackupOperatorError, VersionNotAvailable
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import envelope
from backup_operator.snapshot.sealed import ExporterKey

from exporter.home import ExporterHome
from exporter.signing import PASSPHRASE_ENV, load_endorsements, signer_public

__all__ = ["HISTORY_KEEP", "receiving_key", "own_recipient", "annotate", "annotate_in", "summarize", "store_in",
           "remember", "history_versions", "load_history", "diff_versions", "diff_against_sources", "DiffResult"]

log = logging.getLogger("exporter.changes")

HISTORY_KEEP = 5
_HISTORY_RE = re.compile(r"^snapshot-(\d{12,})\.bosnap$")


def _receiving_key_path(home: ExporterHome) -> Path:
    return home.root / "receiving-key.pem"


def _history(home: ExporterHome) -> Path:
    return home.root / "history"


def receiving_key(home: ExporterHome, *, create: bool = True) -> ExporterKey:
    """The exporter's X25519 receiving key; made on first use (mode 0600, same passphrase as the signing key)."""
    path = _receiving_key_path(home)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    secret = passphrase.encode("utf-8") if passphrase else None
    if path.exists():
        return ExporterKey.from_pem(path.read_bytes(), secret)
    if not create:
        raise VersionNotAvailable(f"There is no receiving key in {home.root}; run an export first.")
    key = ExporterKey.generate()
    home.ensure()
    atomic_write(path, key.to_pem(secret), mode=0o600)
    log.info("created the receiving key %s", path)
    return key


def own_recipient(home: ExporterHome):
    """The receiving key as a snapshot recipient, so the exporter can open its own kept copies."""
    return receiving_key(home).as_recipient()


def history_versions(home: ExporterHome) -> list[int]:
    folder = _history(home)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for m in map(_HISTORY_RE.match, os.listdir(folder)) if m)


def load_history(home: ExporterHome, version: int) -> bytes:
    """The database of kept version ``version``, verified and decrypted in memory."""
    blob, header = _verified(home, version)
    return envelope.decrypt(blob, header, receiving_key(home).as_desktop_key())


def remember(home: ExporterHome, version: int, sealed: bytes, keep: int = HISTORY_KEEP) -> None:
    """Keep the exporter's own copy of a published snapshot (the baseline of the next summary)."""
    folder = _history(home)
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        atomic_write(folder / f"snapshot-{version:012d}.bosnap", sealed, mode=0o600)
    except (OSError, BackupOperatorError) as exc:
        # Published already; only the next summary loses its baseline (it then says so).
        log.warning("could not keep a copy of snapshot %d for the next change summary: %s", version, exc)
        return
    for old in history_versions(home)[:-keep]:
        try:
            (folder / f"snapshot-{old:012d}.bosnap").unlink()
        except OSError:
            pass


def _kept_path(home: ExporterHome, version: int) -> Path:
    return _history(home) / f"snapshot-{version:012d}.bosnap"


def _verified(home: ExporterHome, version: int) -> tuple[bytes, envelope.Header]:
    """A kept snapshot's file and its header, its signature checked (the database still sealed)."""
    path = _kept_path(home, version)
    if not path.exists():
        kept = ", ".join(map(str, history_versions(home))) or "none"
        raise VersionNotAvailable(f"Snapshot version {version} is not kept on this exporter (kept: {kept}).")
    blob = envelope.read_capped(path)
    trusted = [signer_public(home)] + [e.by_signer for e in load_endorsements(home)]
    return blob, envelope.verify(blob, trusted)


def _attach_previous(home: ExporterHome, conn: sqlite3.Connection, below: int) -> tuple[int, AttachedImage] | None:
    """The newest kept snapshot older than ``below``, decrypted straight into schema ``prev`` of ``conn``
    (core.ramdb.AttachedImage: in memory once, never on a disk)."""
    for version in reversed(history_versions(home)):
        if version >= below:
            continue
        image = None
        try:
            blob, header = _verified(home, version)
            image = AttachedImage.attach(conn, "prev")
            # The content hash is checked at the end of decrypt_to: nothing written is read before then.
            envelope.decrypt_to(blob, header, receiving_key(home).as_desktop_key(), image.write)
            del blob
            image.finish()
            return version, image
        except BackupOperatorError as exc:
            if image is not None:
                image.detach()
            log.warning("kept snapshot %d cannot be read (%s); trying an older one", version, exc)
        except BaseException:
            if image is not None:
                image.detach()
            raise
    return None


def annotate(home: ExporterHome, database: bytes, *, version: int, now: datetime) -> bytes:
    """``database`` with the change summary and the receiving key stored in it (see ``annotate_in``)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.deserialize(database)
        annotate_in(home, conn, version=version, now=now)
        return conn.serialize()
    finally:
        conn.close()


def annotate_in(home: ExporterHome, conn: sqlite3.Connection, *, version: int, now: datetime) -> None:
    """The hook in the build step: store the change summary and the receiving key in the database open on
    ``conn`` (the one being built: no copy of it is made)."""
    store_in(home, conn, summarize(home, conn, version=version, now=now))


def summarize(home: ExporterHome, conn: sqlite3.Connection, *, version: int, now: datetime
              ) -> core_changes.ChangeSummary:
    """What changed since the last kept snapshot, for the database open on ``conn`` (only read)."""
    previous = _attach_previous(home, conn, version)
    if previous is None:
        return core_changes.ChangeSummary(version, None)
    since, image = previous
    try:
        return core_changes.diff(conn, version=version, since_version=since, now=now)
    finally:
        image.detach()


def store_in(home: ExporterHome, conn: sqlite3.Connection, summary: core_changes.ChangeSummary) -> None:
    """Store ``summary`` and the exporter's receiving key in the database being built on ``conn``."""
    key = receiving_key(home)
    core_changes.store_summary(conn, summary)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('exporter_recipient', ?)",
                 (key.public.to_text(),))
    conn.commit()
    log.info("snapshot %d changes since %s: %s", summary.version, summary.since_version,
             summary.describe_counts())


@dataclass
class DiffResult:
    old_label: str
    new_label: str
    summary: core_changes.ChangeSummary


def diff_versions(home: ExporterHome, a: int, b: int, now: datetime) -> DiffResult:
    old, new = (a, b) if a <= b else (b, a)
    summary = core_changes.diff_databases(load_history(home, new), load_history(home, old), version=new,
                                          since_version=old, now=now)
    return DiffResult(f"version {old}", f"version {new}", summary)


def diff_against_sources(home: ExporterHome, now: datetime, base: int | None = None) -> DiffResult:
    """What the next export would change, against ``base`` (default: the newest kept version)."""
    from exporter.config import load_config
    from exporter.pipeline import build, read

    kept = history_versions(home)
    if base is None:
        if not kept:
            raise VersionNotAvailable("No published snapshot is kept on this exporter yet, so there is nothing "
                                      "to compare with; the first export lists everything as new.")
        base = kept[-1]
    config = load_config(home.config)
    data = read(config, now)
    database = build(data, config, version=base + 1, now=now)
    summary = core_changes.diff_databases(database, load_history(home, base), version=base + 1,
                                          since_version=base, now=now)
    return DiffResult(f"version {base}", "the sources now (not published)", summary)
