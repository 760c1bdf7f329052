"""Results: what a hit is, the details read for it from the snapshot, and where to highlight it.

Highlighting spans are computed only when ``Hit.matches`` is read, from the vocabulary words the query
matched (kept in a ``QueryContext`` that lives as long as its hits) and the row's texts as stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from backup_operator.core.search.fields import FIELDS, NUMBER_KIND_CODE
from backup_operator.core.search.numbers import digit_match
from backup_operator.core.search.text import fold_with_origins, word_spans

__all__ = ["FieldMatch", "Hit", "QueryContext", "make_hits", "row_texts"]


@dataclass(frozen=True)
class FieldMatch:
    """One field of a hit that matched the query: its name, its text as stored, and [start, end) spans
    of the characters to highlight in ``text``."""

    field: str
    text: str
    spans: tuple[tuple[int, int], ...]


class QueryContext:
    """What one query matched, kept by its hits for highlighting (dies with them)."""

    __slots__ = ("index", "word_terms", "numbers", "_term_sets")

    def __init__(self, index):
        self.index = index
        self.word_terms: list[tuple[str, np.ndarray, np.ndarray]] = []   # (query word, term ids, qualities)
        self.numbers: list[tuple[str, frozenset[int] | None, bool]] = []  # (digits, kinds, exact)
        self._term_sets: list[tuple[str, frozenset[str]]] | None = None

    def term_sets(self) -> list[tuple[str, frozenset[str]]]:
        """(query word, the vocabulary words it matched), made on the first highlight only."""
        if self._term_sets is None:
            terms = self.index.vocabulary.terms
            self._term_sets = [(w, frozenset(terms[i] for i in ids.tolist())) for w, ids, _q in self.word_terms]
        return self._term_sets


@dataclass(eq=False)
class Hit:
    """One search result.

    ``kind`` is ``"listing"`` or ``"schedule"``; ``id`` is the listing's or on-call schedule's id;
    ``listing_kind`` is person/department/location/service (``"schedule"`` for a schedule);
    ``score`` orders the results (higher is better; not comparable across queries).
    ``matches`` (read lazily) says which fields matched and where.
    """

    kind: str
    id: str
    name: str
    score: float
    listing_kind: str
    _row: int = field(repr=False)
    _ctx: QueryContext = field(repr=False)

    @cached_property
    def matches(self) -> tuple[FieldMatch, ...]:
        return _highlight(self._ctx, self._row)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the fields that matched, best first."""
        return tuple(dict.fromkeys(m.field for m in self.matches))

    def to_json(self) -> dict:
        return {"kind": self.kind, "id": self.id, "name": self.name, "listing_kind": self.listing_kind,
                "score": round(self.score, 4),
                "matched": [{"field": m.field, "text": m.text, "spans": [list(s) for s in m.spans]}
                            for m in self.matches]}


def make_hits(index, rows: np.ndarray, scores: np.ndarray, ctx: QueryContext) -> list[Hit]:
    details = _details(index, rows.tolist())
    return [Hit(kind="schedule" if kind == "schedule" else "listing", id=ident, name=name,
                score=float(score), listing_kind=kind, _row=row, _ctx=ctx)
            for row, score, (ident, name, kind) in zip(rows.tolist(), scores.tolist(), details)]


def _details(index, rows: list[int]) -> list[tuple[str, str, str]]:
    """(id, display name, kind) for rows, read from the snapshot (a few dozen primary-key reads)."""
    out: dict[int, tuple[str, str, str]] = {}
    lrows = [r for r in rows if r < index.n_listings]
    if lrows:
        by_rowid = {int(index.rowid[r]): r for r in lrows}
        marks = ",".join("?" * len(by_rowid))
        for rowid, ident, name, kind in index.conn.execute(
                f"SELECT rowid, id, display_name, kind FROM listings WHERE rowid IN ({marks})", list(by_rowid)):
            out[by_rowid[rowid]] = (ident, name, kind)
    srows = [r for r in rows if r >= index.n_listings]
    if srows:
        by_rowid = {int(index.rowid[r]): r for r in srows}
        marks = ",".join("?" * len(by_rowid))
        for rowid, ident, name in index.conn.execute(
                f"SELECT rowid, id, name FROM oncall_schedules WHERE rowid IN ({marks})", list(by_rowid)):
            out[by_rowid[rowid]] = (ident, name, "schedule")
    return [out[r] for r in rows]


def row_texts(index, row: int) -> list[tuple[str, str]]:
    """(field, text) of every searchable text field of a row, read from the snapshot."""
    rowid = int(index.rowid[row])
    if row >= index.n_listings:
        r = index.conn.execute("SELECT name, department, site FROM oncall_schedules WHERE rowid = ?",
                               (rowid,)).fetchone()
        return [(f, v) for f, v in zip(("name", "department", "site"), r) if v]
    r = index.conn.execute(
        "SELECT display_name, given_name, middle_name, family_name, aliases, keywords, title, department,"
        " site, building, floor, room FROM listings WHERE rowid = ?", (rowid,)).fetchone()
    out = []
    for f, v in zip(FIELDS, r):
        if not v:
            continue
        if f in ("alias", "keyword"):
            try:
                items = json.loads(v)
            except json.JSONDecodeError:
                items = [v]
            out.extend((f, str(item)) for item in items if item)
        else:
            out.append((f, v))
    given, middle, family = r[1], r[2], r[3]
    if given and family:
        out.append(("name", " ".join(x for x in (given, middle, family) if x)))
    return out


def _highlight(ctx: QueryContext, row: int) -> tuple[FieldMatch, ...]:
    index = ctx.index
    matches: list[FieldMatch] = []
    term_sets = ctx.term_sets()
    display_matched = False
    for f, text in row_texts(index, row):
        if display_matched and f in ("given_name", "middle_name", "family_name", "name"):
            continue  # the display name already shows the person's name
        folded, origins = fold_with_origins(text)
        spans = []
        for w, s, e in word_spans(folded):
            for qword, terms in term_sets:
                if w in terms:
                    end = s + len(qword) if (w.startswith(qword) and len(qword) < len(w)
                                             and folded[s:s + len(qword)] == qword) else e
                    spans.append((origins[s], origins[end - 1] + 1))
                    break
        if spans:
            if f == "name" and not matches:
                display_matched = True
            matches.append(FieldMatch(f, text, tuple(_merge_spans(spans))))
    if ctx.numbers and row < index.n_listings:
        lid = index.conn.execute("SELECT id FROM listings WHERE rowid = ?", (int(index.rowid[row]),)).fetchone()[0]
        for kind, value, digits in index.conn.execute(
                "SELECT kind, value, digits FROM contact_methods WHERE listing_id = ? ORDER BY rank, id", (lid,)):
            if kind not in NUMBER_KIND_CODE or not digits:
                continue
            for qd, kinds, exact in ctx.numbers:
                if kinds is not None and NUMBER_KIND_CODE[kind] not in kinds:
                    continue
                where = digit_match(digits, qd, exact)
                if where is None:
                    continue
                positions = [i for i, ch in enumerate(value) if ch.isdigit()]
                a, b = where
                matches.append(FieldMatch(kind, value, ((positions[a], positions[b - 1] + 1),)))
                break
    # a whole name first, then the rest in field order
    return tuple(sorted(matches, key=lambda m: (m.field not in ("name", "given_name", "family_name"),)))


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    out = [spans[0]]
    for s, e in spans[1:]:
        if s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
