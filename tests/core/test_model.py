"""The data model: a database built in memory, validated with messages that name the row and field,
and opened from bytes with an integrity check."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backup_operator.core import model
from backup_operator.errors import CorruptSnapshot, ValidationError

WHEN = datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc)


def build(records, **overrides):
    kwargs = dict(snapshot_version=3, created_at=WHEN, expires_at=WHEN + timedelta(days=3),
                  expected_interval_s=4 * 3600, source="test")
    kwargs.update(overrides)
    return model.build_database(**records, **kwargs)


def test_template_database_round_trips(kit, template_database):
    conn = model.open_database(template_database)
    meta = model.read_meta(conn)
    assert meta.snapshot_version == 1 and meta.schema_version == model.SCHEMA_VERSION
    assert meta.counts == {"listings": 6, "contact_methods": 7, "oncall_schedules": 1, "oncall_shifts": 3}
    assert meta.created_at == kit.created_at(1) and meta.expected_interval_s == 4 * 3600
    row = conn.execute("SELECT * FROM listings WHERE id = 'p-canary-2'").fetchone()
    assert row["display_name"] == kit.CANARIES[1] and json.loads(row["aliases"]) == ["Dr Q"]
    assert json.loads(conn.execute("SELECT keywords FROM listings WHERE id = 's-canary-3'").fetchone()[0]) == \
        ["rehab", "physio"]
    ranks = conn.execute("SELECT kind, digits, rank FROM contact_methods WHERE listing_id = 'p-canary-1' "
                         "ORDER BY rank").fetchall()
    assert [tuple(r) for r in ranks] == [("pager", "4471", 1), ("mobile", "6085550147", 2)]
    assert conn.execute("SELECT digits FROM contact_methods WHERE kind = 'email'").fetchone()[0] == ""
    shifts = conn.execute("SELECT start_utc, end_utc, tier FROM oncall_shifts ORDER BY id").fetchall()
    assert shifts[0]["start_utc"] == "2026-03-07T11:00:00Z" and shifts[1]["tier"] == 2


def test_build_is_deterministic(kit):
    assert build(kit.template_records()) == build(kit.template_records())


def test_opened_database_is_in_memory_and_read_only(template_database):
    conn = model.open_database(template_database)
    assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY: sorts never spill to disk
    # No file behind it: deserialize gives SQLite's in-memory VFS a nominal name that is not a path.
    for _, name, file in conn.execute("PRAGMA database_list"):
        assert not file or not Path(file).exists(), (name, file)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM listings")


@pytest.mark.parametrize("data, fragment", [
    (b"", "not a directory database"),
    (b"hello" * 100, "not a directory database"),
    ("truncated", "cannot be read"),
    ("no meta", "meta table"),
    ("schema 2", "data schema 2"),
    ("corrupt page", ""),
])
def test_open_database_refuses_what_is_not_a_good_snapshot(data, fragment, template_database):
    if data == "truncated":
        data = template_database[: len(template_database) // 2]
    elif data in ("no meta", "schema 2"):
        conn = sqlite3.connect(":memory:")
        conn.deserialize(template_database)
        if data == "no meta":
            conn.execute("DROP TABLE meta")
        else:
            conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        conn.commit()
        data = conn.serialize()
    elif data == "corrupt page":
        damaged = bytearray(template_database)
        page = 4096
        for i in range(page + 100, 3 * page):  # inside the first table's pages, not the header
            damaged[i] ^= 0x5A
        data = bytes(damaged)
    with pytest.raises(CorruptSnapshot) as info:
        model.open_database(data)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def listing(**fields):
    return {"id": "x", "kind": "person", "display_name": "X", **fields}


@pytest.mark.parametrize("change, expected", [
    (lambda r: r["listings"].append(listing(id="p-hart")), "listing 7 (id 'p-hart'): the id is used twice"),
    (lambda r: r["listings"].append(listing(id="")), "listing 7: the id is empty"),
    (lambda r: r["listings"].append(listing(kind="robot")), "listing 7 (id 'x'): kind 'robot' is not one of"),
    (lambda r: r["listings"].append(listing(display_name="  ")), "listing 7 (id 'x'): display_name is empty"),
    (lambda r: r["contact_methods"].append({"listing_id": "nobody", "kind": "pager", "value": "1"}),
     "contact method 8 (listing 'nobody'): listing_id names no listing"),
    (lambda r: r["contact_methods"].append({"listing_id": "p-hart", "kind": "telegram", "value": "1"}),
     "contact method 8 (listing 'p-hart'): kind 'telegram' is not one of"),
    (lambda r: r["contact_methods"].append({"listing_id": "p-hart", "kind": "pager", "value": ""}),
     "contact method 8 (listing 'p-hart'): value is empty"),
    (lambda r: r["contact_methods"].append({"listing_id": "p-hart", "kind": "pager", "value": "1", "rank": "first"}),
     "contact method 8 (listing 'p-hart'): rank 'first' is not a whole number"),
    (lambda r: r["schedules"][0].update(timezone="Mars/Olympus"),
     "on-call schedule 1 (id 'cardio-attending'): timezone 'Mars/Olympus' is not an IANA time zone"),
    (lambda r: r["schedules"][0].update(fallback_listing_id="gone"),
     "fallback_listing_id 'gone' names no listing"),
    (lambda r: r["shifts"][0].update(end_utc=r["shifts"][0]["start_utc"]),
     "shift 1 (schedule 'cardio-attending'): end_utc 2026-03-07T11:00:00Z is not after start_utc"),
    (lambda r: r["shifts"][1].update(start_utc="2026-03-07 11:00"), "shift 2 (schedule 'cardio-attending'): "),
    (lambda r: r["shifts"][2].update(tier=0), "shift 3 (schedule 'cardio-attending'): tier 0 is not"),
    (lambda r: r["shifts"][2].update(schedule_id="nope"), "shift 3 (schedule 'nope'): schedule_id names no"),
    (lambda r: r["shifts"][2].update(listing_id="nope"), "listing_id 'nope' names no listing"),
])
def test_validation_names_the_row_and_field(change, expected, kit):
    records = kit.template_records()
    change(records)
    with pytest.raises(ValidationError) as info:
        build(records)
    assert any(expected in problem for problem in info.value.problems), info.value.problems
    assert expected in str(info.value) or "more" in str(info.value)


def test_validation_lists_every_problem_not_just_the_first(kit):
    records = kit.template_records()
    records["listings"].append(listing(kind="robot", display_name=""))
    records["shifts"][0]["tier"] = -1
    with pytest.raises(ValidationError) as info:
        build(records)
    assert len(info.value.problems) == 3
    assert "(and 2 more)" in str(info.value) and "\n" not in str(info.value)


def test_snapshot_version_and_times(kit):
    with pytest.raises(ValidationError, match="1 or more"):
        build(kit.template_records(), snapshot_version=0)
    with pytest.raises(ValueError, match="naive"):
        build(kit.template_records(), created_at=datetime(2026, 3, 7, 11, 0))
    assert model.format_utc(datetime(2026, 3, 7, 6, 0, tzinfo=timezone(timedelta(hours=-5)))) == \
        "2026-03-07T11:00:00Z"
    assert model.parse_utc("2026-03-07T11:00:00Z") == WHEN
    for bad in ("2026-03-07T11:00:00", "2026-03-07 11:00:00Z", "", "2026-03-07T11:00:00+00:00"):
        with pytest.raises(ValueError):
            model.parse_utc(bad)


def test_aliases_accept_lists_json_and_separated_text(kit):
    records = kit.template_records()
    records["listings"][3]["aliases"] = '["Amy", "Dr Hart"]'
    records["listings"][4]["aliases"] = "Heart unit | Cardio;  CCU ;"
    conn = model.open_database(build(records))
    aliases = dict(conn.execute("SELECT id, aliases FROM listings").fetchall())
    assert json.loads(aliases["p-hart"]) == ["Amy", "Dr Hart"]
    assert json.loads(aliases["d-cardio"]) == ["Heart unit", "Cardio", "CCU"]
    assert json.loads(aliases["l-er"]) == []


def test_digits_of():
    assert model.digits_of("+1 (608) 555-0147 x12") == "16085550147" + "12"
    assert model.digits_of("Code ER") == ""
