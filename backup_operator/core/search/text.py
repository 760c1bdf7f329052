"""Normalising text: folding and word splitting for the index, its queries and its highlighting.

One rule, three users: the index folds whole columns at once (``bulk_words``, which must agree with
``fold``), a query folds a few words (``fold``), and highlighting folds one field while remembering where
every folded character came from (``fold_with_origins``). All three must agree exactly, or a hit would be
found but not highlighted.

Folding: case-fold; decompose and drop accents (é→e); spell out a few letters that have no decomposition
(ø→o, æ→ae, ł→l, ß→ss); apostrophes and hyphens in their typographic forms become ASCII; every other
character that is not a letter, a digit or a word joiner becomes a space.

Words: runs of letters and digits. A word joiner (apostrophe, hyphen, ampersand, slash) between two
letters or digits joins them: "O'Brien" is indexed as ``o``, ``brien`` *and* ``obrien`` (so both
"obrien" and "o'brien" find it); a query keeps only the joined form. Digit runs separated by spaces or
punctuation in a query are one number ("(608) 555-4471" is ``6085554471``).

This module knows nothing of listings, fields or scores.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from backup_operator.core.search.arrays import dense_codes

__all__ = ["fold", "fold_with_origins", "index_words", "query_words", "word_spans", "bulk_words", "JOINERS",
           "HONORIFICS", "TITLES"]

JOINERS = "'-&/"

#: Titles and post-nominals: they say little about who, and are no part of a name's length.
HONORIFICS = frozenset("dr mr mrs ms miss mx prof md do rn phd np pa jr sr ii iii".split())
#: The titles an operator types before a name ("dr smith"): a whisker of score. (Post-nominals are not
#: treated so: "do" and "pa" are more often the start of Douglas and Patel.)
TITLES = frozenset("dr mr mrs ms miss mx prof".split())

_SPECIAL = {
    "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ħ": "h",
    "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'",
    "‐": "-", "‑": "-", "‒": " ", "–": " ", "—": " ", "―": " ",
}


def _fold_char(ch: str) -> str:
    """Fold one original character (it may become zero, one or several characters)."""
    if ch.isascii():
        if ch.isalnum() or ch in JOINERS:
            return ch.lower()
        return " " if ch != "\n" else "\n"
    out = []
    for c in unicodedata.normalize("NFKD", ch.casefold()):
        c = _SPECIAL.get(c, c)
        if len(c) > 1 or c.isascii():
            out.append(c if (c.isalnum() or c in JOINERS or len(c) > 1) else " ")
        elif unicodedata.combining(c):
            continue
        elif c.isalnum():
            out.append(c)
        else:
            out.append(" ")
    return "".join(out)


_ASCII_TABLE = str.maketrans({chr(i): (chr(i).lower() if chr(i).isalnum() or chr(i) in JOINERS else " ")
                              for i in range(128) if chr(i) != "\n"})


def fold(text: str) -> str:
    """The folded form of ``text`` (same length only when it is ASCII)."""
    if text.isascii():
        return text.translate(_ASCII_TABLE)
    return "".join(_fold_char(ch) for ch in text)


def fold_with_origins(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` and give, for every folded character, the index of the original character."""
    if text.isascii():
        return text.translate(_ASCII_TABLE), list(range(len(text)))
    out: list[str] = []
    origins: list[int] = []
    for i, ch in enumerate(text):
        piece = _fold_char(ch)
        out.append(piece)
        origins.extend([i] * len(piece))
    return "".join(out), origins


_WORD = r"[^\W_]+"
_JOINED_RE = re.compile(rf"{_WORD}(?:[{re.escape(JOINERS)}]{_WORD})+")
_WORD_RE = re.compile(_WORD)
_STRIP_JOINERS = str.maketrans("", "", JOINERS)


def index_words(folded: str) -> list[str]:
    """The words an index stores for one folded text: every part, plus joined forms ("obrien")."""
    words = _WORD_RE.findall(folded)
    for m in _JOINED_RE.finditer(folded):
        words.append(m.group().translate(_STRIP_JOINERS))
    return words


def word_spans(folded: str) -> list[tuple[str, int, int]]:
    """Index words with their [start, end) in ``folded``; joined forms span their parts and joiners."""
    spans = [(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(folded)]
    spans += [(m.group().translate(_STRIP_JOINERS), m.start(), m.end()) for m in _JOINED_RE.finditer(folded)]
    return spans


def query_words(folded: str) -> list[str]:
    """A query's words: joined forms only, and digit runs with separators merged into one number."""
    words: list[str] = []
    pos = 0
    for m in re.finditer(rf"{_WORD}(?:[{re.escape(JOINERS)}]{_WORD})*", folded):
        word = m.group().translate(_STRIP_JOINERS)
        # merge "608 555 4471" and "(608) 555-4471": a digit word right after a digit word, with only
        # spaces and number punctuation between them, continues the same number
        if words and word.isdigit() and words[-1].isdigit() and not folded[pos:m.start()].strip(" ()./-+"):
            words[-1] += word
        else:
            words.append(word)
        pos = m.end()
    return words


# ------------------------------------------------------------------------------ whole columns at once

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


def bulk_words(lines: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Words of many texts at C speed: (word code, row, counts-for-name-length flag) and the distinct words.

    The whole column is folded and split as one string; only texts with word joiners take a Python
    path (for their joined forms).
    """
    raw = _fold_lines_bytes(lines)
    # parts: joiners become spaces; rows are delimited by a marker word
    table = bytes(range(256)).translate(bytes.maketrans(b"'-&/\x01", b"     "))
    parts = raw.translate(table).replace(b"\n", b" \x01 ").split()
    parts.append(b"\x01")
    codes, distinct = dense_codes(parts)
    marker = distinct.index(b"\x01")
    is_marker = codes == marker
    rows = np.cumsum(is_marker, dtype=np.int64) - is_marker
    keep = ~is_marker
    codes, rows = codes[keep], rows[keep].astype(np.int32)
    words = [d.decode("utf-8") for d in distinct]
    # a name's length for the coverage bonus: no titles ("Dr"), no initials ("A.")
    counted = np.array([w not in HONORIFICS and len(w) > 1 for w in words], dtype=bool)[codes]
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
                if any(j in text[_s:_e] for j in JOINERS):
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
