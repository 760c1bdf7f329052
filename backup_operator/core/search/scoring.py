"""Scoring: how the vocabulary words a query matched become one score per row, and the best rows.

Postings (CSR arrays) take matched words to rows: display names are stored per row; columns with few
distinct values (department, title, site, given name, …) once per distinct value ("phrases"), each
phrase with the rows that hold it.

A row's score is, per query word, the best quality of the vocabulary words it matched there (exact,
beginning, typo, sound-alike — ``candidates``; nickname — ``nicknames``, given names only; synonym) times
the weight of the field they are in, times the query word's rarity, summed over the query words; plus a
bonus for covering the whole name, only when every query word matched the row; plus a whisker of
preference by listing kind. Rarity is an IDF: a word that matches few rows counts up to
``1 + IDF_WEIGHT`` times one that matches every row, so in "bradley sribar" the rare surname that matched
outweighs the common given name. Equal scores are ordered by listing kind, then name, then row: the
same query always lists the same rows in the same order. This module never reads the snapshot.
"""

from __future__ import annotations

import numpy as np

from backup_operator.core.search.arrays import first_of_each, gather_ranges
from backup_operator.core.search.fields import FIELD_WEIGHT, GIVEN_FIELDS, NAME_FIELDS
from backup_operator.core.search.text import HONORIFICS

__all__ = ["Postings", "POSTING_ARRAYS", "score_query", "top"]

#: The arrays this module stores in the index.
POSTING_ARRAYS = ("rt_off", "rt_rows", "rt_field", "pt_off", "pt_phr", "phrase_field", "pr_off", "pr_rows")

Q_SYNONYM = 0.98
Q_NICKNAME = 0.84                                # "bob" for Robert: below the exact name
HONORIFIC_WEIGHT = 0.2
COVERAGE_BONUS = 0.3                             # the query covers the whole name
IDF_WEIGHT = 0.5                                 # a word matching one row counts 1.5x one matching all


class Postings:
    """Vocabulary word -> rows, through per-row words and per-distinct-value phrases."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.rt_off, self.rt_rows, self.rt_field = arrays["rt_off"], arrays["rt_rows"], arrays["rt_field"]
        self.pt_off, self.pt_phr, self.phrase_field = arrays["pt_off"], arrays["pt_phr"], arrays["phrase_field"]
        self.pr_off, self.pr_rows = arrays["pr_off"], arrays["pr_rows"]

    def apply(self, ids: np.ndarray, quals: np.ndarray, fields: frozenset[int] | None,
              best: np.ndarray, name_hit: np.ndarray) -> None:
        """Raise ``best`` to each matched row's quality times field weight; mark name-field hits."""
        # words stored per row (display names)
        idx, owner = gather_ranges(self.rt_off[ids], self.rt_off[ids + 1])
        if len(idx):
            rows, fcodes = self.rt_rows[idx], self.rt_field[idx]
            s = quals[owner] * FIELD_WEIGHT[fcodes]
            if fields is not None:
                ok = np.isin(fcodes, list(fields))
                rows, fcodes, s = rows[ok], fcodes[ok], s[ok]
            np.maximum.at(best, rows, s)
            name_hit[rows[NAME_FIELDS[fcodes]]] = 1.0
        # words stored per distinct column value (departments, titles, given names, ...)
        idx, owner = gather_ranges(self.pt_off[ids], self.pt_off[ids + 1])
        if len(idx):
            phr = self.pt_phr[idx]
            fcodes = self.phrase_field[phr]
            s = quals[owner] * FIELD_WEIGHT[fcodes]
            if fields is not None:
                ok = np.isin(fcodes, list(fields))
                phr, fcodes, s = phr[ok], fcodes[ok], s[ok]
            if len(phr):
                phr, s = first_of_each(phr, s)
                ridx, rowner = gather_ranges(self.pr_off[phr], self.pr_off[phr + 1])
                rows = self.pr_rows[ridx]
                np.maximum.at(best, rows, s[rowner])
                is_name = NAME_FIELDS[self.phrase_field[phr]]
                name_hit[rows[is_name[rowner]]] = 1.0


def _score_part(index, part, ctx) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the best quality for this query word and 1.0 where it matched a name field."""
    n = len(index)
    best = np.zeros(n, dtype=np.float32)
    name_hit = np.zeros(n, dtype=np.float32)
    word = part.word
    text_ok = part.numkinds is None or part.fields
    if text_ok:
        mode = "exact" if part.exact else ("prefix" if word.isdigit() else "fuzzy")
        if part.prefix_ok:
            mode = "prefix"
        ids, quals = (np.empty(0, np.int64), np.empty(0, np.float32))
        if part.fields is not None and mode == "fuzzy":
            # a field prefix asks for precision: typos only when the word itself is not there
            ids, quals = index.vocabulary.match(word, "prefix")
        if not len(ids):
            ids, quals = index.vocabulary.match(word, mode)
        if len(ids):
            ctx.word_terms.append((word, ids, quals))
            index.postings.apply(ids, quals, part.fields, best, name_hit)
        if not part.exact:
            _apply_nicknames(index, word, part.fields, best, name_hit, ctx)
        alternatives = index.synonyms.expand.get(word) if not part.exact else None
        if alternatives:
            _apply_synonyms(index, alternatives, part.fields, best, name_hit, ctx)
    if word in HONORIFICS and not part.exact:
        # "Dr", "Mr", "RN" say little about who: a whisker of score, and no part of covering a name
        best *= HONORIFIC_WEIGHT
        name_hit[:] = 0
    if word.isdigit() and len(word) >= 3 and (part.fields is None or part.numkinds is not None):
        rows, quals = index.numbers.rows(word, part.numkinds, exact=part.exact)
        if len(rows):
            ctx.numbers.append((word, part.numkinds, part.exact))
            np.maximum.at(best, rows, quals)
    return best, name_hit


def _apply_nicknames(index, word, fields, best, name_hit, ctx) -> None:
    """Given names related to the typed word by the nickname table, in given-name fields only."""
    related = index.nicknames.of(word)
    if not related:
        return
    vocab_ids = index.vocabulary.ids
    ids = np.array([vocab_ids[r] for r in related if r in vocab_ids], dtype=np.int64)
    where = GIVEN_FIELDS if fields is None else GIVEN_FIELDS & fields
    if not len(ids) or not where:
        return
    quals = np.full(len(ids), Q_NICKNAME, dtype=np.float32)
    ctx.word_terms.append((word, ids, quals))
    index.postings.apply(ids, quals, where, best, name_hit)


def _apply_synonyms(index, alternatives, fields, best, name_hit, ctx) -> None:
    n = len(index)
    for words in alternatives:
        acc = None
        hits = np.zeros(n, dtype=np.float32)
        for w in words:
            ids, quals = index.vocabulary.match(w, "exact")
            b = np.zeros(n, dtype=np.float32)
            h = np.zeros(n, dtype=np.float32)
            if len(ids):
                ctx.word_terms.append((w, ids, quals))
                index.postings.apply(ids, quals, fields, b, h)
            acc = b if acc is None else np.minimum(acc, b)
            hits += h
        if acc is None:
            continue
        acc *= Q_SYNONYM
        better = acc > best
        if better.any():
            best[better] = acc[better]
            name_hit[better] = hits[better]


def score_query(index, parts, ctx) -> tuple[np.ndarray, np.ndarray]:
    """(score per row, which rows may be shown) for a parsed query."""
    n = len(index)
    total = np.zeros(n, dtype=np.float32)
    name_hits = np.zeros(n, dtype=np.float32)
    consumed = np.zeros(n, dtype=np.uint8)
    counted = 0
    required = None
    log_n = float(np.log(n + 1.0))
    for part in parts:
        best, hits = _score_part(index, part, ctx)
        matched = best > 0
        df = int(np.count_nonzero(matched))
        if df:
            best *= np.float32(1.0 + IDF_WEIGHT * np.log((n + 1.0) / (df + 1.0)) / log_n)
        total += best
        name_hits += hits
        if part.word not in HONORIFICS or part.exact:
            consumed += matched
            counted += 1
        if part.required:
            required = matched if required is None else (required & matched)
    scored = total > 0
    np.minimum(name_hits, index.name_len, out=name_hits)
    name_hits *= index.inv_name_len
    name_hits *= COVERAGE_BONUS
    if counted:
        name_hits[consumed < counted] = 0     # the whole-name bonus only when every query word matched
    total += name_hits
    total += index.prior
    keep = scored if required is None else (scored & required)
    return total, keep


def top(rows: np.ndarray, scores: np.ndarray, limit: int, tie_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best ``limit`` (row, score): by score, then ``tie_key`` of the row (listing kind, then name)."""
    if len(rows) > limit:
        kth = np.partition(scores, len(scores) - limit)[len(scores) - limit]
        above = np.flatnonzero(scores > kth)
        need = limit - len(above)
        at = np.flatnonzero(scores == kth)
        if len(at) > need:
            at = at[np.argpartition(tie_key[rows[at]], need - 1)[:need]] if need > 0 else at[:0]
        pick = np.concatenate([above, at])
        rows, scores = rows[pick], scores[pick]
    order = np.lexsort((tie_key[rows], -scores))
    return rows[order], scores[order]
