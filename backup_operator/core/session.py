"""What the desktop window works on: the newest snapshot, opened, indexed, and asked in the window's terms.

One ``Session`` per opened snapshot. It owns the in-memory database and the search index and answers
the window's questions with plain frozen records (``Entry``, ``Result``, ``OnCallNow``, ``ShiftRow``),
so the Qt item models stay thin adapters. ``sync_and_open`` is the whole of "a file arrived in the
inbox": install the newest that verifies (``core.install``: the window has a child process do it), then
open and index it; it runs on a worker thread.

This module must never import Qt, and never write decrypted data to disk.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from backup_operator.config import Desktop
from backup_operator.core import oncall, oncall_intent
from backup_operator.core.install import Installed, install_from_inboxes
from backup_operator.core.model import SnapshotMeta, format_utc, parse_utc
from backup_operator.core.store import OpenSnapshot, SnapshotStore
from backup_operator.core.wording import describe_counts
from backup_operator.errors import BackupOperatorError, NoDesktopKey
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
    def dialable(self) -> bool:
        """A number one can dial or page (not an email address, not an overhead page's words)."""
        return self.kind != "email" and any(ch.isdigit() for ch in self.value)

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

    @property
    def first_number(self) -> Contact | None:
        """The first contact method one can dial (what Enter copies): "Code Blue" is said over the
        overhead speakers, its activation line 5555 is dialled. Falls back to the first method."""
        return next((c for c in self.contacts if c.dialable), self.first_contact)

    @property
    def first_number_row(self) -> int:
        first = self.first_number
        return self.contacts.index(first) if first is not None else -1


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


class Result:
    """One search result: a listing or an on-call schedule, with what to highlight.

    What the query matched (the highlighted spans, and for a typed number which number to show) is
    worked out only when first read: a list of fifty results draws a dozen, and the rest may never be
    seen. So is a schedule's "on call now" line and number (``describe``: an on-call answer costs SQL
    queries, and typing "on" lists dozens of schedules). ``kind``, ``id``, ``name``, ``score`` and
    ``listing_kind`` are known at once.
    """

    __slots__ = ("kind", "id", "name", "_subtitle", "score", "listing_kind", "_later", "_spans", "_number",
                 "_matched", "_subtitle_spans", "_number_spans", "_matched_spans", "_describe")

    def __init__(self, kind: str, id: str, name: str, subtitle: str,  # noqa: A002 - the listing's id
                 spans: tuple[tuple[int, int], ...] = (), number: str = "", score: float = 0.0,
                 listing_kind: str = "", matched: str = "", subtitle_spans: tuple[tuple[int, int], ...] = (),
                 number_spans: tuple[tuple[int, int], ...] = (), matched_spans: tuple[tuple[int, int], ...] = (),
                 *, later: Callable[[], tuple] | None = None,
                 describe: Callable[[], tuple[str, str]] | None = None):
        self.kind = kind  # "listing" or "schedule"
        self.id = id
        self.name = name
        self._subtitle = subtitle
        self._describe = describe  # (subtitle, number) when first read; both are taken from it
        self.score = score
        self.listing_kind = listing_kind  # person, department, location, service (listings only)
        self._later = later
        self._spans, self._number, self._matched = spans, number, matched
        self._subtitle_spans, self._number_spans, self._matched_spans = subtitle_spans, number_spans, matched_spans

    def _fill(self) -> None:
        self._described()
        later, self._later = self._later, None
        if later is not None:
            (self._spans, self._number, self._matched, self._subtitle_spans, self._number_spans,
             self._matched_spans) = later()

    def _described(self) -> None:
        describe, self._describe = self._describe, None
        if describe is not None:
            self._subtitle, self._number = describe()

    @property
    def subtitle(self) -> str:
        self._described()
        return self._subtitle

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        """[start, end) character ranges of ``name`` that matched."""
        self._fill()
        return self._spans

    @property
    def number(self) -> str:
        """The first number to try, the number that matched a typed number, or the holder's for a schedule."""
        self._fill()
        return self._number

    @property
    def matched(self) -> str:
        """A match outside the name and subtitle: "also known as: Cardio"."""
        self._fill()
        return self._matched

    @property
    def subtitle_spans(self) -> tuple[tuple[int, int], ...]:
        self._fill()
        return self._subtitle_spans

    @property
    def number_spans(self) -> tuple[tuple[int, int], ...]:
        self._fill()
        return self._number_spans

    @property
    def matched_spans(self) -> tuple[tuple[int, int], ...]:
        self._fill()
        return self._matched_spans

    def __repr__(self) -> str:
        return f"Result({self.kind!r}, {self.id!r}, {self.name!r}, {self.subtitle!r})"


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


_LISTING_COLUMNS = ("id, kind, display_name, title, department, site, building, floor, room, notes, aliases, "
                    "keywords")
_ENTRY_CACHE = 4096  # entries kept after being read: a screenful of results many times over, never the directory
_BATCH = 500  # ids per "IN (...)" query


def _entry_from_row(row, contacts: tuple[Contact, ...]) -> Entry:
    where = ", ".join(x for x in (row["building"], row["floor"] and f"floor {row['floor']}",
                                  row["room"] and f"room {row['room']}") if x)
    return Entry(id=row["id"], kind=row["kind"], name=row["display_name"], title=row["title"] or "",
                 department=row["department"] or "", site=row["site"] or "", location=where,
                 notes=row["notes"] or "", aliases=_loads(row["aliases"]) + _loads(row["keywords"]),
                 contacts=contacts)


class Session:
    """An opened snapshot with its search index. Thread use: built on a worker, then used by one thread.

    Nothing is read per listing when a session opens: listings and their contact methods are read from
    the snapshot's SQLite database when they are shown (``entry``, ``entries``), and the last few
    thousand are kept. Opening costs the search index's load and the on-call schedules (a few hundred
    rows at most), whatever the size of the directory.
    """

    def __init__(self, opened: OpenSnapshot, *, progress: Callable[[str], None] | None = None):
        self.opened = opened
        self.conn = opened.conn
        self.meta: SnapshotMeta = opened.meta
        self.version = opened.version
        self.skipped = list(opened.skipped)
        self.degraded = ""  # set when something works in a reduced mode; the window shows it
        self._cache: OrderedDict[str, Entry | None] = OrderedDict()
        self._lock = threading.Lock()  # the cache only: SQLite serialises the connection itself
        self._on_call_kept: dict[str, tuple[datetime, datetime, OnCallNow]] = {}
        self._schedules: dict[str, Schedule] = {}
        for row in self.conn.execute("SELECT * FROM oncall_schedules ORDER BY name"):
            self._schedules[row["id"]] = Schedule(
                row["id"], row["name"], row["department"] or "", row["site"] or "", row["timezone"],
                row["escalation"] or "", row["fallback_listing_id"] or "")
        if progress is not None:
            progress(f"Loading the search index ({describe_counts(self.meta.counts) or 'the directory'})…")
        self._index = _build_index(self)

    def close(self) -> None:
        self.opened.close()

    def warm_up(self) -> None:
        """Run a few searches and an on-call answer once, on the thread that opened the session: the
        first query touches the index's arrays and SQLite's pages, which is better paid here than on
        the first key an operator types (the window's thread)."""
        at = self.created_at
        for query in ("e", "smith", "4471", "cardiology"):
            for result in self.search(query, 10, at):
                result.spans  # noqa: B018 - reading it works out the highlight
        self.next_change(at)

    # --- what the window asks ------------------------------------------------------------------

    @property
    def created_at(self) -> datetime:
        return self.meta.created_at

    @property
    def listing_count(self) -> int:
        return int(self.meta.counts.get("listings", 0))

    def entry(self, listing_id: str) -> Entry | None:
        """One listing with its contact methods (read from the snapshot, then kept for a while)."""
        return self.entries([listing_id]).get(listing_id)

    def entries(self, listing_ids: Iterable[str]) -> dict[str, Entry]:
        """Listings by id, read in as few queries as possible; unknown ids are left out."""
        wanted = list(dict.fromkeys(listing_ids))
        found: dict[str, Entry] = {}
        missing: list[str] = []
        with self._lock:
            for lid in wanted:
                if lid in self._cache:
                    self._cache.move_to_end(lid)
                    entry = self._cache[lid]
                    if entry is not None:
                        found[lid] = entry
                else:
                    missing.append(lid)
        for n in range(0, len(missing), _BATCH):
            chunk = missing[n:n + _BATCH]
            marks = ", ".join("?" * len(chunk))
            contacts: dict[str, list[Contact]] = {}
            for row in self.conn.execute(
                    f"SELECT listing_id, kind, value, label, rank, instructions FROM contact_methods "
                    f"WHERE listing_id IN ({marks}) ORDER BY listing_id, rank, id", chunk):
                contacts.setdefault(row["listing_id"], []).append(
                    Contact(row["kind"], row["value"], row["label"] or "", int(row["rank"] or 0),
                            row["instructions"] or ""))
            read = {row["id"]: _entry_from_row(row, tuple(contacts.get(row["id"], ())))
                    for row in self.conn.execute(f"SELECT {_LISTING_COLUMNS} FROM listings WHERE id IN ({marks})",
                                                 chunk)}
            with self._lock:
                for lid in chunk:
                    entry = read.get(lid)
                    self._cache[lid] = entry
                    if entry is not None:
                        found[lid] = entry
                while len(self._cache) > _ENTRY_CACHE:
                    self._cache.popitem(last=False)
        return found

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
        """Listings and on-call schedules for what the operator typed, best first (``core.search``).

        A question about who is on call ("ED on call", "pharmacist on call") puts the matching
        department's schedules first (``core.oncall_intent``), then what the words find.
        """
        at = at or datetime.now(UTC)
        asked = oncall_intent.parse(query)
        if asked is None:
            return self._index.search(query, limit, at)
        first = [_schedule_result(self, self._schedules[sid], spans, 1.0, at)
                 for sid, spans in oncall_intent.rank_schedules(asked, self._index.raw, self.schedules(),
                                                                self.departments_of)]
        out: dict[tuple[str, str], Result] = {}

        def add(results: list[Result]) -> None:
            for result in results:
                out.setdefault((result.kind, result.id), result)

        add(first)
        if asked.what:  # then what the words alone find ("ED": the department line, its people)
            add(self._index.search(asked.what, limit, at))
        if len(out) < limit:  # and if that leaves room, what the whole query finds
            add(self._index.search(query, limit, at))
        return list(out.values())[:limit]

    def schedules_asked(self, words: str) -> list[Schedule]:
        """The on-call schedules ``words`` ask about ("ED", "cards on call", "pharmacist"), best first."""
        question = oncall_intent.parse(words) or oncall_intent.OnCallQuestion(words, words.strip())
        if not question.what:
            return []
        ranked = oncall_intent.rank_schedules(question, self._index.raw, self.schedules(), self.departments_of)
        return [self._schedules[sid] for sid, _ in ranked if sid in self._schedules]

    def departments_of(self, listing_ids: Iterable[str]) -> dict[str, str]:
        """Listing id -> its department (for the on-call intent's department vote)."""
        return {lid: e.department for lid, e in self.entries(listing_ids).items() if e.department}

    def reverse_lookup(self, number: str, at: datetime | None = None) -> list[Result]:
        """Who owns a number (caller ID)."""
        return self._index.reverse_lookup(number, at or datetime.now(UTC))

    def favourite_results(self, schedule_ids: Iterable[str], at: datetime) -> list[Result]:
        """The operator's favourite schedules as results (shown while the search field is empty)."""
        return [_schedule_result(self, self._schedules[sid], (), 0.0, at)
                for sid in schedule_ids if sid in self._schedules]

    def on_call(self, schedule_id: str, at: datetime) -> OnCallNow:
        """Who holds each tier of a schedule at ``at``. The answer is kept until the schedule's next shift
        boundary (typing "on call" asks about every schedule on every keystroke)."""
        with self._lock:
            kept = self._on_call_kept.get(schedule_id)
        if kept is not None and kept[0] <= at < kept[1]:
            return replace(kept[2], at=at)
        now = _on_call(self, schedule_id, at)
        until = min([t.until for t in now.tiers if t.until] + [t.next_start for t in now.tiers if t.next_start],
                    default=datetime.max.replace(tzinfo=UTC))
        with self._lock:
            self._on_call_kept[schedule_id] = (at, until, now)
        return now

    def shifts(self, schedule_id: str, start: datetime, end: datetime) -> list[ShiftRow]:
        """Shifts that overlap [start, end), by start time then tier."""
        found = oncall.shifts_between(self.conn, schedule_id, start, end)
        people = self.entries(s.listing_id for s in found)
        return [ShiftRow(schedule_id, s.tier, s.role, people[s.listing_id], s.start, s.end, s.notes)
                for s in found if s.listing_id in people]

    def next_change(self, after: datetime) -> datetime | None:
        """The first shift boundary (a start or an end, of any schedule) after ``after``: the next instant
        at which an "on call now" answer can change. None when no shift starts or ends later."""
        stamp = format_utc(after)
        row = self.conn.execute("SELECT min(t) FROM (SELECT min(start_utc) AS t FROM oncall_shifts WHERE start_utc > ?"
                                " UNION ALL SELECT min(end_utc) FROM oncall_shifts WHERE end_utc > ?)",
                                (stamp, stamp)).fetchone()
        return parse_utc(row[0]) if row and row[0] else None

    def key_numbers(self) -> list[Entry]:
        """Departments, services and locations: the numbers a crash sheet lists after the on-call rota."""
        ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM listings WHERE kind != 'person' AND EXISTS "
            "(SELECT 1 FROM contact_methods c WHERE c.listing_id = listings.id) ORDER BY lower(display_name), id")]
        found = self.entries(ids)
        return [found[i] for i in ids if i in found]


# --- on call: core.oncall resolves; this attaches each person's contact methods -------------------


def _on_call(session: Session, schedule_id: str, at: datetime) -> OnCallNow:
    schedule = session.schedule(schedule_id)
    if schedule is None:
        raise KeyError(schedule_id)
    status = oncall.on_call_at(session.conn, schedule_id, at)
    ids = [e.listing_id for t in status.tiers for e in t.current] + [t.next.listing_id for t in status.tiers if t.next]
    if status.fallback:
        ids.append(status.fallback.listing_id)
    people = session.entries(ids)
    tiers: list[TierNow] = []
    for t in status.tiers:
        nxt = t.next
        next_who = people.get(nxt.listing_id) if nxt else None
        next_start = nxt.start if nxt else None
        if not t.current:
            tiers.append(TierNow(t.tier, nxt.role if nxt else "", None, None, None, next_who, next_start))
        for e in t.current:  # two people at one tier (an overlap) are both shown
            tiers.append(TierNow(t.tier, e.role, people.get(e.listing_id), e.start, e.end, next_who, next_start))
    fallback = people.get(status.fallback.listing_id) if status.fallback else None
    return OnCallNow(schedule, status.at, tuple(tiers), fallback)


# --- search: core.search ranks; this turns its hits into what a result row shows ---------------

_SUBTITLE_FIELDS = ("title", "department", "site")
_FIELD_WORDS = {"alias": "also known as", "keyword": "keyword", "building": "where", "floor": "floor",
                "room": "room", "given_name": "first name", "middle_name": "middle name",
                "family_name": "surname", "name": "full name"}


def _result_for_hit(session: Session, hit, at: datetime, entry: Entry | None) -> Result | None:
    if hit.kind == "schedule":
        schedule = session.schedule(hit.id)
        if schedule is None:
            return None
        result = _schedule_result(session, schedule, (), hit.score, at)
        result._later = lambda: (_name_spans(hit), result._number, "", (), (), ())
        return result
    if entry is None:
        return None
    first = entry.first_number
    return Result("listing", entry.id, entry.name, entry.subtitle, score=hit.score, listing_kind=entry.kind,
                  later=lambda: _matched_parts(hit, entry, first.value if first else ""))


def _name_spans(hit) -> tuple[tuple[int, int], ...]:
    return tuple(next((m.spans for m in hit.matches if m.field == "name" and m.text == hit.name), ()))


def _matched_parts(hit, entry: Entry, number: str) -> tuple:
    """(name spans, number, matched, subtitle spans, number spans, matched spans) of a listing hit."""
    matches = hit.matches
    name_spans = _name_spans(hit)
    subtitle = entry.subtitle
    sub_spans: list[tuple[int, int]] = []
    number_spans: tuple[tuple[int, int], ...] = ()
    other = []
    for m in matches:
        if m.field == "name" and m.text == hit.name:
            continue
        if m.field in KIND_WORDS:  # a number matched: show that number, not the first one
            if not number_spans:
                number, number_spans = m.text, tuple(m.spans)
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
    return name_spans, number, matched, tuple(sub_spans), number_spans, matched_spans


class _Index:
    def __init__(self, session: Session):
        from backup_operator.core.search import SearchIndex

        self.session = session
        self.raw = SearchIndex.open(session.conn)

    def _results(self, hits, at: datetime) -> list[Result]:
        people = self.session.entries(h.id for h in hits if h.kind != "schedule")
        out = []
        for hit in hits:
            result = _result_for_hit(self.session, hit, at, people.get(hit.id))
            if result is not None:
                out.append(result)
        return out

    def search(self, query: str, limit: int, at: datetime) -> list[Result]:
        return self._results(self.raw.search(query, limit), at)

    def reverse_lookup(self, number: str, at: datetime, limit: int = 20) -> list[Result]:
        return self._results(self.raw.reverse_lookup(number, limit), at)


class _PlainIndex:
    """Last resort when the real index cannot be built: every word as a substring of the name, title,
    department or aliases, or the digits within a number, straight from SQLite. Slow and unranked, but
    the directory stays usable."""

    raw = None

    def __init__(self, session: Session):
        self.session = session

    def search(self, query: str, limit: int, at: datetime) -> list[Result]:
        words = [w for w in query.lower().split() if w and not w.isdigit()]
        digits = "".join(ch for ch in query if ch.isdigit())
        ids: list[str] = []
        if words:
            text = "lower(display_name || ' ' || coalesce(title, '') || ' ' || coalesce(department, '') || ' ' " \
                   "|| coalesce(aliases, '') || ' ' || coalesce(keywords, ''))"
            where = " AND ".join(f"instr({text}, ?) > 0" for _ in words)
            ids += [r[0] for r in self.session.conn.execute(
                f"SELECT id FROM listings WHERE {where} ORDER BY lower(display_name) LIMIT ?", (*words, limit))]
        if len(digits) >= 3:
            ids += [r[0] for r in self.session.conn.execute(
                "SELECT DISTINCT listing_id FROM contact_methods WHERE instr(digits, ?) > 0 LIMIT ?",
                (digits, limit))]
        people = self.session.entries(ids)
        out: list[Result] = []
        for lid in dict.fromkeys(ids):
            entry = people.get(lid)
            if entry is None:
                continue
            numbers = [c.value for c in entry.contacts
                       if len(digits) >= 3 and digits in "".join(ch for ch in c.value if ch.isdigit())]
            low = entry.name.lower()
            spans = tuple((low.find(w), low.find(w) + len(w)) for w in words if w in low)
            first = entry.first_number
            number = numbers[0] if numbers else (first.value if first else "")
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
    """A schedule's result; who is on call (its subtitle and number) is worked out when first read."""

    def describe() -> tuple[str, str]:
        now = session.on_call(schedule.id, at)
        holder = next((t for t in now.tiers if t.who), None)
        if holder is not None:
            subtitle = f"On call now: {holder.who.name} ({holder.role or f'tier {holder.tier}'})"
            first = holder.who.first_number
        else:
            subtitle = "Nobody on call now: department line"
            first = now.fallback.first_number if now.fallback else None
        return subtitle, first.value if first else ""

    return Result("schedule", schedule.id, schedule.name, "", tuple(spans), "", score, describe=describe)


# --- opening and syncing -----------------------------------------------------------------------


def store_for(desktop: Desktop) -> SnapshotStore:
    return desktop.store(interactive=False)


def open_session(desktop: Desktop, progress: Callable[[str], None] | None = None) -> Session:
    """Open the newest installed snapshot that verifies, and load its search index.

    ``progress`` (if given) is called with a sentence before each slow step; it runs on the caller's
    thread, so a window hands in something that only posts the sentence to its own thread.
    """
    if not desktop.config.public_key:
        # On a fresh desktop everything is missing; enrolment comes first, so that is what is named.
        raise NoDesktopKey("This desktop is not enrolled yet, so it has no key to open the directory with; "
                           "IT runs 'backup-operator enroll' here first.")
    import backup_operator.core.search  # noqa: F401 - loaded now, not in the time after decryption
    import numpy.ma  # noqa: F401 - numpy.unique imports it at its first call (0.05-0.2 s); now, not at a query

    if progress is not None:
        progress("Checking the signature and decrypting the newest snapshot…")
    opened = store_for(desktop).open_newest()
    try:
        return Session(opened, progress=progress)
    except BaseException:
        opened.close()
        raise


@dataclass
class SyncOutcome:
    """What one look at the inboxes did. ``session`` is set when a newer snapshot was installed."""

    installed: list[int] = field(default_factory=list)
    refused: list[tuple[Path | str, BackupOperatorError]] = field(default_factory=list)  # str: an http address
    new_signers: list[SignerPublicKey] = field(default_factory=list)
    current: int = 0
    session: Session | None = None
    receipt_problems: list[str] = field(default_factory=list)
    unreachable: list[Path | str] = field(default_factory=list)  # inboxes that could not be read (share offline)
    inboxes: int = 0  # how many inboxes were looked at


def sync_and_open(desktop: Desktop, showing_version: int = 0,
                  install: Callable[[Desktop], Installed] = install_from_inboxes) -> SyncOutcome:
    """Install the newest good snapshot from the inboxes and, if it is newer than what the window
    shows, open and index it. Leaves a receipt in each inbox as ``backup-operator sync`` does.

    ``install`` does the installing (``core.install``): here by default; the window hands in
    ``install_in_child``, so that only the opening of what was installed shares its process."""
    done = install(desktop)
    outcome = SyncOutcome(done.installed, done.refused, done.new_signers, done.current,
                          receipt_problems=done.receipt_problems, unreachable=done.unreachable,
                          inboxes=done.inboxes)
    if done.current > showing_version:
        opened = store_for(desktop).open_newest()
        if opened.version > showing_version:
            try:
                outcome.session = Session(opened)
            except BaseException:
                opened.close()
                raise
            outcome.session.warm_up()  # here, on the worker, not on the first key typed after the switch
        else:
            opened.close()
    return outcome
