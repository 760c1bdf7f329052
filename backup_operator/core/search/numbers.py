"""Numbers: extensions, direct lines, mobiles and pagers found by their digits, however they are written.

A number matches whole, as its ending, or as its beginning, never in the middle. Numbers live in two
sorted arrays of base-11 encoded digit strings (digit d is d + 1, 0 is padding, so a key's order is its
string's order), one forwards and one reversed: a number's beginning and its ending are then each one
binary search. Caller IDs with a country or trunk prefix find the stored number as their ending.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from backup_operator.core.search.fields import NUMBER_KIND_CODE, NUMBER_KINDS

__all__ = ["NumberIndex", "read_numbers", "build_numbers", "digit_match", "NUMBER_ARRAYS",
           "Q_NUMBER_EXACT", "Q_NUMBER_END", "Q_NUMBER_START"]

NUM_WIDTH = 18                                    # digits kept per number (E.164 has at most 15)
Q_NUMBER_EXACT, Q_NUMBER_END, Q_NUMBER_START = 1.0, 0.95, 0.85

#: The arrays this module stores in the index.
NUMBER_ARRAYS = ("num_fwd", "num_fwd_row", "num_fwd_kind", "num_rev", "num_rev_row", "num_rev_kind")


def _encode_digits(matrix: np.ndarray) -> np.ndarray:
    """Rows of digit values (1..10, 0 = padding) -> int64 keys whose order is the strings' order."""
    out = np.zeros(len(matrix), dtype=np.int64)
    for j in range(NUM_WIDTH):
        out *= 11
        out += matrix[:, j]
    return out


def _digit_key(digits: str) -> int:
    return sum((int(d) + 1) * 11 ** (NUM_WIDTH - 1 - i) for i, d in enumerate(digits[:NUM_WIDTH]))


def _key_range(digits: str) -> tuple[int, int]:
    """[lo, hi] of the keys of every digit string that starts with ``digits``."""
    lo = _digit_key(digits)
    return lo, lo + 11 ** (NUM_WIDTH - min(len(digits), NUM_WIDTH)) - 1


# ------------------------------------------------------------------------------------------ building


def read_numbers(conn: sqlite3.Connection) -> tuple:
    """Every indexed number of the snapshot in one bulk read (owner rowids, kind codes as one digit each,
    right-aligned digits).

    Listings are the outer loop (CROSS JOIN keeps that order): a scan of them in rowid order, each
    probing its own contact methods (the snapshot's index on ``listing_id``), costs a quarter less than
    probing the listings' id index once per contact method. Kinds come as codes, not names, so that no
    Python string is made per number."""
    kinds_sql = ",".join(f"'{k}'" for k in NUMBER_KINDS)
    codes_sql = " ".join(f"WHEN '{k}' THEN '{NUMBER_KIND_CODE[k]}'" for k in NUMBER_KINDS)
    pad = ":" * NUM_WIDTH
    return conn.execute(
        f"SELECT count(*), group_concat(l.rowid), group_concat(CASE c.kind {codes_sql} END, ''),"
        f" group_concat(substr('{pad}' || c.digits, -{NUM_WIDTH}), '')"
        " FROM listings l CROSS JOIN contact_methods c ON c.listing_id = l.id"
        f" WHERE c.digits != '' AND c.kind IN ({kinds_sql})").fetchone()


def build_numbers(row: tuple, listing_rowids: np.ndarray) -> dict[str, np.ndarray]:
    """The sorted number arrays from ``read_numbers``' result; rows are positions in ``listing_rowids``."""
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
    kind = np.frombuffer(row[2].encode("ascii"), dtype=np.uint8) - np.uint8(48)  # '0'.. -> NUMBER_KIND_CODE
    # right-aligned digits (padding first): reversed, they are the left-aligned reversed number, and the
    # left-aligned forward key is the right-aligned one shifted by the padding — no per-row gather
    raw = np.frombuffer(row[3].encode("ascii"), dtype=np.uint8).reshape(count, NUM_WIDTH)
    vals = raw - np.uint8(47)                  # '0'..'9' -> 1..10, ':' (padding) -> 11
    vals[vals == 11] = 0
    pads = (vals == 0).sum(axis=1)
    rev = _encode_digits(vals[:, ::-1])
    fwd = _encode_digits(vals) * (np.int64(11) ** pads.astype(np.int64))
    of = np.argsort(fwd, kind="stable")
    orv = np.argsort(rev, kind="stable")
    return dict(num_fwd=fwd[of], num_fwd_row=owner[of], num_fwd_kind=kind[of],
                num_rev=rev[orv], num_rev_row=owner[orv], num_rev_kind=kind[orv])


# ------------------------------------------------------------------------------------------ querying


class NumberIndex:
    """The number arrays of one index, and the lookups on them."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.fwd, self.fwd_row, self.fwd_kind = arrays["num_fwd"], arrays["num_fwd_row"], arrays["num_fwd_kind"]
        self.rev, self.rev_row, self.rev_kind = arrays["num_rev"], arrays["num_rev_row"], arrays["num_rev_kind"]

    @staticmethod
    def _range(keys, rows, kinds_of, lo, hi, whole, partial_quality, kinds, rows_l, quals_l) -> None:
        """Append the rows whose number key lies in [lo, hi] of one sorted array (forwards or reversed):
        an exact match scores as a whole number, the rest as its beginning or ending."""
        a = int(np.searchsorted(keys, lo, side="left"))
        b = int(np.searchsorted(keys, hi, side="right"))
        if b <= a:
            return
        sl = slice(a, b)
        r, kd = rows[sl], kinds_of[sl]
        q = np.where(keys[sl] == whole, Q_NUMBER_EXACT, partial_quality).astype(np.float32)
        if kinds is not None:
            ok = np.isin(kd, list(kinds))
            r, q = r[ok], q[ok]
        rows_l.append(r)
        quals_l.append(q)

    def rows(self, digits: str, kinds: frozenset[int] | None, *, exact: bool,
             ends_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Rows owning a number equal to ``digits``, ending with it, or (unless exact) starting with it,
        each with a quality."""
        rows_l: list[np.ndarray] = []
        quals_l: list[np.ndarray] = []
        key = _digit_key(digits)
        rkey_lo, rkey_hi = _key_range(digits[::-1])
        self._range(self.rev, self.rev_row, self.rev_kind, rkey_lo, rkey_lo if exact else rkey_hi, rkey_lo,
                    Q_NUMBER_END, kinds, rows_l, quals_l)
        if not exact and not ends_only:
            flo, fhi = _key_range(digits)
            self._range(self.fwd, self.fwd_row, self.fwd_kind, flo, fhi, key, Q_NUMBER_START, kinds, rows_l, quals_l)
        if not exact and not ends_only and len(digits) >= 8:
            # a caller ID with a country or trunk prefix: the stored number is its ending
            for k in range(len(digits) - 1, 6, -1):
                tail = _digit_key(digits[-k:])
                a = int(np.searchsorted(self.fwd, tail, side="left"))
                b = int(np.searchsorted(self.fwd, tail, side="right"))
                if b > a:
                    r, kd = self.fwd_row[a:b], self.fwd_kind[a:b]
                    if kinds is not None:
                        r = r[np.isin(kd, list(kinds))]
                    rows_l.append(r)
                    quals_l.append(np.full(len(r), Q_NUMBER_END, dtype=np.float32))
                    break
        if not rows_l:
            return np.empty(0, np.int32), np.empty(0, np.float32)
        return np.concatenate(rows_l), np.concatenate(quals_l)


def digit_match(digits: str, q: str, exact: bool) -> tuple[int, int] | None:
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
