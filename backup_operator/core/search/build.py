"""Building the index: reading a snapshot's rows in bulk and turning them into flat arrays.

Every searchable text is folded (``text``) and split into words; the distinct words form the vocabulary
(``candidates`` builds its lookup structures); postings take words to rows (``scoring`` reads them);
numbers get their sorted arrays (``numbers``). Whole columns are read with one SQL statement each and
processed with numpy: no Python object per row survives the build. This module never changes the
snapshot.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence

import numpy as np

from backup_operator.core.search.arrays import csr, dense_codes
from backup_operator.core.search.candidates import vocabulary_arrays
from backup_operator.core.search.fields import FIELD_CODE, KIND_CODE, LISTING_PHRASE_COLUMNS, SCHEDULE
from backup_operator.core.search.numbers import build_numbers, read_numbers
from backup_operator.core.search.text import bulk_words, fold, index_words

__all__ = ["build_arrays"]

_COPY_MAX_BYTES = 160 * 1024 * 1024               # read numbers in parallel on a copy below this size


def fetch_columns(conn: sqlite3.Connection, table: str, columns: Sequence[str]) -> tuple[list[list[str]], int]:
    """Whole columns in rowid order, each with one bulk read (group_concat), as lists of strings."""
    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if n == 0:
        return [[] for _ in columns], 0
    # NOT INDEXED: a full scan of the table itself is in rowid order (a covering index would not be).
    # The plain form is 3x faster; it miscounts only if a value is NULL or holds a line break, and then
    # that column is read again the careful way.
    sel = ", ".join(f"group_concat({c}, char(10))" for c in columns)
    row = conn.execute(f"SELECT {sel} FROM {table} NOT INDEXED").fetchone()
    out = []
    for c, text in zip(columns, row):
        values = (text or "").split("\n")
        if len(values) != n:
            text = conn.execute(f"SELECT group_concat(replace(ifnull(CAST({c} AS TEXT), ''), char(10), ' '),"
                                f" char(10)) FROM {table} NOT INDEXED").fetchone()[0]
            values = (text or "").split("\n")
            if len(values) != n:
                raise RuntimeError(f"read {len(values)} values of {table}.{c} for {n} rows")
        out.append(values)
    return out, n


def _json_text(value: str) -> str:
    if value.startswith("["):
        try:
            return " ; ".join(str(v) for v in json.loads(value))
        except json.JSONDecodeError:
            pass
    return value


def _name_rank(names: list[str]) -> np.ndarray:
    """Each row's place in alphabetical order of names (case-insensitive; equal names by row), so that
    equal scores list in name order."""
    folded = [name.casefold() for name in names]
    order = sorted(range(len(folded)), key=folded.__getitem__)
    rank = np.empty(len(folded), dtype=np.uint32)
    rank[np.array(order, dtype=np.int64)] = np.arange(len(folded), dtype=np.uint32)
    return rank


class _Vocab:
    def __init__(self) -> None:
        self.terms: list[str] = []
        self.ids: dict[str, int] = {}

    def id(self, term: str) -> int:
        i = self.ids.get(term)
        if i is None:
            i = self.ids[term] = len(self.terms)
            self.terms.append(term)
        return i

    def remap(self, words: list[str]) -> np.ndarray:
        return np.array([self.id(w) for w in words], dtype=np.int32)


def build_arrays(conn: sqlite3.Connection, *, reader: sqlite3.Connection | None = None
                 ) -> tuple[dict[str, np.ndarray], list[str], int]:
    """(arrays, vocabulary, number of listings) for a snapshot; rows are listings, then schedules.

    ``reader``: a second connection on the same database (the exporter's build file), which the numbers
    are read on in a thread, without a copy; nothing is written to the database until they are read."""
    # The numbers are read on a second connection, in a thread: SQLite releases the GIL while it reads,
    # so the two halves of the build overlap on two cores. (One connection would serialise them.) With
    # no ``reader``, on a private in-memory copy of the snapshot that lives only while the build runs,
    # made only for mid-sized snapshots: for big ones the memory matters more.
    numbers_box: dict[str, object] = {}
    worker = None
    size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    many = conn.execute("SELECT count(*) > 50000 FROM contact_methods").fetchone()[0]
    if many and (reader is not None or size < _COPY_MAX_BYTES):
        if reader is not None:
            source, own = reader, False
        else:
            source, own = sqlite3.connect(":memory:", check_same_thread=False), True
            source.deserialize(conn.serialize())

        def read_numbers_in_thread() -> None:
            try:
                numbers_box["raw"] = read_numbers(source)
            except BaseException as exc:  # re-raised in the building thread
                numbers_box["error"] = exc
            finally:
                if own:
                    source.close()

        worker = threading.Thread(target=read_numbers_in_thread, name="search-index-numbers", daemon=True)
        worker.start()
    else:
        numbers_box["raw"] = read_numbers(conn)
    try:
        vocab = _Vocab()
        # one column at a time, each dropped once indexed: a million-row column is ~70 MB of Python strings
        scols, n_s = fetch_columns(conn, "oncall_schedules", ["rowid", "name", "department", "site"])
        S = dict(zip(["rowid", "name", "department", "site"], scols))
        (lrowid,), n_l = fetch_columns(conn, "listings", ["rowid"])
        n = n_l + n_s
        rowid = np.concatenate([np.array(lrowid, dtype=np.int64) if n_l else np.empty(0, np.int64),
                                np.array(S["rowid"], dtype=np.int64) if n_s else np.empty(0, np.int64)])
        del lrowid
        (lkind,), _ = fetch_columns(conn, "listings", ["kind"])
        kind_codes, kind_names = dense_codes(lkind)
        del lkind
        kmap = np.array([KIND_CODE.get(k, 0) for k in kind_names] or [0], dtype=np.uint8)
        kind = np.concatenate([kmap[kind_codes] if n_l else np.empty(0, np.uint8), np.full(n_s, SCHEDULE, np.uint8)])

        # per-row words: display names and schedule names
        (display,), _ = fetch_columns(conn, "listings", ["display_name"])
        names = display + S["name"]
        del display
        codes, rows, counted, words = bulk_words(names)
        name_rank = _name_rank(names)
        del names
        gcodes = vocab.remap(words)[codes] if len(codes) else np.empty(0, np.int32)
        name_len = np.bincount(rows[counted], minlength=n).astype(np.float32)

        # per-distinct-value words: one phrase space across all the low-cardinality columns
        phrase_field: list[int] = []
        pr_keys: list[np.ndarray] = []
        pr_rows: list[np.ndarray] = []
        pt_term: list[int] = []
        pt_phr: list[int] = []
        n_phr = 0
        columns = [(c, f, 0) for c, f in LISTING_PHRASE_COLUMNS]
        columns += [(S["department"], "department", n_l), (S["site"], "site", n_l)]
        for column, fname, row0 in columns:
            values = fetch_columns(conn, "listings", [column])[0][0] if isinstance(column, str) else column
            if not values:
                continue
            vcodes, distinct = dense_codes(values)
            fcode = FIELD_CODE[fname]
            has_words = np.zeros(len(distinct), dtype=bool)
            for j, value in enumerate(distinct):
                if fname in ("alias", "keyword"):
                    value = _json_text(value)
                ws = set(index_words(fold(value)))
                if not ws:
                    continue
                has_words[j] = True
                for w in ws:
                    pt_term.append(vocab.id(w))
                    pt_phr.append(n_phr + j)
            phrase_field.extend([fcode] * len(distinct))
            keep = has_words[vcodes]
            pr_keys.append(vcodes[keep].astype(np.int64) + n_phr)
            pr_rows.append(np.flatnonzero(keep).astype(np.int32) + row0)
            n_phr += len(distinct)

        V = len(vocab.terms)
        terms = vocab.terms
        rt_off, rt_rows, rt_field = csr(gcodes.astype(np.int64), V, rows,
                                        np.full(len(rows), FIELD_CODE["name"], dtype=np.uint8))
        pt_term_a = np.array(pt_term, dtype=np.int64)
        pt_off, pt_phr_a = csr(pt_term_a, V, np.array(pt_phr, dtype=np.int32))
        pk = np.concatenate(pr_keys) if pr_keys else np.empty(0, np.int64)
        pr_off, pr_rows_a = csr(pk, n_phr, np.concatenate(pr_rows) if pr_rows else np.empty(0, np.int32))
        phrase_field_a = np.array(phrase_field, dtype=np.uint8)

        # how common each word is (rows containing it)
        df = np.diff(rt_off).astype(np.float64)
        if len(pt_term_a):
            phrase_size = np.diff(pr_off).astype(np.float64)
            df += np.bincount(pt_term_a, weights=phrase_size[np.array(pt_phr, dtype=np.int64)], minlength=V)
    finally:
        if worker is not None:
            # the reader (the caller's connection) must be done before anything closes or writes it
            worker.join()
    if "error" in numbers_box:
        raise numbers_box["error"]  # type: ignore[misc]
    numbers = build_numbers(numbers_box["raw"], rowid[:n_l])
    arrays = dict(kind=kind, rowid=rowid, name_len=name_len, name_rank=name_rank, rt_off=rt_off, rt_rows=rt_rows, rt_field=rt_field,
                  pt_off=pt_off, pt_phr=pt_phr_a, phrase_field=phrase_field_a, pr_off=pr_off, pr_rows=pr_rows_a,
                  **vocabulary_arrays(terms, df), **numbers)
    return arrays, terms, n_l
