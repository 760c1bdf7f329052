"""Questions about who is on call: "ED on call", "who is on call for cards", "pharmacist oncall".

An operator who types "on call" (or "oncall", "on-call", "on duty") wants a schedule, not a person or a
service whose name happens to contain the words: "ED on call" must put Emergency Medicine's on-call
schedule first, not "Chaplain on Call". ``parse`` finds the question and the words it is about
(``what``: "ED"); ``rank_schedules`` orders the on-call schedules for those words:

1. Schedules the search index finds for the words (``kind:schedule``, so its synonyms and typo
   tolerance apply: "ED" is Emergency Medicine, "cards" is Cardiology, "icu" is Critical Care),
   fewest unexplained name words first — "icu" means Critical Care before *Neonatal* Intensive Care,
   "cards" Cardiology before *Interventional* Cardiology.
2. When no schedule matches the words themselves: the schedules of the departments that the words'
   best listings belong to. "hospitalist" finds people titled hospitalist, most of them in Hospital
   Medicine, so its schedule. This catches roles that no synonym lists.

``Session.search`` puts these schedules first and the ordinary results after them. The words "on call"
alone list every schedule. This module must never import Qt; it reads the directory only through the
search index's public API and the callbacks it is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["OnCallQuestion", "parse", "rank_schedules"]

# "on call", "on-call", "oncall", "on duty" — as whole words, anywhere in the query.
# "oncall-smith" is a name (a joiner binds it to the next word), "on-call" is the question.
_MARKER = re.compile(r"(?<![\w'&/-])(?:on[\s\-_]*call|on[\s\-_]+duty)(?![\w]|[-'&/]\w)", re.IGNORECASE)
# Words that only make the question a sentence; they say nothing about which department.
_FILLER = frozenset("""who whos who's is are for the in at of now right currently today tonight from
    page paging please""".split())
_NAME_NOISE = frozenset({"on", "call", "oncall", "duty"})  # words every schedule name may carry
_WORD = re.compile(r"[^\W_]+(?:['’\-&/][^\W_]+)*")  # "l&d", "o'brien" stay one word, as in the index

MAX_FIRST = 5  # schedules put before the ordinary results
UNEXPLAINED_COST = 0.1  # per name word the question did not match (a search score is about 1 per word)


@dataclass(frozen=True)
class OnCallQuestion:
    query: str  # as typed
    what: str  # the words it is about ("ED", "cards", "pharmacist"); empty for every schedule


class _Hit(Protocol):
    kind: str
    id: str
    name: str
    matches: Sequence


class _Index(Protocol):
    def search(self, query: str, limit: int = 50) -> list[_Hit]: ...


class _Schedule(Protocol):
    id: str
    name: str
    department: str


def parse(query: str) -> OnCallQuestion | None:
    """The on-call question in ``query``, or None when it does not ask who is on call."""
    if not _MARKER.search(query or ""):
        return None
    rest = _MARKER.sub(" ", query)
    words = [w for w in _WORD.findall(rest) if w.lower().replace("’", "'") not in _FILLER]
    return OnCallQuestion(query, " ".join(words))


def _unexplained(hit: _Hit) -> int:
    """How many words of the schedule's name the query did not match ("Neonatal" for "icu")."""
    spans = next((m.spans for m in hit.matches if m.field == "name" and m.text == hit.name), ())
    count = 0
    for word in _WORD.finditer(hit.name):
        if word.group().lower() in _NAME_NOISE:
            continue
        if not any(a < word.end() and b > word.start() for a, b in spans):
            count += 1
    return count


def _name_spans(hit: _Hit) -> tuple[tuple[int, int], ...]:
    return tuple(next((m.spans for m in hit.matches if m.field == "name" and m.text == hit.name), ()))


def rank_schedules(question: OnCallQuestion, index: _Index | None, schedules: Iterable[_Schedule],
                   departments_of: Callable[[list[str]], Mapping[str, str]],
                   limit: int = MAX_FIRST) -> list[tuple[str, tuple[tuple[int, int], ...]]]:
    """The schedules ``question`` asks about, best first, as (schedule id, name spans to highlight).

    ``index`` is the snapshot's ``SearchIndex`` (None when search runs in its plain fallback: then the
    words are matched as plain text); ``departments_of`` maps listing ids to their departments.
    """
    known = {s.id: s for s in schedules}
    if not question.what:
        return [(s.id, ()) for s in sorted(known.values(), key=lambda s: s.name.lower())][:max(limit, len(known))]
    if index is None:
        words = question.what.lower().split()
        plain = [s for s in known.values() if all(w in f"{s.name} {s.department}".lower() for w in words)]
        return [(s.id, ()) for s in sorted(plain, key=lambda s: s.name.lower())][:limit]

    ranked: list[tuple[str, tuple[tuple[int, int], ...]]] = []
    direct = [h for h in index.search(f"kind:schedule {question.what}", 50) if h.kind == "schedule" and h.id in known]
    # The index's score, less a little for every name word the question did not explain; weak guesses
    # (less than half the best) are left to the ordinary results below.
    adjusted = [h.score - UNEXPLAINED_COST * _unexplained(h) for h in direct]
    best = max(adjusted, default=0.0)
    order = sorted((n for n in range(len(direct)) if adjusted[n] >= 0.5 * best), key=lambda n: (-adjusted[n], n))
    ranked += [(direct[n].id, _name_spans(direct[n])) for n in order]

    if not ranked:
        # Department vote: the departments of the listings the words find best, weighted by rank.
        listings = [h for h in index.search(question.what, 30) if h.kind == "listing"]
        departments = departments_of([h.id for h in listings])
        votes: dict[str, float] = {}
        for n, hit in enumerate(listings):
            department = departments.get(hit.id, "").lower()
            if department:
                votes[department] = votes.get(department, 0.0) + 1.0 / (1 + n)
        seen = {sid for sid, _ in ranked}
        voted = [s for s in known.values() if s.id not in seen and s.department.lower() in votes]
        voted.sort(key=lambda s: (-votes[s.department.lower()], s.name.lower()))
        ranked += [(s.id, ()) for s in voted]
    return ranked[:limit]
