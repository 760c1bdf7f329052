"""Directory search: typo-tolerant, word-order-free, by name, department, title, place, alias and number.

An operator types while a caller waits, so the index is built (or loaded) once per snapshot and every
keystroke is answered from memory in about a millisecond. Python API::

    index = SearchIndex.open(conn)            # load the snapshot's prebuilt index, or build one
    hits = index.search("jonh smtih", limit=50)
    hits[0].kind, hits[0].id, hits[0].name, hits[0].score
    hits[0].matches                           # (FieldMatch(field, text, spans), ...) for highlighting
    index.reverse_lookup("+1 (608) 555-4471") # who owns the number on the caller ID

Query language (what an operator may type):

- words in any order, partial ("smi joh") or misspelled ("jonh smtih", "cardiolgy");
- numbers with any punctuation: "4471" finds extension 4471 and 608-555-4471 (a number matches whole,
  as its ending, or as its beginning, never in the middle);
- synonyms from ``resources/synonyms.toml`` ("cards", "ER", "peds");
- field prefixes, which also make the word required: ``name:`` ``first:`` ``last:`` ``alias:`` ``kw:``
  ``title:`` ``dept:`` ``site:`` ``building:`` ``floor:`` ``room:`` ``loc:`` (site, building, floor or
  room), ``ext:`` ``phone:`` ``mobile:`` ``pager:`` ``fax:`` ``num:``, and ``kind:`` (person,
  department, location, service, schedule);
- quotes for exact mode: ``"smith"`` matches the word smith only (not Smithson, not Smyth);
  ``"john smith"`` needs those words next to each other in one field; ``"4471"`` needs that exact number.
  An unclosed quote (still typing) counts as closed.

How it works (see ``docs/DESIGN.md`` for the long version): every searchable text is folded
(``core.textnorm``) and split into words; the distinct words form a vocabulary with a padded-trigram
index. A query word is matched against the vocabulary — exactly, as a prefix, or within one or two edits
(optimal string alignment, so a transposition is one edit), verified with rapidfuzz — and each matched
vocabulary word carries a quality. Postings (numpy CSR arrays) take the matched words to rows; a row's
score is, per query word, the best quality times the weight of the field it matched, summed over the
query words, plus a bonus for covering the whole name. Columns with few distinct values (department,
title, site, given name, …) are indexed once per distinct value, not once per row. Numbers live in two
sorted arrays of base-11 encoded digit strings, forwards and reversed, so that a number's beginning and
its ending are both one binary search.

Per keystroke the work is proportional to the rows the query words match; nothing grows with the
number of queries asked. Highlighting spans are computed only when ``Hit.matches`` is read.

This module must never import Qt or cryptography, never write the directory anywhere, and never use
the process's local time zone.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
import sqlite3
import sys
import threading
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TextIO

import numpy as np
from rapidfuzz import process as rf_process
from rapidfuzz.distance import OSA

from backup_operator.core.textnorm import fold, fold_with_origins, index_words, query_words, word_spans
from backup_operator.resources import resource_path

__all__ = [
    "SearchIndex",
    "Hit",
    "FieldMatch",
    "Synonyms",
    "load_synonyms",
    "default_synonyms_path",
    "run_search_cli",
    "store_index",
    "INDEX_FORMAT",
]

log = logging.getLogger(__name__)

#: Version of the serialised index (``SearchIndex.to_bytes``); a snapshot carrying another is rebuilt.
INDEX_FORMAT = "backup-operator/search-index/1"

# ---------------------------------------------------------------------------------------------- fields

#: Searchable fields, their weight (how much a match there counts) and where they come from.
FIELDS = ("name", "given_name", "middle_name", "family_name", "alias", "keyword",
          "title", "department", "site", "building", "floor", "room")
_F = {name: code for code, name in enumerate(FIELDS)}
_FIELD_WEIGHT = np.array([1.0, 1.0, 0.8, 1.0, 0.95, 0.6, 0.55, 0.65, 0.45, 0.4, 0.3, 0.45], dtype=np.float32)
_NAME_FIELDS = np.zeros(len(FIELDS), dtype=bool)
_NAME_FIELDS[[_F["name"], _F["given_name"], _F["middle_name"], _F["family_name"], _F["alias"]]] = True

#: Number kinds indexed by digits (email is not a number).
NUMBER_KINDS = ("extension", "phone", "mobile", "pager", "fax", "voip", "overhead")
_NK = {name: code for code, name in enumerate(NUMBER_KINDS)}

LISTING_KINDS = ("person", "department", "location", "service", "schedule")
_KIND_CODE = {name: code for code, name in enumerate(LISTING_KINDS)}
_SCHEDULE = _KIND_CODE["schedule"]
# A whisker of preference when everything else ties: a department's main line before a person.
_KIND_PRIOR = np.array([0.0, 0.004, 0.002, 0.003, 0.001], dtype=np.float32)

_PREFIXES: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
for _names, _fields, _nums in [
    (("name",), ("name", "given_name", "middle_name", "family_name", "alias"), ()),
    (("first", "given"), ("given_name",), ()),
    (("middle",), ("middle_name",), ()),
    (("last", "family", "surname"), ("family_name",), ()),
    (("alias", "aka"), ("alias",), ()),
    (("kw", "keyword", "tag"), ("keyword",), ()),
    (("title", "role", "job"), ("title",), ()),
    (("dept", "department", "dep", "unit"), ("department",), ()),
    (("site", "hospital"), ("site",), ()),
    (("building", "bldg"), ("building",), ()),
    (("floor", "fl"), ("floor",), ()),
    (("room", "rm"), ("room",), ()),
    (("loc", "location", "where"), ("site", "building", "floor", "room"), ()),
    (("ext", "extension", "x"), (), ("extension",)),
    (("phone", "tel", "dd", "did"), (), ("phone", "voip")),
    (("mobile", "cell", "mob"), (), ("mobile",)),
    (("pager", "bleep", "page"), (), ("pager", "overhead")),
    (("fax",), (), ("fax",)),
    (("num", "number", "no"), (), NUMBER_KINDS),
]:
    for _n in _names:
        _PREFIXES[_n] = (frozenset(_F[f] for f in _fields), frozenset(_NK[k] for k in _nums))

_HONORIFICS = frozenset("dr mr mrs ms miss mx prof md do rn phd np pa jr sr ii iii".split())

# Scoring constants (tuned on bench/search; see the bench README for the effect of each).
_Q_EXACT = 1.0
_Q_PREFIX_BASE, _Q_PREFIX_SPAN = 0.72, 0.18       # prefix: base + span * typed/len(word)
_Q_TYPO = (1.0, 0.78, 0.56)                       # whole word within 0, 1, 2 edits
_Q_TYPO_PREFIX = (0.0, 0.62, 0.48)                # beginning of a word within 1, 2 edits
_Q_SYNONYM = 0.98
_Q_INITIAL = 0.7
_HONORIFIC_WEIGHT = 0.2
_Q_NUMBER_EXACT, _Q_NUMBER_END, _Q_NUMBER_START = 1.0, 0.95, 0.85
_COVERAGE_BONUS = 0.3                             # the query covers the whole name
_DF_PRIOR = 0.012                                 # a common word is a likelier guess than a rare one
_MAX_PREFIX_TERMS = 5000
_MAX_FUZZY_CANDIDATES = 3000
_NUM_WIDTH = 18                                   # digits kept per number (E.164 has at most 15)
_COPY_MAX_BYTES = 160 * 1024 * 1024               # read numbers in parallel on a copy below this size

# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FieldMatch:
    """One field of a hit that matched the query: its name, its text as stored, and [start, end) spans
    of the characters to highlight in ``text``."""

    field: str
    text: str
    spans: tuple[tuple[int, int], ...]


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
    _ctx: "_QueryContext" = field(repr=False)

    @cached_property
    def matches(self) -> tuple[FieldMatch, ...]:
        return self._ctx.index._highlight(self._row, self._ctx)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the fields that matched, best first."""
        return tuple(dict.fromkeys(m.field for m in self.matches))

    def to_json(self) -> dict:
        return {"kind": self.kind, "id": self.id, "name": self.name, "listing_kind": self.listing_kind,
                "score": round(self.score, 4),
                "matched": [{"field": m.field, "text": m.text, "spans": [list(s) for s in m.spans]}
                            for m in self.matches]}


# -------------------------------------------------------------------------------------------- synonyms


@dataclass(frozen=True)
class Synonyms:
    """Folded query word -> alternatives, each a tuple of folded words that must all match."""

    expand: Mapping[str, tuple[tuple[str, ...], ...]]

    @classmethod
    def from_mapping(cls, data: Mapping) -> "Synonyms":
        expand: dict[str, list[tuple[str, ...]]] = {}

        def add(key: str, phrase: str) -> None:
            k = "".join(query_words(fold(key)))
            words = tuple(query_words(fold(phrase)))
            if k and words and words != (k,) and words not in expand.setdefault(k, []):
                expand[k].append(words)

        for key, phrases in (data.get("expand") or {}).items():
            for phrase in ([phrases] if isinstance(phrases, str) else phrases):
                add(key, phrase)
        for group in (data.get("equivalent") or {}).get("groups", []):
            for word in group:
                for other in group:
                    if other != word:
                        add(word, other)
        return cls({k: tuple(v) for k, v in expand.items()})


def default_synonyms_path() -> Path:
    """The shipped ``resources/synonyms.toml`` (see ``backup_operator.resources`` for where it is looked for)."""
    try:
        return resource_path("synonyms.toml")
    except FileNotFoundError:
        return Path(__file__).resolve().parents[2] / "resources" / "synonyms.toml"  # reported by load_synonyms


def load_synonyms(path: Path | str | None = None) -> Synonyms:
    """Read a synonyms file. Without a path, the shipped one; if that is missing, none (logged)."""
    target = Path(path) if path is not None else default_synonyms_path()
    try:
        with open(target, "rb") as fh:
            return Synonyms.from_mapping(tomllib.load(fh))
    except FileNotFoundError:
        if path is not None:
            raise
        log.warning("no synonyms file at %s; searching without synonyms", target)
        return Synonyms({})


_DEFAULT_SYNONYMS: Synonyms | None = None


def _default_synonyms() -> Synonyms:
    global _DEFAULT_SYNONYMS
    if _DEFAULT_SYNONYMS is None:
        _DEFAULT_SYNONYMS = load_synonyms()
    return _DEFAULT_SYNONYMS


# ---------------------------------------------------------------------------------------- array helpers


def _ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the index ranges [starts[i], ends[i]); also say which i each element came from."""
    lens = (ends - starts).astype(np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    owner = np.repeat(np.arange(len(lens)), lens)
    first = np.cumsum(lens) - lens
    return np.arange(total, dtype=np.int64) + (starts.astype(np.int64) - first)[owner], owner


def _argsort_keys(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative int keys: one or two 16-bit radix passes (much faster than timsort)."""
    if len(keys) == 0:
        return np.empty(0, np.int64)
    if int(keys.max()) < 65536:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = (keys >> 16).astype(np.uint16) if int(keys.max()) < (1 << 32) else None
    if high is None:
        return np.argsort(keys, kind="stable")
    return order[np.argsort(high[order], kind="stable")]


def _csr(keys: np.ndarray, n_keys: int, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Group ``values`` by ``keys`` (0 <= key < n_keys): offsets[n_keys + 1] and the grouped values."""
    counts = np.bincount(keys, minlength=n_keys) if len(keys) else np.zeros(n_keys, np.int64)
    offsets = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    order = _argsort_keys(keys)
    return (offsets, *(v[order] for v in values))


def _codes(values: list) -> tuple[np.ndarray, list]:
    """Dense codes for a list of hashable values, and the distinct values in code order (C-speed)."""
    table = dict.fromkeys(values)
    distinct = list(table)
    for i, key in enumerate(distinct):
        table[key] = i
    return np.fromiter(map(table.__getitem__, values), dtype=np.int32, count=len(values)), distinct


# Alphabet for vocabulary trigrams: 0 = padding, a-z, 0-9, 37 = any other letter.
_ALPHA = 38
_CHAR_CODE = np.full(128, 37, dtype=np.int32)
for _i, _c in enumerate("abcdefghijklmnopqrstuvwxyz0123456789"):
    _CHAR_CODE[ord(_c)] = _i + 1
_TRI_WIDTH = 24


def _term_trigrams(terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(term id, trigram id) pairs for ' '+term, vectorised over the whole vocabulary."""
    if not terms:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    arr = np.array(terms, dtype=f"U{_TRI_WIDTH}").view(np.uint32).reshape(len(terms), _TRI_WIDTH)
    codes = np.where(arr < 128, _CHAR_CODE[np.minimum(arr, 127)], 37)
    codes[arr == 0] = 0
    lens = np.minimum(np.fromiter(map(len, terms), dtype=np.int64, count=len(terms)), _TRI_WIDTH)
    padded = np.zeros((len(terms), _TRI_WIDTH + 1), dtype=np.int32)
    padded[:, 1:] = codes
    tri = (padded[:, :-2] * _ALPHA + padded[:, 1:-1]) * _ALPHA + padded[:, 2:]
    valid = np.arange(_TRI_WIDTH - 1)[None, :] + 2 <= lens[:, None]
    term_of, _pos = np.nonzero(valid)
    return term_of, tri[valid].astype(np.int64)


def _query_trigrams(word: str) -> np.ndarray:
    codes = [0] + [int(_CHAR_CODE[ord(c)]) if ord(c) < 128 else 37 for c in word[:_TRI_WIDTH]]
    return np.unique(np.array([(codes[i] * _ALPHA + codes[i + 1]) * _ALPHA + codes[i + 2]
                               for i in range(len(codes) - 2)], dtype=np.int64))


_POW11 = 11 ** np.arange(_NUM_WIDTH - 1, -1, -1, dtype=np.int64)


def _encode_digits(matrix: np.ndarray) -> np.ndarray:
    """Rows of digit values (1..10, 0 = padding) -> int64 keys whose order is the strings' order."""
    out = np.zeros(len(matrix), dtype=np.int64)
    for j in range(_NUM_WIDTH):
        out *= 11
        out += matrix[:, j]
    return out


def _digit_key(digits: str) -> int:
    return sum((int(d) + 1) * 11 ** (_NUM_WIDTH - 1 - i) for i, d in enumerate(digits[:_NUM_WIDTH]))


def _key_range(digits: str) -> tuple[int, int]:
    """[lo, hi] of the keys of every digit string that starts with ``digits``."""
    lo = _digit_key(digits)
    return lo, lo + 11 ** (_NUM_WIDTH - min(len(digits), _NUM_WIDTH)) - 1


# ------------------------------------------------------------------------------------------ the index

_ARRAYS = ("kind", "rowid", "name_len", "rt_off", "rt_rows", "rt_field", "pt_off", "pt_phr", "phrase_field",
           "pr_off", "pr_rows", "tri_off", "tri_terms", "term_len", "df_prior", "sorted_ids",
           "num_fwd", "num_fwd_row", "num_fwd_kind", "num_rev", "num_rev_row", "num_rev_kind")


class _QueryContext:
    """What one query matched, kept by its hits for highlighting (dies with them)."""

    __slots__ = ("index", "word_terms", "numbers", "_term_sets")

    def __init__(self, index: "SearchIndex"):
        self.index = index
        self.word_terms: list[tuple[str, np.ndarray, np.ndarray]] = []   # (query word, term ids, qualities)
        self.numbers: list[tuple[str, frozenset[int] | None, bool]] = []  # (digits, kinds, exact)
        self._term_sets: list[tuple[str, frozenset[str]]] | None = None

    def term_sets(self) -> list[tuple[str, frozenset[str]]]:
        """(query word, the vocabulary words it matched), made on the first highlight only."""
        if self._term_sets is None:
            terms = self.index._terms
            self._term_sets = [(w, frozenset(terms[i] for i in ids.tolist())) for w, ids, _q in self.word_terms]
        return self._term_sets


@dataclass
class _Part:
    word: str
    fields: frozenset[int] | None = None      # restrict to these fields (None: any)
    numkinds: frozenset[int] | None = None    # restrict numbers to these kinds
    exact: bool = False
    required: bool = False
    phrase: tuple[str, ...] | None = None     # quoted words that must be adjacent (set on the first)
    prefix_ok: bool = False                   # last word of a still-open quote: may be a beginning


class SearchIndex:
    """The search index of one snapshot: built or loaded once, then queried on every keystroke.

    Thread-safe for concurrent ``search`` calls (it is read-only after opening; the SQLite connection
    it reads hit details from serialises access itself).
    """

    # ------------------------------------------------------------------------------------ opening

    def __init__(self, conn: sqlite3.Connection, arrays: dict[str, np.ndarray], terms: list[str],
                 synonyms: Synonyms, n_listings: int):
        self._conn = conn
        self._synonyms = synonyms
        self._n_listings = n_listings
        for name in _ARRAYS:
            setattr(self, "_" + name, arrays[name])
        self._n = len(self._kind)
        self._terms = terms
        self._term_id = {t: i for i, t in enumerate(terms)}
        self._sorted_terms = [terms[i] for i in self._sorted_ids.tolist()]
        self._n_terms = len(terms)
        self._prior = _KIND_PRIOR[self._kind]
        self._inv_name_len = (1.0 / np.maximum(self._name_len, 1)).astype(np.float32)

    @classmethod
    def open(cls, conn: sqlite3.Connection, *, synonyms: Synonyms | None = None) -> "SearchIndex":
        """The index for a snapshot: loaded from its ``search_index`` table if it carries one of this
        format that matches its rows, else built from the rows (``build``)."""
        try:
            row = conn.execute("SELECT data FROM search_index WHERE format = ?", (INDEX_FORMAT,)).fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is not None:
            try:
                return cls.from_bytes(conn, bytes(row[0]), synonyms=synonyms)
            except ValueError as exc:
                log.warning("the snapshot's search index does not fit its rows (%s); rebuilding", exc)
        return cls.build(conn, synonyms=synonyms)

    @classmethod
    def build(cls, conn: sqlite3.Connection, *, synonyms: Synonyms | None = None) -> "SearchIndex":
        """Build the index from the snapshot's rows (bulk SQL reads and numpy; no per-row Python objects
        beyond one string per row and column while building)."""
        arrays, terms, n_listings = _build_arrays(conn)
        return cls(conn, arrays, terms, synonyms or _default_synonyms(), n_listings)

    def to_bytes(self) -> bytes:
        """The index, serialised for storing inside a snapshot (see ``store_index``)."""
        header = {"format": INDEX_FORMAT, "n_listings": self._n_listings, "arrays": []}
        blobs = []
        offset = 0
        for name in _ARRAYS:
            arr = np.ascontiguousarray(getattr(self, "_" + name))
            header["arrays"].append([name, arr.dtype.str, list(arr.shape), offset])
            blobs.append(arr.tobytes())
            offset += len(blobs[-1])
        terms = "\n".join(self._terms).encode("utf-8")
        header["terms"] = [offset, len(terms)]
        head = json.dumps(header).encode("utf-8")
        return len(head).to_bytes(8, "little") + head + b"".join(blobs) + terms

    @classmethod
    def from_bytes(cls, conn: sqlite3.Connection, data: bytes, *,
                   synonyms: Synonyms | None = None) -> "SearchIndex":
        """Load an index made by ``to_bytes``; ``ValueError`` if it is of another format or other rows."""
        try:
            size = int.from_bytes(data[:8], "little")
            header = json.loads(data[8:8 + size])
            if header.get("format") != INDEX_FORMAT:
                raise ValueError(f"index format {header.get('format')!r}")
            body = memoryview(data)[8 + size:]
            arrays = {}
            for name, dtype, shape, offset in header["arrays"]:
                count = int(np.prod(shape))
                arrays[name] = np.frombuffer(body, dtype=np.dtype(dtype), count=count,
                                             offset=offset).reshape(shape)
            t_off, t_len = header["terms"]
            text = bytes(body[t_off:t_off + t_len]).decode("utf-8")
            terms = text.split("\n") if text else []
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"damaged search index ({exc})") from exc
        n_listings = int(header["n_listings"])
        counts = conn.execute("SELECT (SELECT count(*) FROM listings), (SELECT count(*) FROM oncall_schedules),"
                              " (SELECT max(rowid) FROM listings)").fetchone()
        if (counts[0] != n_listings or counts[0] + counts[1] != len(arrays["kind"])
                or (n_listings and int(arrays["rowid"][n_listings - 1]) != counts[2])):
            raise ValueError("row counts differ")
        return cls(conn, arrays, terms, synonyms or _default_synonyms(), n_listings)

    def __len__(self) -> int:
        return self._n

    # ------------------------------------------------------------------------------------ querying

    def search(self, query: str, limit: int = 50) -> list[Hit]:
        """The best ``limit`` listings and on-call schedules for ``query``, best first."""
        parts, kinds = _parse(query)
        if not parts or limit <= 0:
            return []
        n = self._n
        ctx = _QueryContext(self)
        total = np.zeros(n, dtype=np.float32)
        name_hits = np.zeros(n, dtype=np.float32)
        required = None
        phrases: list[tuple[str, ...]] = []
        for part in parts:
            best, hits = self._score_part(part, ctx)
            total += best
            name_hits += hits
            if part.required:
                ok = best > 0
                required = ok if required is None else (required & ok)
            if part.phrase and len(part.phrase) > 1:
                phrases.append(part.phrase)
        scored = total > 0
        np.minimum(name_hits, self._name_len, out=name_hits)
        name_hits *= self._inv_name_len
        name_hits *= _COVERAGE_BONUS
        total += name_hits
        total += self._prior
        keep = scored if required is None else (scored & required)
        if kinds is not None:
            keep &= np.isin(self._kind, list(kinds))
        candidates = np.flatnonzero(keep)
        if not len(candidates):
            return []
        scores = total[candidates]
        rows, scores = self._top(candidates, scores, limit if not phrases else max(limit * 4, 200))
        if phrases:
            good = self._phrase_filter(rows, phrases)
            rows, scores = rows[good][:limit], scores[good][:limit]
        return self._hits(rows, scores, ctx)

    def reverse_lookup(self, number: str, limit: int = 20) -> list[Hit]:
        """Who owns this number (caller ID)? Exact digits first; else the longest ending of at least seven
        digits shared with a stored number (so "+1 608 555 4471" finds 608-555-4471, and
        "+44 1632 960123" finds 01632 960123). Returns listings only, best first."""
        digits = "".join(ch for ch in number if ch.isdigit())
        ctx = _QueryContext(self)
        if len(digits) < 3:
            return []
        rows, quals = self._number_rows(digits, None, exact=True)
        if not len(rows):
            for k in range(len(digits) - 1, 6, -1):
                rows, quals = self._number_rows(digits[-k:], None, exact=False, ends_only=True)
                if len(rows):
                    digits = digits[-k:]
                    break
        if not len(rows):
            return []
        ctx.numbers.append((digits, None, False))
        best = np.zeros(self._n, dtype=np.float32)
        np.maximum.at(best, rows, quals)
        candidates = np.flatnonzero(best)
        rows, scores = self._top(candidates, best[candidates], limit)
        return self._hits(rows, scores, ctx)

    # ------------------------------------------------------------------------------- scoring parts

    def _score_part(self, part: _Part, ctx: _QueryContext) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the best quality for this query word and 1.0 where it matched a name field."""
        best = np.zeros(self._n, dtype=np.float32)
        name_hit = np.zeros(self._n, dtype=np.float32)
        word = part.word
        text_ok = part.numkinds is None or part.fields
        if text_ok:
            mode = "exact" if part.exact else ("prefix" if word.isdigit() else "fuzzy")
            if part.prefix_ok:
                mode = "prefix"
            ids, quals = (np.empty(0, np.int64), np.empty(0, np.float32))
            if part.fields is not None and mode == "fuzzy":
                # a field prefix asks for precision: typos only when the word itself is not there
                ids, quals = self._match_terms(word, "prefix")
            if not len(ids):
                ids, quals = self._match_terms(word, mode)
            if len(ids):
                ctx.word_terms.append((word, ids, quals))
                self._apply_terms(ids, quals, part.fields, best, name_hit)
            alternatives = self._synonyms.expand.get(word) if not part.exact else None
            if alternatives:
                self._apply_synonyms(alternatives, part.fields, best, name_hit, ctx)
        if word in _HONORIFICS and not part.exact:
            # "Dr", "Mr", "RN" say little about who: a whisker of score, and no part of covering a name
            best *= _HONORIFIC_WEIGHT
            name_hit[:] = 0
        if word.isdigit() and len(word) >= 3 and (part.fields is None or part.numkinds is not None):
            rows, quals = self._number_rows(word, part.numkinds, exact=part.exact)
            if len(rows):
                ctx.numbers.append((word, part.numkinds, part.exact))
                np.maximum.at(best, rows, quals)
        return best, name_hit

    def _apply_terms(self, ids: np.ndarray, quals: np.ndarray, fields: frozenset[int] | None,
                     best: np.ndarray, name_hit: np.ndarray) -> None:
        # words stored per row (display names)
        idx, owner = _ranges(self._rt_off[ids], self._rt_off[ids + 1])
        if len(idx):
            rows, fcodes = self._rt_rows[idx], self._rt_field[idx]
            s = quals[owner] * _FIELD_WEIGHT[fcodes]
            if fields is not None:
                ok = np.isin(fcodes, list(fields))
                rows, fcodes, s = rows[ok], fcodes[ok], s[ok]
            np.maximum.at(best, rows, s)
            name_hit[rows[_NAME_FIELDS[fcodes]]] = 1.0
        # words stored per distinct column value (departments, titles, given names, ...)
        idx, owner = _ranges(self._pt_off[ids], self._pt_off[ids + 1])
        if len(idx):
            phr = self._pt_phr[idx]
            fcodes = self._phrase_field[phr]
            s = quals[owner] * _FIELD_WEIGHT[fcodes]
            if fields is not None:
                ok = np.isin(fcodes, list(fields))
                phr, fcodes, s = phr[ok], fcodes[ok], s[ok]
            if len(phr):
                order = np.lexsort((-s, phr))
                phr, s = phr[order], s[order]
                first = np.ones(len(phr), dtype=bool)
                first[1:] = phr[1:] != phr[:-1]
                phr, s = phr[first], s[first]
                ridx, rowner = _ranges(self._pr_off[phr], self._pr_off[phr + 1])
                rows = self._pr_rows[ridx]
                np.maximum.at(best, rows, s[rowner])
                is_name = _NAME_FIELDS[self._phrase_field[phr]]
                name_hit[rows[is_name[rowner]]] = 1.0

    def _apply_synonyms(self, alternatives, fields, best, name_hit, ctx) -> None:
        for words in alternatives:
            acc = None
            hits = np.zeros(self._n, dtype=np.float32)
            for w in words:
                ids, quals = self._match_terms(w, "exact")
                b = np.zeros(self._n, dtype=np.float32)
                h = np.zeros(self._n, dtype=np.float32)
                if len(ids):
                    ctx.word_terms.append((w, ids, quals))
                    self._apply_terms(ids, quals, fields, b, h)
                acc = b if acc is None else np.minimum(acc, b)
                hits += h
            if acc is None:
                continue
            acc *= _Q_SYNONYM
            better = acc > best
            if better.any():
                best[better] = acc[better]
                name_hit[better] = hits[better]

    def _match_terms(self, word: str, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary words matching a query word, with a quality in (0, 1]."""
        ids: list[np.ndarray] = []
        quals: list[np.ndarray] = []
        exact = self._term_id.get(word)
        if exact is not None:
            ids.append(np.array([exact]))
            # one letter is an initial: as good as a first name it begins, no better
            quals.append(np.array([_Q_EXACT if len(word) > 1 else _Q_INITIAL], dtype=np.float32))
        if mode == "exact":
            return (ids[0], quals[0]) if ids else (np.empty(0, np.int64), np.empty(0, np.float32))
        L = len(word)
        lo = bisect.bisect_right(self._sorted_terms, word)
        hi = bisect.bisect_left(self._sorted_terms, word + "\U0010ffff", lo)
        if hi > lo:
            pre = self._sorted_ids[lo:hi]
            if len(pre) > _MAX_PREFIX_TERMS:
                pre = pre[np.argpartition(-self._df_prior[pre], _MAX_PREFIX_TERMS)[:_MAX_PREFIX_TERMS]]
            ids.append(pre)
            quals.append(_Q_PREFIX_BASE + _Q_PREFIX_SPAN * L / self._term_len[pre] + self._df_prior[pre])
        if mode == "fuzzy" and L >= 3 and not word.isdigit():
            f_ids, f_quals = self._fuzzy(word)
            if len(f_ids):
                ids.append(f_ids)
                quals.append(f_quals)
        if not ids:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        all_ids = np.concatenate(ids).astype(np.int64)
        all_q = np.concatenate(quals).astype(np.float32)
        if len(ids) > 1:
            order = np.lexsort((-all_q, all_ids))
            all_ids, all_q = all_ids[order], all_q[order]
            first = np.ones(len(all_ids), dtype=bool)
            first[1:] = all_ids[1:] != all_ids[:-1]
            all_ids, all_q = all_ids[first], all_q[first]
        return all_ids, all_q

    def _prefix_ids(self, prefix: str) -> np.ndarray:
        lo = bisect.bisect_left(self._sorted_terms, prefix)
        hi = bisect.bisect_left(self._sorted_terms, prefix + "\U0010ffff", lo)
        return self._sorted_ids[lo:hi]

    def _fuzzy(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary words within 1 edit (2 from 8 letters) of the word, or of their beginning.

        Candidates: words with the same first letter and a near length (a slip after the first letter,
        however it breaks the trigrams: "dvaid", "simth"), words sharing enough trigrams with it (a slip in
        the first letter), and for beginnings, words starting with the first letter and the second or
        third (a transposition or a missing second letter). rapidfuzz's optimal-string-alignment distance,
        where a transposition is one edit, then decides.
        """
        L = len(word)
        k = 1 if L < 8 else 2
        first = self._prefix_ids(word[0])
        fl = self._term_len[first]
        whole_c = [first[(fl >= L - k) & (fl <= L + k)]]
        tri = _query_trigrams(word)
        idx, _ = _ranges(self._tri_off[tri], self._tri_off[tri + 1])
        if len(idx):
            counts = np.bincount(self._tri_terms[idx], minlength=self._n_terms)
            need = max(2, len(tri) - 3 * k)
            by_tri = np.flatnonzero(counts >= need)
            tl = self._term_len[by_tri]
            by_tri = by_tri[(tl >= L - k) & (tl <= L + k)]
            if len(by_tri) > _MAX_FUZZY_CANDIDATES:
                by_tri = by_tri[np.argpartition(-counts[by_tri], _MAX_FUZZY_CANDIDATES)[:_MAX_FUZZY_CANDIDATES]]
            whole_c.append(by_tri)
        whole_ids = np.unique(np.concatenate(whole_c))
        out_ids, out_q = [], []
        if len(whole_ids):
            strings = [self._terms[i] for i in whole_ids.tolist()]
            d = rf_process.cdist([word], strings, scorer=OSA.distance, score_cutoff=k, dtype=np.int32)[0]
            ok = (d <= k) & (d > 0)
            out_ids.append(whole_ids[ok])
            out_q.append(np.take(_Q_TYPO, d[ok]))
        if L >= 4:
            pre = [self._prefix_ids(word[:2]), self._prefix_ids(word[0] + word[2])]
            pre_ids = np.unique(np.concatenate(pre))
            pre_ids = pre_ids[self._term_len[pre_ids] >= L]
            if len(pre_ids) > _MAX_FUZZY_CANDIDATES:
                pre_ids = pre_ids[np.argpartition(-self._df_prior[pre_ids], _MAX_FUZZY_CANDIDATES)
                                  [:_MAX_FUZZY_CANDIDATES]]
            if len(pre_ids):
                strings = [self._terms[i] for i in pre_ids.tolist()]
                best = np.full(len(strings), k + 1, dtype=np.int32)
                for m in (L - 1, L, L + 1):
                    best = np.minimum(best, rf_process.cdist([word], [t[:m] for t in strings], scorer=OSA.distance,
                                                             score_cutoff=k, dtype=np.int32)[0])
                ok = (best <= k) & (best > 0)
                lens = self._term_len[pre_ids[ok]]
                out_ids.append(pre_ids[ok])
                out_q.append(np.take(_Q_TYPO_PREFIX, best[ok]) + 0.1 * np.minimum(L / lens, 1.0))
        if not out_ids:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        ids = np.concatenate(out_ids).astype(np.int64)
        return ids, (np.concatenate(out_q) + self._df_prior[ids]).astype(np.float32)

    @staticmethod
    def _number_range(keys, rows, kinds_of, lo, hi, whole, partial_quality, kinds, rows_l, quals_l) -> None:
        """Append the rows whose number key lies in [lo, hi] of one sorted array (forwards or reversed):
        an exact match scores as a whole number, the rest as its beginning or ending."""
        a = int(np.searchsorted(keys, lo, side="left"))
        b = int(np.searchsorted(keys, hi, side="right"))
        if b <= a:
            return
        sl = slice(a, b)
        r, kd = rows[sl], kinds_of[sl]
        q = np.where(keys[sl] == whole, _Q_NUMBER_EXACT, partial_quality).astype(np.float32)
        if kinds is not None:
            ok = np.isin(kd, list(kinds))
            r, q = r[ok], q[ok]
        rows_l.append(r)
        quals_l.append(q)

    def _number_rows(self, digits: str, kinds: frozenset[int] | None, *, exact: bool,
                     ends_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Rows owning a number equal to ``digits``, ending with it, or (unless exact) starting with it."""
        rows_l, quals_l = [], []
        key = _digit_key(digits)
        rkey_lo, rkey_hi = _key_range(digits[::-1])
        self._number_range(self._num_rev, self._num_rev_row, self._num_rev_kind, rkey_lo,
                           rkey_lo if exact else rkey_hi, rkey_lo, _Q_NUMBER_END, kinds, rows_l, quals_l)
        if not exact and not ends_only:
            flo, fhi = _key_range(digits)
            self._number_range(self._num_fwd, self._num_fwd_row, self._num_fwd_kind, flo, fhi, key,
                               _Q_NUMBER_START, kinds, rows_l, quals_l)
        if not exact and not ends_only and len(digits) >= 8:
            # a caller ID with a country or trunk prefix: the stored number is its ending
            for k in range(len(digits) - 1, 6, -1):
                tail = _digit_key(digits[-k:])
                a = int(np.searchsorted(self._num_fwd, tail, side="left"))
                b = int(np.searchsorted(self._num_fwd, tail, side="right"))
                if b > a:
                    r, kd = self._num_fwd_row[a:b], self._num_fwd_kind[a:b]
                    if kinds is not None:
                        r = r[np.isin(kd, list(kinds))]
                    rows_l.append(r)
                    quals_l.append(np.full(len(r), _Q_NUMBER_END, dtype=np.float32))
                    break
        if not rows_l:
            return np.empty(0, np.int32), np.empty(0, np.float32)
        return np.concatenate(rows_l), np.concatenate(quals_l)

    # ------------------------------------------------------------------------------------ ranking

    def _top(self, rows: np.ndarray, scores: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``limit`` (row, score), by score then row; ties at the cut keep the lowest rows."""
        if len(rows) > limit:
            kth = np.partition(scores, len(scores) - limit)[len(scores) - limit]
            above = scores > kth
            need = limit - int(above.sum())
            at = np.flatnonzero(scores == kth)[:need]
            pick = np.concatenate([np.flatnonzero(above), at])
            rows, scores = rows[pick], scores[pick]
        order = np.lexsort((rows, -scores))
        return rows[order], scores[order]

    def _phrase_filter(self, rows: np.ndarray, phrases: list[tuple[str, ...]]) -> np.ndarray:
        """Which rows have every quoted phrase as adjacent words within one field."""
        keep = np.ones(len(rows), dtype=bool)
        for i, row in enumerate(rows.tolist()):
            texts = self._row_texts(row)
            words_per_field = [[w for w, _s, _e in sorted(word_spans(fold(t)), key=lambda x: x[1])]
                               for _f, t in texts]
            for phrase in phrases:
                p = list(phrase)
                if not any(_contains_run(ws, p) for ws in words_per_field):
                    keep[i] = False
                    break
        return keep

    def _hits(self, rows: np.ndarray, scores: np.ndarray, ctx: _QueryContext) -> list[Hit]:
        details = self._details(rows.tolist())
        return [Hit(kind="schedule" if kind == "schedule" else "listing", id=ident, name=name,
                    score=float(score), listing_kind=kind, _row=row, _ctx=ctx)
                for row, score, (ident, name, kind) in zip(rows.tolist(), scores.tolist(), details)]

    def _details(self, rows: list[int]) -> list[tuple[str, str, str]]:
        """(id, display name, kind) for rows, read from the snapshot (a few dozen primary-key reads)."""
        out: dict[int, tuple[str, str, str]] = {}
        lrows = [r for r in rows if r < self._n_listings]
        if lrows:
            by_rowid = {int(self._rowid[r]): r for r in lrows}
            marks = ",".join("?" * len(by_rowid))
            for rowid, ident, name, kind in self._conn.execute(
                    f"SELECT rowid, id, display_name, kind FROM listings WHERE rowid IN ({marks})",
                    list(by_rowid)):
                out[by_rowid[rowid]] = (ident, name, kind)
        srows = [r for r in rows if r >= self._n_listings]
        if srows:
            by_rowid = {int(self._rowid[r]): r for r in srows}
            marks = ",".join("?" * len(by_rowid))
            for rowid, ident, name in self._conn.execute(
                    f"SELECT rowid, id, name FROM oncall_schedules WHERE rowid IN ({marks})", list(by_rowid)):
                out[by_rowid[rowid]] = (ident, name, "schedule")
        return [out[r] for r in rows]

    # ------------------------------------------------------------------------------- highlighting

    def _row_texts(self, row: int) -> list[tuple[str, str]]:
        """(field, text) of every searchable text field of a row, read from the snapshot."""
        rowid = int(self._rowid[row])
        if row >= self._n_listings:
            r = self._conn.execute("SELECT name, department, site FROM oncall_schedules WHERE rowid = ?",
                                   (rowid,)).fetchone()
            return [(f, v) for f, v in zip(("name", "department", "site"), r) if v]
        r = self._conn.execute(
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

    def _highlight(self, row: int, ctx: _QueryContext) -> tuple[FieldMatch, ...]:
        matches: list[FieldMatch] = []
        term_sets = ctx.term_sets()
        display_matched = False
        for f, text in self._row_texts(row):
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
        if ctx.numbers and row < self._n_listings:
            lid = self._conn.execute("SELECT id FROM listings WHERE rowid = ?", (int(self._rowid[row]),)).fetchone()[0]
            for kind, value, digits in self._conn.execute(
                    "SELECT kind, value, digits FROM contact_methods WHERE listing_id = ? ORDER BY rank, id", (lid,)):
                if kind not in _NK or not digits:
                    continue
                for qd, kinds, exact in ctx.numbers:
                    if kinds is not None and _NK[kind] not in kinds:
                        continue
                    where = _digit_match(digits, qd, exact)
                    if where is None:
                        continue
                    positions = [i for i, ch in enumerate(value) if ch.isdigit()]
                    a, b = where
                    matches.append(FieldMatch(kind, value, ((positions[a], positions[b - 1] + 1),)))
                    break
        # a whole name first, then the rest in field order
        return tuple(sorted(matches, key=lambda m: (m.field not in ("name", "given_name", "family_name"),)))

    # ---------------------------------------------------------------------------------- building


def _contains_run(words: list[str], phrase: list[str]) -> bool:
    """Whether ``phrase`` occurs as adjacent words; a last word ending in ``*`` may be a beginning."""
    n = len(phrase)
    if phrase and phrase[-1].endswith("*"):
        head, tail = phrase[:-1], phrase[-1][:-1]
        return any(words[i:i + n - 1] == head and words[i + n - 1].startswith(tail)
                   for i in range(len(words) - n + 1))
    return any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    out = [spans[0]]
    for s, e in spans[1:]:
        if s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _digit_match(digits: str, q: str, exact: bool) -> tuple[int, int] | None:
    """Where the query digits sit in a stored number's digits, by the search's rule, or None."""
    if digits == q:
        return 0, len(digits)
    if exact:
        return None
    if digits.endswith(q):
        return len(digits) - len(q), len(digits)
    if digits.startswith(q):
        return 0, len(q)
    if len(digits) >= 7 and q.endswith(digits):
        return 0, len(digits)
    return None


# ---------------------------------------------------------------------------------------- query parse

_PART_RE = re.compile(r'(?:(?P<prefix>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"?|(?P<bare>[^\s"]+))')


def _parse(query: str) -> tuple[list[_Part], set[int] | None]:
    """Split a query into parts (one per word) and an optional kind filter."""
    parts: list[_Part] = []
    kinds: set[int] | None = None
    free: list[str] = []
    for m in _PART_RE.finditer(query):
        prefix = (m.group("prefix") or "").lower()
        quoted, bare = m.group("quoted"), m.group("bare")
        still_open = quoted is not None and not (len(m.group()) >= 2 and m.group().endswith('"')
                                                 and m.group().count('"') >= 2)
        text = quoted if quoted is not None else (bare or "")
        if prefix == "kind":
            wanted = {k for k in LISTING_KINDS if k.startswith(fold(text).strip())} if text.strip() else set()
            if wanted:
                kinds = (kinds or set()) | {_KIND_CODE[k] for k in wanted}
            continue
        if prefix and prefix not in _PREFIXES:
            text = f"{prefix}:{text}" if quoted is None else text
            if quoted is not None:
                free.append(prefix)
            prefix = ""
        if not prefix and quoted is None:
            free.append(text)
            continue
        fields, numkinds = _PREFIXES[prefix] if prefix else (None, None)
        words = query_words(fold(text))
        if not words:
            continue
        if prefix and not fields:
            fields_arg: frozenset[int] | None = frozenset()
        else:
            fields_arg = fields
        for i, w in enumerate(words):
            last_open = still_open and i == len(words) - 1
            parts.append(_Part(w, fields=fields_arg if prefix else None, numkinds=numkinds or None if prefix else None,
                               exact=quoted is not None and not last_open, required=True,
                               phrase=tuple(words) if (quoted is not None and i == 0) else None,
                               prefix_ok=last_open))
            if quoted is not None and i == 0 and still_open:
                parts[-1].phrase = tuple(words[:-1]) + (words[-1] + "*",)
    for w in query_words(fold(" ".join(free))):
        parts.append(_Part(w))
    return parts, kinds


# ---------------------------------------------------------------------------------------------- build

_LISTING_PHRASE_COLUMNS = (("given_name", "given_name"), ("middle_name", "middle_name"),
                           ("family_name", "family_name"), ("aliases", "alias"), ("keywords", "keyword"),
                           ("title", "title"), ("department", "department"), ("site", "site"),
                           ("building", "building"), ("floor", "floor"), ("room", "room"))


def _fetch_columns(conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> tuple[list[list[str]], int]:
    """Whole columns in rowid order, each with one bulk read (group_concat), as lists of strings."""
    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if n == 0:
        return [[] for _ in columns], 0
    # NOT INDEXED: a full scan of the table itself is in rowid order (a covering index would not be).
    # The plain form is 3x faster; it miscounts only if a value is NULL or holds a line break, and then
    # that column is read again the careful way.
    sel = ", ".join(f"group_concat({c}, char(10))" for c in columns)
    row = conn.execute(f"SELECT {sel} FROM {table} NOT INDEXED").fetchone()
    out = []
    for c, text in zip(columns, row):
        values = (text or "").split("\n")
        if len(values) != n:
            text = conn.execute(f"SELECT group_concat(replace(ifnull(CAST({c} AS TEXT), ''), char(10), ' '),"
                                f" char(10)) FROM {table} NOT INDEXED").fetchone()[0]
            values = (text or "").split("\n")
            if len(values) != n:
                raise RuntimeError(f"read {len(values)} values of {table}.{c} for {n} rows")
        out.append(values)
    return out, n


_BYTE_FOLD = bytes(range(256)).translate(bytes.maketrans(
    bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c) in "'-&/\n")),
    b" " * sum(1 for c in range(128) if not (chr(c).isalnum() or chr(c) in "'-&/\n")))).translate(
    bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz"))


def _fold_lines_bytes(lines: list[str]) -> bytes:
    """``fold`` applied to every line, as UTF-8 joined by newlines; ASCII lines at C speed in one pass."""
    raw = "\n".join(lines).encode("utf-8")
    if not raw.isascii():
        arr = np.frombuffer(raw, dtype=np.uint8)
        newlines = np.flatnonzero(arr == 10)
        odd = np.unique(np.searchsorted(newlines, np.flatnonzero(arr >= 0x80)))
        pieces = raw.split(b"\n")
        for i in odd.tolist():
            pieces[i] = fold(lines[i]).encode("utf-8")
        raw = b"\n".join(pieces)
    return raw.translate(_BYTE_FOLD)


def _bulk_words(lines: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Words of many texts at C speed: (word code, row, counts-for-name-length flag) and the distinct words.

    The whole column is folded and split as one string; only texts with word joiners take a Python
    path (for their joined forms).
    """
    raw = _fold_lines_bytes(lines)
    # parts: joiners become spaces; rows are delimited by a marker word
    table = bytes(range(256)).translate(bytes.maketrans(b"'-&/\x01", b"     "))
    parts = raw.translate(table).replace(b"\n", b" \x01 ").split()
    parts.append(b"\x01")
    codes, distinct = _codes(parts)
    marker = distinct.index(b"\x01")
    is_marker = codes == marker
    rows = np.cumsum(is_marker, dtype=np.int64) - is_marker
    keep = ~is_marker
    codes, rows = codes[keep], rows[keep].astype(np.int32)
    words = [d.decode("utf-8") for d in distinct]
    # a name's length for the coverage bonus: no titles ("Dr"), no initials ("A.")
    counted = np.array([w not in _HONORIFICS and len(w) > 1 for w in words], dtype=bool)[codes]
    # joined forms ("obrien" for "O'Brien"), rare: found by their joiners
    arr = np.frombuffer(raw, dtype=np.uint8)
    jpos = np.flatnonzero(np.isin(arr, np.frombuffer(b"'-&/", dtype=np.uint8)))
    if len(jpos):
        nl = np.flatnonzero(arr == 10)
        extra_words, extra_rows = [], []
        seen_lines = set()
        for line_no in np.searchsorted(nl, jpos).tolist():
            if line_no in seen_lines:
                continue
            seen_lines.add(line_no)
            start = int(nl[line_no - 1]) + 1 if line_no > 0 else 0
            end = int(nl[line_no]) if line_no < len(nl) else len(raw)
            text = raw[start:end].decode("utf-8")
            for w, _s, _e in word_spans(text):
                if any(j in text[_s:_e] for j in "'-&/"):
                    extra_words.append(w)
                    extra_rows.append(line_no)
        if extra_words:
            index = {w: i for i, w in enumerate(words)}
            for w in extra_words:
                if w not in index:
                    index[w] = len(words)
                    words.append(w)
            codes = np.concatenate([codes, np.array([index[w] for w in extra_words], dtype=np.int32)])
            rows = np.concatenate([rows, np.array(extra_rows, dtype=np.int32)])
            counted = np.concatenate([counted, np.zeros(len(extra_words), dtype=bool)])
    return codes, rows, counted, words


class _Vocab:
    def __init__(self) -> None:
        self.terms: list[str] = []
        self.ids: dict[str, int] = {}

    def id(self, term: str) -> int:
        i = self.ids.get(term)
        if i is None:
            i = self.ids[term] = len(self.terms)
            self.terms.append(term)
        return i

    def remap(self, words: list[str]) -> np.ndarray:
        return np.array([self.id(w) for w in words], dtype=np.int32)


def _build_arrays(conn: sqlite3.Connection) -> tuple[dict[str, np.ndarray], list[str], int]:
    # The numbers are read on a second, private in-memory copy of the snapshot, in a thread: SQLite
    # releases the GIL while it reads, so the two halves of the build overlap on two cores. (One
    # connection would serialise them.) The copy lives only while the build runs, and is made only for
    # mid-sized snapshots: for big ones the memory matters more (and they should carry a stored index).
    numbers_box: dict[str, object] = {}
    worker = None
    size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    if conn.execute("SELECT count(*) > 50000 FROM contact_methods").fetchone()[0] and size < _COPY_MAX_BYTES:
        copy = sqlite3.connect(":memory:", check_same_thread=False)
        copy.deserialize(conn.serialize())

        def read_numbers() -> None:
            try:
                numbers_box["raw"] = _read_numbers(copy)
            except BaseException as exc:  # re-raised in the building thread
                numbers_box["error"] = exc
            finally:
                copy.close()

        worker = threading.Thread(target=read_numbers, name="search-index-numbers", daemon=True)
        worker.start()
    else:
        numbers_box["raw"] = _read_numbers(conn)
    vocab = _Vocab()
    # one column at a time, each dropped once indexed: a million-row column is ~70 MB of Python strings
    scols, n_s = _fetch_columns(conn, "oncall_schedules", ["rowid", "name", "department", "site"])
    S = dict(zip(["rowid", "name", "department", "site"], scols))
    (lrowid,), n_l = _fetch_columns(conn, "listings", ["rowid"])
    n = n_l + n_s
    rowid = np.concatenate([np.array(lrowid, dtype=np.int64) if n_l else np.empty(0, np.int64),
                            np.array(S["rowid"], dtype=np.int64) if n_s else np.empty(0, np.int64)])
    del lrowid
    (lkind,), _ = _fetch_columns(conn, "listings", ["kind"])
    kind_codes, kind_names = _codes(lkind)
    del lkind
    kmap = np.array([_KIND_CODE.get(k, 0) for k in kind_names] or [0], dtype=np.uint8)
    kind = np.concatenate([kmap[kind_codes] if n_l else np.empty(0, np.uint8), np.full(n_s, _SCHEDULE, np.uint8)])

    # per-row words: display names and schedule names
    (display,), _ = _fetch_columns(conn, "listings", ["display_name"])
    codes, rows, counted, words = _bulk_words(display + S["name"])
    del display
    gcodes = vocab.remap(words)[codes] if len(codes) else np.empty(0, np.int32)
    name_len = np.bincount(rows[counted], minlength=n).astype(np.float32)

    # per-distinct-value words: one phrase space across all the low-cardinality columns
    phrase_field: list[int] = []
    pr_keys: list[np.ndarray] = []
    pr_rows: list[np.ndarray] = []
    pt_term: list[int] = []
    pt_phr: list[int] = []
    n_phr = 0
    columns = [(c, f, 0) for c, f in _LISTING_PHRASE_COLUMNS]
    columns += [(S["department"], "department", n_l), (S["site"], "site", n_l)]
    for column, fname, row0 in columns:
        values = _fetch_columns(conn, "listings", [column])[0][0] if isinstance(column, str) else column
        if not values:
            continue
        vcodes, distinct = _codes(values)
        fcode = _F[fname]
        has_words = np.zeros(len(distinct), dtype=bool)
        for j, value in enumerate(distinct):
            if fname in ("alias", "keyword"):
                value = _json_text(value)
            ws = set(_index_words(value))
            if not ws:
                continue
            has_words[j] = True
            for w in ws:
                pt_term.append(vocab.id(w))
                pt_phr.append(n_phr + j)
        phrase_field.extend([fcode] * len(distinct))
        keep = has_words[vcodes]
        pr_keys.append(vcodes[keep].astype(np.int64) + n_phr)
        pr_rows.append(np.flatnonzero(keep).astype(np.int32) + row0)
        n_phr += len(distinct)

    V = len(vocab.terms)
    terms = vocab.terms
    rt_off, rt_rows, rt_field = _csr(gcodes.astype(np.int64), V, rows,
                                     np.full(len(rows), _F["name"], dtype=np.uint8))
    pt_term_a = np.array(pt_term, dtype=np.int64)
    pt_off, pt_phr_a = _csr(pt_term_a, V, np.array(pt_phr, dtype=np.int32))
    pk = np.concatenate(pr_keys) if pr_keys else np.empty(0, np.int64)
    pr_off, pr_rows_a = _csr(pk, n_phr, np.concatenate(pr_rows) if pr_rows else np.empty(0, np.int32))
    phrase_field_a = np.array(phrase_field, dtype=np.uint8)

    # how common each word is (rows containing it), as a small prior for ambiguous matches
    df = np.diff(rt_off).astype(np.float64)
    if len(pt_term_a):
        phrase_size = np.diff(pr_off).astype(np.float64)
        df += np.bincount(pt_term_a, weights=phrase_size[np.array(pt_phr, dtype=np.int64)], minlength=V)
    df_prior = (_DF_PRIOR * np.log1p(df) / max(math.log1p(df.max()) if V else 1.0, 1e-9)).astype(np.float32)

    # vocabulary trigrams and sorted order (prefix search)
    tterm, ttri = _term_trigrams(terms)
    tri_off, tri_terms = _csr(ttri, _ALPHA ** 3, tterm.astype(np.int32))
    term_len = np.fromiter(map(len, terms), dtype=np.float32, count=V)
    sorted_ids = np.array(sorted(range(V), key=terms.__getitem__), dtype=np.int64)

    if worker is not None:
        worker.join()
    if "error" in numbers_box:
        raise numbers_box["error"]  # type: ignore[misc]
    numbers = _build_numbers(numbers_box["raw"], rowid[:n_l])
    arrays = dict(kind=kind, rowid=rowid, name_len=name_len, rt_off=rt_off, rt_rows=rt_rows, rt_field=rt_field,
                  pt_off=pt_off, pt_phr=pt_phr_a, phrase_field=phrase_field_a, pr_off=pr_off, pr_rows=pr_rows_a,
                  tri_off=tri_off, tri_terms=tri_terms, term_len=term_len, df_prior=df_prior,
                  sorted_ids=sorted_ids, **numbers)
    return arrays, terms, n_l


def _json_text(value: str) -> str:
    if value.startswith("["):
        try:
            return " ; ".join(str(v) for v in json.loads(value))
        except json.JSONDecodeError:
            pass
    return value


def _index_words(text: str) -> list[str]:
    return index_words(fold(text))


def _read_numbers(conn: sqlite3.Connection) -> tuple:
    kinds_sql = ",".join(f"'{k}'" for k in NUMBER_KINDS)
    pad = ":" * _NUM_WIDTH
    return conn.execute(
        "SELECT count(*), group_concat(l.rowid), group_concat(c.kind, char(10)),"
        f" group_concat(substr('{pad}' || c.digits, -{_NUM_WIDTH}), '')"
        " FROM contact_methods c JOIN listings l ON l.id = c.listing_id"
        f" WHERE c.digits != '' AND c.kind IN ({kinds_sql})").fetchone()


def _build_numbers(row: tuple, listing_rowids: np.ndarray) -> dict[str, np.ndarray]:
    count = row[0]
    if not count:
        empty_k, empty_r, empty_c = np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.uint8)
        return dict(num_fwd=empty_k, num_fwd_row=empty_r, num_fwd_kind=empty_c,
                    num_rev=empty_k, num_rev_row=empty_r, num_rev_kind=empty_c)
    owner_rowid = np.fromstring(row[1], dtype=np.int64, sep=",")
    contig = len(listing_rowids) and int(listing_rowids[-1]) - int(listing_rowids[0]) == len(listing_rowids) - 1
    if contig:
        owner = (owner_rowid - int(listing_rowids[0])).astype(np.int32)
    else:
        owner = np.searchsorted(listing_rowids, owner_rowid).astype(np.int32)
    kcodes, knames = _codes(row[2].split("\n"))
    kind = np.array([_NK[k] for k in knames], dtype=np.uint8)[kcodes]
    # right-aligned digits (padding first): reversed, they are the left-aligned reversed number, and the
    # left-aligned forward key is the right-aligned one shifted by the padding — no per-row gather
    raw = np.frombuffer(row[3].encode("ascii"), dtype=np.uint8).reshape(count, _NUM_WIDTH)
    vals = raw - np.uint8(47)                  # '0'..'9' -> 1..10, ':' (padding) -> 11
    vals[vals == 11] = 0
    pads = (vals == 0).sum(axis=1)
    rev = _encode_digits(vals[:, ::-1])
    fwd = _encode_digits(vals) * (np.int64(11) ** pads.astype(np.int64))
    of = np.argsort(fwd, kind="stable")
    orv = np.argsort(rev, kind="stable")
    return dict(num_fwd=fwd[of], num_fwd_row=owner[of], num_fwd_kind=kind[of],
                num_rev=rev[orv], num_rev_row=owner[orv], num_rev_kind=kind[orv])


# ---------------------------------------------------------------------------------------- the snapshot


def store_index(database: bytes, *, synonyms: Synonyms | None = None) -> bytes:
    """Return ``database`` (SQLite bytes) with its search index stored in a ``search_index`` table.

    For the exporter: a desktop opening a snapshot that carries its index loads it in a fraction of the
    time it takes to build (at a million listings, well under a second instead of several seconds).
    A desktop with another index format simply builds its own.
    """
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(database)
        blob = SearchIndex.build(conn, synonyms=synonyms).to_bytes()
        conn.execute("CREATE TABLE IF NOT EXISTS search_index (format TEXT PRIMARY KEY, data BLOB NOT NULL)")
        conn.execute("DELETE FROM search_index")
        conn.execute("INSERT INTO search_index (format, data) VALUES (?, ?)", (INDEX_FORMAT, blob))
        conn.commit()
        conn.execute("VACUUM")
        return conn.serialize()
    finally:
        conn.close()


# -------------------------------------------------------------------------------------------- the CLI


def _describe(conn: sqlite3.Connection, hit: Hit) -> str:
    if hit.kind == "schedule":
        r = conn.execute("SELECT department, site FROM oncall_schedules WHERE id = ?", (hit.id,)).fetchone()
        extra = " · ".join(x for x in (r[0], r[1]) if x) if r else ""
        return f"{hit.name}  [on-call schedule]" + (f"  {extra}" if extra else "")
    r = conn.execute("SELECT title, department, site FROM listings WHERE id = ?", (hit.id,)).fetchone()
    c = conn.execute("SELECT kind, value FROM contact_methods WHERE listing_id = ? ORDER BY rank, id LIMIT 1",
                     (hit.id,)).fetchone()
    bits = [x for x in (r[0], r[1], r[2]) if x] if r else []
    if c:
        bits.append(f"{c[0]} {c[1]}")
    return hit.name + (f"  — {' · '.join(bits)}" if bits else "")


def run_search_cli(conn: sqlite3.Connection, query: str, *, limit: int, as_json: bool, out: TextIO,
                   inp: TextIO | None = None, index: SearchIndex | None = None) -> int:
    """``backup-operator search``: answer ``query`` (or, for ``-``, each line of ``inp``/stdin).

    Text: one block per query (a ``# query`` line when reading several, then one ranked line per hit).
    ``--json``: one JSON object per query and line: ``{"query", "results": [{"rank", "kind", "id", "name",
    "listing_kind", "score", "matched": [{"field", "text", "spans"}]}]}``.
    Returns 0 when every query found something, 1 when at least one found nothing.
    """
    index = index or SearchIndex.open(conn)
    if query == "-":
        queries: Iterable[str] = (line.rstrip("\n") for line in (inp or sys.stdin))
        many = True
    else:
        queries = [query]
        many = False
    status = 0
    for q in queries:
        if many and not q.strip():
            continue
        hits = index.search(q, limit=limit)
        if not hits:
            status = 1
        if as_json:
            results = [dict(rank=i, **h.to_json()) for i, h in enumerate(hits, 1)]
            out.write(json.dumps({"query": q, "results": results}, ensure_ascii=False) + "\n")
            continue
        if many:
            out.write(f"# {q}\n")
        if not hits:
            out.write("  (nothing found)\n")
        for i, h in enumerate(hits, 1):
            out.write(f"{i:3d}. {_describe(conn, h)}  [{h.id}]\n")
        if many:
            out.write("\n")
    return status
