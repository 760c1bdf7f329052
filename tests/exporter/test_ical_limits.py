"""iCalendar feeds that would hurt the exporter, and the calendar names IT writes (issue 10 #11, issue 11 #9).

An RRULE with FREQ=SECONDLY and no end used to expand for minutes into gigabytes; FREQ=MINUTELY published
a hundred thousand shifts without a word; DTEND before DTSTART was swapped by the library; zero-length
events vanished uncounted; floating times followed the feed's X-WR-TIMEZONE; a Latin-1 SUMMARY became
U+FFFD and its shift was dropped. Calendar names were cut at a colon by default and "#TEC"/"#tec " were two
names. Each case here failed before.
"""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

from backup_operator.errors import ConfigError, SourceError

from exporter.checks import run_checks
from exporter.config import CheckSettings, parse_config
from exporter.sources import ReadWindow, read_sources

from test_ical import LISTINGS, calendar, shifts_from, spans

WINDOW = {"start": "2026-06-01T00:00:00", "end": "2026-08-14T00:00:00"}  # the default 74 days


def test_secondly_rrule_without_end_is_refused_before_expanding_naming_the_event(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART:20260601T080000Z\nDTEND:20260601T080001Z\nRRULE:FREQ=SECONDLY",
                   "SUMMARY:Bob O'Brien\nDTSTART:20260602T080000Z\nDTEND:20260602T200000Z")
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as refused:
            shifts_from(tmp_path, ics, **WINDOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(refused.value)
    assert "'Alice Smith'" in message and "repeats every second with no end" in message
    assert "6,364,801 occurrences" in message and "Nothing was published" in message
    # Refused from the rule itself: nothing near a million occurrences was ever held (it was 2.4 GB).
    assert peak < 20 * 1024 * 1024, f"{peak / 1e6:.0f} MB"


def test_minutely_rrule_is_refused_and_one_with_a_small_count_is_not(tmp_path):
    endless = calendar("SUMMARY:Alice Smith\nDTSTART:20260601T080000Z\nDTEND:20260601T080100Z\n"
                       "RRULE:FREQ=MINUTELY")
    with pytest.raises(SourceError, match="'Alice Smith' repeats every minute with no end: about 106,081"):
        shifts_from(tmp_path, endless, **WINDOW)
    # Few enough to step through, but far more in the window than any on-call event: the per-event cap.
    counted = calendar("SUMMARY:Alice Smith\nDTSTART:20260601T080000Z\nDTEND:20260601T080100Z\n"
                       "RRULE:FREQ=MINUTELY;COUNT=5000")
    with pytest.raises(SourceError, match="'Alice Smith' has more than 2,000 occurrences in the export window"):
        shifts_from(tmp_path, counted, **WINDOW)
    shifts, _ = shifts_from(tmp_path, counted, **WINDOW, max_occurrences_per_event=5000)
    assert len(shifts) == 5000
    few = calendar("SUMMARY:Alice Smith\nDTSTART:20260601T080000Z\nDTEND:20260601T200000Z\n"
                   "RRULE:FREQ=MINUTELY;INTERVAL=720;COUNT=10")
    assert len(shifts_from(tmp_path, few, **WINDOW)[0]) == 10


def test_an_old_daily_series_without_end_is_expanded_for_the_window(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART;TZID=America/New_York:19900101T080000\n"
                   "DTEND;TZID=America/New_York:19900101T200000\nRRULE:FREQ=DAILY")
    shifts, _ = shifts_from(tmp_path, ics, start="2026-06-01T00:00:00", end="2026-06-08T00:00:00")
    assert len(shifts) == 7 and shifts[0]["start_utc"] == "2026-06-01T12:00:00Z"


def test_yearly_rule_that_expands_by_second_is_refused_by_its_size(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART:20260101T000000Z\nDTEND:20260101T000001Z\n"
                   "RRULE:FREQ=YEARLY;BYMONTH=6;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=" + ",".join(map(str, range(24)))
                   + ";BYMINUTE=" + ",".join(map(str, range(60))) + ";BYSECOND=0,15,30,45")
    with pytest.raises(SourceError, match="'Alice Smith' repeats every year"):
        shifts_from(tmp_path, ics, **WINDOW)


def test_a_feed_with_too_many_events_is_refused(tmp_path):
    events = [f"SUMMARY:Alice Smith\nDTSTART:202606{day:02d}T080000Z\nDTEND:202606{day:02d}T200000Z"
              for day in range(1, 8)]
    with pytest.raises(SourceError, match="more than 5 events in the export window"):
        shifts_from(tmp_path, calendar(*events), **WINDOW, max_shifts=5)
    assert len(shifts_from(tmp_path, calendar(*events), **WINDOW)[0]) == 7
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="max_shifts must be a whole number"):
            shifts_from(tmp_path, calendar(*events), **WINDOW, max_shifts=bad)


def test_feed_text_in_messages_is_shown_not_obeyed(tmp_path):
    ics = calendar("SUMMARY:Zed\x1b[2J\u202eUnknown\nDTSTART:20260602T080000Z\nDTEND:20260602T200000Z",
                   "SUMMARY:Marker\x07\nDTSTART:20260603T080000Z")
    _, warnings = shifts_from(tmp_path, ics, **WINDOW)
    assert all("\x1b" not in w and "\u202e" not in w and "\x07" not in w for w in warnings), warnings
    assert any("Zed\\\\x1b[2J<U+202E>Unknown" in w for w in warnings), warnings


def test_dtend_before_dtstart_is_refused_not_swapped(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART:20260602T200000Z\nDTEND:20260602T080000Z")
    with pytest.raises(SourceError, match="'Alice Smith' ends before it starts"):
        shifts_from(tmp_path, ics, **WINDOW)
    negative = calendar("SUMMARY:Alice Smith\nDTSTART:20260602T200000Z\nDURATION:-PT12H")
    with pytest.raises(SourceError, match="ends before it starts"):
        shifts_from(tmp_path, negative, **WINDOW)
    # Outside the window too: a broken event is broken whenever it is.
    old = calendar("SUMMARY:Bob O'Brien\nDTSTART:20200602T200000Z\nDTEND:20200602T080000Z")
    with pytest.raises(SourceError, match="O'Brien. ends before it starts"):
        shifts_from(tmp_path, old, **WINDOW)


def test_zero_length_events_are_counted_and_reported(tmp_path):
    ics = calendar("SUMMARY:Handover\nDTSTART:20260602T080000Z\nDTEND:20260602T080000Z",
                   "SUMMARY:Handover\nDTSTART:20260603T080000Z",  # a time with no end: zero length
                   "SUMMARY:Sign-out\nDTSTART:20260604T080000Z\nDURATION:PT0S",
                   "SUMMARY:Alice Smith\nDTSTART:20260602T080000Z\nDTEND:20260602T200000Z")
    shifts, warnings = shifts_from(tmp_path, ics, **WINDOW)
    assert [s["listing_id"] for s in shifts] == ["p1"]
    [note] = [w for w in warnings if "zero-length" in w]
    assert note.startswith("note:") and "left out 3 zero-length events" in note
    assert "'Handover', 'Sign-out'" in note


def test_floating_times_follow_the_schedule_zone_not_the_feeds_x_wr_timezone(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART:20260602T080000\nDTEND:20260602T200000")
    ics = ics.replace(b"VERSION:2.0\r\n", b"VERSION:2.0\r\nX-WR-TIMEZONE:Europe/London\r\n")
    shifts, warnings = shifts_from(tmp_path, ics, **WINDOW)  # the schedule is in New York
    assert spans(shifts) == [("p1", "2026-06-02T12:00:00Z", "2026-06-02T00:00:00Z".replace("02T00", "03T00"))]
    [note] = [w for w in warnings if "X-WR-TIMEZONE" in w]
    assert "America/New_York" in note and "Europe/London" in note
    # Times with a TZID or in UTC are what they say, whatever X-WR-TIMEZONE claims; and no note then.
    fixed = calendar("SUMMARY:Alice Smith\nDTSTART;TZID=Europe/Paris:20260602T080000\n"
                     "DTEND;TZID=Europe/Paris:20260602T200000")
    fixed = fixed.replace(b"VERSION:2.0\r\n", b"VERSION:2.0\r\nX-WR-TIMEZONE:Asia/Tokyo\r\n")
    shifts, warnings = shifts_from(tmp_path, fixed, **WINDOW)
    assert spans(shifts) == [("p1", "2026-06-02T06:00:00Z", "2026-06-02T18:00:00Z")]
    assert not [w for w in warnings if "X-WR-TIMEZONE" in w]


def test_a_latin1_summary_is_decoded_and_reported(tmp_path):
    text = calendar("SUMMARY:José Núñez\nDTSTART:20260602T080000Z\nDTEND:20260602T200000Z").decode()
    shifts, warnings = shifts_from(tmp_path, text.encode("cp1252"), **WINDOW)
    assert [s["listing_id"] for s in shifts] == ["p3"]
    [note] = [w for w in warnings if "UTF-8" in w]
    assert "read as Windows-1252" in note and "line 7" in note
    shifts, warnings = shifts_from(tmp_path, text.encode("utf-8"), **WINDOW)
    assert [s["listing_id"] for s in shifts] == ["p3"] and not [w for w in warnings if "UTF-8" in w]


def test_the_default_name_is_the_whole_summary(tmp_path):
    ics = calendar("SUMMARY:Night: Alice Smith\nDTSTART:20260602T080000Z\nDTEND:20260602T200000Z",
                   "SUMMARY:  alice   SMITH \nDTSTART:20260603T080000Z\nDTEND:20260603T200000Z")
    shifts, warnings = shifts_from(tmp_path, ics, **WINDOW)
    assert spans(shifts) == [("p1", "2026-06-03T08:00:00Z", "2026-06-03T20:00:00Z")]
    assert "'Night: Alice Smith' matches no listing" in warnings[0]  # never cut at the colon silently


def test_calendar_names_differing_in_case_and_spaces_are_one_name(tmp_path):
    events = [f"SUMMARY:{name}\nDTSTART:2026060{n}T080000Z\nDTEND:2026060{n}T200000Z"
              for n, name in enumerate(["#TEC", "#tec ", "  #Tec", "# TEC"], 1)]
    _, warnings = shifts_from(tmp_path, calendar(*events), **WINDOW)
    unmatched = [w for w in warnings if w.startswith("unmatched:")]
    assert len(unmatched) == 2, unmatched  # "#TEC" three ways, and "# TEC" (a different name)
    assert "'#TEC' matches no listing (3 events" in unmatched[0]


def test_unknown_names_can_be_created_as_listings(tmp_path):
    events = [f"SUMMARY:{name}\nDTSTART:2026060{n}T080000Z\nDTEND:2026060{n}T200000Z"
              for n, name in enumerate(["#TEC", "#tec ", "Alice Smith"], 1)]
    path = tmp_path / "feed.ics"
    path.write_bytes(calendar(*events))
    listings = tmp_path / "listings.csv"
    listings.write_text("id,kind,display_name,given_name,family_name\n" + "\n".join(
        f"{r['id']},{r['kind']},\"{r['display_name']}\",{r.get('given_name', '')},{r.get('family_name', '')}"
        for r in LISTINGS) + "\n", encoding="utf-8")
    feed = {"type": "ical", "name": "feed", "path": str(path), "schedule_id": "oc-1",
            "schedule_name": "Tec", "timezone": "UTC", "department": "Biomedical engineering"}
    window = ReadWindow(*(datetime(2026, 6, d, tzinfo=timezone.utc) for d in (1, 1, 9)))

    def read(**extra):
        config = parse_config({"sources": [{"type": "csv", "table": "listings", "path": str(listings)},
                                           {**feed, **extra}]}, tmp_path / "config.toml")
        return read_sources(config, window)

    data = read()
    assert len(data.shifts) == 1 and len(data.listings) == len(LISTINGS)
    data = read(unknown_names="create")
    created = [r for r in data.listings if r["id"].startswith("calendar:")]
    assert [(r["id"], r["display_name"], r["department"]) for r in created] == [
        ("calendar:oc-1:tec", "#TEC", "Biomedical engineering")]
    assert sorted(s["listing_id"] for s in data.shifts) == ["calendar:oc-1:tec", "calendar:oc-1:tec", "p1"]
    assert any("created 1 listings for calendar names" in w for w in data.warnings)
    with pytest.raises(ConfigError, match="unknown_names must be"):
        read(unknown_names="yes")


def _overlapping_feed(tmp_path: Path, **extra) -> dict:
    path = tmp_path / "feed.ics"
    path.write_bytes(calendar("SUMMARY:Alice Smith\nDTSTART:20260601T000000Z\nDTEND:20260610T000000Z",
                              "SUMMARY:Bob O'Brien\nDTSTART:20260603T080000Z\nDTEND:20260603T200000Z"))
    listings = tmp_path / "listings.csv"
    listings.write_text("id,kind,display_name\np1,person,Alice Smith\np2,person,Bob O'Brien\n", encoding="utf-8")
    return {"sources": [{"type": "csv", "table": "listings", "path": str(listings)},
                        {"type": "ical", "name": "shadowing", "path": str(path), "schedule_id": "oc-1",
                         "schedule_name": "Tec", "timezone": "UTC", **extra}]}


def test_allow_overlaps_turns_a_sources_overlaps_into_a_note(tmp_path):
    now = datetime(2026, 6, 2, tzinfo=timezone.utc)
    window = ReadWindow.around(now, 1, 8)
    settings = CheckSettings(coverage_days=1)

    data = read_sources(parse_config(_overlapping_feed(tmp_path), tmp_path / "c.toml"), window)
    report = run_checks(data, now=now, baseline=None, settings=settings)
    assert [r.name for r in report.failures] == ["overlaps"]

    data = read_sources(parse_config(_overlapping_feed(tmp_path, allow_overlaps=True), tmp_path / "c.toml"), window)
    report = run_checks(data, now=now, baseline=None, settings=settings)
    assert report.passed, report.describe()
    [allowed] = [r for r in report.warnings if r.name == "allowed_overlaps"]
    assert "p1 until" in allowed.rows[0] and "overlaps p2" in allowed.rows[0]

    with pytest.raises(ConfigError, match="allow_overlaps must be true or false"):
        read_sources(parse_config(_overlapping_feed(tmp_path, allow_overlaps="yes"), tmp_path / "c.toml"), window)


@pytest.mark.parametrize("export", [{"window_days_back": -1}, {"window_days_ahead": -5},
                                    {"window_days_ahead": 0}, {"window_days_back": 400}])
def test_window_days_are_validated(tmp_path, export):
    with pytest.raises(ConfigError, match="window_days_back must be 0 to 366"):
        parse_config({"export": export}, tmp_path / "config.toml")
