"""Sound-alike keys: what a name sounds like, so that a name spelt as it was heard finds the listing.

Each vocabulary word of three or more plain letters gets two keys: Metaphone (Philips, 1990) and NYSIIS
(Taft, 1970), both as implemented by ``jellyfish``. Metaphone drops vowels after the first letter and
folds consonants that sound alike (ph/f, c/k, "ck", silent k/w/gh/b, th, double letters), so Stephen =
Steven, Katherine = Kathryn, MacDonald = McDonald, Johnson = Johnsen, Katie = Katy, Wright = Right.
NYSIIS keeps the shape of the vowels and catches what Metaphone splits (Sean = Shaun, Chris = Kris).
A word ending in a vowel and r (Porter, Esther, Baker) also gets the key of its non-rhotic sound (Porta,
Estha, Baka), as it is heard in much of England, Australia and New England.

Not covered (say so to operators, and keep typing): names from languages whose spelling these English
rules do not model — Chinese romanisations (Hsu/Xu, Chang/Zhang), Spanish j/h, German w/v and sch,
Irish Gaelic (Siobhan/Shivaun), Vietnamese Nguyen/Win; a different first vowel (Ellen/Allen: within one
edit anyway); names heard as two words or one (Mac Donald, Van Dijk/Vandyke); and changes of more than
sound (Margaret/Peggy — the nickname table's job).

Stored form (``phonetic_arrays``): a sorted int64 array of keys and the vocabulary word of each — keys
are encoded to integers so that opening the index creates no Python object per word. The encoding is
part of ``INDEX_FORMAT``.
"""

from __future__ import annotations

import re

import jellyfish
import numpy as np

__all__ = ["word_keys", "phonetic_arrays", "PhoneticIndex", "PHONETIC_ARRAYS", "MIN_LETTERS"]

#: The arrays this module stores in the index.
PHONETIC_ARRAYS = ("ph_keys", "ph_terms")

MIN_LETTERS = 3                                  # shorter words are left to edit distance
_MIN_KEY = 2                                     # sounds a stored key needs
_MIN_TYPED_KEY = (3, 2)                          # ... and a typed word's, under / from five letters: "bria",
                                                 # half typed, is not Berry; "chris" is Kris
_KEY_LEN = 12                                    # key characters kept: 29**12 < 2**62
_TAG = 1 << 62                                   # NYSIIS keys live above Metaphone's
_PLAIN = re.compile(r"[a-z]+")
_NON_RHOTIC = re.compile(r"(?:[aeiou]r|re)$")
_CODE = {c: i + 1 for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ0")}


def _encode(key: str) -> int:
    value = 0
    for ch in key[:_KEY_LEN]:
        value = value * 29 + _CODE.get(ch, 28)
    return value


def word_keys(word: str, *, typed: bool = False) -> tuple[int, ...]:
    """The sound-alike keys of a folded word (none for short or non-letter words); ``typed``: of a word
    the operator typed, which may be unfinished, so a short one needs a longer key."""
    if len(word) < MIN_LETTERS or not _PLAIN.fullmatch(word):
        return ()
    keys = []
    need = _MIN_TYPED_KEY[len(word) >= 5] if typed else _MIN_KEY
    m = jellyfish.metaphone(word)
    if len(m) >= need:
        keys.append(_encode(m))
    if not typed and len(word) >= 5:
        # non-rhotic ("Porta" for Porter, "Estha" for Esther): the stored word also gets the key of its
        # ending said without the r
        bare = _NON_RHOTIC.sub("a", word)
        if bare != word:
            mb = jellyfish.metaphone(bare)
            if len(mb) >= need and mb != m:
                keys.append(_encode(mb))
    n = jellyfish.nysiis(word)
    if len(n) >= need:
        keys.append(_TAG + _encode(n))
    return tuple(keys)


def phonetic_arrays(terms: list[str]) -> dict[str, np.ndarray]:
    """(key, word id) pairs for the whole vocabulary, sorted by key."""
    keys: list[int] = []
    ids: list[int] = []
    for i, term in enumerate(terms):
        for k in word_keys(term):
            keys.append(k)
            ids.append(i)
    k_arr = np.array(keys, dtype=np.int64)
    order = np.argsort(k_arr, kind="stable")
    return dict(ph_keys=k_arr[order], ph_terms=np.array(ids, dtype=np.int32)[order])


class PhoneticIndex:
    """Vocabulary words by sound-alike key."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.keys, self.terms = arrays["ph_keys"], arrays["ph_terms"]

    def sound_alikes(self, word: str) -> np.ndarray:
        """Ids of the vocabulary words that share a key with ``word`` (possibly including itself)."""
        out = []
        for k in word_keys(word, typed=True):
            a = int(np.searchsorted(self.keys, k, side="left"))
            b = int(np.searchsorted(self.keys, k, side="right"))
            if b > a:
                out.append(self.terms[a:b])
        if not out:
            return np.empty(0, np.int64)
        return np.unique(np.concatenate(out)).astype(np.int64)
