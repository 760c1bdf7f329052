"""Array helpers for the index: grouping by key (CSR), gathering ranges, dense codes, fast stable sorts.

Plain numpy, no knowledge of listings or words; everything here is vectorised so that building and
querying stay proportional to the arrays involved, never to Python loops over rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gather_ranges", "argsort_keys", "csr", "dense_codes", "first_of_each"]


def gather_ranges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the index ranges [starts[i], ends[i]); also say which i each element came from."""
    lens = (ends - starts).astype(np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    owner = np.repeat(np.arange(len(lens)), lens)
    first = np.cumsum(lens) - lens
    return np.arange(total, dtype=np.int64) + (starts.astype(np.int64) - first)[owner], owner


def argsort_keys(keys: np.ndarray) -> np.ndarray:
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


def csr(keys: np.ndarray, n_keys: int, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Group ``values`` by ``keys`` (0 <= key < n_keys): offsets[n_keys + 1] and the grouped values."""
    counts = np.bincount(keys, minlength=n_keys) if len(keys) else np.zeros(n_keys, np.int64)
    offsets = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    order = argsort_keys(keys)
    return (offsets, *(v[order] for v in values))


def dense_codes(values: list) -> tuple[np.ndarray, list]:
    """Dense codes for a list of hashable values, and the distinct values in code order (C-speed)."""
    table = dict.fromkeys(values)
    distinct = list(table)
    for i, key in enumerate(distinct):
        table[key] = i
    return np.fromiter(map(table.__getitem__, values), dtype=np.int32, count=len(values)), distinct


def first_of_each(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct key, the largest value: (keys, values), sorted by key."""
    order = np.lexsort((-values, keys))
    keys, values = keys[order], values[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return keys[first], values[first]
