"""Building the index with its bulk reads on a second connection, in a thread (search.build._ReadAhead).

A snapshot with more than 50,000 contact methods has its listings' columns and its numbers read ahead on
another connection while the build works; the arrays must be exactly those of a build that reads
everything itself, one read after the other, and a failed read must stop the build with its error.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import numpy as np
import pytest

from backup_operator.core.model import SnapshotBuilder
from backup_operator.core.search import build as build_module
from backup_operator.core.search.build import _ReadAhead, build_arrays

LISTINGS = 20_000
NUMBERS_EACH = 3  # 60,000 contact methods: above the read-ahead's threshold


@pytest.fixture(scope="module")
def big_snapshot():
    builder = SnapshotBuilder()
    families = ["Smith", "Jones", "O'Brien", "Nguyen", "Müller", "Okafor", "García", "Smith-Jones"]
    departments = ["Cardiology", "Radiology", "Emergency Department", "Pharmacy", ""]
    builder.add_rows("listings", ["id", "kind", "display_name", "given_name", "family_name", "department", "site",
                                  "title", "aliases"],
                     ((f"p{n:06d}", "person" if n % 10 else "department", f"{families[n % 8]} Person{n % 977}",
                       f"Person{n % 977}", families[n % 8], departments[n % 5], f"Site {n % 7}",
                       "Dr" if n % 3 else "", '["Doc %d"]' % (n % 11) if n % 4 == 0 else None)
                      for n in range(LISTINGS)))
    kinds = ["extension", "phone", "mobile", "pager", "email"]
    # Listings' numbers given out of listing order, so that the threads' join order is not the rowid order.
    builder.add_rows("contact_methods", ["listing_id", "kind", "value", "rank"],
                     ((f"p{(n * 7919) % LISTINGS:06d}", kinds[n % 5],
                       f"x{n}@example.org" if n % 5 == 4 else f"+1 608 {n % 1000:03d} {n % 10000:04d}", n % 3)
                      for n in range(LISTINGS * NUMBERS_EACH)))
    builder.add_records("schedules", [{"id": "s1", "name": "Cardiology on call", "timezone": "UTC",
                                       "department": "Cardiology", "site": "Site 1"}])
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    builder.finish(snapshot_version=1, created_at=now, expires_at=now, expected_interval_s=3600, source="test")
    yield builder
    builder.close()


def test_reading_ahead_builds_the_same_index(big_snapshot, monkeypatch):
    conn = big_snapshot.conn
    reader = big_snapshot.reader()
    try:
        ahead, ahead_terms, ahead_n = build_arrays(conn, reader=reader)  # a second connection, or a copy
    finally:
        if reader is not None:
            reader.close()
    monkeypatch.setattr(build_module, "_COPY_MAX_BYTES", 0)  # no copy, no reader: every read on conn, in turn
    inline, inline_terms, inline_n = build_arrays(conn)
    assert ahead_n == inline_n == LISTINGS
    assert ahead_terms == inline_terms
    assert sorted(ahead) == sorted(inline)
    for name in inline:
        assert np.array_equal(ahead[name], inline[name]), name
    assert len(inline["num_fwd"]) == LISTINGS * NUMBERS_EACH * 4 // 5  # every number but the e-mails


def test_a_failed_read_ahead_is_raised_in_the_building_thread(big_snapshot):
    conn = big_snapshot.conn
    source = sqlite3.connect(":memory:", check_same_thread=False)
    source.deserialize(conn.serialize())
    reads = _ReadAhead(conn, source, ["display_name", "no_such_column", "title"], close_source=True)
    try:
        assert len(reads.column("display_name", LISTINGS)) == LISTINGS
        with pytest.raises(sqlite3.OperationalError, match="no_such_column"):
            reads.column("no_such_column", LISTINGS)
    finally:
        reads.close()
    with pytest.raises(sqlite3.ProgrammingError):  # the thread closed its copy when it stopped
        source.execute("SELECT 1")


def test_columns_are_taken_in_the_order_given(big_snapshot):
    reads = _ReadAhead(big_snapshot.conn, None, ["kind", "title"])
    with pytest.raises(RuntimeError, match="out of the order"):
        reads.column("title", LISTINGS)
