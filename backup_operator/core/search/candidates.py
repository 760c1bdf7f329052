"""Generating candidates: which vocabulary words a typed word may stand for, each with a quality.

The vocabulary is every distinct word of the index. A typed word reaches a vocabulary word

- exactly (quality 1; a single letter is an initial, 0.7);
- as its beginning, the operator still typing (0.72–0.9, more the more of the word is typed);
- within one edit, or two from eight letters (optimal string alignment, so a transposition is one
  edit; verified with rapidfuzz): 0.78 for one edit (0.70 and 0.74 in three- and four-letter words),
  0.56 for two, a little less when the first letter is the one that differs. Candidates come from words sharing the first letter, words sharing trigrams,
  and — so that a wrong, missing or extra first letter or a transposition at the start is survived
  ("xacob", "acob", "ilam" for liam) — words whose remainder after the first letter begins like the typed
  word's, and words beginning with the typed word's first two letters swapped;
- within two edits for words of 5–7 letters, only when nothing lies within one edit or begins with the
  word, and only while that leaves at most a handful of words (``MAX_TWO_EDIT_TERMS``): beyond that two
  edits say too little ("thropr" finds Thorpe, "jessxia" Jessica);
- for two-letter words, as a short word within one edit ("ma" finds Mya, "ze" Zoe), below beginnings;
- by sound (``phonetic``), for whole words of four or more letters (in the vocabulary, or the beginning
  of none): 0.66 (0.73 from five letters), below every spelling match of the whole word.

The quality in (0, 1] says how good a guess the vocabulary word is; ``scoring`` turns qualities into row
scores. Stored structures (flat arrays, built by ``vocabulary_arrays``): the vocabulary in sorted order
(for beginnings) and sorted by all but its first letter (for a slip in the first letter), a
padded-trigram index, word lengths, a small prior for how common each word is, and the sound-alike keys.
This module never looks at rows.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
from rapidfuzz import process as rf_process
from rapidfuzz.distance import OSA

from backup_operator.core.search.arrays import csr, first_of_each, gather_ranges
from backup_operator.core.search.phonetic import PHONETIC_ARRAYS, PhoneticIndex, phonetic_arrays

__all__ = ["Vocabulary", "vocabulary_arrays", "VOCABULARY_ARRAYS"]

#: The arrays this module stores in the index.
VOCABULARY_ARRAYS = ("tri_off", "tri_terms", "term_len", "df_prior", "sorted_ids", "tail_ids") + PHONETIC_ARRAYS

Q_EXACT = 1.0
Q_PREFIX_BASE, Q_PREFIX_SPAN = 0.72, 0.18        # prefix: base + span * typed/len(word)
Q_TYPO = (1.0, 0.78, 0.56)                       # whole word within 0, 1, 2 edits
Q_TYPO_SHORT = {3: 0.70, 4: 0.74}                # one edit in a three- or four-letter word changes a lot:
                                                 # below the words it begins ("ter" is Terry before Toer)
Q_TYPO_PREFIX = (0.0, 0.60, 0.46)                # beginning of a word within 1, 2 edits (+ up to 0.1)
Q_INITIAL = 0.7                                  # one letter: as good as a first name it begins, no better
Q_FIRST_LETTER_SLIP = 0.02                       # taken off when the first letter is what differs
Q_SHORT = 0.6                                    # a two-letter word within one edit of a short word
Q_PHONETIC = (0.66, 0.73)                        # sounds the same, four / five or more letters: below every
                                                 # spelling match of the whole word
PHONETIC_MIN_LETTERS = 4
MAX_TWO_EDIT_TERMS = 8
DF_PRIOR = 0.012                                 # a common word is a likelier guess than a rare one
MAX_PREFIX_TERMS = 5000
MAX_FUZZY_CANDIDATES = 3000

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


def df_prior_of(df: np.ndarray) -> np.ndarray:
    """The small prior for how common each word is, from how many rows contain it."""
    return (DF_PRIOR * np.log1p(df) / max(math.log1p(df.max()) if len(df) else 1.0, 1e-9)).astype(np.float32)


def vocabulary_arrays(terms: list[str], df: np.ndarray, phonetic: dict[str, np.ndarray] | None = None
                      ) -> dict[str, np.ndarray]:
    """The stored arrays for a vocabulary; ``df`` is how many rows contain each word. ``phonetic``: its
    ``phonetic_arrays``, when the caller has them already (search/update.py: the slow part, per word)."""
    V = len(terms)
    df_prior = df_prior_of(df)
    tterm, ttri = _term_trigrams(terms)
    tri_off, tri_terms = csr(ttri, _ALPHA ** 3, tterm.astype(np.int32))
    term_len = np.fromiter(map(len, terms), dtype=np.float32, count=V)
    sorted_ids = np.array(sorted(range(V), key=terms.__getitem__), dtype=np.int64)
    tails = [t[1:] for t in terms]
    tail_ids = np.array(sorted(range(V), key=tails.__getitem__), dtype=np.int64)
    return dict(tri_off=tri_off, tri_terms=tri_terms, term_len=term_len, df_prior=df_prior, sorted_ids=sorted_ids,
                tail_ids=tail_ids, **(phonetic if phonetic is not None else phonetic_arrays(terms)))


_EMPTY = (np.empty(0, np.int64), np.empty(0, np.float32))


class Vocabulary:
    """The distinct words of one index and the ways a typed word reaches them."""

    def __init__(self, terms: list[str], arrays: dict[str, np.ndarray]):
        self.terms = terms
        self.ids = {t: i for i, t in enumerate(terms)}
        self.tri_off, self.tri_terms = arrays["tri_off"], arrays["tri_terms"]
        self.term_len, self.df_prior = arrays["term_len"], arrays["df_prior"]
        self.sorted_ids, self.tail_ids = arrays["sorted_ids"], arrays["tail_ids"]
        self.sorted_terms = [terms[i] for i in self.sorted_ids.tolist()]
        self.sorted_tails = [terms[i][1:] for i in self.tail_ids.tolist()]
        self.phonetic = PhoneticIndex(arrays)
        self.first_char = np.fromiter((ord(t[0]) if t else 0 for t in terms), dtype=np.int32, count=len(terms))

    def __len__(self) -> int:
        return len(self.terms)

    def match(self, word: str, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary words matching a query word (``mode``: exact, prefix or fuzzy), with a quality in (0, 1]."""
        ids: list[np.ndarray] = []
        quals: list[np.ndarray] = []
        exact = self.ids.get(word)
        if exact is not None:
            ids.append(np.array([exact]))
            quals.append(np.array([Q_EXACT if len(word) > 1 else Q_INITIAL], dtype=np.float32))
        if mode == "exact":
            return (ids[0], quals[0]) if ids else _EMPTY
        L = len(word)
        lo = bisect.bisect_right(self.sorted_terms, word)
        hi = bisect.bisect_left(self.sorted_terms, word + "\U0010ffff", lo)
        if hi > lo:
            pre = self.sorted_ids[lo:hi]
            if len(pre) > MAX_PREFIX_TERMS:
                pre = pre[np.argpartition(-self.df_prior[pre], MAX_PREFIX_TERMS)[:MAX_PREFIX_TERMS]]
            ids.append(pre)
            quals.append(Q_PREFIX_BASE + Q_PREFIX_SPAN * L / self.term_len[pre] + self.df_prior[pre])
        if mode == "fuzzy" and not word.isdigit():
            if L >= 3:
                # a word that is in the vocabulary or begins some is read as typed; only one that is
                # neither may have gone wrong at its very start (and two slips are tried)
                f_ids, f_quals = self._fuzzy(word, unknown=not ids)
            elif L == 2:
                f_ids, f_quals = self._short(word)
            else:
                f_ids, f_quals = _EMPTY
            if len(f_ids):
                ids.append(f_ids)
                quals.append(f_quals)
            # by sound only a word that is whole: one in the vocabulary, or one that begins none (a word
            # still being typed has no sound yet, and looking it up would cost every keystroke)
            if L >= PHONETIC_MIN_LETTERS and (exact is not None or hi == lo):
                p_ids = self.phonetic.sound_alikes(word)
                if len(p_ids):
                    ids.append(p_ids)
                    quals.append(np.full(len(p_ids), Q_PHONETIC[L >= 5], dtype=np.float32) + self.df_prior[p_ids])
        if not ids:
            return _EMPTY
        all_ids = np.concatenate(ids).astype(np.int64)
        all_q = np.concatenate(quals).astype(np.float32)
        if len(ids) > 1:
            all_ids, all_q = first_of_each(all_ids, all_q)
        return all_ids, all_q

    def prefix_ids(self, prefix: str) -> np.ndarray:
        """Every vocabulary word that begins with ``prefix`` (itself included)."""
        lo = bisect.bisect_left(self.sorted_terms, prefix)
        hi = bisect.bisect_left(self.sorted_terms, prefix + "\U0010ffff", lo)
        return self.sorted_ids[lo:hi]

    def tail_prefix_ids(self, prefix: str) -> np.ndarray:
        """Every vocabulary word whose letters after the first begin with ``prefix``."""
        lo = bisect.bisect_left(self.sorted_tails, prefix)
        hi = bisect.bisect_left(self.sorted_tails, prefix + "\U0010ffff", lo)
        return self.tail_ids[lo:hi]

    def _first_letter_slips(self, word: str) -> list[np.ndarray]:
        """Words that the typed word may be after a slip at its start: a wrong, missing or extra first
        letter, or its first two letters swapped (the trigrams of such a word's beginning are all
        wrong, so neither the first letter nor the trigrams find it). Each is looked up by three
        letters, so that the candidates stay few."""
        out = [self.tail_prefix_ids(word[:3]),                            # missing first letter: "acob"
               self.prefix_ids(word[1] + word[0] + word[2])]              # swapped: "ajcob", "ilam"
        if len(word) >= 4:
            out += [self.tail_prefix_ids(word[1:4]),                      # wrong first letter: "xacob"
                    self.prefix_ids(word[1:4])]                           # extra first letter: "ajacob"
        return out

    def _short(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """Short words (two or three letters) within one edit of a two-letter word: "ma" → mya, "ze" → zoe."""
        first = self.prefix_ids(word[0])
        fl = self.term_len[first]
        near = first[(fl >= 2) & (fl <= 3)]          # not an initial: "rj" is not "R."
        if not len(near):
            return _EMPTY
        strings = [self.terms[i] for i in near.tolist()]
        d = rf_process.cdist([word], strings, scorer=OSA.distance, score_cutoff=1, dtype=np.int32)[0]
        ok = (d == 1)
        ids = near[ok].astype(np.int64)
        return ids, (Q_SHORT + self.df_prior[ids]).astype(np.float32)

    def _fuzzy(self, word: str, unknown: bool) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary words within 1 edit (2 from 8 letters) of the word, or of their beginning. When the
        word is ``unknown`` (neither in the vocabulary nor the beginning of a word): also words after a
        slip at its start, and within 2 edits for 5–7 letters if nothing lies within 1.

        Candidates: words with the same first letter and a near length (a slip after the first letter,
        however it breaks the trigrams: "dvaid", "simth"), words sharing enough trigrams with it, words
        after a slip at the start (``_first_letter_slips``, whole words only), and for beginnings, words
        starting with the first letter and the second or third (a transposition or a missing second
        letter).
        rapidfuzz's optimal-string-alignment distance, where a transposition is one edit, then decides.
        """
        L = len(word)
        k = 1 if L < 8 else 2
        first = self.prefix_ids(word[0])
        fl = self.term_len[first]
        same_first = first[(fl >= L - 2) & (fl <= L + 2)] if 5 <= L <= 7 and unknown else None
        whole_c = [first[(fl >= L - k) & (fl <= L + k)]]
        slips = self._first_letter_slips(word) if unknown else []
        for c in slips:
            cl = self.term_len[c]
            whole_c.append(c[(cl >= L - k) & (cl <= L + k)])
        tri = _query_trigrams(word)
        idx, _ = gather_ranges(self.tri_off[tri], self.tri_off[tri + 1])
        if len(idx):
            counts = np.bincount(self.tri_terms[idx], minlength=len(self.terms))
            need = max(2, len(tri) - 3 * k)
            by_tri = np.flatnonzero(counts >= need)
            tl = self.term_len[by_tri]
            by_tri = by_tri[(tl >= L - k) & (tl <= L + k)]
            if len(by_tri) > MAX_FUZZY_CANDIDATES:
                by_tri = by_tri[np.argpartition(-counts[by_tri], MAX_FUZZY_CANDIDATES)[:MAX_FUZZY_CANDIDATES]]
            whole_c.append(by_tri)
        whole_ids = np.unique(np.concatenate(whole_c))
        out_ids, out_q = [], []
        if len(whole_ids):
            strings = [self.terms[i] for i in whole_ids.tolist()]
            d = rf_process.cdist([word], strings, scorer=OSA.distance, score_cutoff=k, dtype=np.int32)[0]
            ok = (d <= k) & (d > 0)
            out_ids.append(whole_ids[ok])
            q = np.take(Q_TYPO, d[ok]).astype(np.float32)
            if L in Q_TYPO_SHORT:
                q[d[ok] == 1] = Q_TYPO_SHORT[L]
            out_q.append(q - Q_FIRST_LETTER_SLIP * self._first_differs(word, whole_ids[ok]))
            if same_first is not None and not ok.any() and len(same_first):
                two = self._two_edits(word, same_first)
                if len(two):
                    out_ids.append(two)
                    out_q.append(np.full(len(two), Q_TYPO[2], dtype=np.float32))
        if L >= 4:
            pre = [self.prefix_ids(word[:2]), self.prefix_ids(word[0] + word[2])]
            pre_ids = np.unique(np.concatenate(pre))
            pre_ids = pre_ids[self.term_len[pre_ids] >= L]
            if len(pre_ids) > MAX_FUZZY_CANDIDATES:
                pre_ids = pre_ids[np.argpartition(-self.df_prior[pre_ids], MAX_FUZZY_CANDIDATES)
                                  [:MAX_FUZZY_CANDIDATES]]
            if len(pre_ids):
                strings = [self.terms[i] for i in pre_ids.tolist()]
                best = np.full(len(strings), k + 1, dtype=np.int32)
                for m in (L - 1, L, L + 1):
                    best = np.minimum(best, rf_process.cdist([word], [t[:m] for t in strings], scorer=OSA.distance,
                                                             score_cutoff=k, dtype=np.int32)[0])
                ok = (best <= k) & (best > 0)
                lens = self.term_len[pre_ids[ok]]
                out_ids.append(pre_ids[ok])
                out_q.append(np.take(Q_TYPO_PREFIX, best[ok]) + 0.1 * np.minimum(L / lens, 1.0)
                             - Q_FIRST_LETTER_SLIP * self._first_differs(word, pre_ids[ok]))
        if not out_ids:
            return _EMPTY
        ids = np.concatenate(out_ids).astype(np.int64)
        return ids, (np.concatenate(out_q) + self.df_prior[ids]).astype(np.float32)

    def _first_differs(self, word: str, ids: np.ndarray) -> np.ndarray:
        """1.0 where the vocabulary word does not start with the typed word's first letter."""
        return (self.first_char[ids] != ord(word[0])).astype(np.float32)

    def _two_edits(self, word: str, pool: np.ndarray) -> np.ndarray:
        """Words of ``pool`` exactly two edits away, if they are few enough to be a useful guess."""
        strings = [self.terms[i] for i in pool.tolist()]
        d = rf_process.cdist([word], strings, scorer=OSA.distance, score_cutoff=2, dtype=np.int32)[0]
        found = pool[d == 2]
        if len(found) > MAX_TWO_EDIT_TERMS:
            return np.empty(0, np.int64)
        return found.astype(np.int64)
