"""The outage journal: the calls and messages an operator takes while the servers are down.

Nothing an operator writes down may be lost, and nothing may be on disk in the clear:

* Each saved entry is one frame appended to the journal log (``<home>/journal/*.bojlog``), sealed to
  this desktop's own public key (``snapshot.sealed``), written with one ``write`` and made durable with
  ``fsync`` before ``add`` returns. Saving needs no passphrase. A frame torn by a power cut is never
  one that was reported saved; the next save cuts it off.
* Entries are never changed in place. An amendment is a new revision of the entry that names a reason;
  withdrawing an entry is a revision with status "withdrawn" and a reason. Every revision is kept, shown
  on request, exported and merged.
* Sequence numbers are in the sealed frame's HPKE ``info``, so a frame moved, repeated or dropped is
  noticed when the journal is read (``JournalContents.problems``).

One journal covers one outage: ``start_new`` begins the next one; older journals stay on disk until
exported. This module must never import Qt and never write an entry's text unsealed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from backup_operator.core.model import format_utc, parse_utc
from backup_operator.core.search.text import fold
from backup_operator.errors import JournalDamaged, JournalError, StorageError
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import format as F
from backup_operator.snapshot import sealed
from backup_operator.snapshot.keys import DesktopKey, DesktopPublicKey

try:  # advisory lock so the window and the command line never hand out the same sequence number
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ACTIONS",
    "FIELDS",
    "Revision",
    "Entry",
    "JournalContents",
    "Journal",
    "journal_folder",
    "list_journals",
    "current_journal",
    "start_new",
]

ACTIONS = ("paged", "transferred", "no answer", "message taken", "called back", "other")
# What an operator fills in; everything else in a revision is bookkeeping.
FIELDS = ("call_time", "caller", "callback", "for_whom", "number_tried", "on_call", "message", "action",
          "operator", "listing_id")
MAX_FIELD = 4000
LOG_SUFFIX = ".bojlog"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Revision:
    """One saved version of an entry. Revision 0 is what was first written."""

    entry_id: str
    revision: int
    saved_at: str
    call_time: str
    caller: str = ""
    callback: str = ""
    for_whom: str = ""
    number_tried: str = ""
    on_call: str = ""
    message: str = ""
    action: str = ""
    operator: str = ""
    listing_id: str = ""
    status: str = "open"  # or "withdrawn"
    reason: str = ""      # why this revision was made (amendments and withdrawals)
    seq: int = 0          # position in the log (filled in when read; not part of the sealed text)

    def to_json(self) -> dict:
        doc = asdict(self)
        doc.pop("seq")
        return doc

    @classmethod
    def from_json(cls, doc: dict, seq: int = 0) -> "Revision":
        known = {k: str(doc.get(k, "")) for k in cls.__dataclass_fields__ if k not in ("revision", "seq")}
        return cls(**known, revision=int(doc.get("revision", 0)), seq=seq)


@dataclass
class Entry:
    """An entry as it stands now (its latest revision), with every earlier revision kept."""

    revisions: list[Revision]

    @property
    def current(self) -> Revision:
        return self.revisions[-1]

    @property
    def original(self) -> Revision:
        return self.revisions[0]

    @property
    def entry_id(self) -> str:
        return self.original.entry_id

    @property
    def amended(self) -> bool:
        return len(self.revisions) > 1

    @property
    def withdrawn(self) -> bool:
        return self.current.status == "withdrawn"

    def matches(self, query: str) -> bool:
        """Every word of ``query`` appears in some field of some revision (folded: accents, case)."""
        words = fold(query).split()
        if not words:
            return True
        text = fold(" ".join(" ".join(str(v) for k, v in r.to_json().items() if k not in ("entry_id",))
                             for r in self.revisions))
        return all(w in text for w in words)


@dataclass
class JournalContents:
    journal_id: str
    desktop: str
    public_key: str
    created_at: str
    entries: list[Entry]
    problems: list[str] = field(default_factory=list)

    @property
    def revisions(self) -> list[Revision]:
        return sorted((r for e in self.entries for r in e.revisions), key=lambda r: r.seq)

    def entry(self, entry_id: str) -> Entry:
        for e in self.entries:
            if e.entry_id == entry_id or (len(entry_id) >= 4 and e.entry_id.startswith(entry_id)):
                return e
        raise JournalError(f"There is no entry {entry_id!r} in this journal; 'backup-operator journal list' "
                           "shows each entry's number.")

    def search(self, query: str) -> list[Entry]:
        return [e for e in self.entries if e.matches(query)]


def journal_folder(home: Path) -> Path:
    return Path(home) / "journal"


def list_journals(home: Path) -> list[Path]:
    """Journal logs of this desktop, oldest first (names start with their creation time)."""
    folder = journal_folder(home)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(LOG_SUFFIX) and not p.name.startswith("."))


def _clean(value: object) -> str:
    text = "" if value is None else str(value)
    # Keep line breaks in a message; drop other control characters that could steer a terminal later.
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    return text.strip()[:MAX_FIELD]


class Journal:
    """One journal log on disk. ``add`` and ``amend`` append; ``read`` decrypts with the private key."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as handle:
                first = handle.readline()
                header_line = handle.readline()
        except FileNotFoundError:
            raise JournalError(f"The journal {self.path} does not exist.") from None
        if first != F.JOURNAL_LOG_MAGIC:
            raise JournalError(f"{self.path.name} is not a Backup Operator journal.")
        try:
            self.header = json.loads(header_line)
            self.journal_id = str(self.header["journal_id"])
            self.public_key = DesktopPublicKey.from_text(self.header["public_key"])
        except (ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"The journal {self.path.name}'s first lines are damaged ({exc}).") from None
        if not re.fullmatch(r"[0-9a-f]{32}", self.journal_id):
            raise JournalError(f"The journal {self.path.name} has a damaged id.")
        self.data_start = len(first) + len(header_line)

    # --- creating ------------------------------------------------------------------------------

    @classmethod
    def create(cls, home: Path, *, desktop: str, public_key: DesktopPublicKey, title: str = "",
               now: datetime | None = None) -> "Journal":
        now = now or _now()
        folder = journal_folder(home)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        journal_id = secrets.token_hex(16)
        header = {"journal_id": journal_id, "desktop": desktop, "public_key": public_key.to_text(),
                  "created_at": format_utc(now), "title": _clean(title)[:200]}
        path = folder / f"{now:%Y%m%dT%H%M%SZ}-{journal_id[:8]}{LOG_SUFFIX}"
        atomic_write(path, F.JOURNAL_LOG_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n", mode=0o600)
        return cls(path)

    @property
    def desktop(self) -> str:
        return str(self.header.get("desktop", ""))

    @property
    def created_at(self) -> str:
        return str(self.header.get("created_at", ""))

    @property
    def title(self) -> str:
        return str(self.header.get("title", ""))

    # --- appending -------------------------------------------------------------------------------

    def _append(self, revision: Revision) -> Revision:
        """Seal and append one revision; durable (fsync) before this returns."""
        try:
            fd = os.open(self.path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise JournalError(f"The journal {self.path} cannot be opened for writing "
                               f"({exc.strerror or exc}).") from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            data = _read_all(fd)
            last_seq, valid_end = 0, self.data_start
            for item in sealed.scan_frames(data, self.data_start):
                if isinstance(item, sealed.Frame):
                    last_seq, valid_end = max(last_seq, item.seq), item.end
            if valid_end < len(data):
                # Bytes after the last whole frame: a frame torn by a power cut, never reported saved.
                os.ftruncate(fd, valid_end)
            seq = last_seq + 1
            revision = replace(revision, seq=seq)
            plaintext = json.dumps(revision.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8")
            frame = sealed.frame_bytes(seq, sealed.seal_frame(self.public_key, self.journal_id, seq, plaintext))
            os.lseek(fd, 0, os.SEEK_END)
            view = memoryview(frame)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageError("The disk is full: this journal entry was NOT saved. Write it on paper "
                                   "and free some space.") from exc
            raise JournalError(f"This journal entry was NOT saved ({exc.strerror or exc}); write it on "
                               "paper.") from exc
        finally:
            os.close(fd)
        return revision

    def add(self, fields: dict, *, now: datetime | None = None) -> Revision:
        """Save a new entry. ``fields`` are the FIELDS; ``call_time`` defaults to now."""
        now = now or _now()
        values = {k: _clean(fields.get(k, "")) for k in FIELDS}
        values["call_time"] = _time_text(fields.get("call_time"), now)
        if not (values["message"] or values["caller"] or values["for_whom"]):
            raise JournalError("An empty entry was not saved: write at least who called, for whom, or the "
                               "message.")
        revision = Revision(entry_id=secrets.token_hex(8), revision=0, saved_at=format_utc(now), **values)
        return self._append(revision)

    def amend(self, entry: Entry, changes: dict, *, reason: str, now: datetime | None = None,
              withdraw: bool = False) -> Revision:
        """Save a new revision of ``entry``: the changed fields, why, and (``withdraw``) that it no longer stands."""
        reason = _clean(reason)
        if not reason:
            raise JournalError("Say why the entry is amended or withdrawn; the original is kept either way.")
        now = now or _now()
        current = entry.current
        values = {k: getattr(current, k) for k in FIELDS}
        for key, value in changes.items():
            if key not in FIELDS:
                raise JournalError(f"A journal entry has no field {key!r} (fields: {', '.join(FIELDS)}).")
            values[key] = _time_text(value, now) if key == "call_time" else _clean(value)
        revision = Revision(entry_id=entry.entry_id, revision=current.revision + 1, saved_at=format_utc(now),
                            status="withdrawn" if withdraw else "open", reason=reason, **values)
        return self._append(revision)

    # --- reading ----------------------------------------------------------------------------------

    def read(self, key: DesktopKey) -> JournalContents:
        """Every entry, with every revision, decrypted in memory; ``problems`` lists what could not be read."""
        data = self.path.read_bytes()
        problems: list[str] = []
        if key.public.raw != self.public_key.raw:
            raise JournalError(f"The journal {self.path.name} was written by another key (another enrolment "
                               "of this desktop); it cannot be read with this one.")
        by_entry: dict[str, list[Revision]] = {}
        seen: set[int] = set()
        items = list(sealed.scan_frames(data, self.data_start))
        for n, item in enumerate(items):
            if not isinstance(item, sealed.Frame):
                if n == len(items) - 1:
                    continue  # a torn last frame was never reported saved
                problems.append(f"{item[1] - item[0]} damaged bytes at offset {item[0]} were skipped")
                continue
            plaintext = sealed.open_frame(key, self.journal_id, item.seq, item.sealed)
            if plaintext is None:
                problems.append(f"entry frame {item.seq} does not authenticate (damaged or moved)")
                continue
            if item.seq in seen:
                problems.append(f"entry frame {item.seq} appears twice; the copy was ignored")
                continue
            seen.add(item.seq)
            try:
                revision = Revision.from_json(json.loads(plaintext), seq=item.seq)
            except (ValueError, TypeError) as exc:
                problems.append(f"entry frame {item.seq} cannot be read ({exc})")
                continue
            by_entry.setdefault(revision.entry_id, []).append(revision)
        if seen:
            missing = sorted(set(range(1, max(seen) + 1)) - seen)
            if missing:
                problems.append(f"entry frames {', '.join(map(str, missing[:10]))} are missing from the file")
        entries = [Entry(sorted(revs, key=lambda r: (r.revision, r.seq))) for revs in by_entry.values()]
        entries.sort(key=lambda e: (e.original.call_time, e.original.seq))
        return JournalContents(self.journal_id, self.desktop, self.public_key.to_text(), self.created_at,
                               entries, problems)

    def read_strict(self, key: DesktopKey) -> JournalContents:
        contents = self.read(key)
        if contents.problems:
            error = JournalDamaged(f"Part of the journal {self.path.name} cannot be read: "
                                   f"{'; '.join(contents.problems[:3])}. Everything else was read.")
            error.contents = contents  # type: ignore[attr-defined]
            raise error
        return contents

    def last_seq(self) -> int:
        data = self.path.read_bytes()
        return max((i.seq for i in sealed.scan_frames(data, self.data_start) if isinstance(i, sealed.Frame)),
                   default=0)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    parts = []
    while True:
        part = os.read(fd, 1 << 20)
        if not part:
            return b"".join(parts)
        parts.append(part)


def _time_text(value: object, now: datetime) -> str:
    if value in (None, ""):
        return format_utc(now)
    if isinstance(value, datetime):
        return format_utc(value)
    text = str(value).strip()
    try:
        return format_utc(parse_utc(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise JournalError(f"{text!r} is not a time; write it like 2026-03-07T14:05:00Z or 14:05.") from None
    if moment.tzinfo is None:
        raise JournalError(f"{text!r} has no time zone; write it in UTC with a Z, or with an offset.")
    return format_utc(moment)


def current_journal(home: Path, *, desktop: str | None = None, public_key: DesktopPublicKey | None = None,
                    create: bool = True) -> Journal | None:
    """The journal of the current outage: the newest one, made on first use when ``create``."""
    logs = list_journals(home)
    if logs:
        return Journal(logs[-1])
    if not create:
        return None
    if public_key is None:
        raise JournalError("This desktop is not enrolled, so there is no key to seal the journal with; run "
                           "'backup-operator enroll' first (write calls on paper meanwhile).")
    return Journal.create(home, desktop=desktop or socket.gethostname(), public_key=public_key)


def start_new(home: Path, *, desktop: str, public_key: DesktopPublicKey, title: str = "",
              now: datetime | None = None) -> Journal:
    """Begin the journal of a new outage; the previous journals stay (and are still exported)."""
    return Journal.create(home, desktop=desktop, public_key=public_key, title=title, now=now)


def all_contents(home: Path, key: DesktopKey) -> Iterable[JournalContents]:
    for path in list_journals(home):
        yield Journal(path).read(key)
