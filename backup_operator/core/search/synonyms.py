"""Synonyms an operator types ("cards", "ER", "peds"): read from ``resources/synonyms.toml``.

A synonym key matches a whole query word only; each alternative is a phrase whose words must all match.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from backup_operator.core.search.text import fold, query_words
from backup_operator.resources import resource_path

__all__ = ["Synonyms", "load_synonyms", "default_synonyms_path", "default_synonyms"]

log = logging.getLogger(__name__)


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
        return Path(__file__).resolve().parents[3] / "resources" / "synonyms.toml"  # reported by load_synonyms


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


_DEFAULT: Synonyms | None = None


def default_synonyms() -> Synonyms:
    """The shipped synonyms, read once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_synonyms()
    return _DEFAULT
