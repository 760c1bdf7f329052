"""Reading what the operator typed: the query language, parsed into one part per word.

Words in any order; ``field:`` prefixes that restrict and require a word; ``kind:`` filters; quotes for
exact words, adjacent phrases and exact numbers (an unclosed quote, still being typed, counts as
closed). This module only parses: it never looks at the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backup_operator.core.search.fields import FIELD_CODE, KIND_CODE, LISTING_KINDS, NUMBER_KIND_CODE, NUMBER_KINDS
from backup_operator.core.search.text import fold, query_words

__all__ = ["Part", "parse", "family_first", "contains_run", "PREFIXES"]

#: prefix -> (fields it searches, number kinds it searches)
PREFIXES: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
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
        PREFIXES[_n] = (frozenset(FIELD_CODE[f] for f in _fields), frozenset(NUMBER_KIND_CODE[k] for k in _nums))


@dataclass
class Part:
    """One query word and how it must match."""

    word: str
    fields: frozenset[int] | None = None      # restrict to these fields (None: any)
    numkinds: frozenset[int] | None = None    # restrict numbers to these kinds
    exact: bool = False
    required: bool = False
    phrase: tuple[str, ...] | None = None     # quoted words that must be adjacent (set on the first)
    prefix_ok: bool = False                   # last word of a still-open quote: may be a beginning


_PART_RE = re.compile(r'(?:(?P<prefix>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"?|(?P<bare>[^\s"]+))')


def parse(query: str) -> tuple[list[Part], set[int] | None]:
    """Split a query into parts (one per word) and an optional kind filter."""
    parts: list[Part] = []
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
                kinds = (kinds or set()) | {KIND_CODE[k] for k in wanted}
            continue
        if prefix and prefix not in PREFIXES:
            text = f"{prefix}:{text}" if quoted is None else text
            if quoted is not None:
                free.append(prefix)
            prefix = ""
        if not prefix and quoted is None:
            free.append(text)
            continue
        fields, numkinds = PREFIXES[prefix] if prefix else (None, None)
        words = query_words(fold(text))
        if not words:
            continue
        if prefix and not fields:
            fields_arg: frozenset[int] | None = frozenset()
        else:
            fields_arg = fields
        for i, w in enumerate(words):
            last_open = still_open and i == len(words) - 1
            parts.append(Part(w, fields=fields_arg if prefix else None, numkinds=numkinds or None if prefix else None,
                              exact=quoted is not None and not last_open, required=True,
                              phrase=tuple(words) if (quoted is not None and i == 0) else None,
                              prefix_ok=last_open))
            if quoted is not None and i == 0 and still_open:
                parts[-1].phrase = tuple(words[:-1]) + (words[-1] + "*",)
    for w in query_words(fold(" ".join(free))):
        parts.append(Part(w))
    return parts, kinds


_FAMILY_FIRST_RE = re.compile(r"^\s*(?:[A-Za-z]+\s+)?[^\s,:\"]+\s*,")


def family_first(query: str) -> bool:
    """Whether the operator wrote the surname first, with a comma ("smith, john", "dr smith, j")."""
    return bool(_FAMILY_FIRST_RE.match(query))


def contains_run(words: list[str], phrase: list[str]) -> bool:
    """Whether ``phrase`` occurs as adjacent words; a last word ending in ``*`` may be a beginning."""
    n = len(phrase)
    if phrase and phrase[-1].endswith("*"):
        head, tail = phrase[:-1], phrase[-1][:-1]
        return any(words[i:i + n - 1] == head and words[i + n - 1].startswith(tail)
                   for i in range(len(words) - n + 1))
    return any(words[i:i + n] == phrase for i in range(len(words) - n + 1))
