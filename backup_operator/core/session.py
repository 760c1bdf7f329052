"""What the desktop window works on: the newest snapshot, opened, indexed, and asked in the window's terms.

One ``Session`` per opened snapshot. It owns the in-memory database and the search index and answers
the window's questions with plain frozen records (``Entry``, ``Result``, ``OnCallNow``, ``ShiftRow``),
so the Qt item models stay thin adapters. ``sync_and_open`` is the whole of "a file arrived in the
inbox": install the newest that verifies, then open and index it; it runs on a worker thread.

This module must never import Qt, and never write decrypted data to disk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from backup_operator.config import Desktop
from backup_operator.core import oncall
from backup_operator.core.model import SnapshotMeta
from backup_operator.core.pull import pull
from backup_operator.core.store import OpenSnapshot, SnapshotStore, SyncReport, write_receipt
from backup_operator.errors import BackupOperatorError, SnapshotError
from backup_operator.snapshot.keys import SignerPublicKey

__all__ = [
    "Contact",
    "Entry",
    "OnCallNow",
    "Result",
    "Schedule",
    "Session",
    "ShiftRow",
    "SyncOutcome",
    "TierNow",
    "open_session",
    "store_for",
    "sync_and_open",
    "wall_time",
    "zone_offsets",
]

log = logging.getLogger(__name__)

KIND_WORDS = {
    "extension": "Extension",
    "phone": "Phone",
    "mobile": "Mobile",
    "pager": "Pager",
    "fax": "Fax",
    "email": "Email",
    "voip": "Wireless phone",
    "overhead": "Overhead page",
}


@dataclass(frozen=True)
class Contact:
    """One way to reach a listing, in the order to try it (``rank``)."""

    kind: str
    value: str
    label: str
    rank: int
    instructions: str

    @property
    def kind_word(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind.title())

    @property
    def caption(self) -> str:
        """'Pager' or 'Mobile (on-call mobile)': what the operator reads next to the number."""
        word = self.kind_word
        if self.label and self.label.lower() != word.lower():
            return f"{word} ({self.label})"
        return word


@dataclass(frozen=True)
class Entry:
    """A listing with its contact methods: what the detail pane shows."""

    id: str
    kind: str
    name: str
    title: str
    department: str
    site: str
    location: str
    notes: str
    aliases: tuple[str, ...]
    contacts: tuple[Contact, ...]

    @property
    def subtitle(self) -> str:
        parts = [self.title, self.department if self.department != self.name else "", self.site]
        return " · ".join(p for p in parts if p)

    @property
    def first_contact(self) -> Contact | None:
        return self.contacts[0] if self.contacts else None


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    department: str
    site: str
    timezone: str
    escalation: str
    fallback_listing_id: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Result:
    """One search result: a listing or an on-call schedule, with what to highlight in its name."""

    kind: str  # "listing" or "schedule"
    id: str
    name: str
    subtitle: str
    spans: tuple[tuple[int, int], ...]  # [start, end) character ranges of ``name`` that matched
    number: str  # the first number to try, or for a schedule who is on call now
    score: float
    listing_kind: str = ""  # person, department, location, service (listings only)
    matched: str = ""  # a match outside the name and subtitle: "also known as: Cardio"
    subtitle_spans: tuple[tuple[int, int], ...] = ()
    number_spans: tuple[tuple[int, int], ...] = ()
    matched_spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class TierNow:
    """Who holds one tier of a schedule at an instant, and who comes next."""

    tier: int
    role: str
    who: Entry | None
    since: datetime | None
    until: datetime | None
    next_who: Entry | None
    next_start: datetime | None


@dataclass(frozen=True)
class OnCallNow:
    schedule: Schedule
    at: datetime
    tiers: tuple[TierNow, ...]
    fallback: Entry | None

    @property
    def nobody(self) -> bool:
        return not any(t.who for t in self.tiers)

    def ladder(self) -> list[tuple[str, Entry]]:
        """The escalation ladder: each tier's holder in order, then the department line."""
        steps = [(t.role or f"Tier {t.tier}", t.who) for t in self.tiers if t.who is not None]
        if self.fallback is not None:
            steps.append(("Department line", self.fallback))
        return steps


@dataclass(frozen=True)
class ShiftRow:
    schedule_id: str
    tier: int
    role: str
    who: Entry
    start: datetime
    end: datetime
    notes: str = ""


def wall_time(moment: datetime, zone: ZoneInfo, fmt: str = "%a %d %b %H:%M", *, offset: bool = True) -> str:
    """'Sun 08 Mar 01:30 EST (UTC−05:00)': a wall time always with its zone (and offset, unless short)."""
    local = moment.astimezone(zone)
    if not offset:
        return f"{local.strftime(fmt)} {local.tzname()}"
    delta = local.utcoffset() or timedelta(0)
    sign = "+" if delta >= timedelta(0) else "−"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{local.strftime(fmt)} {local.tzname()} (UTC{sign}{minutes // 60:02d}:{minutes % 60:02d})"


def zone_offsets(zone: ZoneInfo, start: datetime, end: datetime) -> list[str]:
    """The abbreviations a zone uses over a period with their offsets: ['EST = UTC−05:00', 'EDT = UTC−04:00']."""
    seen: dict[str, str] = {}
    moment = start
    while moment <= end + timedelta(hours=1):
        text = wall_time(moment, zone, "")
        name, _, rest = text.strip().partition(" ")
        seen.setdefault(name, rest.strip("()"))
        moment += timedelta(hours=1)
    return [f"{name} = {off}" for name, off in seen.items()]


def _loads(text: str | None) -> tuple[str, ...]:
    try:
        return tuple(str(v) for v in json.loads(text or "[]"))
    except (ValueError, TypeError):
        return ()


class Session:
    """An opened snapshot with its search index. Thread use: built on a worker, then used by one thread."""

    def __init__(self, opened: OpenSnapshot):
        self.opened = opened
        self.conn = opened.conn
        self.meta: SnapshotMeta = opened.meta
        self.version = opened.version
        self.skipped = list(opened.skipped)
        self.degraded = ""  # set when something works in a reduced mode; the window shows it
        self._entries: dict[str, Entry] = {}
        self._schedules: dict[str, Schedule] = {}
        self._load()
        self._index = _build_index(self)

    # --- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        contacts: dict[str, list[Contact]] = {}
        for row in self.conn.execute("SELECT listing_id, kind, value, label, rank, instructions "
                                     "FROM contact_methods ORDER BY listing_id, rank, id"):
            contacts.setdefault(row["listing_id"], []).append(
                Contact(row["kind"], row["value"], row["label"] or "", int(row["rank"] or 0),
                        row["instructions"] or ""))
        for row in self.conn.execute("SELECT * FROM listings"):
            where = ", ".join(x for x in (row["building"], row["floor"] and f"floor {row['floor']}",
                                          row["room"] and f"room {row['room']}") if x)
            self._entries[row["id"]] = Entry(
                id=row["id"], kind=row["kind"], name=row["display_name"], title=row["title"] or "",
                department=row["department"] or "", site=row["site"] or "", location=where,
                notes=row["notes"] or "", aliases=_loads(row["aliases"]) + _loads(row["keywords"]),
                contacts=tuple(contacts.get(row["id"], ())))
        for row in self.conn.execute("SELECT * FROM oncall_schedules ORDER BY name"):
            self._schedules[row["id"]] = Schedule(
                row["id"], row["name"], row["department"] or "", row["site"] or "", row["timezone"],
                row["escalation"] or "", row["fallback_listing_id"] or "")

    def close(self) -> None:
        self.opened.close()

    # --- what the window asks ------------------------------------------------------------------

    @property
    def created_at(self) -> datetime:
        return self.meta.created_at

    def entry(self, listing_id: str) -> Entry | None:
        return self._entries.get(listing_id)

    def schedule(self, schedule_id: str) -> Schedule | None:
        return self._schedules.get(schedule_id)

    def schedules(self) -> list[Schedule]:
        return list(self._schedules.values())

    def schedules_for(self, entry: Entry) -> list[Schedule]:
        """The schedules an entry belongs to: its department's, or those it is the fallback line of."""
        return [s for s in self._schedules.values()
                if s.fallback_listing_id == entry.id
                or (entry.kind == "department" and entry.department and s.department == entry.department)]

    def search(self, query: str, limit: int = 50, at: datetime | None = None) -> list[Result]:
        """Listings and on-call schedules for what the operator typed, best first (``core.search``)."""
        return self._index.search(query, limit, at or datetime.now(UTC))

    def reverse_lookup(self, number: str, at: datetime | None = None) -> list[Result]:
        """Who owns a number (caller ID)."""
        return self._index.reverse_lookup(number, at or datetime.now(UTC))

    def favourite_results(self, schedule_ids: Iterable[str], at: datetime) -> list[Result]:
        """The operator's favourite schedules as results (shown while the search field is empty)."""
        return [_schedule_result(self, self._schedules[sid], (), 0.0, at)
                for sid in schedule_ids if sid in self._schedules]

    def on_call(self, schedule_id: str, at: datetime) -> OnCallNow:
        return _on_call(self, schedule_id, at)

    def shifts(self, schedule_id: str, start: datetime, end: datetime) -> list[ShiftRow]:
        """Shifts that overlap [start, end), by start time then tier."""
        rows = []
        for shift in oncall.shifts_between(self.conn, schedule_id, start, end):
            who = self._entries.get(shift.listing_id)
            if who is not None:
                rows.append(ShiftRow(schedule_id, shift.tier, shift.role, who, shift.start, shift.end, shift.notes))
        return rows

    def key_numbers(self) -> list[Entry]:
        """Departments, services and locations: the numbers a crash sheet lists after the on-call rota."""
        return sorted((e for e in self._entries.values() if e.kind != "person" and e.contacts),
                      key=lambda e: e.name.lower())


# --- on call: core.oncall resolves; this attaches each person's contact methods -------------------


def _on_call(session: Session, schedule_id: str, at: datetime) -> OnCallNow:
    schedule = session.schedule(schedule_id)
    if schedule is None:
        raise KeyError(schedule_id)
    status = oncall.on_call_at(session.conn, schedule_id, at)
    tiers: list[TierNow] = []
    for t in status.tiers:
        nxt = t.next
        next_who = session.entry(nxt.listing_id) if nxt else None
        next_start = nxt.start if nxt else None
        if not t.current:
            tiers.append(TierNow(t.tier, nxt.role if nxt else "", None, None, None, next_who, next_start))
        for e in t.current:  # two people at one tier (an overlap) are both shown
            tiers.append(TierNow(t.tier, e.role, session.entry(e.listing_id), e.start, e.end, next_who, next_start))
    fallback = session.entry(status.fallback.listing_id) if status.fallback else None
    return OnCallNow(schedule, status.at, tuple(tiers), fallback)


# --- search: core.search ranks; this turns its hits into what a result row shows ---------------

_SUBTITLE_FIELDS = ("title", "department", "site")
_FIELD_WORDS = {"alias": "also known as", "keyword": "keyword", "building": "where", "floor": "floor",
                "room": "room", "given_name": "first name", "middle_name": "middle name",
                "family_name": "surname", "name": "full name"}


def _result_for_hit(session: Session, hit, at: datetime) -> Result | None:
    matches = hit.matches
    name_spans = next((m.spans for m in matches if m.field == "name" and m.text == hit.name), ())
    if hit.kind == "schedule":
        schedule = session.schedule(hit.id)
        if schedule is None:
            return None
        return _schedule_result(session, schedule, name_spans, hit.score, at)
    entry = session.entry(hit.id)
    if entry is None:
        return None
    subtitle = entry.subtitle
    sub_spans: list[tuple[int, int]] = []
    number = entry.first_contact.value if entry.first_contact else ""
    number_spans: tuple[tuple[int, int], ...] = ()
    other = []
    for m in matches:
        if m.field == "name" and m.text == hit.name:
            continue
        if m.field in KIND_WORDS:  # a number matched: show that number, not the first one
            if not number_spans:
                number, number_spans = m.text, m.spans
            continue
        where = subtitle.find(m.text) if m.field in _SUBTITLE_FIELDS and m.text else -1
        if where >= 0:
            sub_spans += [(where + a, where + b) for a, b in m.spans]
        elif not name_spans or m.field not in ("given_name", "middle_name", "family_name", "name"):
            other.append((m.field, m.text, m.spans))
    matched, matched_spans = "", ()
    if other and not name_spans and not sub_spans:  # say why it matched only when nothing visible did
        field_name, text, spans = other[0]
        prefix = f"{_FIELD_WORDS.get(field_name, field_name)}: "
        matched = prefix + text
        matched_spans = tuple((len(prefix) + a, len(prefix) + b) for a, b in spans)
    return Result("listing", entry.id, entry.name, subtitle, tuple(name_spans), number, hit.score, entry.kind,
                  matched, tuple(sub_spans), number_spans, matched_spans)


class _Index:
    def __init__(self, session: Session):
        from backup_operator.core.search import SearchIndex

        self.session = session
        self.index = SearchIndex.open(session.conn)

    def search(self, query: str, limit: int, at: datetime) -> list[Result]:
        out = []
        for hit in self.index.search(query, limit):
            result = _result_for_hit(self.session, hit, at)
            if result is not None:
                out.append(result)
        return out

    def reverse_lookup(self, number: str, at: datetime, limit: int = 20) -> list[Result]:
        return [r for r in (_result_for_hit(self.session, h, at) for h in self.index.reverse_lookup(number, limit))
                if r is not None]


class _PlainIndex:
    """Last resort when the real index cannot be built: every word as a substring of the name, title or
    department, or digits within a number. Slow and unranked, but the directory stays usable."""

    def __init__(self, session: Session):
        self.session = session

    def search(self, query: str, limit: int, at: datetime) -> list[Result]:
        words = [w for w in query.lower().split() if w]
        digits = "".join(ch for ch in query if ch.isdigit())
        out: list[Result] = []
        for entry in self.session._entries.values():
            text = " ".join((entry.name, entry.title, entry.department, *entry.aliases)).lower()
            numbers = [c.value for c in entry.contacts if len(digits) >= 3 and digits in
                       "".join(ch for ch in c.value if ch.isdigit())]
            if (words and all(w in text for w in words)) or numbers:
                low = entry.name.lower()
                spans = tuple((low.find(w), low.find(w) + len(w)) for w in words if w in low)
                number = numbers[0] if numbers else (entry.first_contact.value if entry.first_contact else "")
                out.append(Result("listing", entry.id, entry.name, entry.subtitle, spans, number,
                                  float(len(spans)), entry.kind))
        for schedule in self.session.schedules():
            if words and all(w in f"{schedule.name} {schedule.department}".lower() for w in words):
                out.append(_schedule_result(self.session, schedule, (), 0.5, at))
        out.sort(key=lambda r: (-r.score, r.name))
        return out[:limit]

    def reverse_lookup(self, number: str, at: datetime, limit: int = 20) -> list[Result]:
        return self.search("".join(ch for ch in number if ch.isdigit()), limit, at)


def _build_index(session: Session):
    try:
        return _Index(session)
    except Exception:
        log.exception("the search index could not be built; using plain matching")
        session.degraded = "Search is in a simple mode (its index could not be built); tell IT."
        return _PlainIndex(session)


def _schedule_result(session: Session, schedule: Schedule, spans, score: float, at: datetime) -> Result:
    now = session.on_call(schedule.id, at)
    holder = next((t for t in now.tiers if t.who), None)
    if holder is not None:
        subtitle = f"On call now: {holder.who.name} ({holder.role or f'tier {holder.tier}'})"
        first = holder.who.first_contact
    else:
        subtitle = "Nobody on call now: department line"
        first = now.fallback.first_contact if now.fallback else None
    return Result("schedule", schedule.id, schedule.name, subtitle, tuple(spans),
                  first.value if first else "", score)


def _build_index(session: Session) -> _Index:
    return _Index(session)


# --- opening and syncing -----------------------------------------------------------------------


def store_for(desktop: Desktop) -> SnapshotStore:
    return desktop.store(interactive=False)


def open_session(desktop: Desktop) -> Session:
    """Open the newest installed snapshot that verifies, and index it (seconds for a big directory)."""
    opened = store_for(desktop).open_newest()
    try:
        return Session(opened)
    except BaseException:
        opened.close()
        raise


@dataclass
class SyncOutcome:
    """What one look at the inboxes did. ``session`` is set when a newer snapshot was installed."""

    installed: list[int] = field(default_factory=list)
    refused: list[tuple[Path, SnapshotError]] = field(default_factory=list)
    new_signers: list[SignerPublicKey] = field(default_factory=list)
    current: int = 0
    session: Session | None = None
    receipt_problems: list[str] = field(default_factory=list)


def sync_and_open(desktop: Desktop, showing_version: int = 0) -> SyncOutcome:
    """Install the newest good snapshot from the inboxes and, if it is newer than what the window
    shows, open and index it. Leaves a receipt in each inbox as ``backup-operator sync`` does."""
    store = store_for(desktop)
    inboxes = desktop.inboxes()
    report: SyncReport = store.sync(inboxes)
    outcome = SyncOutcome(list(report.installed), list(report.refused), list(report.new_signers),
                          report.current)
    for web in desktop.http_inboxes():  # http(s) inboxes: manifest, then deltas or the full snapshot
        pulled = pull(store, web, cache_root=desktop.home / "downloads", desktop=desktop.name,
                      public_key=desktop.config.public_key)
        outcome.installed += pulled.installed
        outcome.refused += pulled.refused
        outcome.new_signers += pulled.new_signers
        outcome.current = report.current = max(report.current, pulled.current)
        if pulled.receipt_problem:
            outcome.receipt_problems.append(pulled.receipt_problem)
    if report.current:
        for inbox in inboxes:
            if inbox.is_dir():
                try:
                    write_receipt(inbox, desktop=desktop.name, public_key=desktop.config.public_key,
                                  version=report.current, installed_at=store.installed_at(report.current)
                                  if report.current in store.installed_versions() else None)
                except (BackupOperatorError, OSError) as exc:
                    outcome.receipt_problems.append(f"{inbox}: {exc}")
    if report.current > showing_version:
        opened = store.open_newest()
        if opened.version > showing_version:
            try:
                outcome.session = Session(opened)
            except BaseException:
                opened.close()
                raise
        else:
            opened.close()
    return outcome
