"""iCalendar feeds: DST nights, RRULE with EXDATE and an override, all-day events, name matching."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from backup_operator.errors import ConfigError

from exporter.config import parse_config
from backup_operator.errors import SourceError
from exporter.sources import DirectoryData, ReadWindow
from exporter.sources import ical
from exporter.sources.ical import NameMatcher, normalise_name

LISTINGS = [
    {"id": "p1", "kind": "person", "display_name": "Alice Smith, MD", "given_name": "Alice", "family_name": "Smith",
     "aliases": "Dr. Smith"},
    {"id": "p2", "kind": "person", "display_name": "Bob O'Brien, MD", "given_name": "Robert", "family_name": "O'Brien",
     "aliases": "Bob O'Brien"},
    {"id": "p3", "kind": "person", "display_name": "José Núñez, DO", "given_name": "José", "family_name": "Núñez"},
    {"id": "p4", "kind": "person", "display_name": "Chris Lee", "given_name": "Chris", "family_name": "Lee"},
    {"id": "p5", "kind": "person", "display_name": "Chris Lee", "given_name": "Christopher", "family_name": "Lee"},
    {"id": "d1", "kind": "department", "display_name": "Radiology"},
]
CONTACTS = [{"listing_id": "p4", "kind": "email", "value": "chris.lee@example.org"}]

VTIMEZONE_NY = """BEGIN:VTIMEZONE
TZID:Eastern Standard Time
BEGIN:STANDARD
DTSTART:16010101T020000
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""


def calendar(*events: str, vtimezone: str = "") -> bytes:
    body = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Backup Operator tests//EN\n" + vtimezone
    for n, event in enumerate(events):
        body += f"BEGIN:VEVENT\nUID:event-{n}@test\nDTSTAMP:20260101T000000Z\n{event.strip()}\nEND:VEVENT\n"
    body += "END:VCALENDAR\n"
    return body.replace("\n", "\r\n").encode()


def shifts_from(tmp_path: Path, ics: bytes, *, start: str, end: str, tz: str = "America/New_York",
                **spec) -> tuple[list[dict], list[str]]:
    path = tmp_path / "feed.ics"
    path.write_bytes(ics)
    config = parse_config({}, tmp_path / "config.toml")
    so_far = DirectoryData(listings=[dict(r) for r in LISTINGS], contact_methods=list(CONTACTS),
                           schedules=[{"id": "oc-1", "name": "Test", "timezone": tz}])
    window = ReadWindow(datetime.fromisoformat(start).replace(tzinfo=timezone.utc),
                        datetime.fromisoformat(start).replace(tzinfo=timezone.utc),
                        datetime.fromisoformat(end).replace(tzinfo=timezone.utc))
    data = ical.read({"type": "ical", "name": "feed", "path": str(path), "schedule_id": "oc-1", **spec},
                     config, window, so_far)
    return data.shifts, data.warnings


# These feeds write "Role: Name" in SUMMARY; the default takes the whole SUMMARY as the name.
ROLE_FIRST = {"name_pattern": ical.AFTER_COLON_PATTERN}


def spans(shifts) -> list[tuple[str, str, str]]:
    return [(s["listing_id"], s["start_utc"], s["end_utc"]) for s in shifts]


def test_new_york_fall_back_night_with_a_vtimezone(tmp_path):
    ics = calendar("SUMMARY:Night: Alice Smith\nDTSTART;TZID=Eastern Standard Time:20261031T190000\n"
                   "DTEND;TZID=Eastern Standard Time:20261101T070000", vtimezone=VTIMEZONE_NY)
    shifts, warnings = shifts_from(tmp_path, ics, start="2026-10-30T00:00:00", end="2026-11-03T00:00:00", **ROLE_FIRST)
    # 19:00 EDT = 23:00Z; 07:00 EST = 12:00Z: a 13-hour night.
    assert spans(shifts) == [("p1", "2026-10-31T23:00:00Z", "2026-11-01T12:00:00Z")]
    assert warnings == []


def test_london_fall_back_night_with_an_iana_tzid(tmp_path):
    ics = calendar("SUMMARY:Reads: Dr. Smith\nDTSTART;TZID=Europe/London:20261024T200000\n"
                   "DTEND;TZID=Europe/London:20261025T080000")
    shifts, _ = shifts_from(tmp_path, ics, start="2026-10-23T00:00:00", end="2026-10-27T00:00:00", **ROLE_FIRST,
                            tz="Europe/London")
    # 20:00 BST = 19:00Z; 08:00 GMT = 08:00Z: 13 hours.
    assert spans(shifts) == [("p1", "2026-10-24T19:00:00Z", "2026-10-25T08:00:00Z")]


def test_spring_forward_nights_in_both_zones(tmp_path):
    ics = calendar(
        "SUMMARY:Night: Alice Smith\nDTSTART;TZID=America/New_York:20260307T190000\n"
        "DTEND;TZID=America/New_York:20260308T070000",
        "SUMMARY:Night: Bob O'Brien\nDTSTART;TZID=Europe/London:20260328T200000\n"
        "DTEND;TZID=Europe/London:20260329T080000")
    shifts, _ = shifts_from(tmp_path, ics, start="2026-03-06T00:00:00", end="2026-03-31T00:00:00", **ROLE_FIRST)
    assert spans(shifts) == [
        ("p1", "2026-03-08T00:00:00Z", "2026-03-08T11:00:00Z"),  # 19:00 EST -> 07:00 EDT: 11 h
        ("p2", "2026-03-28T20:00:00Z", "2026-03-29T07:00:00Z"),  # 20:00 GMT -> 08:00 BST: 11 h
    ]


def test_floating_time_inside_the_spring_forward_gap_uses_the_documented_rule(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART:20260308T023000\nDTEND:20260308T080000")
    shifts, _ = shifts_from(tmp_path, ics, start="2026-03-07T00:00:00", end="2026-03-09T00:00:00")
    # 02:30 does not exist in New York that night: read with the offset before the gap (-05:00).
    assert spans(shifts) == [("p1", "2026-03-08T07:30:00Z", "2026-03-08T12:00:00Z")]


def test_rrule_with_exdate_and_an_override(tmp_path):
    ics = calendar(
        "SUMMARY:Day: Alice Smith\nDTSTART;TZID=Eastern Standard Time:20261030T070000\n"
        "DTEND;TZID=Eastern Standard Time:20261030T190000\nRRULE:FREQ=DAILY;COUNT=5\n"
        "EXDATE;TZID=Eastern Standard Time:20261101T070000",
        # The 2 November occurrence is taken by Bob and starts late.
        "SUMMARY:Day: Bob O'Brien\nRECURRENCE-ID;TZID=Eastern Standard Time:20261102T070000\n"
        "DTSTART;TZID=Eastern Standard Time:20261102T090000\nDTEND;TZID=Eastern Standard Time:20261102T190000",
        vtimezone=VTIMEZONE_NY)
    # The override must share the series' UID.
    ics = ics.replace(b"UID:event-1@test", b"UID:event-0@test")
    shifts, _ = shifts_from(tmp_path, ics, start="2026-10-29T00:00:00", end="2026-11-06T00:00:00", **ROLE_FIRST)
    assert spans(shifts) == [
        ("p1", "2026-10-30T11:00:00Z", "2026-10-30T23:00:00Z"),  # EDT
        ("p1", "2026-10-31T11:00:00Z", "2026-10-31T23:00:00Z"),
        # 1 November excluded (EXDATE)
        ("p2", "2026-11-02T14:00:00Z", "2026-11-03T00:00:00Z"),  # override, EST
        ("p1", "2026-11-03T12:00:00Z", "2026-11-04T00:00:00Z"),  # EST from here on
    ]


def test_rdate_adds_an_occurrence(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART;TZID=America/New_York:20260601T080000\n"
                   "DTEND;TZID=America/New_York:20260601T200000\nRDATE;TZID=America/New_York:20260610T080000")
    shifts, _ = shifts_from(tmp_path, ics, start="2026-05-30T00:00:00", end="2026-06-30T00:00:00")
    assert [s["start_utc"] for s in shifts] == ["2026-06-01T12:00:00Z", "2026-06-10T12:00:00Z"]


def test_all_day_events_cover_their_dates_in_the_schedule_zone(tmp_path):
    ics = calendar("SUMMARY:Weekend call: Alice Smith\nDTSTART;VALUE=DATE:20261031\nDTEND;VALUE=DATE:20261102",
                   "SUMMARY:Bob O'Brien\nDTSTART;VALUE=DATE:20261102")
    shifts, _ = shifts_from(tmp_path, ics, start="2026-10-30T00:00:00", end="2026-11-04T00:00:00", **ROLE_FIRST)
    assert spans(shifts) == [
        ("p1", "2026-10-31T04:00:00Z", "2026-11-02T05:00:00Z"),  # 00:00 EDT Sat -> 00:00 EST Mon (49 h)
        ("p2", "2026-11-02T05:00:00Z", "2026-11-03T05:00:00Z"),  # no DTEND: one day
    ]
    shifts, _ = shifts_from(tmp_path, ics, start="2026-10-30T00:00:00", end="2026-11-04T00:00:00", **ROLE_FIRST,
                            all_day_starts="07:00")
    assert spans(shifts)[0] == ("p1", "2026-10-31T11:00:00Z", "2026-11-02T12:00:00Z")


def test_names_are_matched_by_rule_and_unmatched_ones_reported(tmp_path):
    ics = calendar(
        "SUMMARY:Backup: SMITH, ALICE\nDTSTART:20260601T120000Z\nDTEND:20260601T180000Z",
        "SUMMARY:Primary: Jose Nunez DO\nDTSTART:20260601T120000Z\nDTEND:20260601T180000Z",
        "SUMMARY:Primary: Dr. Zed Unknown\nDTSTART:20260602T120000Z\nDTEND:20260602T180000Z\n"
        "RRULE:FREQ=DAILY;COUNT=3",
        "SUMMARY:Primary: Chris Lee\nDTSTART:20260603T120000Z\nDTEND:20260603T180000Z",
        "SUMMARY:Primary: chris.lee@example.org\nDTSTART:20260604T120000Z\nDTEND:20260604T180000Z",
        "SUMMARY:Primary: Bob\nDTSTART:20260605T120000Z\nDTEND:20260605T180000Z\nSTATUS:CANCELLED",
    )
    shifts, warnings = shifts_from(tmp_path, ics, start="2026-05-30T00:00:00", end="2026-06-30T00:00:00", **ROLE_FIRST,
                                   tiers={"(?i)^backup": 2}, role_pattern=r"^(?P<role>\w+):")
    assert [(s["listing_id"], s["tier"], s["role"]) for s in shifts] == [
        ("p3", 1, "Primary"), ("p4", 1, "Primary"), ("p1", 2, "Backup")]
    assert len(warnings) == 2
    assert "'Dr. Zed Unknown' matches no listing (3 events" in warnings[0]
    assert "'Chris Lee' matches 2 listings (p4, p5)" in warnings[1]


def test_name_normalisation():
    assert normalise_name("Dr. José  O'Brien, MD") == "jose obrien"
    assert normalise_name("Smith, John") == "john smith"
    assert normalise_name("John Smith, MD") == "john smith"
    matcher = NameMatcher(LISTINGS, CONTACTS, ["display_name", "given_family"])
    assert matcher.match("A. Smith") == ("p1", "")
    assert matcher.match("radiology")[0] is None  # only people are on call by name


def test_an_unknown_tzid_is_named(tmp_path):
    ics = calendar("SUMMARY:Alice Smith\nDTSTART;TZID=Mars/Olympus_Mons:20260601T080000\n"
                   "DTEND;TZID=Mars/Olympus_Mons:20260601T200000")
    with pytest.raises(SourceError, match="Mars/Olympus_Mons"):
        shifts_from(tmp_path, ics, start="2026-05-30T00:00:00", end="2026-06-30T00:00:00")


def test_a_malformed_file_is_one_sentence(tmp_path):
    with pytest.raises(SourceError, match="not a valid iCalendar file"):
        shifts_from(tmp_path, b"BEGIN:VCALENDAR\r\nthis is not ical\r\n", start="2026-05-30T00:00:00",
                    end="2026-06-30T00:00:00")


def test_a_feed_url_that_cannot_be_fetched_names_the_feed_without_its_token(tmp_path):
    config = parse_config({}, tmp_path / "config.toml")
    so_far = DirectoryData(schedules=[{"id": "oc-1", "name": "Test", "timezone": "UTC"}])
    window = ReadWindow.around(datetime(2026, 6, 1, tzinfo=timezone.utc), 1, 1)
    with pytest.raises(SourceError) as err:
        ical.read({"type": "ical", "name": "amion", "url": "http://127.0.0.1:9/feed.ics?token=SECRET",
                   "schedule_id": "oc-1", "timeout_s": 5}, config, window, so_far)
    assert "http://127.0.0.1:9/feed.ics" in str(err.value) and "SECRET" not in str(err.value)


def test_a_feed_can_define_its_own_schedule(tmp_path):
    path = tmp_path / "feed.ics"
    path.write_bytes(calendar("SUMMARY:Alice Smith\nDTSTART:20260601T080000\nDTEND:20260601T200000"))
    config = parse_config({}, tmp_path / "config.toml")
    so_far = DirectoryData(listings=list(LISTINGS))
    window = ReadWindow.around(datetime(2026, 6, 1, tzinfo=timezone.utc), 2, 2)
    spec = {"type": "ical", "name": "feed", "path": str(path), "schedule_id": "oc-x"}
    with pytest.raises(ConfigError, match="schedule_name and timezone"):
        ical.read(spec, config, window, so_far)
    data = ical.read({**spec, "schedule_name": "Remote reads", "timezone": "Europe/London"}, config, window,
                     so_far)
    assert data.schedules[0]["timezone"] == "Europe/London"
    assert spans(data.shifts) == [("p1", "2026-06-01T07:00:00Z", "2026-06-01T19:00:00Z")]  # floating, BST


def test_a_feed_is_fetched_over_http(tmp_path):
    """A feed URL on a loopback HTTP server (the way Amion/QGenda feeds are read), token kept out of logs."""
    import http.server
    import threading

    body = calendar("SUMMARY:Primary: Alice Smith\nDTSTART;TZID=Europe/London:20261025T000000\n"
                    "DTEND;TZID=Europe/London:20261025T120000")
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = parse_config({}, tmp_path / "config.toml")
        so_far = DirectoryData(listings=list(LISTINGS), schedules=[{"id": "oc-1", "name": "T", "timezone": "Europe/London"}])
        window = ReadWindow.around(datetime(2026, 10, 25, tzinfo=timezone.utc), 2, 2)
        url = f"webcal://127.0.0.1:{server.server_address[1]}/feed.ics?token=abc"
        with pytest.raises(SourceError):  # webcal:// means https://, which this plain server does not speak
            ical.read({"type": "ical", "name": "feed", "url": url, "schedule_id": "oc-1", "timeout_s": 5},
                      config, window, so_far)
        data = ical.read({"type": "ical", "name": "feed", "url": url.replace("webcal", "http"),
                          "schedule_id": "oc-1", "timeout_s": 5, **ROLE_FIRST}, config, window, so_far)
    finally:
        server.shutdown()
        server.server_close()
    # 00:00 BST on the fall-back day (23:00Z the day before) to 12:00 GMT: 13 hours.
    assert spans(data.shifts) == [("p1", "2026-10-24T23:00:00Z", "2026-10-25T12:00:00Z")]
    assert seen[-1] == "/feed.ics?token=abc"
