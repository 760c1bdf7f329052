"""Nicknames: given names and the names they are short for, so that "Bob Smyth" finds Robert Smith.

The table is ``resources/nicknames.csv`` ("name,nickname" pairs, from the hand-curated ``nicknames``
dataset, Apache-2.0; see the file's header). Each pair works in both directions, for given names only
(the display name, the given-name field and aliases): "bob" finds Robert, "robert" finds a listing
called Bob. Whole typed words only, never a beginning; ``scoring`` ranks a nickname match below an
exact one. Nothing here is stored in the index: the table is read once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from backup_operator.resources import resource_path

__all__ = ["Nicknames", "load_nicknames", "default_nicknames"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Nicknames:
    """Folded given name -> the names related to it by the table (either direction), sorted."""

    related: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> "Nicknames":
        table: dict[str, set[str]] = {}
        for name, nick in pairs:
            name, nick = name.strip().lower(), nick.strip().lower()
            if name and nick and name != nick:
                table.setdefault(name, set()).add(nick)
                table.setdefault(nick, set()).add(name)
        return cls({k: tuple(sorted(v)) for k, v in table.items()})

    def of(self, word: str) -> tuple[str, ...]:
        return self.related.get(word, ())


def load_nicknames(path: Path | str | None = None) -> Nicknames:
    """Read a nicknames file. Without a path, the shipped one; if that is missing, none (logged)."""
    try:
        target = Path(path) if path is not None else resource_path("nicknames.csv")
        with open(target, encoding="utf-8") as fh:
            lines = [line.strip() for line in fh]
    except FileNotFoundError as exc:
        if path is not None:
            raise
        log.warning("no nicknames file (%s); searching without nicknames", exc)
        return Nicknames({})
    pairs = []
    for line in lines:
        if line and not line.startswith("#"):
            name, _, nick = line.partition(",")
            pairs.append((name, nick))
    return Nicknames.from_pairs(pairs)


_DEFAULT: Nicknames | None = None


def default_nicknames() -> Nicknames:
    """The shipped nicknames, read once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_nicknames()
    return _DEFAULT
