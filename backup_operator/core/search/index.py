"""The index of one snapshot: opening it (loading the stored form, or building), and answering queries.

``SearchIndex`` ties the parts together: ``query`` parses, ``candidates`` finds vocabulary words,
``scoring`` turns them into row scores and picks the best, ``numbers`` finds digits, ``results`` makes
the hits. The stored form (``to_bytes``, ``store_index``) is a JSON header and a set of flat numpy
arrays plus the vocabulary as one text: opening it creates no Python object per listing.
"""

from __future__ import annotations

import json
import logging
import sqlite3

import numpy as np

from backup_operator.core.search.build import build_arrays
from backup_operator.core.search.candidates import VOCABULARY_ARRAYS, Vocabulary
from backup_operator.core.search.fields import KIND_PRIOR, KIND_TIE_RANK
from backup_operator.core.search.nicknames import Nicknames, default_nicknames
from backup_operator.core.search.numbers import NUMBER_ARRAYS, NumberIndex
from backup_operator.core.search.query import contains_run, family_first, parse
from backup_operator.core.search.results import Hit, QueryContext, make_hits, row_texts
from backup_operator.core.search.scoring import POSTING_ARRAYS, Postings, score_query, top
from backup_operator.core.search.synonyms import Synonyms, default_synonyms
from backup_operator.core.search.text import fold, word_spans

__all__ = ["SearchIndex", "store_index", "store_index_in", "write_index_in", "INDEX_FORMAT"]

log = logging.getLogger(__name__)

#: Version of the serialised index (``SearchIndex.to_bytes``); a snapshot carrying another is rebuilt.
INDEX_FORMAT = "backup-operator/search-index/2"

_ROW_ARRAYS = ("kind", "rowid", "name_len", "name_rank")
_ARRAYS = _ROW_ARRAYS + POSTING_ARRAYS + VOCABULARY_ARRAYS + NUMBER_ARRAYS


class SearchIndex:
    """The search index of one snapshot: built or loaded once, then queried on every keystroke.

    Thread-safe for concurrent ``search`` calls (it is read-only after opening; the SQLite connection
    it reads hit details from serialises access itself).
    """

    # ------------------------------------------------------------------------------------ opening

    def __init__(self, conn: sqlite3.Connection, arrays: dict[str, np.ndarray], terms: list[str],
                 synonyms: Synonyms, n_listings: int, nicknames: Nicknames | None = None):
        self.conn = conn
        self.synonyms = synonyms
        self.nicknames = nicknames if nicknames is not None else default_nicknames()
        self.n_listings = n_listings
        self._arrays = {name: arrays[name] for name in _ARRAYS}
        self.kind, self.rowid, self.name_len = arrays["kind"], arrays["rowid"], arrays["name_len"]
        self.vocabulary = Vocabulary(terms, arrays)
        self.postings = Postings(arrays)
        self.numbers = NumberIndex(arrays)
        self.prior = KIND_PRIOR[self.kind]
        self.inv_name_len = (1.0 / np.maximum(self.name_len, 1)).astype(np.float32)
        self.tie_key = (KIND_TIE_RANK[self.kind] << 32) | arrays["name_rank"].astype(np.int64)

    @classmethod
    def open(cls, conn: sqlite3.Connection, *, synonyms: Synonyms | None = None) -> "SearchIndex":
        """The index for a snapshot: loaded from its ``search_index`` table if it carries one of this
        format that matches its rows, else built from the rows (``build``)."""
        try:
            stored = _stored_parts(conn)
        except sqlite3.DatabaseError:
            stored = None
        except ValueError as exc:
            log.warning("the snapshot's search index cannot be read (%s); rebuilding", exc)
            stored = None
        if stored is not None:
            try:
                return cls._from_parts(conn, *stored, synonyms=synonyms)
            except ValueError as exc:
                log.warning("the snapshot's search index does not fit its rows (%s); rebuilding", exc)
        return cls.build(conn, synonyms=synonyms)

    @classmethod
    def build(cls, conn: sqlite3.Connection, *, synonyms: Synonyms | None = None,
              reader: sqlite3.Connection | None = None) -> "SearchIndex":
        """Build the index from the snapshot's rows (bulk SQL reads and numpy; no per-row Python objects
        beyond one string per row and column while building). ``reader``: a second connection on the same
        database, for reading the numbers in parallel (build_arrays)."""
        arrays, terms, n_listings = build_arrays(conn, reader=reader)
        return cls(conn, arrays, terms, synonyms or default_synonyms(), n_listings)

    def to_bytes(self) -> bytes:
        """The index, serialised for storing inside a snapshot (see ``store_index``)."""
        return b"".join(self._pieces())

    def _pieces(self) -> list:
        """The serialised index (``to_bytes``) as the pieces it is made of, in order: the header, a view of
        each array's memory, the vocabulary (no copy of the arrays; ``write_index_in`` writes them)."""
        header = {"format": INDEX_FORMAT, "n_listings": self.n_listings, "arrays": []}
        blobs = []
        offset = 0
        for name in _ARRAYS:
            arr = np.ascontiguousarray(self._arrays[name])
            header["arrays"].append([name, arr.dtype.str, list(arr.shape), offset])
            blobs.append(memoryview(arr).cast("B") if arr.size else b"")
            offset += len(blobs[-1])
        terms = "\n".join(self.vocabulary.terms).encode("utf-8")
        header["terms"] = [offset, len(terms)]
        head = json.dumps(header).encode("utf-8")
        return [len(head).to_bytes(8, "little") + head, *blobs, terms]

    @classmethod
    def from_bytes(cls, conn: sqlite3.Connection, data: bytes | bytearray, *,
                   synonyms: Synonyms | None = None) -> "SearchIndex":
        """Load an index made by ``to_bytes``; ``ValueError`` if it is of another format or other rows."""
        try:
            size = int.from_bytes(data[:8], "little")
            header = json.loads(bytes(data[8:8 + size]))
            if header.get("format") != INDEX_FORMAT:
                raise ValueError(f"index format {header.get('format')!r}")
            body = memoryview(data).toreadonly()[8 + size:]  # the arrays are views of it: never written
            arrays = {}
            for name, dtype, shape, offset in header["arrays"]:
                count = int(np.prod(shape))
                arrays[name] = np.frombuffer(body, dtype=np.dtype(dtype), count=count,
                                             offset=offset).reshape(shape)
            t_off, t_len = header["terms"]
            text = bytes(body[t_off:t_off + t_len]).decode("utf-8")
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"damaged search index ({exc})") from exc
        return cls._from_parts(conn, header, arrays, text, synonyms=synonyms)

    @classmethod
    def _from_parts(cls, conn: sqlite3.Connection, header: dict, arrays: dict[str, np.ndarray], text: str, *,
                    synonyms: Synonyms | None = None) -> "SearchIndex":
        """The index from its stored parts (``from_bytes``, ``_stored_parts``), once they fit the rows."""
        terms = text.split("\n") if text else []
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"damaged search index (no {', '.join(missing)})")
        n_listings = int(header["n_listings"])
        counts = conn.execute(f"SELECT ({_listing_count(conn)}), (SELECT count(*) FROM oncall_schedules),"
                              " (SELECT max(rowid) FROM listings)").fetchone()
        if (counts[0] != n_listings or counts[0] + counts[1] != len(arrays["kind"])
                or (n_listings and int(arrays["rowid"][n_listings - 1]) != counts[2])):
            raise ValueError("row counts differ")
        return cls(conn, arrays, terms, synonyms or default_synonyms(), n_listings)

    def __len__(self) -> int:
        return len(self.kind)

    # ------------------------------------------------------------------------------------ querying

    def search(self, query: str, limit: int = 50) -> list[Hit]:
        """The best ``limit`` listings and on-call schedules for ``query``, best first."""
        parts, kinds = parse(query)
        if not parts or limit <= 0:
            return []
        ctx = QueryContext(self)
        candidates, scores = score_query(self, parts, ctx, kinds, family_first(query))
        if not len(candidates):
            return []
        phrases = [p.phrase for p in parts if p.phrase and len(p.phrase) > 1]
        rows, scores = top(candidates, scores, limit if not phrases else max(limit * 4, 200), self.tie_key)
        if phrases:
            good = self._phrase_filter(rows, phrases)
            rows, scores = rows[good][:limit], scores[good][:limit]
        return make_hits(self, rows, scores, ctx)

    def reverse_lookup(self, number: str, limit: int = 20) -> list[Hit]:
        """Who owns this number (caller ID)? Exact digits first; else the longest ending of at least seven
        digits shared with a stored number (so "+1 608 555 4471" finds 608-555-4471, and
        "+44 1632 960123" finds 01632 960123). Returns listings only, best first."""
        digits = "".join(ch for ch in number if ch.isdigit())
        ctx = QueryContext(self)
        if len(digits) < 3:
            return []
        rows, quals = self.numbers.rows(digits, None, exact=True)
        if not len(rows):
            for k in range(len(digits) - 1, 6, -1):
                rows, quals = self.numbers.rows(digits[-k:], None, exact=False, ends_only=True)
                if len(rows):
                    digits = digits[-k:]
                    break
        if not len(rows):
            return []
        ctx.numbers.append((digits, None, False))
        best = np.zeros(len(self), dtype=np.float32)
        np.maximum.at(best, rows, quals)
        candidates = np.flatnonzero(best)
        rows, scores = top(candidates, best[candidates], limit, self.tie_key)
        return make_hits(self, rows, scores, ctx)

    def _phrase_filter(self, rows: np.ndarray, phrases: list[tuple[str, ...]]) -> np.ndarray:
        """Which rows have every quoted phrase as adjacent words within one field."""
        keep = np.ones(len(rows), dtype=bool)
        for i, row in enumerate(rows.tolist()):
            words_per_field = [[w for w, _s, _e in sorted(word_spans(fold(t)), key=lambda x: x[1])]
                               for _f, t in row_texts(self, row)]
            for phrase in phrases:
                if not any(contains_run(ws, list(phrase)) for ws in words_per_field):
                    keep[i] = False
                    break
        return keep


_BLOB_PIECE = 1024 * 1024


def _stored_parts(conn: sqlite3.Connection) -> tuple[dict, dict[str, np.ndarray], str] | None:
    """The stored index's header, arrays and vocabulary text, each array read from the blob at once into
    memory of its own (no buffer of the whole and a copy out of it: a fifth less time at a million
    listings; ``fetchone`` would hold it twice, SQLite assembling a value that spans pages in a buffer of
    its own before Python copies it). Nor is the GIL held for long, which a snapshot opening in the
    background must not (the window's typing stalls meanwhile): SQLite reads without it, and the memory
    is not zero-filled first (fetching the 16 MB blob of 100,000 listings as one row held it for 10-60
    ms). ``ValueError`` when it is damaged."""
    row = conn.execute("SELECT rowid FROM search_index WHERE format = ?", (INDEX_FORMAT,)).fetchone()
    if row is None:
        return None
    with conn.blobopen("search_index", "data", row[0], readonly=True) as blob:
        total = len(blob)

        def read(offset: int, nbytes: int) -> bytes:
            if offset < 0 or nbytes < 0 or offset + nbytes > total:
                raise ValueError("damaged search index (a part outside it)")
            blob.seek(offset)
            data = blob.read(nbytes)
            if len(data) != nbytes:  # every byte is read, or none is used
                raise sqlite3.DatabaseError("the stored search index ended early")
            return data

        try:
            size = int.from_bytes(read(0, 8), "little")
            header = json.loads(read(8, size))
            if header.get("format") != INDEX_FORMAT:
                raise ValueError(f"index format {header.get('format')!r}")
            arrays = {}
            for name, dtype, shape, offset in header["arrays"]:
                dt = np.dtype(dtype)
                count = int(np.prod(shape))
                arrays[name] = np.frombuffer(read(8 + size + int(offset), count * dt.itemsize),
                                             dtype=dt).reshape(shape)
            t_off, t_len = header["terms"]
            text = read(8 + size + int(t_off), int(t_len)).decode("utf-8")
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"damaged search index ({exc})") from exc
    return header, arrays, text


def _listing_count(conn: sqlite3.Connection) -> str:
    """SQL for the number of listings: the count the exporter wrote in ``meta`` when there is one
    (``count(*)`` walks an index of every listing, and the pages around it: 150 MB of the RAM file
    mapped at a million), else ``count(*)``."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'counts'").fetchone()
        counted = json.loads(row[0]).get("listings") if row is not None else None
    except (sqlite3.DatabaseError, ValueError, TypeError, AttributeError):
        counted = None
    return str(counted) if type(counted) is int and counted >= 0 else "SELECT count(*) FROM listings"


def store_index(database: bytes, *, synonyms: Synonyms | None = None) -> bytes:
    """Return ``database`` (SQLite bytes) with its search index stored in a ``search_index`` table.

    For the exporter: a desktop opening a snapshot that carries its index loads it in a fraction of the
    time it takes to build (at a million listings, well under a second instead of several seconds).
    A desktop with another index format simply builds its own.
    """
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(database)
        store_index_in(conn, synonyms=synonyms)
        conn.execute("VACUUM")
        return conn.serialize()
    finally:
        conn.close()


def store_index_in(conn: sqlite3.Connection, *, synonyms: Synonyms | None = None,
                   reader: sqlite3.Connection | None = None) -> None:
    """Build the index of the snapshot open on ``conn`` and store it there (the exporter's build step,
    on the database it is building: no copy of the database is made). ``reader``: a second, read-only
    connection on the same database (SnapshotBuilder.reader), read from in parallel while building."""
    write_index_in(conn, SearchIndex.build(conn, synonyms=synonyms, reader=reader))


def write_index_in(conn: sqlite3.Connection, index: SearchIndex) -> None:
    """Store ``index`` (built from the database open on ``conn``) in that database.

    Written piece by piece into a blob of its size, from the arrays' own memory: no whole copy of the
    serialised index is made (at a million listings it is 150 MB, and binding it made two)."""
    pieces = index._pieces()
    conn.execute("CREATE TABLE IF NOT EXISTS search_index (format TEXT PRIMARY KEY, data BLOB NOT NULL)")
    conn.execute("DELETE FROM search_index")
    rowid = conn.execute("INSERT INTO search_index (format, data) VALUES (?, zeroblob(?))",
                         (INDEX_FORMAT, sum(len(p) for p in pieces))).lastrowid
    with conn.blobopen("search_index", "data", rowid) as blob:
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(view), _BLOB_PIECE * 16):
                blob.write(view[start:start + _BLOB_PIECE * 16])
    conn.commit()
