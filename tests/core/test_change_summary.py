"""What changed between two snapshots: the comparison, and the summary stored inside a snapshot."""

from __future__ import annotations

import copy
import sqlite3
from datetime import datetime, timedelta, timezone

from backup_operator.core import changes as C
from backup_operator.core.model import build_database

NOW = datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc)


def _db(records: dict, version: int) -> bytes:
    return build_database(**records, snapshot_version=version, created_at=NOW, expires_at=NOW + timedelta(days=3),
                          expected_interval_s=900, source="test")


def _changed(kit) -> tuple[dict, dict]:
    old = kit.template_records()
    new = copy.deepcopy(old)
    # a new colleague, one listing gone, a number changed, a title changed
    new["listings"].append({"id": "p-new", "kind": "person", "display_name": "Quilla Zabriskie",
                            "department": "Cardiology"})
    new["listings"] = [row for row in new["listings"] if row["id"] != "l-er"]
    new["contact_methods"] = [row for row in new["contact_methods"] if row["listing_id"] != "l-er"]
    for row in new["contact_methods"]:
        if row["listing_id"] == "p-canary-2":
            row["value"] = "4409"
    for row in new["listings"]:
        if row["id"] == "p-hart":
            row["title"] = "Chief of cardiology"
    # tonight's attending swapped; a shift next week (beyond 72 h) swapped too, which must not count
    for row in new["shifts"]:
        if row["start_utc"] == "2026-03-07T23:00:00Z":
            row["listing_id"] = "p-hart"
    far = {"schedule_id": "cardio-attending", "tier": 1, "role": "Attending", "listing_id": "p-hart",
           "start_utc": "2026-03-14T11:00:00Z", "end_utc": "2026-03-14T23:00:00Z"}
    old["shifts"].append(dict(far))
    new["shifts"].append({**far, "listing_id": "p-canary-1"})
    return old, new


def test_diff_finds_every_kind_of_change_and_nothing_else(kit):
    old, new = _changed(kit)
    summary = C.diff_databases(_db(new, 2), _db(old, 1), version=2, since_version=1, now=NOW)
    assert summary.counts == {"on call": 1, "numbers": 1, "added": 1, "removed": 1, "details": 1}
    by_kind = {c.kind: c for c in summary.items}
    oncall = by_kind["on call"]
    assert oncall.before == kit.CANARIES[1] and oncall.after == "Amelia Hart"
    assert oncall.schedule_id == "cardio-attending" and oncall.at == "2026-03-07T23:00:00Z"
    assert "Cardiology — attending, tier 1" in oncall.title and "EST" in oncall.title
    assert by_kind["numbers"].before == "extension 4402" and by_kind["numbers"].after == "extension 4409"
    assert by_kind["numbers"].listing_id == "p-canary-2"
    assert by_kind["added"].title == "Quilla Zabriskie" and by_kind["added"].listing_id == "p-new"
    assert by_kind["removed"].title == "Emergency Department desk" and by_kind["removed"].listing_id == ""
    assert by_kind["details"].after == "title: Chief of cardiology"
    assert [c.kind for c in summary.items] == list(C.KINDS)  # on call first
    assert summary.describe_counts().startswith("1 on-call change, 1 number change, 1 listing added")


def test_identical_snapshots_have_no_changes(kit):
    records = kit.template_records()
    summary = C.diff_databases(_db(records, 2), _db(records, 1), version=2, since_version=1, now=NOW)
    assert summary.counts == {} and summary.items == [] and summary.describe_counts() == "nothing changed"


def test_the_horizon_decides_which_shift_changes_count(kit):
    old, new = _changed(kit)
    later = NOW + timedelta(days=6)  # now the far shift is within 72 h, tonight's is in the past
    summary = C.diff_databases(_db(new, 2), _db(old, 1), version=2, since_version=1, now=later)
    oncall = [c for c in summary.items if c.kind == "on call"]
    assert [(c.before, c.after, c.at) for c in oncall] == [("Amelia Hart", kit.CANARIES[0], "2026-03-14T11:00:00Z")]


def test_the_list_is_capped_but_the_counts_are_exact(kit):
    old = kit.template_records()
    new = copy.deepcopy(old)
    new["listings"] += [{"id": f"x{n}", "kind": "person", "display_name": f"Person {n}"} for n in range(30)]
    summary = C.diff_databases(_db(new, 2), _db(old, 1), version=2, since_version=1, now=NOW, limit=10)
    assert summary.counts == {"added": 30} and len(summary.items) == 10 and summary.truncated


def test_a_stored_summary_reads_back_the_same(kit):
    old, new = _changed(kit)
    summary = C.diff_databases(_db(new, 2), _db(old, 1), version=2, since_version=1, now=NOW)
    conn = sqlite3.connect(":memory:")
    conn.deserialize(_db(new, 2))
    assert C.read_summary(conn, 2) is None  # an exporter that stored nothing
    C.store_summary(conn, summary)
    back = C.read_summary(conn, 2)
    assert back.to_json() == summary.to_json()
    first = C.ChangeSummary(3, None)
    C.store_summary(conn, first)
    assert C.read_summary(conn, 3).since_version is None
    assert C.read_summary(conn, 3).describe_counts() == "no earlier version to compare with"
