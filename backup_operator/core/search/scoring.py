"""Scoring: how the vocabulary words a query matched become one score per row, and the best rows.

Postings (CSR arrays) take matched words to rows: display names are stored per row; columns with few
distinct values (department, title, site, given name, …) once per distinct value ("phrases"), each
phrase with the rows that hold it.

A row's score is, per query word, the best quality of the vocabulary words it matched there (exact,
beginning, typo, sound-alike — ``candidates``; nickname — ``nicknames``, given names only; synonym) times
the weight of the field they are in, times the query word's rarity, summed over the query words; plus a
bonus for covering the whole name, only when every query word matched the row; plus whiskers of
preference for word order (the first of several name words matched as a given name, or as a surname
when a comma follows it) and by listing kind. Rarity is an IDF: a word that matches few rows counts up to
``1 + IDF_WEIGHT`` times one that matches every row, so in "bradley sribar" the rare surname that matched
outweighs the common given name. Equal scores are ordered by listing kind, then name, then row: the
same query always lists the same rows in the same order. This module never reads the snapshot.
"""

from __future__ import annotations

import math

import numpy as np

from backup_operator.core.search.arrays import first_of_each, gather_ranges
from backup_operator.core.search.fields import FIELD_CODE, FIELD_WEIGHT, GIVEN_FIELDS, NAME_FIELDS
from backup_operator.core.search.text import TITLES

__all__ = ["Postings", "POSTING_ARRAYS", "score_query", "top"]

#: The arrays this module stores in the index.
POSTING_ARRAYS = ("rt_off", "rt_rows", "rt_field", "pt_off", "pt_phr", "phrase_field", "pr_off", "pr_rows")

Q_SYNONYM = 0.98
Q_NICKNAME = (0.74, 0.80)                        # "bob" for Robert: below the exact name, and below a name it
                                                 # mostly begins (the operator may still be typing: "jon" is
                                                 # Jonathan before John); two letters ("al", "ed") lower still.
                                                 # Plus, as for every guess, a whisker for a common name.
HONORIFIC_WEIGHT = 0.1
COVERAGE_BONUS = 0.3                             # the query covers the whole name
ORDER_BONUS = np.float32(0.005)                  # the first name word matched the given name (surname after a comma)
IDF_WEIGHT = 0.5                                 # a word matching one row counts 1.5x one matching all


class Postings:
    """Vocabulary word -> rows, through per-row words and per-distinct-value phrases."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.rt_off, self.rt_rows, self.rt_field = arrays["rt_off"], arrays["rt_rows"], arrays["rt_field"]
        self.pt_off, self.pt_phr, self.phrase_field = arrays["pt_off"], arrays["pt_phr"], arrays["phrase_field"]
        self.pr_off, self.pr_rows = arrays["pr_off"], arrays["pr_rows"]

    def apply(self, ids: np.ndarray, quals: np.ndarray, fields: frozenset[int] | None,
              best: np.ndarray, name_hit: np.ndarray, mark: tuple[int, np.ndarray] | None = None) -> int:
        """Raise ``best`` to each matched row's quality times field weight; mark name-field hits (and, with
        ``mark`` = (field, array), the rows matched in that field). Returns how many postings it read
        (a row reached through two fields counts twice)."""
        touched = 0
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
            touched += len(rows)
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
                touched += len(rows)
                if mark is not None:
                    mark[1][rows[(self.phrase_field[phr] == mark[0])[rowner]]] = True
        return touched


def _score_part(index, part, ctx, mark=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Per row: the best quality for this query word and 1.0 where it matched a name field; and how
    many postings the word reached (its document frequency, for IDF)."""
    n = len(index)
    best = np.zeros(n, dtype=np.float32)
    name_hit = np.zeros(n, dtype=np.float32)
    touched = 0
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
            touched += index.postings.apply(ids, quals, part.fields, best, name_hit, mark)
        if not part.exact:
            touched += _apply_nicknames(index, word, part.fields, best, name_hit, ctx, mark)
        alternatives = index.synonyms.expand.get(word) if not part.exact else None
        if alternatives:
            touched += _apply_synonyms(index, alternatives, part.fields, best, name_hit, ctx)
    if word in TITLES and not part.exact:
        # "Dr", "Mr", "RN" say little about who: a whisker of score, and no part of covering a name
        best *= HONORIFIC_WEIGHT
        name_hit[:] = 0
    if word.isdigit() and len(word) >= 3 and (part.fields is None or part.numkinds is not None):
        rows, quals = index.numbers.rows(word, part.numkinds, exact=part.exact)
        if len(rows):
            ctx.numbers.append((word, part.numkinds, part.exact))
            np.maximum.at(best, rows, quals)
            touched += len(rows)
    return best, name_hit, touched


def _apply_nicknames(index, word, fields, best, name_hit, ctx, mark=None) -> int:
    """Given names related to the typed word by the nickname table, in given-name fields only."""
    related = index.nicknames.of(word)
    if not related:
        return 0
    vocab_ids = index.vocabulary.ids
    ids = np.array([vocab_ids[r] for r in related if r in vocab_ids], dtype=np.int64)
    where = GIVEN_FIELDS if fields is None else GIVEN_FIELDS & fields
    if not len(ids) or not where:
        return 0
    quals = (Q_NICKNAME[len(word) >= 3] + index.vocabulary.df_prior[ids]).astype(np.float32)
    ctx.word_terms.append((word, ids, quals))
    return index.postings.apply(ids, quals, where, best, name_hit, mark)


def _apply_synonyms(index, alternatives, fields, best, name_hit, ctx) -> int:
    n = len(index)
    touched = 0
    for words in alternatives:
        acc = None
        hits = np.zeros(n, dtype=np.float32)
        for w in words:
            ids, quals = index.vocabulary.match(w, "exact")
            b = np.zeros(n, dtype=np.float32)
            h = np.zeros(n, dtype=np.float32)
            if len(ids):
                ctx.word_terms.append((w, ids, quals))
                touched += index.postings.apply(ids, quals, fields, b, h)
            acc = b if acc is None else np.minimum(acc, b)
            hits += h
        if acc is None:
            continue
        acc *= Q_SYNONYM
        better = acc > best
        if better.any():
            best[better] = acc[better]
            name_hit[better] = hits[better]
    return touched


def score_query(index, parts, ctx, kinds: set[int] | None = None,
                family_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(rows that may be shown, their scores) for a parsed query, optionally of some listing kinds only.

    Only two passes over every row per query word (its qualities, and the running total); rarity,
    the whole-name bonus, requirements and priors are worked out for the matched rows alone.
    ``family_first``: the operator put a comma after the first word ("smith, john").
    """
    n = len(index)
    total = np.zeros(n, dtype=np.float32)
    matched = []
    # Word order, a whisker: of two people called "Thomas Scott" and "Scott Thomas", "scott thomas" means
    # the one whose given name is Scott ("thomas, scott" too). Only the first of two or more name words.
    name_parts = [p for p in parts if p.fields is None and not p.word.isdigit() and p.word not in TITLES]
    order = None
    if len(name_parts) >= 2:
        order = (FIELD_CODE["family_name" if family_first else "given_name"], np.zeros(n, dtype=bool))
    for part in parts:
        mark = order if order is not None and part is name_parts[0] else None
        best, hits, touched = _score_part(index, part, ctx, mark)
        total += best
        matched.append((part, best, hits, touched))
    keep = total > 0
    if kinds is not None:
        keep &= np.isin(index.kind, list(kinds))
    rows = np.flatnonzero(keep)
    scores = np.zeros(len(rows), dtype=np.float32)
    if not len(rows):
        return rows, scores
    name_hits = np.zeros(len(rows), dtype=np.float32)
    every_word = np.ones(len(rows), dtype=bool)
    required = np.ones(len(rows), dtype=bool)
    log_n = math.log(n + 1.0)
    for part, best, hits, touched in matched:
        b = best[rows]
        hit = b > 0
        rarity = math.log((n + 1.0) / (min(touched, n) + 1.0)) / log_n
        scores += b * np.float32(1.0 + IDF_WEIGHT * rarity)
        name_hits += hits[rows]
        if part.word not in TITLES or part.exact:
            every_word &= hit
        if part.required:
            required &= hit
    np.minimum(name_hits, index.name_len[rows], out=name_hits)
    name_hits *= index.inv_name_len[rows]
    name_hits *= COVERAGE_BONUS
    name_hits *= every_word               # the whole-name bonus only when every query word matched
    scores += name_hits
    if order is not None:
        scores += ORDER_BONUS * order[1][rows]
    scores += index.prior[rows]
    return rows[required], scores[required]


def top(rows: np.ndarray, scores: np.ndarray, limit: int, tie_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best ``limit`` (row, score): by score, then ``tie_key`` of the row (listing kind, then name)."""
    if len(rows) > limit:
        # The limit-th largest score, as the limit-th smallest of the negated scores: numpy's introselect
        # for a k near the end of an array of few distinct values (a one-letter query: every listing of a
        # site scores alike) took 8-25 ms at 100k rows and 160 ms at 1M; near the start it takes < 1 ms.
        kth = -np.partition(-scores, limit - 1)[limit - 1]
        above = np.flatnonzero(scores > kth)
        need = limit - len(above)
        at = np.flatnonzero(scores == kth)
        if len(at) > need:
            at = at[np.argpartition(tie_key[rows[at]], need - 1)[:need]] if need > 0 else at[:0]
        pick = np.concatenate([above, at])
        rows, scores = rows[pick], scores[pick]
    order = np.lexsort((tie_key[rows], -scores))
    return rows[order], scores[order]
