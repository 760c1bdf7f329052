"""The one sanitiser for text from data or file names on its way to a terminal or a log.

Directory data, snapshot headers, receipts and file names in an inbox come from outside this program.
Printed raw, an escape sequence can recolour or clear the terminal and move the cursor, a bell rings,
a NUL or a carriage return hides what came before, U+202E turns a line around, and a newline fakes a
whole result line ("This snapshot is good."). ``shown`` makes every such character visible instead of
obeyed, so what is printed is always exactly one line per call and reads the same on any terminal:

==========================================  ===========================  ======================
character                                   examples                     shown as
==========================================  ===========================  ======================
line feed                                   ``\\n``                       ``⏎``
other C0/C1 controls and DEL                ESC, BEL, NUL, CR, TAB, CSI  ``\\x1b`` ``\\x07`` ``\\x00``
                                                                         ``\\r`` ``\\t`` ``\\x9b``
a byte that is not UTF-8 (a file name       byte 0xFF in a name          ``\\xff``
decoded with surrogateescape)
format characters, line/paragraph           U+202E, U+200B, U+2028,      ``<U+202E>``
separators, other surrogates, private use   U+FEFF
==========================================  ===========================  ======================

Everything else — letters of every script, accents, punctuation, emoji — is printed as it is. A backslash
is not doubled: the output is for people, who can tell ``\\x1b`` in a name from one shown here only by
asking, and neither can harm them. ``shown`` is idempotent: showing shown text changes nothing.

This module must never import anything outside the standard library (the exporter and the desktop both
use it, as does every part of the desktop, Qt or not).
"""

from __future__ import annotations

import unicodedata

__all__ = ["shown", "NEWLINE_MARK"]

NEWLINE_MARK = "⏎"
_NAMED = {"\n": NEWLINE_MARK, "\r": "\\r", "\t": "\\t"}
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def _one(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"<U+{code:04X}>"


def shown(text: object, *, limit: int | None = None) -> str:
    """``text`` (anything, through ``str``) safe for one line of a terminal or a log.

    ``limit`` caps the result's length in characters (an ellipsis marks the cut) for fields that could
    be arbitrarily long.
    """
    value = str(text)
    if value.isprintable() and value.isascii():  # the common case, fast (ASCII printable has no Cf)
        out = value
    else:
        out = "".join(_one(ch) if unicodedata.category(ch) in _HIDDEN or ch in _NAMED else ch for ch in value)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out
