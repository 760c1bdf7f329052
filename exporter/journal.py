"""Importing the desktops' outage journals after an outage: verify, merge in time order, report per desktop.

Each ``.bojournal`` file is checked before anything in it is used: size cap, signature (by the key its
header names), that key belongs to an enrolled desktop, the content opens with this exporter's receiving
key, and the journal inside was written under that same desktop's enrolled key. A refused file is named
with the reason; the others are still imported.

Merging is by identity, not by file: a revision is ``(journal id, entry id, revision number)``, so the
same journal sent twice, or sent again with more entries, adds only what is new, and importing the same
files twice gives the same result. Output is a CSV (rewritten atomically, keeping what it already held)
or a table in an SQL database (``--into``; rows are only ever inserted).

This module must never write a journal's content anywhere but the output IT asked for.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from backup_operator.core.model import parse_utc
from backup_operator.errors import (
    BackupOperatorError,
    ConfigError,
    CorruptSealedFile,
    SealedFileRefused,
    UnknownSender,
)
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import envelope
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopPublicKey
from backup_operator.snapshot.sealed import ExporterKey, open_sealed_file, read_sealed_file

from exporter.recipients import Recipient

__all__ = ["COLUMNS", "JournalRow", "DesktopReport", "ImportReport", "read_journal_file", "import_journals",
           "write_csv", "write_sql", "sender_of", "DEFAULT_TABLE"]

log = logging.getLogger("exporter.journal")

DEFAULT_TABLE = "backup_operator_journal"
COLUMNS = ("call_time", "desktop", "operator", "caller", "callback", "for_whom", "number_tried", "on_call",
           "message", "action", "status", "revision", "reason", "saved_at", "listing_id", "entry_id",
           "journal_id")
KEY = ("journal_id", "entry_id", "revision")
_TEXT_FIELDS = ("call_time", "caller", "callback", "for_whom", "number_tried", "on_call", "message", "action",
                "operator", "status", "reason", "saved_at", "listing_id", "entry_id")
MAX_REVISIONS_PER_FILE = 200_000


@dataclass(frozen=True)
class JournalRow:
    values: tuple  # in COLUMNS order

    @property
    def key(self) -> tuple:
        d = dict(zip(COLUMNS, self.values))
        return (d["journal_id"], d["entry_id"], int(d["revision"]))

    @property
    def order(self) -> tuple:
        d = dict(zip(COLUMNS, self.values))
        return (d["call_time"], d["saved_at"], d["desktop"], d["entry_id"], int(d["revision"]))

    def as_dict(self) -> dict:
        return dict(zip(COLUMNS, self.values))


@dataclass
class DesktopReport:
    desktop: str
    files: int = 0
    entries: int = 0
    revisions: int = 0
    amended: int = 0
    withdrawn: int = 0
    new: int = 0
    already: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    desktops: dict[str, DesktopReport] = field(default_factory=dict)
    refused: list[tuple[str, BackupOperatorError]] = field(default_factory=list)
    rows: list[JournalRow] = field(default_factory=list)
    total_rows: int = 0  # in the output after the merge
    new_rows: int = 0

    def describe(self) -> str:
        lines = []
        for name in sorted(self.desktops):
            d = self.desktops[name]
            line = (f"  {name}: {d.files} file{'s' if d.files != 1 else ''}, {d.entries} entries "
                    f"({d.amended} amended, {d.withdrawn} withdrawn), {d.revisions} revisions: {d.new} new, "
                    f"{d.already} already imported")
            lines.append(line)
            lines += [f"      note: {p}" for p in d.problems]
        for path, exc in self.refused:
            lines.append(f"  REFUSED {path}: {exc}")
        return "\n".join(lines)


def sender_of(desktop_key_text: object, signed: bytes, signature: bytes, recipients: list[Recipient],
              purpose: str) -> Recipient:
    """The enrolled desktop that signed ``signed`` for ``purpose``, checked with the key IT enrolled.

    The file names its desktop; only the enrolled key of that desktop is ever used to check it.
    """
    try:
        named = DesktopPublicKey.from_text(str(desktop_key_text))
    except BackupOperatorError:
        raise CorruptSealedFile("It names its desktop with a damaged key.") from None
    sender = next((r for r in recipients if r.key.raw == named.raw), None)
    if sender is None:
        raise UnknownSender("It comes from a desktop that is not enrolled here (removed, re-enrolled, or a "
                            "forgery); it was not imported.")
    verify = getattr(sender.key, "verify", None)
    if verify is None or not getattr(sender.key, "can_sign", False):
        raise UnknownSender(f"{sender.name} was enrolled before desktops had a signing key, so its files "
                            "cannot be checked; enrol it again with the line 'backup-operator enroll "
                            "--upgrade' prints.")
    if not verify(purpose, signature, signed):
        raise CorruptSealedFile(f"Its signature is not {sender.name}'s: it was altered, damaged or forged.")
    return sender


def read_journal_file(path: Path, recipients: list[Recipient], key: ExporterKey) -> tuple[Recipient, dict]:
    """Verify one sealed journal file; return the enrolled desktop that sent it and its content."""
    blob = envelope.read_capped(path, F.MAX_SEALED_FILE_BYTES)
    sealed_file = read_sealed_file(blob, F.SEALED_JOURNAL_MAGIC)
    sender = sender_of(sealed_file.header["desktop_key"], sealed_file.signed, sealed_file.signature,
                       recipients, "journal")
    payload = open_sealed_file(sealed_file, key)
    try:
        doc = json.loads(payload)
        revisions = doc["revisions"]
        if not isinstance(revisions, list) or len(revisions) > MAX_REVISIONS_PER_FILE:
            raise ValueError("revisions is not a list of a sane length")
        if doc.get("journal_id") != sealed_file.header.get("journal_id"):
            raise ValueError("the header and the content name different journals")
        written_by = DesktopPublicKey.from_text(str(doc.get("desktop_public_key", "")))
    except (ValueError, KeyError, TypeError, BackupOperatorError) as exc:
        raise CorruptSealedFile(f"Its content is not a journal ({exc}).") from None
    if written_by.raw != sender.key.raw:
        raise CorruptSealedFile(f"It was signed by {sender.name}, but the journal inside was written under "
                                "another desktop key; it was not imported.")
    return sender, doc


def _row(desktop: str, journal_id: str, rev: dict) -> JournalRow:
    if not isinstance(rev, dict):
        raise ValueError("a revision is not an object")
    values = {k: str(rev.get(k, "") or "")[:4000] for k in _TEXT_FIELDS}
    values["revision"] = int(rev.get("revision", 0))
    if values["revision"] < 0 or not values["entry_id"]:
        raise ValueError("a revision without an entry id")
    parse_utc(values["call_time"])
    parse_utc(values["saved_at"])
    values["desktop"], values["journal_id"] = desktop, str(journal_id)
    return JournalRow(tuple(values[c] for c in COLUMNS))


def import_journals(files: list[Path], recipients: list[Recipient], key: ExporterKey,
                    existing: set[tuple] | None = None) -> ImportReport:
    """Read and verify ``files``; ``rows`` holds every distinct revision, in time order."""
    report = ImportReport()
    rows: dict[tuple, JournalRow] = {}
    existing = existing or set()
    for path in files:
        try:
            sender, doc = read_journal_file(Path(path), recipients, key)
        except (SealedFileRefused, BackupOperatorError) as exc:
            report.refused.append((str(path), exc))
            log.warning("journal file %s refused: %s", path, exc)
            continue
        desk = report.desktops.setdefault(sender.name, DesktopReport(sender.name))
        desk.files += 1
        entries: dict[str, list[dict]] = {}
        for rev in doc["revisions"]:
            try:
                row = _row(sender.name, doc["journal_id"], rev)
            except (ValueError, TypeError) as exc:
                desk.problems.append(f"{Path(path).name}: a revision was skipped ({exc})")
                continue
            if row.key in rows:
                continue
            rows[row.key] = row
            entries.setdefault(row.key[1], []).append(row.as_dict())
        for problem in doc.get("problems", [])[:20]:
            desk.problems.append(f"{Path(path).name}: the desktop reported: {str(problem)[:200]}")
        for revs in entries.values():
            desk.entries += 1
            desk.revisions += len(revs)
            latest = max(revs, key=lambda r: int(r["revision"]))
            desk.amended += int(len(revs) > 1)
            desk.withdrawn += int(latest["status"] == "withdrawn")
    for row in rows.values():
        desk = report.desktops[row.as_dict()["desktop"]]
        if row.key in existing:
            desk.already += 1
        else:
            desk.new += 1
    report.rows = sorted(rows.values(), key=lambda r: r.order)
    return report


# --- outputs -------------------------------------------------------------------------------------------


def _cell(value) -> str:
    text = str(value)
    # A spreadsheet would run a cell that starts like a formula; show it as text instead.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _uncell(text: str) -> str:
    return text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r") else text


def read_csv_keys(path: Path) -> tuple[set[tuple], list[JournalRow]]:
    if not path.exists():
        return set(), []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return set(), []
            if tuple(header) != COLUMNS:
                raise ConfigError(f"{path} is not a merged journal written by this exporter (its columns "
                                  "differ); choose another output file.")
            rows = [JournalRow(tuple(_uncell(v) for v in line)) for line in reader if line]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}).") from None
    return {r.key for r in rows}, rows


def write_csv(path: Path, report: ImportReport, existing_rows: list[JournalRow]) -> None:
    merged = {r.key: r for r in existing_rows}
    before = len(merged)
    for row in report.rows:
        merged.setdefault(row.key, row)
    report.new_rows = len(merged) - before
    report.total_rows = len(merged)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in sorted(merged.values(), key=lambda r: r.order):
        writer.writerow([_cell(v) for v in row.values])
    atomic_write(path, out.getvalue().encode("utf-8"), mode=0o600)


def _table(metadata, name: str):
    from sqlalchemy import Column, Integer, String, Table, Text

    columns = []
    for column in COLUMNS:
        if column == "revision":
            columns.append(Column(column, Integer, primary_key=True, autoincrement=False))
        elif column in ("journal_id", "entry_id"):
            columns.append(Column(column, String(64), primary_key=True))
        elif column in ("message", "on_call", "reason"):
            columns.append(Column(column, Text))
        else:
            columns.append(Column(column, String(4000) if column != "call_time" else String(32)))
    return Table(name, metadata, *columns)


def sql_keys(url: str, table_name: str = DEFAULT_TABLE) -> set[tuple]:
    from sqlalchemy import MetaData, create_engine, select
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        table = _table(MetaData(), table_name)
        table.metadata.create_all(engine)
        with engine.connect() as conn:
            return {(j, e, int(r)) for j, e, r in conn.execute(
                select(table.c.journal_id, table.c.entry_id, table.c.revision))}
    except Exception as exc:
        raise ConfigError(f"The database {_safe_url(url)} cannot be used ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}).") from None
    finally:
        engine.dispose()


def write_sql(url: str, report: ImportReport, table_name: str = DEFAULT_TABLE) -> None:
    """Insert the revisions the table lacks, in one transaction; the table is made on first use."""
    from sqlalchemy import MetaData, create_engine, func, select
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        table = _table(MetaData(), table_name)
        table.metadata.create_all(engine)
        with engine.begin() as conn:
            have = {(j, e, int(r)) for j, e, r in conn.execute(
                select(table.c.journal_id, table.c.entry_id, table.c.revision))}
            fresh = [r.as_dict() for r in report.rows if r.key not in have]
            if fresh:
                conn.execute(table.insert(), fresh)
            report.new_rows = len(fresh)
            report.total_rows = conn.execute(select(func.count()).select_from(table)).scalar_one()
    except BackupOperatorError:
        raise
    except Exception as exc:
        raise ConfigError(f"The journal could not be written to {_safe_url(url)} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}); nothing was written there.") from None
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the database"


def journal_files_in(folders: list[Path]) -> list[Path]:
    """Every ``.bojournal`` regular file in the inboxes' ``journals/`` folders (for ``--from-inboxes``)."""
    found = []
    for folder in folders:
        sub = Path(folder) / "journals"
        if sub.is_dir() and not sub.is_symlink():
            for path in sorted(sub.iterdir()):
                if path.name.endswith(".bojournal") and not path.name.startswith(".") and \
                        path.is_file() and not path.is_symlink():
                    found.append(path)
    return found


def expand_files(args: list[str]) -> list[Path]:
    """Command-line FILES: files, or folders (every .bojournal inside)."""
    out = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.name.endswith(".bojournal") and p.is_file())
        else:
            out.append(path)
    return list(dict.fromkeys(out))

