"""The drill: a timed exercise on the current data, the way a disaster plan asks sites to test themselves.

Five look-ups are generated from the installed snapshot, one of each kind an outage brings:

1. **on call now** — "Who is on call now for Cardiology — attending?"
2. **extension** — "What is the extension of Dr Amelia Hart (Cardiology)?"
3. **reverse number** — "Whose number is 608-555-0147?" (caller ID)
4. **as of** — "Who will be on call for Neurology at Sun 25 Oct 01:30 GMT?"
5. **department line** — "What is the main line of Radiology?"

The operator answers each with what the directory shows (a name or a number); each answer is checked
against the snapshot and timed. The result, with the kit check, becomes a receipt signed with the
desktop's enrolment key: numbers, kinds, times and pass/fail only — never a name or number from the
directory, because receipts sit in shared inboxes in the clear.

This module must never import Qt. Questions are drawn with a caller's ``random.Random``, so a seed
gives the same drill again (tests, and IT re-running an operator's drill).
"""

from __future__ import annotations

import random
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz

from backup_operator.core import oncall
from backup_operator.core.model import digits_of, format_utc
from backup_operator.core.search.text import fold

__all__ = ["KINDS", "PASS_CORRECT", "TARGET_SECONDS", "Question", "Answer", "DrillResult", "Drill",
           "generate", "check_answer"]

KINDS = ("on call now", "extension", "reverse number", "as of", "department line")
PASS_CORRECT = 4          # of five: the drill passes with at most one wrong or skipped answer...
TARGET_SECONDS = 60.0     # ...and reports the look-ups slower than a caller should wait
NAME_SCORE = 85.0         # rapidfuzz token_set_ratio for a typed name to count as the person


@dataclass(frozen=True)
class Question:
    kind: str
    text: str
    accepted_names: tuple[str, ...] = ()    # display names that answer it
    accepted_numbers: tuple[str, ...] = ()  # digits that answer it
    listing_id: str = ""
    schedule_id: str = ""
    at: str = ""                            # the instant an on-call question is about, UTC
    shown: str = ""                         # the numbers as the directory writes them

    @property
    def wants(self) -> str:
        return "a number" if self.accepted_numbers else "a name"

    @property
    def expected(self) -> str:
        """The answer, as the directory shows it (for the operator after answering, and the paper report)."""
        if self.accepted_names:
            return " or ".join(self.accepted_names)
        return self.shown or " or ".join(self.accepted_numbers)


@dataclass(frozen=True)
class Answer:
    kind: str
    given: str
    correct: bool
    seconds: float
    skipped: bool = False


@dataclass
class DrillResult:
    drill_id: str
    desktop: str
    operator: str
    started_at: str
    finished_at: str
    snapshot_version: int
    data_as_of: str
    answers: list[Answer]
    kit: list[dict] = field(default_factory=list)   # [{"name": ..., "ok": ...}]
    seed: int | None = None

    @property
    def correct(self) -> int:
        return sum(a.correct for a in self.answers)

    @property
    def seconds(self) -> float:
        return round(sum(a.seconds for a in self.answers), 1)

    @property
    def kit_ok(self) -> bool:
        return all(k.get("ok") for k in self.kit) if self.kit else False

    @property
    def passed(self) -> bool:
        return self.correct >= PASS_CORRECT and self.kit_ok

    @property
    def slow(self) -> int:
        return sum(a.seconds > TARGET_SECONDS for a in self.answers)

    def receipt(self) -> dict:
        """What leaves the desktop: no directory data, only kinds, outcomes and times."""
        return {
            "kind": "drill",
            "format": 1,
            "drill_id": self.drill_id,
            "desktop": self.desktop,
            "operator": self.operator,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "snapshot_version": self.snapshot_version,
            "data_as_of": self.data_as_of,
            "answers": [{"kind": a.kind, "correct": a.correct, "skipped": a.skipped,
                         "seconds": round(a.seconds, 1)} for a in self.answers],
            "correct": self.correct,
            "questions": len(self.answers),
            "seconds": self.seconds,
            "kit": [{"name": str(k.get("name", "")), "ok": bool(k.get("ok"))} for k in self.kit],
            "kit_ok": self.kit_ok,
            "passed": self.passed,
        }

    def to_json(self) -> dict:
        doc = asdict(self)
        doc.update(correct=self.correct, seconds=self.seconds, passed=self.passed, kit_ok=self.kit_ok)
        return doc


# --- generating ------------------------------------------------------------------------------------------


def _numbers_of(conn: sqlite3.Connection, listing_id: str, kinds: Sequence[str] | None = None) -> list[tuple]:
    sql = "SELECT kind, value, digits FROM contact_methods WHERE listing_id = ? AND digits <> ''"
    args: list = [listing_id]
    if kinds:
        sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
        args += list(kinds)
    return conn.execute(sql + " ORDER BY rank, id", args).fetchall()


def _pick(rng: random.Random, rows: list) -> object | None:
    return rng.choice(rows) if rows else None


def _on_call_names(conn: sqlite3.Connection, schedule_id: str, at: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
    status = oncall.on_call_at(conn, schedule_id, at)
    tier = status.tiers[0] if status.tiers else None
    if tier is None or tier.nobody:
        return (), ()
    return tuple(e.name for e in tier.current), tuple(e.listing_id for e in tier.current)


def _schedules_covered(conn: sqlite3.Connection, at: datetime) -> list[tuple[str, str, str]]:
    stamp = format_utc(at)
    return conn.execute(
        "SELECT DISTINCT s.id, s.name, s.timezone FROM oncall_schedules s JOIN oncall_shifts h ON h.schedule_id = s.id "
        "WHERE h.start_utc <= ? AND h.end_utc > ? ORDER BY s.id", (stamp, stamp)).fetchall()


def _q_on_call_now(conn, rng, now) -> Question | None:
    choice = _pick(rng, _schedules_covered(conn, now))
    if choice is None:
        return None
    sid, name, _tz = choice
    names, ids = _on_call_names(conn, sid, now)
    if not names:
        return None
    return Question("on call now", f"Who is on call now for {name}?", accepted_names=names,
                    listing_id=ids[0], schedule_id=sid, at=format_utc(now))


def _q_extension(conn, rng, now) -> Question | None:
    rows = conn.execute("SELECT l.id, l.display_name, l.department FROM listings l WHERE l.kind = 'person' AND "
                        "EXISTS (SELECT 1 FROM contact_methods c WHERE c.listing_id = l.id AND c.kind = 'extension' "
                        "AND c.digits <> '') ORDER BY l.id").fetchall()
    row = _pick(rng, rows)
    if row is None:
        return None
    lid, name, dept = row
    rows = _numbers_of(conn, lid, ("extension",))
    numbers = tuple(dict.fromkeys(r[2] for r in rows))
    where = f" ({dept})" if dept else ""
    return Question("extension", f"What is the extension of {name}{where}?", accepted_numbers=numbers, listing_id=lid,
                    shown=" or ".join(dict.fromkeys(r[1] for r in rows)))


def _q_reverse(conn, rng, now) -> Question | None:
    # A number only one listing has, long enough to be a caller ID.
    rows = conn.execute("SELECT c.digits, MIN(c.value), MIN(c.listing_id) FROM contact_methods c "
                        "WHERE c.kind IN ('phone', 'mobile', 'pager', 'extension') AND length(c.digits) >= 4 "
                        "GROUP BY c.digits HAVING COUNT(DISTINCT c.listing_id) = 1 ORDER BY c.digits").fetchall()
    row = _pick(rng, rows)
    if row is None:
        return None
    _digits, value, lid = row
    name = conn.execute("SELECT display_name FROM listings WHERE id = ?", (lid,)).fetchone()[0]
    return Question("reverse number", f"A caller ID shows {value}. Whose number is it?", accepted_names=(name,),
                    listing_id=lid)


def _q_as_of(conn, rng, now) -> Question | None:
    # Some hours ahead, on a round half hour, when somebody is on call.
    for _ in range(20):
        ahead = timedelta(hours=rng.randint(6, 40), minutes=30 * rng.randint(0, 1))
        at = (now + ahead).replace(minute=0 if ahead.seconds % 3600 == 0 else 30, second=0, microsecond=0)
        choice = _pick(rng, _schedules_covered(conn, at))
        if choice is None:
            continue
        sid, name, tz = choice
        names, ids = _on_call_names(conn, sid, at)
        if names:
            wall = at.astimezone(ZoneInfo(tz)).strftime("%a %d %b %H:%M %Z")
            return Question("as of", f"Who will be on call for {name} on {wall}?", accepted_names=names,
                            listing_id=ids[0], schedule_id=sid, at=format_utc(at))
    return None


def _q_department(conn, rng, now) -> Question | None:
    rows = conn.execute("SELECT l.id, l.display_name FROM listings l WHERE l.kind = 'department' AND EXISTS "
                        "(SELECT 1 FROM contact_methods c WHERE c.listing_id = l.id AND c.digits <> '' AND "
                        "c.kind IN ('extension', 'phone')) ORDER BY l.id").fetchall()
    row = _pick(rng, rows)
    if row is None:
        return None
    lid, name = row
    numbers = _numbers_of(conn, lid, ("extension", "phone"))
    accepted = tuple(dict.fromkeys(r[2] for r in numbers))
    return Question("department line", f"What is the main line of {name}?", accepted_numbers=accepted, listing_id=lid,
                    shown=" or ".join(dict.fromkeys(r[1] for r in numbers)))


_MAKERS: dict[str, Callable] = {"on call now": _q_on_call_now, "extension": _q_extension,
                                "reverse number": _q_reverse, "as of": _q_as_of, "department line": _q_department}


def generate(conn: sqlite3.Connection, now: datetime, rng: random.Random) -> list[Question]:
    """One question of each kind the data allows (a directory without on-call data gets fewer)."""
    now = now.astimezone(timezone.utc)
    out = []
    for kind in KINDS:
        question = _MAKERS[kind](conn, rng, now)
        if question is not None:
            out.append(question)
    return out


# --- checking -------------------------------------------------------------------------------------------


def check_answer(question: Question, given: str) -> bool:
    """Is ``given`` what the directory says? Numbers by their digits; names forgivingly (typos, order,
    titles such as "Dr" or "MD"), but never a different person."""
    given = (given or "").strip()
    if not given:
        return False
    if question.accepted_numbers:
        digits = digits_of(given)
        return bool(digits) and any(digits == n or (len(digits) >= 4 and n.endswith(digits) and len(n) - len(digits) <= 6
                                                   and len(digits) >= min(len(n), 7))
                                    for n in question.accepted_numbers)
    folded = _name_words(given)
    if not folded:
        return False
    for name in question.accepted_names:
        target = _name_words(name)
        if folded == target or fuzz.token_set_ratio(" ".join(folded), " ".join(target)) >= NAME_SCORE and \
                fuzz.token_sort_ratio(" ".join(folded), " ".join(target)) >= 60:
            return True
    return False


_TITLES = {"dr", "doctor", "md", "do", "rn", "np", "pa", "phd", "mr", "mrs", "ms", "prof"}


def _name_words(text: str) -> list[str]:
    return sorted(w for w in fold(text).replace(",", " ").split() if w not in _TITLES)


# --- running ---------------------------------------------------------------------------------------------


class Drill:
    """One drill in progress: questions, the clock, and the answers so far.

    ``clock`` returns seconds (monotonic); ``now`` the wall time for the receipt. Both are injectable so
    a test can run a drill with a known duration.
    """

    def __init__(self, questions: list[Question], *, desktop: str, operator: str, snapshot_version: int,
                 data_as_of: datetime, now: Callable[[], datetime], clock: Callable[[], float],
                 seed: int | None = None):
        self.questions = questions
        self.desktop, self.operator = desktop, operator
        self.snapshot_version, self.data_as_of = snapshot_version, data_as_of
        self._now, self._clock = now, clock
        self.answers: list[Answer] = []
        self.started_at = now()
        self.drill_id = secrets.token_hex(8)
        self.seed = seed
        self._asked = clock()

    @property
    def done(self) -> bool:
        return len(self.answers) >= len(self.questions)

    @property
    def current(self) -> Question | None:
        return None if self.done else self.questions[len(self.answers)]

    def elapsed(self) -> float:
        """Seconds on the current question so far."""
        return self._clock() - self._asked

    def answer(self, given: str) -> Answer:
        question = self.current
        if question is None:
            raise IndexError("the drill is over")
        now = self._clock()
        result = Answer(question.kind, "", check_answer(question, given), round(max(0.0, now - self._asked), 2))
        self.answers.append(result)
        self._asked = now  # the next question's clock starts when this one is answered
        return result

    def skip(self) -> Answer:
        question = self.current
        if question is None:
            raise IndexError("the drill is over")
        now = self._clock()
        result = Answer(question.kind, "", False, round(max(0.0, now - self._asked), 2), skipped=True)
        self.answers.append(result)
        self._asked = now
        return result

    def finish(self, kit: list[dict]) -> DrillResult:
        return DrillResult(self.drill_id, self.desktop, self.operator, format_utc(self.started_at),
                           format_utc(self._now()), self.snapshot_version, format_utc(self.data_as_of),
                           list(self.answers), list(kit), self.seed)
