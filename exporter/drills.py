"""``status --drills``: which desktops drilled when, and how they did, from the receipts in their inboxes.

A drill receipt is a JSON document a desktop signs with its enrolment key (``core.drill``). It is
untrusted until checked: it must be a regular file of sane size, name an enrolled desktop, and carry
that desktop's signature (checked with the key IT enrolled, not one the file supplies). Receipts that
fail are listed as ignored, with the reason, and never counted.

This module must never trust a field of a receipt before its signature is checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from backup_operator.core.model import parse_utc
from backup_operator.errors import BackupOperatorError
from backup_operator.fsutil import open_plain
from backup_operator.textsafe import shown
from backup_operator.snapshot.sealed import document_parts

from exporter.config import Config
from exporter.journal import sender_of
from exporter.publish import resolve_destinations
from exporter.recipients import Recipient
from exporter.status import format_age

__all__ = ["DrillRecord", "read_drills", "render_drills", "MAX_RECEIPT_BYTES"]

MAX_RECEIPT_BYTES = 64 * 1024
MAX_RECEIPTS_PER_INBOX = 5000


@dataclass
class DrillRecord:
    desktop: str
    drill_id: str
    finished_at: str
    operator: str
    correct: int
    questions: int
    seconds: float
    kit_ok: bool
    passed: bool
    snapshot_version: int
    where: str


def _read_regular(path: Path, folder: Path) -> bytes | None:
    """The file's bytes if it is a regular file of sane size (no FIFOs, devices or links out of the folder)."""
    try:
        fd = open_plain(path, within=folder)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size > MAX_RECEIPT_BYTES:
            return None
        return os.read(fd, MAX_RECEIPT_BYTES + 1)[:MAX_RECEIPT_BYTES]
    finally:
        os.close(fd)


def _record(doc: dict, sender: Recipient, where: str) -> DrillRecord:
    finished = str(doc["finished_at"])
    parse_utc(finished)
    answers = doc["answers"]
    if not isinstance(answers, list) or len(answers) > 20:
        raise ValueError("answers is not a short list")
    correct = sum(1 for a in answers if isinstance(a, dict) and a.get("correct") is True)
    kit = doc.get("kit", [])
    kit_ok = bool(kit) and all(isinstance(k, dict) and k.get("ok") is True for k in kit)
    seconds = float(sum(float(a.get("seconds", 0)) for a in answers if isinstance(a, dict)))
    return DrillRecord(sender.name, str(doc["drill_id"])[:32], finished, str(doc.get("operator", ""))[:80],
                       correct, len(answers), round(seconds, 1), kit_ok, bool(doc.get("passed")) and kit_ok
                       and correct >= 4, int(doc.get("snapshot_version", 0)), where)


def read_drills(config: Config, recipients: list[Recipient]) -> tuple[list[DrillRecord], list[str]]:
    """Every verified drill receipt in the folder inboxes, and why any other file there was ignored."""
    records: dict[tuple[str, str], DrillRecord] = {}
    ignored: list[str] = []
    for dest in resolve_destinations(config, recipients):
        if dest.kind != "folder":
            continue
        folder = Path(dest.path) / "drills"
        if folder.is_symlink() or not folder.is_dir():
            continue
        for path in sorted(folder.iterdir())[:MAX_RECEIPTS_PER_INBOX]:
            if not path.name.endswith(".json") or path.name.startswith("."):
                continue
            data = _read_regular(path, folder)
            if data is None:
                ignored.append(f"{path}: not a plain file of a receipt's size")
                continue
            try:
                doc = json.loads(data)
                parts = document_parts(doc)
                if parts is None:
                    raise ValueError("it is not a signed receipt")
                sender = sender_of(parts[0], parts[1], parts[2], recipients, "drill")
                record = _record(doc, sender, dest.label)
            except (BackupOperatorError, ValueError, KeyError, TypeError) as exc:
                ignored.append(f"{path}: {exc}")
                continue
            records[(record.desktop, record.drill_id)] = record
    return sorted(records.values(), key=lambda r: (r.desktop, r.finished_at)), ignored


def render_drills(records: list[DrillRecord], recipients: list[Recipient], ignored: list[str], *,
                  now: datetime, days: int = 365) -> str:
    since = now - timedelta(days=days)
    lines = [f"Drills in the last {days} days (from the signed receipts in the inboxes):"]
    names = [shown(r.name) for r in recipients]
    width = max([len("DESKTOP")] + [len(n) for n in names])
    lines.append(f"{'DESKTOP':<{width}}  {'LAST DRILL':<20}  {'AGO':>12}  {'RIGHT':>5}  {'TIME':>6}  {'KIT':<6}  "
                 f"{'RESULT':<10}  DRILLS")
    for name in names:
        mine = [r for r in records if shown(r.desktop) == name and parse_utc(r.finished_at) >= since]
        if not mine:
            lines.append(f"{name:<{width}}  {'never':<20}  {'—':>12}  {'—':>5}  {'—':>6}  {'—':<6}  {'NO DRILL':<10}  0")
            continue
        last = max(mine, key=lambda r: r.finished_at)
        age = (now - parse_utc(last.finished_at)).total_seconds()
        lines.append(f"{name:<{width}}  {shown(last.finished_at):<20}  {format_age(age):>12}  "
                     f"{last.correct}/{last.questions:<3}  {last.seconds:>5.0f}s  {'ok' if last.kit_ok else 'FAILED':<6}  "
                     f"{'passed' if last.passed else 'NOT PASSED':<10}  {len(mine)}")
    for problem in ignored:
        lines.append(f"ignored {shown(problem)}")
    return "\n".join(lines)
