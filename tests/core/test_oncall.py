"""On call: who is on call at an instant, across the nights the clocks change, and coverage.

Run this module with the process time zone set to UTC, Europe/London and America/New_York
(``TZ=... pytest tests/core/test_oncall.py``); ``test_the_process_zone_is_never_read`` also checks it
within one run by switching ``TZ`` under the code.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup_operator.core.oncall import (
    AmbiguousWallTime,
    NonexistentWallTime,
    Shift,
    coverage,
    local_to_utc,
    on_call_at,
    shifts_between,
    wall_time,
)

UTC = timezone.utc


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)


def who(status, tier=1):
    return [e.listing_id for e in status.tier(tier).current]


# ------------------------------------------------------------------------------------- wall times


@pytest.mark.parametrize("zone,wall,expected", [
    # ordinary times
    ("Europe/London", "2026-07-01T12:00", "2026-07-01T11:00"),
    ("America/New_York", "2026-01-15T09:00", "2026-01-15T14:00"),
    # folds: the first occurrence (still summer time)
    ("Europe/London", "2026-10-25T01:30", "2026-10-25T00:30"),
    ("America/New_York", "2026-11-01T01:30", "2026-11-01T05:30"),
    # gaps: forward by the gap (read with the offset before the change)
    ("Europe/London", "2026-03-29T01:30", "2026-03-29T01:30"),     # shows as 02:30 BST
    ("America/New_York", "2026-03-08T02:30", "2026-03-08T07:30"),  # shows as 03:30 EDT
    ("America/New_York", "2026-03-08T02:00", "2026-03-08T07:00"),  # the jump itself: 03:00 EDT
])
def test_local_to_utc_rule(zone, wall, expected):
    assert local_to_utc(datetime.fromisoformat(wall), zone) == utc(expected)


def test_strict_refuses_gaps_and_folds():
    with pytest.raises(NonexistentWallTime):
        local_to_utc(datetime(2026, 3, 8, 2, 30), "America/New_York", strict=True)
    with pytest.raises(AmbiguousWallTime):
        local_to_utc(datetime(2026, 10, 25, 1, 30), "Europe/London", strict=True)
    assert local_to_utc(datetime(2026, 10, 25, 3, 0), "Europe/London", strict=True) == utc("2026-10-25T03:00")


def test_local_to_utc_wants_a_naive_wall_time():
    with pytest.raises(ValueError):
        local_to_utc(datetime(2026, 1, 1, tzinfo=UTC), "Europe/London")


def test_wall_time_shows_the_offset_in_force():
    assert wall_time(utc("2026-10-25T00:30"), "Europe/London") == "01:30 BST"
    assert wall_time(utc("2026-10-25T01:30"), "Europe/London") == "01:30 GMT"
    assert wall_time("2026-11-01T05:30:00Z", "America/New_York") == "01:30 EDT"
    assert wall_time("2026-11-01T06:30:00Z", "America/New_York") == "01:30 EST"
    with pytest.raises(ValueError):
        wall_time(datetime(2026, 1, 1), "Europe/London")  # naive: would mean the computer's zone


# ------------------------------------------------------------------------------ the DST nights


NIGHTS = [
    # zone, night shift start and end as wall times, expected hours, the two 01:30s (or the times around
    # a gap) as UTC instants, schedule id, who works the night
    ("Europe/London", "2026-10-24T18:00", "2026-10-25T06:00", 13,
     ["2026-10-25T00:30", "2026-10-25T01:30"], "london-ed", "p-jsmith"),
    ("America/New_York", "2026-10-31T18:00", "2026-11-01T06:00", 13,
     ["2026-11-01T05:30", "2026-11-01T06:30"], "ny-peds", "p-jsmithson"),
    ("Europe/London", "2026-03-28T18:00", "2026-03-29T06:00", 11,
     ["2026-03-29T00:30", "2026-03-29T01:30"], "london-ed", "p-jsmith"),      # 00:30 GMT, 02:30 BST
    ("America/New_York", "2026-03-07T18:00", "2026-03-08T06:00", 11,
     ["2026-03-08T06:30", "2026-03-08T07:30"], "ny-peds", "p-jsmithson"),     # 01:30 EST, 03:30 EDT
]


@pytest.mark.parametrize("zone,start,end,hours,_around,_sched,_who", NIGHTS)
def test_saturday_night_shift_length(zone, start, end, hours, _around, _sched, _who):
    begins = local_to_utc(datetime.fromisoformat(start), zone)
    ends = local_to_utc(datetime.fromisoformat(end), zone)
    assert ends - begins == timedelta(hours=hours)


@pytest.mark.parametrize("zone,start,end,hours,around,sched,night", NIGHTS)
def test_same_person_before_and_after_the_change(directory, zone, start, end, hours, around, sched, night):
    before, after = (on_call_at(directory, sched, utc(t)) for t in around)
    assert who(before) == who(after) == [night]
    assert before.tier(1).current[0].end - before.tier(1).current[0].start == timedelta(hours=hours)


def test_the_two_0130s_of_the_fall_back_night_are_shown_apart(directory):
    first = on_call_at(directory, "london-ed", utc("2026-10-25T00:30"))
    second = on_call_at(directory, "london-ed", utc("2026-10-25T01:30"))
    assert first.at_wall == "Sun 25 Oct 01:30 BST"
    assert second.at_wall == "Sun 25 Oct 01:30 GMT"
    entry = first.tier(1).current[0]
    assert (entry.since, entry.until) == ("Sat 24 Oct 18:00 BST", "Sun 25 Oct 06:00 GMT")


@pytest.mark.parametrize("zone,start,end,hours,_around,sched,night", NIGHTS)
def test_exactly_one_primary_every_minute_of_the_night(directory, zone, start, end, hours, _around, sched, night):
    # from Saturday noon to Sunday noon, local: every minute, exactly one tier-1 person
    lo = local_to_utc(datetime.fromisoformat(start) - timedelta(hours=6), zone)
    hi = local_to_utc(datetime.fromisoformat(end) + timedelta(hours=6), zone)
    minute = lo
    seen = set()
    while minute < hi:
        current = who(on_call_at(directory, sched, minute))
        assert len(current) == 1, (minute, current)
        seen.add(current[0])
        minute += timedelta(minutes=1)
    assert night in seen
    assert coverage(directory, lo, hi, schedule_id=sched).complete


def test_shift_boundary_at_a_nonexistent_time_meets_without_gap_or_overlap():
    zone = "America/New_York"
    # a rota written as "nights end 02:30, days start 02:30" on the spring-forward night
    night = Shift("p-a", local_to_utc(datetime(2026, 3, 7, 20, 0), zone),
                  local_to_utc(datetime(2026, 3, 8, 2, 30), zone))
    day = Shift("p-b", local_to_utc(datetime(2026, 3, 8, 2, 30), zone),
                local_to_utc(datetime(2026, 3, 8, 14, 0), zone))
    assert night.end == day.start == utc("2026-03-08T07:30")
    assert wall_time(night.end, zone) == "03:30 EDT"
    assert coverage([night, day], night.start, day.end).complete
    assert night.duration == timedelta(hours=6, minutes=30)   # 20:00 EST (01:00Z) to 03:30 EDT (07:30Z)


def test_shift_boundary_in_a_fold_takes_the_first_0130():
    zone = "Europe/London"
    a = Shift("p-a", utc("2026-10-24T17:00"), local_to_utc(datetime(2026, 10, 25, 1, 30), zone))
    b = Shift("p-b", local_to_utc(datetime(2026, 10, 25, 1, 30), zone), utc("2026-10-25T09:00"))
    assert a.end == b.start == utc("2026-10-25T00:30")
    assert coverage([a, b], a.start, b.end).complete


# ------------------------------------------------------------------------------- on call at an instant


def test_tiers_since_until_and_next(directory):
    status = on_call_at(directory, "card-att", "2026-03-25T18:00:00Z")   # 13:00 CDT
    assert status.schedule_name == "Cardiology — attending" and status.timezone == "America/Chicago"
    assert [t.tier for t in status.tiers] == [1, 2]
    primary = status.tier(1)
    assert [(e.listing_id, e.name, e.role) for e in primary.current] == [("p-jsmith", "Smith, John", "primary")]
    assert primary.current[0].since == "Wed 25 Mar 08:00 CDT"
    assert primary.current[0].until == "Wed 25 Mar 20:00 CDT"
    assert primary.next.listing_id == "p-jjones" and primary.next.start == utc("2026-03-26T01:00")
    assert who(status, 2) == ["p-mjohnson"] and status.tier(2).next is None
    assert not status.nobody_on_call
    assert status.escalation == "Page the attending twice."


def test_half_open_shifts_hand_over_on_the_second(directory):
    assert who(on_call_at(directory, "card-att", "2026-03-26T00:59:59Z")) == ["p-jsmith"]
    assert who(on_call_at(directory, "card-att", "2026-03-26T01:00:00Z")) == ["p-jjones"]


def test_nobody_on_call_is_an_answer_with_the_fallback(directory):
    status = on_call_at(directory, "card-att", "2026-03-27T12:00:00Z")   # after the last shift
    assert status.nobody_on_call
    assert status.tier(1).current == () and status.tier(1).next is None
    assert status.fallback.listing_id == "d-card" and status.fallback.name == "Cardiology"
    assert (status.fallback.contact_kind, status.fallback.contact_value) == ("extension", "4000")


def test_schedule_without_shifts(directory):
    status = on_call_at(directory, "empty-onc", "2026-03-25T12:00:00Z")
    assert status.nobody_on_call and status.fallback.listing_id == "d-onc"


def test_before_the_first_shift_shows_who_is_next(directory):
    status = on_call_at(directory, "card-att", "2026-03-25T12:00:00Z")
    assert status.nobody_on_call and status.tier(1).next.listing_id == "p-jsmith"


def test_unknown_schedule(directory):
    with pytest.raises(KeyError):
        on_call_at(directory, "nope", "2026-03-25T12:00:00Z")


def test_naive_instants_are_refused(directory):
    with pytest.raises(ValueError):
        on_call_at(directory, "card-att", datetime(2026, 3, 25, 18, 0))


def test_shifts_between(directory):
    rows = shifts_between(directory, "card-att", "2026-03-25T00:00:00Z", "2026-03-26T00:00:00Z")
    assert [(s.listing_id, s.tier) for s in rows] == [("p-jsmith", 1), ("p-mjohnson", 2)]
    assert [s.listing_id for s in shifts_between(directory, "card-att", utc("2026-03-25T00:00"),
                                                 utc("2026-03-27T00:00"), tier=1)] == ["p-jsmith", "p-jjones"]


def test_the_process_zone_is_never_read(directory, monkeypatch):
    """Whatever TZ the process has, the answers are the same."""
    answers = []
    for tz in ("UTC", "Europe/London", "America/New_York", "Asia/Kolkata"):
        monkeypatch.setenv("TZ", tz)
        time.tzset()
        s = on_call_at(directory, "london-ed", "2026-10-25T00:30:00Z")
        answers.append((who(s), s.at_wall, s.tier(1).current[0].since,
                        local_to_utc(datetime(2026, 3, 8, 2, 30), "America/New_York")))
    monkeypatch.undo()
    time.tzset()
    assert all(a == answers[0] for a in answers)


# ------------------------------------------------------------------------------------------ coverage


def test_coverage_finds_gaps_and_overlaps_from_tuples():
    shifts = [
        ("a", "2026-03-01T00:00:00Z", "2026-03-01T08:00:00Z"),
        ("b", "2026-03-01T09:00:00Z", "2026-03-01T17:00:00Z"),      # gap 08-09
        ("c", "2026-03-01T16:00:00Z", "2026-03-02T00:00:00Z"),      # overlap 16-17 with b
        ("z", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", 2),   # another tier: ignored
    ]
    result = coverage(shifts, "2026-03-01T00:00:00Z", "2026-03-02T02:00:00Z")
    assert [(g.start, g.end) for g in result.gaps] == [
        (utc("2026-03-01T08:00"), utc("2026-03-01T09:00")), (utc("2026-03-02T00:00"), utc("2026-03-02T02:00"))]
    assert [(o.start, o.end, set(o.listing_ids)) for o in result.overlaps] == [
        (utc("2026-03-01T16:00"), utc("2026-03-01T17:00"), {"b", "c"})]
    assert coverage(shifts, "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", tier=2).complete


def test_coverage_of_nothing_is_one_gap():
    result = coverage([], "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")
    assert [(g.start, g.end) for g in result.gaps] == [(utc("2026-03-01T00:00"), utc("2026-03-02T00:00"))]


def test_coverage_of_a_duplicated_shift_is_an_overlap():
    s = ("a", "2026-03-01T00:00:00Z", "2026-03-01T08:00:00Z")
    result = coverage([s, s], "2026-03-01T00:00:00Z", "2026-03-01T08:00:00Z")
    assert not result.gaps and len(result.overlaps) == 1 and result.overlaps[0].duration == timedelta(hours=8)


def test_coverage_from_the_connection(directory):
    result = coverage(directory, "2026-03-25T13:00:00Z", "2026-03-26T13:00:00Z", schedule_id="card-att")
    assert result.complete
    result = coverage(directory, "2026-03-25T00:00:00Z", "2026-03-27T00:00:00Z", schedule_id="card-att")
    assert [(g.start, g.end) for g in result.gaps] == [
        (utc("2026-03-25T00:00"), utc("2026-03-25T13:00")), (utc("2026-03-26T13:00"), utc("2026-03-27T00:00"))]
    with pytest.raises(ValueError):
        coverage(directory, "2026-03-25T00:00:00Z", "2026-03-27T00:00:00Z")
    with pytest.raises(ValueError):
        coverage([], "2026-03-27T00:00:00Z", "2026-03-25T00:00:00Z")


_HOUR = st.integers(0, 48)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), _HOUR, st.integers(1, 12)), max_size=8), _HOUR, st.integers(1, 48))
def test_coverage_agrees_with_counting_every_hour(raw, lo_h, span_h):
    base = utc("2026-03-01T00:00")
    shifts = [(who_, base + timedelta(hours=s), base + timedelta(hours=s + d)) for who_, s, d in raw]
    lo, hi = base + timedelta(hours=lo_h), base + timedelta(hours=lo_h + span_h)
    result = coverage(shifts, lo, hi)
    for h in range(lo_h, lo_h + span_h):
        instant = base + timedelta(hours=h, minutes=30)
        count = sum(1 for _w, s, e in shifts if s <= instant < e)
        in_gap = any(g.start <= instant < g.end for g in result.gaps)
        in_overlap = any(o.start <= instant < o.end for o in result.overlaps)
        assert in_gap == (count == 0) and in_overlap == (count > 1)
    # gaps and overlaps never touch themselves: they are maximal
    for a, b in zip(result.gaps, result.gaps[1:]):
        assert a.end < b.start
