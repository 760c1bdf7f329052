"""The window's session reads listings on demand, falls back to plain matching, and knows the next handover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ui_support import NOW

from backup_operator.core import session as session_module
from backup_operator.core.session import Session, open_session
from backup_operator.core.store import SnapshotStore


@pytest.fixture
def session(env):
    s = open_session(env.desktop)
    yield s
    s.close()


def test_opening_reads_no_listing_rows():
    """No Python object per listing at open: on a snapshot that carries its search index (as every
    export does), the only statements touching listings or contact methods while a session opens are
    the index's row-count check."""
    from sample_hospital import records
    from ui_support import CREATED, FIRST_DAY

    from backup_operator.core.model import build_database, open_database, read_meta
    from backup_operator.core.search import store_index
    from backup_operator.core.store import OpenSnapshot

    data = store_index(build_database(**records(FIRST_DAY), snapshot_version=7, created_at=CREATED,
                                      expires_at=CREATED + timedelta(days=3), expected_interval_s=3600,
                                      source="test"))
    conn = open_database(data)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        s = Session(OpenSnapshot(7, None, conn, read_meta(conn), None))
    finally:
        conn.set_trace_callback(None)
    try:
        touching = [q for q in statements if "contact_methods" in q or "FROM listings" in q]
        assert all("count(" in q or "max(rowid)" in q for q in touching), touching
        assert not s._cache, "nothing is read per listing until it is shown"
        # ...and a listing is read when it is asked for, with every contact method in rank order.
        hart = s.entry("p-hart")
        assert [c.value for c in hart.contacts] == ["4471", "608-555-0147", "4402"]
        assert s.entry("no-such-id") is None
    finally:
        s.close()


def test_the_entry_cache_is_bounded(session, monkeypatch):
    monkeypatch.setattr(session_module, "_ENTRY_CACHE", 5)
    ids = [r[0] for r in session.conn.execute("SELECT id FROM listings ORDER BY id")]
    found = session.entries(ids)
    assert len(found) == len(ids) > 5
    assert len(session._cache) == 5


def test_progress_is_reported_while_opening(env):
    said: list[str] = []
    s = open_session(env.desktop, progress=said.append)
    s.close()
    assert said[0].startswith("Checking the signature") and "search index" in said[-1]
    assert "listings" in said[-1]


def test_plain_search_when_the_index_cannot_be_built(env, monkeypatch):
    from backup_operator.core import search

    def broken(*args, **kwargs):
        raise RuntimeError("no index today")

    monkeypatch.setattr(search.SearchIndex, "open", classmethod(broken))
    s = open_session(env.desktop)
    try:
        assert s.degraded and "simple mode" in s.degraded
        assert s.search("hart", 10, NOW)[0].name == "Amelia Hart"
        top = s.search("0147", 10, NOW)[0]
        assert top.name == "Amelia Hart" and top.number == "608-555-0147"
        assert any(r.kind == "schedule" for r in s.search("pharmacy", 10, NOW))
        assert s.search("pharmacy on call", 10, NOW)[0].id == "pharmacy"
    finally:
        s.close()


def test_next_change_is_the_next_shift_boundary(session):
    # 14:12 UTC is 09:12 EST on Sat 7 March. The first boundary of any schedule after it is the end of
    # the ED's 07-15 shift (15:00 EST = 20:00 UTC); after that, cardiology's 20:00 EST (01:00 UTC).
    assert session.next_change(NOW) == datetime(2026, 3, 7, 20, 0, tzinfo=UTC)
    assert session.next_change(datetime(2026, 3, 7, 20, 0, tzinfo=UTC)) == datetime(2026, 3, 8, 1, 0, tzinfo=UTC)
    assert session.next_change(NOW + timedelta(days=400)) is None


def test_on_call_is_kept_until_the_handover_and_then_read_again(session):
    before = session.on_call("cardio-attending", datetime(2026, 3, 8, 0, 59, tzinfo=UTC))
    again = session.on_call("cardio-attending", datetime(2026, 3, 8, 0, 59, 59, tzinfo=UTC))
    after = session.on_call("cardio-attending", datetime(2026, 3, 8, 1, 0, tzinfo=UTC))  # 20:00 EST
    assert before.tiers[0].who.name == again.tiers[0].who.name == "Amelia Hart"
    assert again.at == datetime(2026, 3, 8, 0, 59, 59, tzinfo=UTC), "the instant asked about, not the kept one"
    assert after.tiers[0].who.name == "Priya Raman"
    earlier = session.on_call("cardio-attending", datetime(2026, 3, 7, 0, 0, tzinfo=UTC))  # back in time:
    assert earlier.tiers[0].who.name == "Liam O'Connor"  # 19:00 EST on Fri 6 March, that day's day shift


def test_a_schedules_on_call_line_is_worked_out_when_first_read(session, monkeypatch):
    """A list of schedule results asks who is on call only for the rows that are read (drawn)."""
    asked = []
    real = session.on_call
    monkeypatch.setattr(session, "on_call", lambda sid, at: asked.append(sid) or real(sid, at))
    results = session.search("cardiology attending", 50, NOW)
    top = results[0]
    assert top.kind == "schedule" and asked == []
    assert top.subtitle.startswith("On call now: Amelia Hart") and top.number == "4471"
    assert asked == [top.id]
    assert top.spans and top.subtitle and asked == [top.id], "worked out once"
    assert repr(top).startswith("Result('schedule'")


def test_enter_copies_a_number_not_an_overhead_page(session):
    """A service whose first method is an overhead page: its first *number* is the activation line."""
    security = session.entry("p-obrien")
    assert security.first_contact.value == "608-555-0999"
    hospital_code = session_module.Entry("s", "service", "Code Blue", "", "", "", "", "", (), (
        session_module.Contact("overhead", "Code Blue", "Overhead page", 1, "Say it twice"),
        session_module.Contact("extension", "5555", "Activation line", 2, "")))
    assert hospital_code.first_number.value == "5555" and hospital_code.first_number_row == 1


def test_sync_opens_the_new_snapshot_on_demand(env):
    env.drop(1850)
    outcome = session_module.sync_and_open(env.desktop, 1842)
    try:
        assert outcome.session is not None and outcome.session.version == 1850
        # Warmed up on the worker (a few searches), but never the whole directory read into objects.
        count = outcome.session.conn.execute("SELECT count(*) FROM listings").fetchone()[0]
        assert 0 < len(outcome.session._cache) < count
    finally:
        outcome.session.close()
    assert isinstance(env.desktop.store(interactive=False), SnapshotStore)
