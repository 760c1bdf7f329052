"""Rotas in local wall time become UTC shifts that meet exactly, across DST changes in both directions."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from backup_operator.core.model import parse_utc

from exporter.sources import ReadWindow
from exporter.sources.localtime import wall_to_utc, zone
from exporter.sources.rota import Rota, expand_rota

from exporter_support import DEMO


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def day_night(members=("a", "b", "c")) -> Rota:
    return Rota({"schedule_id": "s", "anchor": "2026-01-05", "daily": ["07:00", "19:00"],
                 "members": list(members)}, "test rota")


def window(start: str, end: str) -> ReadWindow:
    return ReadWindow(utc(start), utc(start), utc(end))


def hours(shift) -> float:
    return (parse_utc(shift["end_utc"]) - parse_utc(shift["start_utc"])).total_seconds() / 3600


def test_fall_back_night_is_13_hours_in_new_york():
    shifts = expand_rota(day_night(), "America/New_York", window("2026-10-31T12:00:00", "2026-11-01T23:59:00"))
    night = next(s for s in shifts if s["start_utc"] == "2026-10-31T23:00:00Z")  # 19:00 EDT
    assert night["end_utc"] == "2026-11-01T12:00:00Z"  # 07:00 EST
    assert hours(night) == 13


def test_fall_back_night_is_13_hours_in_london():
    shifts = expand_rota(day_night(), "Europe/London", window("2026-10-24T12:00:00", "2026-10-25T23:59:00"))
    night = next(s for s in shifts if s["start_utc"] == "2026-10-24T18:00:00Z")  # 19:00 BST
    assert night["end_utc"] == "2026-10-25T07:00:00Z"  # 07:00 GMT
    assert hours(night) == 13


def test_spring_forward_night_is_11_hours():
    shifts = expand_rota(day_night(), "America/Chicago", window("2026-03-07T12:00:00", "2026-03-08T23:59:00"))
    night = next(s for s in shifts if s["start_utc"] == "2026-03-08T01:00:00Z")  # 19:00 CST
    assert night["end_utc"] == "2026-03-08T12:00:00Z"  # 07:00 CDT
    assert hours(night) == 11


def test_consecutive_shifts_meet_exactly_and_rotate():
    shifts = expand_rota(day_night(), "America/New_York", window("2026-10-25T00:00:00", "2026-11-10T00:00:00"))
    for before, after in zip(shifts, shifts[1:]):
        assert before["end_utc"] == after["start_utc"]
        assert before["listing_id"] != after["listing_id"]


def test_the_gap_rule_for_a_handover_inside_spring_forward():
    ny = zone("America/New_York")
    # 02:00 does not exist on 2026-03-08: it is the instant the gap ends, 03:00 EDT.
    assert wall_to_utc(date(2026, 3, 8), time(2, 0), ny) == utc("2026-03-08T07:00:00")
    # 02:30 is read with the offset before the gap (RFC 5545): 03:30 EDT.
    assert wall_to_utc(date(2026, 3, 8), time(2, 30), ny) == utc("2026-03-08T07:30:00")
    # A repeated wall time means its first occurrence (still EDT).
    assert wall_to_utc(date(2026, 11, 1), time(1, 30), ny) == utc("2026-11-01T05:30:00")
    rota = Rota({"schedule_id": "s", "anchor": "2026-01-05", "daily": ["02:30", "14:30"],
                 "members": ["a", "b"]}, "gap rota")
    shifts = expand_rota(rota, "America/New_York", window("2026-03-07T12:00:00", "2026-03-09T00:00:00"))
    night = next(s for s in shifts if s["end_utc"] == "2026-03-08T07:30:00Z")
    assert night["start_utc"] == "2026-03-07T19:30:00Z"  # 14:30 EST → "02:30" = 03:30 EDT
    assert hours(night) == 12  # 13 h on the wall clock, one of them skipped


def test_weekly_handover_on_monday_0800_local():
    rota = Rota({"schedule_id": "s", "anchor": "2026-01-05", "weekly": {"weekday": "monday", "at": "08:00"},
                 "members": ["a", "b", "c"]}, "weekly rota")
    shifts = expand_rota(rota, "Europe/London", window("2026-10-20T00:00:00", "2026-11-03T00:00:00"))
    starts = [s["start_utc"] for s in shifts]
    assert "2026-10-19T07:00:00Z" in starts  # 08:00 BST
    assert "2026-10-26T08:00:00Z" in starts  # 08:00 GMT, the Monday after the change
    by_start = {s["start_utc"]: s for s in shifts}
    assert hours(by_start["2026-10-19T07:00:00Z"]) == 7 * 24 + 1
    # Week 0 (from the anchor Monday 2026-01-05) is a; 2026-10-19 is week 41, 41 % 3 = 2 -> c.
    assert by_start["2026-10-19T07:00:00Z"]["listing_id"] == "c"


def test_the_window_is_covered_from_start_to_end():
    shifts = expand_rota(day_night(), "America/Chicago", window("2026-06-01T10:00:00", "2026-06-03T10:00:00"))
    assert parse_utc(shifts[0]["start_utc"]) <= utc("2026-06-01T10:00:00")
    assert parse_utc(shifts[-1]["end_utc"]) >= utc("2026-06-03T10:00:00")


@pytest.mark.parametrize("bad, message", [
    ({"daily": ["7am"]}, "not a wall time"),
    ({"weekly": {"weekday": "mon"}}, "not a day name"),
    ({"members": []}, "members is empty"),
    ({"daily": ["07:00"], "weekly": {"weekday": "monday"}}, "either daily"),
])
def test_bad_rotas_are_named(bad, message):
    from backup_operator.errors import SourceError

    doc = {"schedule_id": "s", "anchor": "2026-01-05", "members": ["a"], **bad}
    if "daily" not in doc and "weekly" not in doc:
        doc["daily"] = ["07:00"]
    with pytest.raises(SourceError, match=message):
        Rota(doc, "rota 3")


def test_the_demo_rotas_cover_every_demo_schedule_now():
    """The shipped hospital is on call at any date the demo runs: every schedule, both tiers."""
    import csv
    import json

    schedules = {r["id"]: r["timezone"] for r in csv.DictReader(open(DEMO / "schedules.csv", encoding="utf-8"))}
    rotas = json.loads((DEMO / "rotas.json").read_text(encoding="utf-8"))["rotas"]
    assert len(schedules) >= 50
    assert {tz for tz in schedules.values()} >= {"America/Chicago", "America/New_York", "Europe/London"}
    now = datetime.now(timezone.utc)
    covered = set()
    for doc in rotas:
        rota = Rota(doc, "demo")
        shifts = expand_rota(rota, schedules[rota.schedule_id], ReadWindow.around(now, 14, 60))
        assert any(parse_utc(s["start_utc"]) <= now < parse_utc(s["end_utc"]) for s in shifts)
        covered.add((rota.schedule_id, rota.tier))
    assert covered == {(s, t) for s in schedules for t in (1, 2)}
