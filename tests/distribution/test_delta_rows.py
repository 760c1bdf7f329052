"""Row deltas: 200 random change sets where applying the delta gives exactly the full export's content.

Content is compared twice: by the content hash (docs/FORMAT.md §12) and row by row in key order, so a
bug in the hash cannot hide a bug in the delta.
"""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_operator.core import delta as D
from backup_operator.core.search import store_index
from backup_operator.errors import BrokenChain

from directory_changes import build, change, directory

TABLES = ("listings", "contact_methods", "oncall_schedules", "oncall_shifts", "meta")


def opened(database: bytes) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(database)
    return conn


def rows(conn: sqlite3.Connection) -> dict[str, list]:
    keys = {"meta": "key"}
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY {keys.get(t, 'id')}").fetchall() for t in TABLES}


def apply(base: bytes, *deltas: D.RowDelta) -> sqlite3.Connection:
    conn = opened(base)
    # Through the wire form, as a desktop gets it.
    D.apply_chain(conn, [D.decode_delta(D.encode_delta(d)) for d in deltas])
    return conn


CHANGE_SETS = 200


@settings(max_examples=CHANGE_SETS, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(15, 160))
def test_a_delta_rebuilds_exactly_the_full_export(seed, size):
    old_records = directory(seed, size)
    new_records = change(old_records, seed + 1)
    old, new = build(old_records, 7), build(new_records, 8)
    delta = D.compute_delta(old, new)
    assert delta is not None
    result = apply(old, delta)
    full = opened(new)
    assert rows(result) == rows(full)
    assert D.content_hash(result) == D.content_hash(full)
    assert result.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), length=st.integers(2, 6))
def test_a_chain_of_deltas_rebuilds_the_newest_export(seed, length):
    versions = [directory(seed, 80)]
    for step in range(length):
        versions.append(change(versions[-1], seed + 100 + step))
    databases = [build(r, 10 + n) for n, r in enumerate(versions)]
    deltas = [D.compute_delta(a, b) for a, b in zip(databases, databases[1:])]
    result = apply(databases[0], *deltas)
    assert rows(result) == rows(opened(databases[-1]))
    assert D.content_hash(result) == D.content_hash(opened(databases[-1]))


def test_no_change_is_a_delta_of_the_meta_rows_only():
    records = directory(3, 50)
    delta = D.compute_delta(build(records, 1), build(records, 2))
    changed = {t.name: t.changed_rows for t in delta.tables if t.changed_rows}
    assert changed == {"meta": 3}  # snapshot_version, created_at, expires_at


def test_the_content_hash_ignores_the_stored_index_and_the_file_bytes():
    database = build(directory(5, 60), 3)
    with_index = store_index(database)
    assert with_index != database
    assert D.content_hash(opened(with_index)) == D.content_hash(opened(database))
    # A stored index describes the base's rows; after a delta it is dropped so the desktop rebuilds it.
    result = apply(with_index, D.compute_delta(with_index, store_index(build(change(directory(5, 60), 9), 4))))
    assert result.execute("SELECT count(*) FROM search_index").fetchone()[0] == 0


def test_the_content_hash_sees_every_row_and_value():
    conn = opened(build(directory(11, 40), 2))
    before = D.content_hash(conn)
    conn.execute("UPDATE contact_methods SET label = label || ' ' WHERE id = 3")
    assert D.content_hash(conn) != before
    conn.execute("UPDATE contact_methods SET label = substr(label, 1, length(label) - 1) WHERE id = 3")
    assert D.content_hash(conn) == before
    conn.execute("UPDATE listings SET notes = NULL WHERE rowid = 1")  # NULL is not ''
    assert D.content_hash(conn) != before


def test_a_delta_for_another_base_never_gives_the_signed_content():
    a, b = directory(21, 60), directory(22, 60)
    target = build(change(a, 5, changes=20), 2)
    delta = D.compute_delta(build(a, 1), target)
    try:
        conn = apply(build(b, 1), delta)
    except BrokenChain:
        return  # refused while applying
    # Or it fits by chance; then the content hash the desktop checks tells the results apart.
    assert D.content_hash(conn) != D.content_hash(opened(target))


def test_a_schema_change_makes_no_delta():
    old = build(directory(4, 30), 1)
    conn = opened(build(directory(4, 30), 2))
    conn.execute("ALTER TABLE listings ADD COLUMN pronouns TEXT")
    conn.commit()
    assert D.compute_delta(old, conn.serialize()) is None


def test_hostile_delta_rows_are_refused_not_crashing():
    base = build(directory(8, 30), 1)
    good = D.encode_delta(D.compute_delta(base, build(change(directory(8, 30), 2, changes=8), 2)))
    for bad in (b"", b"[]", b'{"format": "x"}', good.replace(b'"renumbered"', b'"sideways"'),
                good.replace(b'"upsert":[[', b'"upsert":[[1,', 1), b"\xff" * 10,
                good.replace(b'"delete":[', b'"delete":[999999,', 1)):
        with pytest.raises(BrokenChain):
            D.apply_chain(opened(base), [D.decode_delta(bad)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))),
                max_size=30))
def test_the_content_hash_made_in_sql_is_the_python_one(monkeypatch, values):
    """The content hash reads rows as JSON made by SQLite when that JSON is byte for byte the canonical
    form (checked once per process); on any text and integer it must give the Python encoder's hash."""
    assert D._sql_json_is_canonical()  # this SQLite takes the fast path: the comparison below means something
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)")
    conn.executemany("INSERT INTO t (a, b) VALUES (?, ?)", values)
    in_sql = D.content_hash(conn)
    monkeypatch.setattr(D, "_SQL_JSON_SAME", False)
    assert D.content_hash(conn) == in_sql
    monkeypatch.setattr(D, "_SQL_JSON_SAME", None)


# --- the content hash read a chunk of keys at a time (as one text per chunk) ------------------------------


def _row_by_row(conn: sqlite3.Connection, monkeypatch) -> bytes:
    monkeypatch.setattr(D, "_SQL_CONCAT_SAME", False)
    try:
        return D.content_hash(conn)
    finally:
        monkeypatch.setattr(D, "_SQL_CONCAT_SAME", None)


def _odd_tables() -> sqlite3.Connection:
    """Keys of every kind the chunked reading must either handle exactly or leave to the row-by-row one."""
    conn = sqlite3.connect(":memory:")
    conn.executescript("""
        CREATE TABLE ints (id INTEGER PRIMARY KEY, v TEXT, n INTEGER);
        CREATE TABLE texts (id TEXT PRIMARY KEY, v TEXT);
        CREATE TABLE nocase (id TEXT PRIMARY KEY COLLATE NOCASE, v TEXT);
        CREATE TABLE pairs (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b));
        CREATE TABLE nullable (id TEXT PRIMARY KEY, v TEXT);
        CREATE TABLE numbers_as_keys (id NUMERIC PRIMARY KEY, v TEXT);
        CREATE TABLE empty (id TEXT PRIMARY KEY, v TEXT);
        CREATE TABLE norowid (id TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
    """)
    words = ["b", "B", "a", "ä", "Z", "zz", "z", "€", "😀", "", "a b", "a\"b", "a\\b", "10", "9", "\u2028"]
    conn.executemany("INSERT INTO ints VALUES (?, ?, ?)", [(i * 37 % 101 - 50, w, i) for i, w in enumerate(words)])
    for table in ("texts", "nocase", "norowid"):
        conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(w + table, w) for w in words if
                                                                 table != "nocase" or w not in ("B", "Z")])
    conn.executemany("INSERT INTO pairs VALUES (?, ?, ?)", [(w, i % 3, w) for i, w in enumerate(words)])
    conn.executemany("INSERT INTO nullable VALUES (?, ?)", [(None, "x"), ("k", None), ("j", "y")])
    conn.executemany("INSERT INTO numbers_as_keys VALUES (?, ?)", [(10, "a"), ("9", "b"), ("x", "c"), (2, "d")])
    return conn


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 50_000])
def test_chunks_give_the_row_by_row_hash(chunk, monkeypatch):
    monkeypatch.setattr(D, "_CHUNK_ROWS", chunk)
    for conn in (_odd_tables(), opened(build(directory(7, 50), 2)), opened(store_index(build(directory(3, 30), 1)))):
        assert D._sql_concat_keeps_order()
        assert D.content_hash(conn) == _row_by_row(conn, monkeypatch)


def test_which_tables_are_read_in_chunks():
    conn = _odd_tables()
    applies = {s.name: D._keyset_applies(conn, s) for s in D.content_tables(conn)}
    assert applies == {"ints": True, "texts": True, "nocase": False, "pairs": False, "nullable": False,
                       "numbers_as_keys": False, "empty": True, "norowid": True}


@pytest.mark.parametrize("table, value", [("ints", "x'00'"), ("ints", "1.5"), ("texts", "x'00'")])
def test_real_and_blob_values_are_refused_read_in_chunks_too(table, value, monkeypatch):
    conn = _odd_tables()
    column = "n" if value == "1.5" else "v"
    conn.execute(f"UPDATE {table} SET {column} = {value} WHERE rowid = (SELECT min(rowid) FROM {table})")
    with pytest.raises(BrokenChain, match="REAL or BLOB"):
        D.content_hash(conn)
    with pytest.raises(BrokenChain, match="REAL or BLOB"):
        _row_by_row(conn, monkeypatch)
