"""Building the index: reading a snapshot's rows in bulk and turning them into flat arrays.

Every searchable text is folded (``text``) and split into words; the distinct words form the vocabulary
(``candidates`` builds its lookup structures); postings take words to rows (``scoring`` reads them);
numbers get their sorted arrays (``numbers``). Whole columns are read with one SQL statement each and
processed with numpy: no Python object per row survives the build. This module never changes the
snapshot.
"""

from __future__ import annotations

import json
import queue
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
    sel = ", ".join(f"group_concat({c}, char(10))" for c in columns)
    row = conn.execute(f"SELECT {sel} FROM {table} NOT INDEXED").fetchone()
    return [_values(conn, table, c, text, n) for c, text in zip(columns, row)], n


def _column_text(conn: sqlite3.Connection, table: str, column: str) -> str | None:
    """One whole column as a single text, a line per row (``_values`` splits it); two columns come coded
    instead, with no Python string per row: ``rowid`` as comma-separated numbers, ``kind`` as one digit
    per row (``_KIND_DIGITS``)."""
    if column == "rowid":
        what = "group_concat(rowid)"
    elif column == "kind":
        what = f"group_concat({_KIND_DIGITS}, '')"
    else:
        what = f"group_concat({column}, char(10))"
    return conn.execute(f"SELECT {what} FROM {table} NOT INDEXED").fetchone()[0]


# A listing's kind as its KIND_CODE digit; any other kind (validation refuses those) as 0.
_KIND_DIGITS = "CASE kind " + " ".join(f"WHEN '{k}' THEN '{c}'" for k, c in KIND_CODE.items()) + " ELSE '0' END"


def _values(conn: sqlite3.Connection, table: str, column: str, text: str | None, n: int) -> list[str]:
    """A column's text (``fetch_columns``, ``_column_text``) as its ``n`` values."""
    # The plain form is 3x faster; it miscounts only if a value is NULL or holds a line break, and then
    # that column is read again the careful way.
    if n == 0:
        return []
    values = (text or "").split("\n")
    if len(values) != n:
        text = conn.execute(f"SELECT group_concat(replace(ifnull(CAST({column} AS TEXT), ''), char(10), ' '),"
                            f" char(10)) FROM {table} NOT INDEXED").fetchone()[0]
        values = (text or "").split("\n")
        if len(values) != n:
            raise RuntimeError(f"read {len(values)} values of {table}.{column} for {n} rows")
    return values


class _ReadAhead:
    """The listings' columns and then the numbers, read on a second connection in a thread, in the order
    the build takes them, while the build works on the ones before (SQLite reads without the GIL: the
    bulk reads are a third of the build's time at a million listings, and overlap with the rest on two
    cores). At most ``depth`` columns wait, each one text (a few MB to tens of MB at a million rows).

    Without a second connection everything is read on ``conn`` when asked for, as before."""

    def __init__(self, conn: sqlite3.Connection, source: sqlite3.Connection | None, columns: Sequence[str],
                 *, close_source: bool = False, depth: int = 2):
        self._conn, self._source = conn, source
        self._columns = list(columns)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._numbers: dict[str, object] = {}
        self._worker = None
        if source is not None:
            self._worker = threading.Thread(target=self._run, args=(list(columns), close_source),
                                            name="search-index-reads", daemon=True)
            self._worker.start()

    def _run(self, columns: list[str], close_source: bool) -> None:
        try:
            for column in columns:
                if self._stop.is_set():
                    return
                self._queue.put((_column_text(self._source, "listings", column), None))
            if not self._stop.is_set():
                self._numbers["raw"] = read_numbers(self._source)
        except BaseException as exc:  # re-raised in the building thread
            self._queue.put((None, exc))
            self._numbers["error"] = exc
        finally:
            if close_source:
                self._source.close()

    def text(self, column: str) -> str | None:
        """The next column's text (``_column_text``); they are asked for in the order given."""
        if not self._columns or self._columns.pop(0) != column:
            raise RuntimeError(f"column {column!r} asked for out of the order given")
        if self._worker is None:
            return _column_text(self._conn, "listings", column)
        text, error = self._queue.get()
        if error is not None:
            raise error
        return text

    def column(self, column: str, n: int) -> list[str]:
        """The next column as its ``n`` values."""
        return _values(self._conn, "listings", column, self.text(column), n)

    def numbers(self) -> tuple:
        """``read_numbers``' result, once every column was taken."""
        if self._worker is None:
            return read_numbers(self._conn)
        self._worker.join()  # every column was taken: nothing is left for it to wait on
        if "error" in self._numbers:
            raise self._numbers["error"]  # type: ignore[misc]
        return self._numbers["raw"]  # type: ignore[return-value]

    def close(self) -> None:
        """Stop and wait for the thread, on every way out of the build (the caller's connection must not
        be closed or written while it reads)."""
        if self._worker is None:
            return
        self._stop.set()
        while self._worker.is_alive():  # a worker blocked on a full queue finishes its put
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._worker.join()


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
    folded = list(map(str.casefold, names))
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

    ``reader``: a second connection on the same database (the exporter's build file), which the listings'
    columns and the numbers are read on in a thread, without a copy; nothing is written to the database
    until they are read."""
    # The listings' columns and the numbers are read on a second connection, in a thread (_ReadAhead):
    # SQLite releases the GIL while it reads, so the reads overlap with the rest of the build on two
    # cores. (One connection would serialise them.) With no ``reader``, on a private in-memory copy of
    # the snapshot that lives only while the build runs, made only for mid-sized snapshots: for big ones
    # the memory matters more.
    size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    many = conn.execute("SELECT count(*) > 50000 FROM contact_methods").fetchone()[0]
    source, own = None, False
    if many and (reader is not None or size < _COPY_MAX_BYTES):
        if reader is not None:
            source = reader
        else:
            source, own = sqlite3.connect(":memory:", check_same_thread=False), True
            source.deserialize(conn.serialize())
    phrase_columns = [c for c, _f in LISTING_PHRASE_COLUMNS]
    reads = _ReadAhead(conn, source, ["rowid", "kind", "display_name", *phrase_columns], close_source=own)
    try:
        vocab = _Vocab()
        # one column at a time, each dropped once indexed: a million-row column is ~70 MB of Python strings
        scols, n_s = fetch_columns(conn, "oncall_schedules", ["rowid", "name", "department", "site"])
        S = dict(zip(["rowid", "name", "department", "site"], scols))
        n_l = conn.execute("SELECT count(*) FROM listings").fetchone()[0]
        text = reads.text("rowid")
        lrowid = np.fromstring(text, dtype=np.int64, sep=",") if n_l else np.empty(0, np.int64)
        text = reads.text("kind")
        lkind = np.frombuffer(text.encode("ascii"), dtype=np.uint8) - np.uint8(48) if n_l else np.empty(0, np.uint8)
        del text
        if len(lrowid) != n_l or len(lkind) != n_l:
            raise RuntimeError(f"read {len(lrowid)} rowids and {len(lkind)} kinds of listings for {n_l} rows")
        n = n_l + n_s
        rowid = np.concatenate([lrowid, np.array(S["rowid"], dtype=np.int64) if n_s else np.empty(0, np.int64)])
        kind = np.concatenate([lkind, np.full(n_s, SCHEDULE, np.uint8)])
        del lrowid, lkind

        # per-row words: display names and schedule names
        display = reads.column("display_name", n_l)
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
            if isinstance(column, str):
                values = reads.column(column, n_l)
            else:
                values = column
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
        raw_numbers = reads.numbers()
    finally:
        # the reader (the caller's connection) must be done before anything closes or writes it
        reads.close()
    numbers = build_numbers(raw_numbers, rowid[:n_l])
    arrays = dict(kind=kind, rowid=rowid, name_len=name_len, name_rank=name_rank, rt_off=rt_off, rt_rows=rt_rows, rt_field=rt_field,
                  pt_off=pt_off, pt_phr=pt_phr_a, phrase_field=phrase_field_a, pr_off=pr_off, pr_rows=pr_rows_a,
                  **vocabulary_arrays(terms, df), **numbers)
    return arrays, terms, n_l
