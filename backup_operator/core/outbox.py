"""What a desktop sends back to the exporter: its outage journals (sealed) and its drill receipts (signed).

Both go where the desktop's snapshot receipts already go, its folder inboxes::

    <inbox>/journals/<desktop>-<journal id>.bojournal   the whole journal so far, rewritten atomically
    <inbox>/drills/<desktop>-<drill id>.json            one signed receipt per drill

A journal is sealed to the exporter's receiving key, which every signed snapshot carries
(``meta.exporter_recipient``), and signed with this desktop's Ed25519 key. The file always holds every
revision saved so far; the exporter's import is idempotent, so a re-sent file adds only what is new.
``drop_pending`` runs after every sync: whatever was saved while no inbox was reachable leaves as soon
as one is. What was sent is remembered in ``<home>/journal/sent.json`` (numbers only).

This module must never write a journal's text unsealed, and never import Qt.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from backup_operator.core.journal import Journal, JournalContents, journal_folder, list_journals
from backup_operator.core.model import format_utc
from backup_operator.errors import BackupOperatorError, NoDesktopKey, NoExporterKey
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import format as F
from backup_operator.snapshot import sealed
from backup_operator.snapshot.keys import DesktopKey

__all__ = [
    "JOURNAL_SUFFIX",
    "JOURNALS_FOLDER",
    "DRILLS_FOLDER",
    "exporter_recipient",
    "signer_for",
    "journal_payload",
    "seal_journal",
    "drop_pending",
    "drop_document",
    "DropReport",
    "safe_name",
    "save_drill",
    "drop_drill_receipts",
]

JOURNAL_SUFFIX = ".bojournal"
JOURNALS_FOLDER = "journals"
DRILLS_FOLDER = "drills"
SENT_FILE = "sent.json"
JOURNAL_FORMAT = 1


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:80] or "desktop"


def exporter_recipient(conn: sqlite3.Connection) -> sealed.ExporterPublicKey | None:
    """The exporter's receiving key as the snapshot (signed by the exporter) states it, if it does."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'exporter_recipient'").fetchone()
    except sqlite3.DatabaseError:
        return None
    if not row or not row[0]:
        return None
    try:
        return sealed.ExporterPublicKey.from_text(row[0])
    except BackupOperatorError:
        return None


def signer_for(key: DesktopKey, purpose: str) -> Callable[[bytes], bytes]:
    """Sign with this desktop's Ed25519 enrolment key (it sits beside the X25519 key in the key store)."""
    if not getattr(key, "can_sign", False):
        raise NoDesktopKey("This desktop has no signing key yet, so it cannot sign what it sends back; "
                           "run 'backup-operator enroll --upgrade' and give IT the new line it prints.")
    return lambda message: key.sign(purpose, message)


def journal_payload(contents: JournalContents, *, exported_at: datetime) -> bytes:
    doc = {
        "format": JOURNAL_FORMAT,
        "journal_id": contents.journal_id,
        "desktop": contents.desktop,
        "desktop_public_key": contents.public_key,
        "created_at": contents.created_at,
        "exported_at": format_utc(exported_at),
        "revisions": [r.to_json() for r in contents.revisions],
        "problems": contents.problems,
    }
    return json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")


def seal_journal(contents: JournalContents, *, desktop_name: str, recipient: sealed.ExporterPublicKey,
                 key: DesktopKey, now: datetime | None = None) -> bytes:
    now = now or datetime.now(timezone.utc)
    header = {"kind": "journal", "format": JOURNAL_FORMAT, "desktop": desktop_name,
              "journal_id": contents.journal_id, "exported_at": format_utc(now),
              "revisions": len(contents.revisions)}
    return sealed.seal_file(F.SEALED_JOURNAL_MAGIC, header, journal_payload(contents, exported_at=now),
                            recipient, signer_for(key, "journal"), key.public)


@dataclass
class DropReport:
    written: list[Path] = field(default_factory=list)
    unreachable: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pending: int = 0  # journals with revisions no inbox has yet


def _load_sent(home: Path) -> dict:
    try:
        doc = json.loads((journal_folder(home) / SENT_FILE).read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_sent(home: Path, sent: dict) -> None:
    atomic_write(journal_folder(home) / SENT_FILE, (json.dumps(sent, indent=1, sort_keys=True) + "\n").encode())


def drop_pending(home: Path, inboxes: Iterable[Path], *, desktop_name: str, key: Callable[[], DesktopKey],
                 recipient: Callable[[], sealed.ExporterPublicKey | None], now: datetime | None = None,
                 force: bool = False) -> DropReport:
    """Write every journal with unsent revisions into each reachable inbox (all of them, or ``force``)."""
    report = DropReport()
    logs = list_journals(home)
    if not logs:
        return report
    sent = _load_sent(home)
    todo: list[Journal] = []
    for path in logs:
        journal = Journal(path)
        last = journal.last_seq()
        if last and (force or sent.get(journal.journal_id, {}).get("seq", 0) < last):
            todo.append(journal)
    report.pending = len(todo)
    if not todo:
        return report
    reachable = []
    for inbox in inboxes:
        inbox = Path(inbox)
        (reachable if inbox.is_dir() else report.unreachable).append(inbox)
    if not reachable:
        return report
    exporter_key = recipient()
    if exporter_key is None:
        raise NoExporterKey("The journal cannot be sealed yet: no installed snapshot names the exporter's "
                            "receiving key. Run 'backup-operator sync' once the exporter is back.")
    private = key()
    signer_for(private, "journal")  # before anything is written: say at once if this desktop cannot sign
    for journal in todo:
        contents = journal.read(private)
        blob = seal_journal(contents, desktop_name=desktop_name, recipient=exporter_key, key=private, now=now)
        name = f"{safe_name(desktop_name)}-{journal.journal_id}{JOURNAL_SUFFIX}"
        delivered = False
        for inbox in reachable:
            folder = inbox / JOURNALS_FOLDER
            try:
                _own_folder(folder)
                atomic_write(folder / name, blob, mode=0o644)
                report.written.append(folder / name)
                delivered = True
            except (OSError, BackupOperatorError) as exc:
                report.problems.append(f"{folder}: {exc}")
        if delivered:
            seq = max((r.seq for r in contents.revisions), default=0)
            sent[journal.journal_id] = {"seq": seq, "at": format_utc(now or datetime.now(timezone.utc))}
            report.pending -= 1
    _save_sent(home, sent)
    return report


def _own_folder(folder: Path) -> None:
    """Make ``folder`` in an inbox, refusing a symlink or a file put there to redirect our writes."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OSError(f"{folder} is not a plain folder (a link or a file is in its place); nothing was written")
    folder.mkdir(exist_ok=True)


def drop_document(inboxes: Iterable[Path], folder_name: str, filename: str, doc: dict) -> tuple[list[Path], list[str]]:
    """Write a signed JSON document into ``<inbox>/<folder_name>/`` of every reachable inbox."""
    written, problems = [], []
    data = (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    for inbox in inboxes:
        inbox = Path(inbox)
        if not inbox.is_dir():
            continue
        folder = inbox / folder_name
        try:
            _own_folder(folder)
            atomic_write(folder / filename, data, mode=0o644)
            written.append(folder / filename)
        except (OSError, BackupOperatorError) as exc:
            problems.append(f"{folder}: {exc}")
    return written, problems


def save_drill(home: Path, inboxes: Iterable[Path], receipt: dict, key: DesktopKey) -> tuple[Path, list[Path], list[str]]:
    """Sign a drill receipt, keep it in ``<home>/drills/`` and leave a copy in every reachable inbox."""
    doc = sealed.sign_document(receipt, signer_for(key, "drill"), key.public)
    folder = Path(home) / DRILLS_FOLDER
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{safe_name(str(receipt.get('desktop', '')))}-{safe_name(str(receipt['drill_id']))}.json"
    atomic_write(folder / name, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8"), mode=0o600)
    written, problems = drop_document(inboxes, DRILLS_FOLDER, name, doc)
    return folder / name, written, problems


def drop_drill_receipts(home: Path, inboxes: Iterable[Path]) -> list[Path]:
    """Leave in each reachable inbox the drill receipts it does not have yet (drills run while offline)."""
    folder = Path(home) / DRILLS_FOLDER
    if not folder.is_dir():
        return []
    written = []
    local = sorted(p for p in folder.glob("*.json") if p.is_file())
    for inbox in inboxes:
        inbox = Path(inbox)
        if not inbox.is_dir():
            continue
        missing = [p for p in local if not (inbox / DRILLS_FOLDER / p.name).exists()]
        for path in missing:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            done, _problems = drop_document([inbox], DRILLS_FOLDER, path.name, doc)
            written += done
    return written
