"""Row-level deltas between two snapshot databases, and the content hash that proves a delta applied right.

A delta turns the database of snapshot version B (its *base*) into the database of version V. It never
carries SQLite pages, only rows:

* **keyed tables** (a primary key that names the thing: ``listings.id``, ``oncall_schedules.id``,
  ``meta.key``): deletes by primary key and upserts of whole rows;
* **renumbered tables** (``contact_methods``, ``oncall_shifts``: an INTEGER PRIMARY KEY that the exporter
  numbers 1..n in order): deletes by the base's primary key and inserts by the result's primary key;
  the rows that survive keep their order and take the numbers the inserts left free. (One contact
  method added near the top renumbers every row after it; shipping those rows would make every delta
  as large as the table.)

``content_hash`` is defined over rows in primary-key order, not over SQLite file bytes, so a database
rebuilt from a delta and the exporter's full database hash alike (docs/FORMAT.md §12 is the normative
text). Derived tables (``search_index``) are not content: a delta never carries them and applying one
empties them, so the desktop rebuilds the index from the rows it can trust.

A chain of deltas is applied to an in-memory connection; renumbered tables are composed as runs of
base rows and literal rows, so a chain of k deltas costs one rewrite of each such table, not k.

This module must never write to disk, never import Qt or cryptography, and never trust a delta it
applied until ``content_hash`` of the result matches the hash its signed header carries.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from backup_operator.errors import BrokenChain

__all__ = [
    "CONTENT_MAGIC",
    "DERIVED_TABLES",
    "TableShape",
    "TableDelta",
    "RowDelta",
    "content_tables",
    "content_hash",
    "compute_delta",
    "apply_chain",
    "encode_delta",
    "decode_delta",
]

CONTENT_MAGIC = b"backup-operator.content/v1\n"
DERIVED_TABLES = frozenset({"search_index"})  # rebuilt from the rows; never part of the content
DELTA_PAYLOAD_FORMAT = "backup-operator.delta-rows/v1"
_BATCH = 8192
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False,
                            sort_keys=True)


def _canonical(value) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


_PROBE = "".join(map(chr, range(0x80))) + "\u00e9\u20ac\u2028\u2029\ufeff\U0001f600"
_SQL_JSON_SAME: bool | None = None


def _sql_json_is_canonical() -> bool:
    """Whether this SQLite's ``json_array`` writes rows exactly as ``_canonical`` does (strings as UTF-8,
    only ``"``, ``\\`` and U+0000-U+001F escaped, the same short escapes, integers in decimal, null):
    then the content hash reads each row as one text made by SQLite, in C, instead of encoding it in
    Python. Checked once per process on every ASCII character and a few others; if any differ, the
    Python encoder is used."""
    global _SQL_JSON_SAME
    if _SQL_JSON_SAME is None:
        probe = sqlite3.connect(":memory:")
        try:
            values = [(_PROBE, -(2**63)), ("", 2**63 - 1), (None, 0)] + [(c, ord(c)) for c in _PROBE]
            made = [r[0] for r in probe.execute(
                "SELECT json_array(column1, column2) FROM (VALUES " + ",".join("(?, ?)" for _ in values) + ")",
                [v for pair in values for v in pair])]
            _SQL_JSON_SAME = made == [_canonical(list(v)).decode("utf-8") for v in values]
        except sqlite3.Error:
            _SQL_JSON_SAME = False
        finally:
            probe.close()
    return _SQL_JSON_SAME


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableShape:
    """A content table as the content hash and deltas see it: its columns and its primary key."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    integer_key: bool  # a single INTEGER PRIMARY KEY (the rowid itself)

    def to_json(self) -> list:
        return [self.name, list(self.columns), list(self.key)]


def content_tables(conn: sqlite3.Connection) -> list[TableShape]:
    """Every content table, by name (byte order): all tables but SQLite's own and the derived ones."""
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
    shapes = []
    for name in sorted((n for n in names if n not in DERIVED_TABLES), key=lambda n: n.encode("utf-8")):
        info = conn.execute(f"PRAGMA table_info({_quote(name)})").fetchall()  # cid, name, type, notnull, dflt, pk
        columns = tuple(row[1] for row in info)
        keyed = sorted((row[5], row[1]) for row in info if row[5])
        if not keyed:
            raise BrokenChain(f"Table {name!r} has no primary key, so its content has no canonical order.")
        key = tuple(col for _, col in keyed)
        integer_key = len(key) == 1 and any(row[1] == key[0] and row[2].upper() == "INTEGER" for row in info)
        shapes.append(TableShape(name, columns, key, integer_key))
    return shapes


def _select(shape: TableShape, schema: str = "main") -> str:
    cols = ", ".join(_quote(c) for c in shape.columns)
    order = ", ".join(_quote(c) for c in shape.key)
    return f"SELECT {cols} FROM {_quote(schema)}.{_quote(shape.name)} ORDER BY {order}"


_CHUNK_ROWS = 50_000  # rows SQLite joins into one text for the content hash (a few MB)
_SQL_CONCAT_SAME: bool | None = None


def _sql_concat_keeps_order() -> bool:
    """Whether this SQLite's ``group_concat`` over a subquery ordered by a key, read in chunks of keys
    (``WHERE key > last``), gives exactly the rows' JSON joined in key order: then the content hash
    reads a chunk of rows as one text instead of one Python string per row (2.5 times less CPU at a
    million listings). Checked once per process on integer and text keys inserted out of order, across
    chunk boundaries, as ``_sql_json_is_canonical`` checks the JSON; if anything differs, rows are read
    one by one."""
    global _SQL_CONCAT_SAME
    if _SQL_CONCAT_SAME is None:
        probe = sqlite3.connect(":memory:")
        try:
            rng = list(range(2000))
            rng = rng[1::2] + rng[::2][::-1]  # out of key order on insert
            probe.execute("CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT)")
            probe.execute("CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER)")
            probe.executemany("INSERT INTO n VALUES (?, ?)", [(i * 7 - 3000, f"v{i}\u00e9") for i in rng])
            probe.executemany("INSERT INTO t VALUES (?, ?)", [(f"k{i:x}\u20ac", i) for i in rng])
            same = True
            for table in ("n", "t"):
                want = ",".join(r[0] for r in probe.execute(f"SELECT json_array(id, v) FROM {table} ORDER BY id"))
                got = ",".join(_chunks(probe, f"SELECT json_array(id, v) AS j, id AS k FROM {table}", "id", 7))
                same = same and got == want
            _SQL_CONCAT_SAME = same
        except sqlite3.Error:
            _SQL_CONCAT_SAME = False
        finally:
            probe.close()
    return _SQL_CONCAT_SAME


def _chunks(conn: sqlite3.Connection, rows_sql: str, key: str, size: int):
    """The JSON texts ``rows_sql`` makes (columns ``j`` and ``k``), ``size`` rows joined by "," at a time,
    in key order; the key must be unique, never NULL, and of one type (``_keyset_applies``)."""
    last = None
    while True:
        where = "" if last is None else f" WHERE {key} > ?"
        text, last, count = conn.execute(
            f"SELECT group_concat(j, ','), max(k), count(*) FROM ({rows_sql}{where} ORDER BY {key} LIMIT {size})",
            () if last is None else (last,)).fetchone()
        if not count:
            return
        yield text
        if count < size:
            return


def _affinities(conn: sqlite3.Connection, shape: TableShape) -> list[tuple[str, bool]]:
    """Each column, and whether its declared type gives it TEXT affinity (SQLite's rules, in their order:
    INT first, then CHAR, CLOB or TEXT)."""
    out = []
    for row in conn.execute(f"PRAGMA table_info({_quote(shape.name)})").fetchall():  # cid, name, type, ...
        declared = (row[2] or "").upper()
        out.append((row[1], "INT" not in declared and any(t in declared for t in ("CHAR", "CLOB", "TEXT"))))
    return out


def _keyset_applies(conn: sqlite3.Connection, shape: TableShape) -> bool:
    """A table can be read a chunk of keys at a time when its key is one column whose values all compare
    the same way in ``ORDER BY``, ``>`` and ``max``: the rowid itself, or a key of text values only (no
    NULL, no number) under the BINARY collation."""
    if len(shape.key) != 1:
        return False
    if shape.integer_key:
        return True
    key = _quote(shape.key[0])
    for index in conn.execute(f"PRAGMA index_list({_quote(shape.name)})").fetchall():  # seq, name, unique, origin
        if index[3] == "pk":
            colls = [r[4] for r in conn.execute(f"PRAGMA index_xinfo({_quote(index[1])})") if r[5]]  # key columns
            if colls != ["BINARY"]:
                return False
            break
    else:
        return False  # no index for the key (WITHOUT ROWID, or an unusual schema): read row by row
    return conn.execute(f"SELECT 1 FROM {_quote(shape.name)} WHERE typeof({key}) != 'text' LIMIT 1").fetchone() \
        is None


def content_hash(conn: sqlite3.Connection) -> bytes:
    """SHA-256 of the database's content: every content table's name, columns, key and rows in key order.

    Values must be NULL, INTEGER or TEXT (the model has no other kind); a REAL or BLOB value raises
    ``BrokenChain``, since its canonical form is not defined in this version of the content hash.
    """
    digest = hashlib.sha256(CONTENT_MAGIC)
    for shape in content_tables(conn):
        table = f"{_quote(shape.name)}"
        in_sql = _sql_json_is_canonical()
        chunked = in_sql and _sql_concat_keeps_order() and _keyset_applies(conn, shape)
        # Read in chunks, ``json_array`` itself refuses a BLOB, and a column of TEXT affinity cannot hold a
        # REAL (SQLite stores a number given to it as text): only the other columns need a look. Looking
        # at every column of every row took two thirds of the hash at a million listings.
        looked_at = [c for c, text in _affinities(conn, shape) if not (chunked and text)]
        odd = " OR ".join(f"typeof({_quote(c)}) IN ('real', 'blob')" for c in looked_at)
        if odd and conn.execute(f"SELECT 1 FROM {table} WHERE {odd} LIMIT 1").fetchone():
            raise BrokenChain(f"Table {shape.name!r} holds a REAL or BLOB value, which the content hash "
                              "does not define.")
        digest.update(_canonical(shape.to_json()) + b"\n[")
        cursor = conn.cursor()
        cursor.row_factory = None  # plain tuples, whatever the connection's row factory
        if chunked:
            cols = ", ".join(_quote(c) for c in shape.columns)
            key = _quote(shape.key[0])
            try:
                for n, text in enumerate(_chunks(conn, f"SELECT json_array({cols}) AS j, {key} AS k FROM main.{table}",
                                                 key, _CHUNK_ROWS)):
                    digest.update((b"," if n else b"") + text.encode("utf-8"))
            except sqlite3.OperationalError as exc:  # text that is not UTF-8, or a BLOB
                if "BLOB" in str(exc):
                    raise BrokenChain(f"Table {shape.name!r} holds a REAL or BLOB value, which the content "
                                      "hash does not define.") from exc
                raise BrokenChain(f"Table {shape.name!r} cannot be read for its content hash ({exc}).") from exc
            digest.update(b"]\n")
            continue
        if in_sql:  # each row's JSON made by SQLite (the same bytes, checked): one string per row
            cols = ", ".join(_quote(c) for c in shape.columns)
            order = ", ".join(_quote(c) for c in shape.key)
            cursor.execute(f"SELECT json_array({cols}) FROM main.{table} ORDER BY {order}")
        else:
            cursor.execute(_select(shape))
        first = True
        try:
            while True:
                batch = cursor.fetchmany(_BATCH)
                if not batch:
                    break
                # A list's JSON is "[" + its items' JSON joined by "," + "]": strip the brackets and join
                # batches with "," to hash exactly the JSON of the whole table, one batch at a time.
                if not first:
                    digest.update(b",")
                if in_sql:
                    digest.update(",".join([row[0] for row in batch]).encode("utf-8"))
                else:
                    digest.update(_canonical(batch)[1:-1])
                first = False
        except sqlite3.OperationalError as exc:  # text that is not UTF-8
            raise BrokenChain(f"Table {shape.name!r} cannot be read for its content hash ({exc}).") from exc
        digest.update(b"]\n")
    return digest.digest()


# --- deltas ------------------------------------------------------------------------------------


@dataclass
class TableDelta:
    """The changes to one content table. ``mode`` is ``keyed`` or ``renumbered`` (module docstring)."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    mode: str
    delete: list = field(default_factory=list)  # keyed: key tuples; renumbered: base ids, ascending
    upsert: list = field(default_factory=list)  # keyed: whole rows; renumbered: inserted rows (with new id)

    @property
    def changed_rows(self) -> int:
        return len(self.delete) + len(self.upsert)

    def to_json(self) -> dict:
        return {"name": self.name, "columns": list(self.columns), "key": list(self.key), "mode": self.mode,
                "delete": [list(k) for k in self.delete] if self.mode == "keyed" else list(self.delete),
                "upsert": [list(r) for r in self.upsert]}


@dataclass
class RowDelta:
    """All table deltas from one version to the next, in table-name order."""

    tables: list[TableDelta]

    @property
    def changed_rows(self) -> int:
        return sum(t.changed_rows for t in self.tables)


def encode_delta(delta: RowDelta) -> bytes:
    """The delta's plaintext (what the sealed .bodelta file carries): canonical UTF-8 JSON."""
    return _canonical({"format": DELTA_PAYLOAD_FORMAT, "tables": [t.to_json() for t in delta.tables]})


def decode_delta(data: bytes) -> RowDelta:
    """Parse a delta's plaintext, checking its shape (never trusting it before the content hash does)."""
    try:
        doc = json.loads(data)
        if doc.get("format") != DELTA_PAYLOAD_FORMAT:
            raise ValueError(f"payload format {doc.get('format')!r}")
        tables = []
        for t in doc["tables"]:
            columns, key, mode = tuple(map(str, t["columns"])), tuple(map(str, t["key"])), t["mode"]
            if mode not in ("keyed", "renumbered") or not key or not set(key) <= set(columns):
                raise ValueError(f"table {t.get('name')!r} has mode {mode!r} or key {key!r}")
            width = len(columns)
            upsert = [tuple(r) for r in t["upsert"]]
            if any(len(r) != width for r in upsert):
                raise ValueError(f"table {t['name']!r} has a row of the wrong width")
            if mode == "keyed":
                delete = [tuple(k) for k in t["delete"]]
                if any(len(k) != len(key) for k in delete):
                    raise ValueError(f"table {t['name']!r} deletes a key of the wrong width")
            else:
                delete = [int(k) for k in t["delete"]]
                if len(key) != 1 or any(type(k) is not int for k in t["delete"]):
                    raise ValueError(f"table {t['name']!r} is renumbered without one integer key")
            tables.append(TableDelta(str(t["name"]), columns, key, mode, delete, upsert))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BrokenChain(f"The delta's rows cannot be read ({exc}).") from exc
    return RowDelta(tables)


def _sequence_ids(conn: sqlite3.Connection, shape: TableShape, schema: str) -> int | None:
    """n when the table's integer key runs exactly 1..n, else None."""
    if not shape.integer_key:
        return None
    count, low, high = conn.execute(
        f"SELECT count(*), min({_quote(shape.key[0])}), max({_quote(shape.key[0])}) "
        f"FROM {_quote(schema)}.{_quote(shape.name)}").fetchone()
    if count == 0:
        return 0
    return count if (low, high) == (1, count) else None


def _keyed_delta(conn: sqlite3.Connection, shape: TableShape) -> TableDelta:
    table = _quote(shape.name)
    cols = ", ".join(_quote(c) for c in shape.columns)
    keys = ", ".join(_quote(c) for c in shape.key)
    # EXCEPT compares whole rows (NULLs equal), in C: new or changed rows, and keys that went away.
    upsert = conn.execute(f"SELECT {cols} FROM new.{table} EXCEPT SELECT {cols} FROM old.{table} "
                          f"ORDER BY {keys}").fetchall()
    delete = conn.execute(f"SELECT {keys} FROM old.{table} EXCEPT SELECT {keys} FROM new.{table} "
                          f"ORDER BY {keys}").fetchall()
    return TableDelta(shape.name, shape.columns, shape.key, "keyed", [tuple(k) for k in delete],
                      [tuple(r) for r in upsert])


def _row_hashes(conn: sqlite3.Connection, shape: TableShape, schema: str) -> list[int]:
    """One hash per row (without its id), in id order: only to align rows; the content hash checks."""
    others = [c for c in shape.columns if c != shape.key[0]]
    expr = " || ',' || ".join(f"quote({_quote(c)})" for c in others) or "''"
    cursor = conn.execute(f"SELECT {expr} FROM {_quote(schema)}.{_quote(shape.name)} "
                          f"ORDER BY {_quote(shape.key[0])}")
    out: list[int] = []
    while True:
        batch = cursor.fetchmany(_BATCH)
        if not batch:
            return out
        out.extend(hash(r[0]) for r in batch)


def _align(old: list[int], new: list[int]) -> list[tuple[int, int, int]]:
    """Runs (old start, new start, length), 0-based, of rows kept in order: a heaviest increasing chain.

    Rows whose hash is unique on both sides are matched; consecutive matches form runs; the runs kept are
    the heaviest chain increasing on both sides (a weighted longest increasing subsequence over runs,
    O(r log r) for r runs), so a moved row costs a delete and an insert, never the rows it jumped over.
    """
    counts_old: dict[int, int] = {}
    for h in old:
        counts_old[h] = counts_old.get(h, 0) + 1
    where_old = {h: i for i, h in enumerate(old) if counts_old[h] == 1}
    seen_new: dict[int, int] = {}
    for h in new:
        seen_new[h] = seen_new.get(h, 0) + 1
    runs: list[list[int]] = []  # [old start, new start, length]
    for j, h in enumerate(new):
        i = where_old.get(h)
        if i is None or seen_new[h] != 1:
            continue
        if runs and runs[-1][0] + runs[-1][2] == i and runs[-1][1] + runs[-1][2] == j:
            runs[-1][2] += 1
        else:
            runs.append([i, j, 1])
    if not runs:
        return []
    # Weighted LIS over runs (already increasing in new start) by old start, with a Fenwick tree of
    # prefix maxima over the ranks of old starts.
    order = sorted(range(len(runs)), key=lambda k: runs[k][0])
    rank = [0] * len(runs)
    for r, k in enumerate(order, 1):
        rank[k] = r
    size = len(runs)
    tree_best = [0] * (size + 1)
    tree_at = [-1] * (size + 1)
    best = [0] * len(runs)
    parent = [-1] * len(runs)
    for k, (_, _, length) in enumerate(runs):
        i, value, at = rank[k] - 1, 0, -1
        while i > 0:
            if tree_best[i] > value:
                value, at = tree_best[i], tree_at[i]
            i -= i & -i
        best[k], parent[k] = value + length, at
        i = rank[k]
        while i <= size:
            if best[k] > tree_best[i]:
                tree_best[i], tree_at[i] = best[k], k
            i += i & -i
    k = max(range(len(runs)), key=best.__getitem__)
    chosen = []
    while k != -1:
        chosen.append(tuple(runs[k]))
        k = parent[k]
    return chosen[::-1]


def _renumbered_delta(conn: sqlite3.Connection, shape: TableShape, n_old: int, n_new: int) -> TableDelta:
    old, new = _row_hashes(conn, shape, "old"), _row_hashes(conn, shape, "new")
    assert len(old) == n_old and len(new) == n_new
    kept_old = bytearray(n_old)
    kept_new = bytearray(n_new)
    for i, j, length in _align(old, new):
        kept_old[i:i + length] = b"\1" * length
        kept_new[j:j + length] = b"\1" * length
    delete = [i + 1 for i in range(n_old) if not kept_old[i]]
    inserted = [j + 1 for j in range(n_new) if not kept_new[j]]
    rows: list[tuple] = []
    select = _select(shape, "new").replace(" ORDER BY", f" WHERE {_quote(shape.key[0])} IN "
                                                        "(SELECT value FROM json_each(?)) ORDER BY")
    for start in range(0, len(inserted), 50_000):
        rows += conn.execute(select, (json.dumps(inserted[start:start + 50_000]),)).fetchall()
    return TableDelta(shape.name, shape.columns, shape.key, "renumbered", delete, [tuple(r) for r in rows])


def compute_delta(old_database: bytes, new_database: bytes) -> RowDelta | None:
    """The row delta from ``old_database`` to ``new_database`` (SQLite bytes), or None when their tables
    or columns differ (a schema change ships as a full snapshot only)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA temp_store = MEMORY")
        for name, data in (("old", old_database), ("new", new_database)):
            conn.execute(f"ATTACH ':memory:' AS {name}")
            conn.deserialize(data, name=name)
        shapes_old = _shapes_of(conn, "old")
        shapes_new = _shapes_of(conn, "new")
        if shapes_old != shapes_new:
            return None
        tables = []
        for shape in shapes_new:
            n_old, n_new = _sequence_ids(conn, shape, "old"), _sequence_ids(conn, shape, "new")
            if n_old is not None and n_new is not None:
                tables.append(_renumbered_delta(conn, shape, n_old, n_new))
            else:
                tables.append(_keyed_delta(conn, shape))
        return RowDelta(tables)
    finally:
        conn.close()


def _shapes_of(conn: sqlite3.Connection, schema: str) -> list[TableShape]:
    """content_tables for an attached schema (PRAGMA table_info needs the schema prefix)."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.deserialize(conn.serialize(name=schema))
        return content_tables(probe)
    finally:
        probe.close()


# --- applying a chain ----------------------------------------------------------------------------


class _Runs:
    """A renumbered table as it becomes through a chain: runs of base rows and of literal rows.

    Each run is ``[base_first_id, count, None]`` or ``[None, count, rows]``. Positions are 1-based.
    """

    def __init__(self, n: int):
        self.runs: list[list] = [[1, n, None]] if n else []

    def __len__(self) -> int:
        return sum(r[1] for r in self.runs)

    @staticmethod
    def _piece(run: list, start: int, count: int) -> list:
        if run[2] is None:
            return [run[0] + start, count, None]
        return [None, count, run[2][start:start + count]]

    def delete(self, positions: Sequence[int], table: str) -> None:
        """Remove the rows at these 1-based positions (ascending, distinct)."""
        total = len(self)
        if any(b <= a for a, b in zip(positions, positions[1:])) or \
                (positions and (positions[0] < 1 or positions[-1] > total)):
            raise BrokenChain(f"The delta deletes rows of {table!r} that the installed snapshot does not have.")
        out: list[list] = []
        p = 0  # positions consumed
        offset = 0  # 1-based position of the current run's first row, minus 1
        for run in self.runs:
            start, count = 0, run[1]
            while p < len(positions) and positions[p] <= offset + count:
                cut = positions[p] - offset - 1
                if cut > start:
                    out.append(self._piece(run, start, cut - start))
                start = cut + 1
                p += 1
            if count > start:
                out.append(self._piece(run, start, count - start))
            offset += count
        self.runs = out

    def insert(self, rows: dict[int, tuple], table: str) -> None:
        """Put each row at its 1-based position in the result; survivors fill the other positions."""
        total = len(self) + len(rows)
        wanted = sorted(rows)
        if wanted and (wanted[0] < 1 or wanted[-1] > total):
            raise BrokenChain(f"The delta inserts rows of {table!r} outside the table it makes.")
        out: list[list] = []
        survivors = iter(self.runs)
        current, used = None, 0  # the survivor run being consumed and how much of it is used
        position = 1
        w = 0
        while position <= total:
            if w < len(wanted) and wanted[w] == position:
                # A run of consecutive inserted positions becomes one literal run.
                lit = []
                while w < len(wanted) and wanted[w] == position:
                    lit.append(rows[wanted[w]])
                    w += 1
                    position += 1
                out.append([None, len(lit), lit])
                continue
            # Survivors up to the next inserted position.
            stop = wanted[w] if w < len(wanted) else total + 1
            need = stop - position
            while need:
                if current is None or used == current[1]:
                    current, used = next(survivors), 0
                take = min(need, current[1] - used)
                out.append(self._piece(current, used, take))
                used += take
                need -= take
                position += take
        self.runs = out

    def unchanged(self, n: int) -> bool:
        return self.runs == ([[1, n, None]] if n else [])


def _apply_keyed(conn: sqlite3.Connection, delta: TableDelta) -> None:
    table = _quote(delta.name)
    where = " AND ".join(f"{_quote(k)} = ?" for k in delta.key)
    cursor = conn.executemany(f"DELETE FROM main.{table} WHERE {where}", delta.delete)
    if delta.delete and cursor.rowcount != len(delta.delete):
        raise BrokenChain(f"The delta deletes rows of {delta.name!r} that the installed snapshot does not have.")
    if delta.upsert:
        cols = ", ".join(_quote(c) for c in delta.columns)
        marks = ", ".join("?" * len(delta.columns))
        others = [c for c in delta.columns if c not in delta.key]
        update = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in others)
        # An update keeps the row where it is (its rowid); only a new key is appended.
        conflict = f"DO UPDATE SET {update}" if others else "DO NOTHING"
        conn.executemany(f"INSERT INTO main.{table} ({cols}) VALUES ({marks}) "
                         f"ON CONFLICT ({', '.join(_quote(k) for k in delta.key)}) {conflict}", delta.upsert)


def _rewrite(conn: sqlite3.Connection, shape: TableShape, runs: _Runs) -> None:
    """Materialise a renumbered table from its runs: one pass, rows numbered 1..n in order."""
    table, key = _quote(shape.name), shape.key[0]
    key_at = shape.columns.index(key)
    cols = ", ".join(_quote(c) for c in shape.columns)
    conn.execute("DROP TABLE IF EXISTS temp._bo_delta_rows")
    conn.execute(f"CREATE TEMP TABLE _bo_delta_rows AS SELECT {cols} FROM main.{table} WHERE 0")
    source = ", ".join("? + " + _quote(c) if c == key else _quote(c) for c in shape.columns)
    marks = ", ".join("?" * len(shape.columns))
    position = 1
    for first, count, rows in runs.runs:
        if rows is None:
            conn.execute(f"INSERT INTO temp._bo_delta_rows SELECT {source} FROM main.{table} "
                         f"WHERE {_quote(key)} BETWEEN ? AND ? ORDER BY {_quote(key)}",
                         (position - first, first, first + count - 1))
        else:
            conn.executemany(f"INSERT INTO temp._bo_delta_rows VALUES ({marks})",
                             [row[:key_at] + (position + n,) + row[key_at + 1:] for n, row in enumerate(rows)])
        position += count
    conn.execute(f"DELETE FROM main.{table}")
    conn.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM temp._bo_delta_rows "
                 f"ORDER BY {_quote(key)}")
    conn.execute("DROP TABLE temp._bo_delta_rows")


def apply_chain(conn: sqlite3.Connection, deltas: Iterable[RowDelta],
                renumbered: Callable[[sqlite3.Connection, TableShape, list[int], list[tuple]], None] | None = None
                ) -> None:
    """Apply deltas, oldest first, to the base database open (writable, in memory) in ``conn``.

    Raises ``BrokenChain`` when a delta does not fit; the caller then discards ``conn``. The caller must
    compare ``content_hash(conn)`` with the newest delta's signed hash before trusting the result.

    ``renumbered(conn, shape, gone, added)`` is called for each renumbered table the chain changes, just
    before it is rewritten (its base rows still in place): ``gone`` are the base ids of the rows that do
    not survive the chain, ``added`` the rows it inserts that are in the result (a search index updated
    in place needs to know whose numbers changed, search/update.py).
    """
    shapes = {s.name: s for s in content_tables(conn)}
    runs: dict[str, _Runs] = {}
    sizes: dict[str, int] = {}
    try:
        for delta in deltas:
            if sorted(t.name for t in delta.tables) != sorted(shapes):
                raise BrokenChain("The delta's tables are not those of the installed snapshot.")
            for table in delta.tables:
                shape = shapes[table.name]
                if table.columns != shape.columns or table.key != shape.key:
                    raise BrokenChain(f"The delta's columns for {table.name!r} are not the installed ones.")
                if table.mode == "keyed":
                    if table.name in runs:
                        raise BrokenChain(f"The chain changes how {table.name!r} is numbered.")
                    _apply_keyed(conn, table)
                    continue
                if table.name not in runs:
                    n = _sequence_ids(conn, shape, "main")
                    if n is None:
                        raise BrokenChain(f"{table.name!r} is not numbered 1..n in the installed snapshot.")
                    runs[table.name], sizes[table.name] = _Runs(n), n
                key_at = shape.columns.index(shape.key[0])
                inserted: dict[int, tuple] = {}
                for row in table.upsert:
                    position = row[key_at]
                    if type(position) is not int or position in inserted:
                        raise BrokenChain(f"The delta inserts a row of {table.name!r} with a bad number.")
                    inserted[position] = row
                runs[table.name].delete(table.delete, table.name)
                runs[table.name].insert(inserted, table.name)
        for name, table_runs in runs.items():
            if not table_runs.unchanged(sizes[name]):
                if renumbered is not None:
                    kept = bytearray(sizes[name] + 1)
                    added: list[tuple] = []
                    for first, count, literal in table_runs.runs:
                        if literal is None:
                            kept[first:first + count] = b"\x01" * count
                        else:
                            added.extend(literal)
                    gone, at = [], kept.find(0, 1)
                    while at != -1:
                        gone.append(at)
                        at = kept.find(0, at + 1)
                    renumbered(conn, shapes[name], gone, added)
                _rewrite(conn, shapes[name], table_runs)
        for name in DERIVED_TABLES:
            # A stored search index describes the base's rows, not these: drop it so it is rebuilt.
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone():
                conn.execute(f"DELETE FROM main.{_quote(name)}")
        conn.commit()
    except sqlite3.Error as exc:
        conn.rollback()
        raise BrokenChain(f"The delta does not apply to the installed snapshot ({exc}).") from exc

