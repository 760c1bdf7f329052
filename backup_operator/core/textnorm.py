"""Text folding and word splitting shared by the search index, its queries and its highlighting.

One rule, three users: the index folds whole columns at once (the search module's bulk path, which
must agree with ``fold``), a query folds a few words (``fold``), and highlighting folds one field while remembering where every folded character came
from (``fold_with_origins``). All three must agree exactly, or a hit would be found but not highlighted.

Folding: case-fold; decompose and drop accents (é→e); spell out a few letters that have no decomposition
(ø→o, æ→ae, ł→l, ß→ss); apostrophes and hyphens in their typographic forms become ASCII; every other
character that is not a letter, a digit or a word joiner becomes a space.

Words: runs of letters and digits. A word joiner (apostrophe, hyphen, ampersand, slash) between two
letters or digits joins them: "O'Brien" is indexed as ``o``, ``brien`` *and* ``obrien`` (so both
"obrien" and "o'brien" find it); a query keeps only the joined form. Digit runs separated by spaces or
punctuation in a query are one number ("(608) 555-4471" is ``6085554471``).

This module must never import anything outside the standard library.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "fold_with_origins", "index_words", "query_words", "word_spans", "JOINERS"]

JOINERS = "'-&/"

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
