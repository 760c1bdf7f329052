r"""iCalendar on-call feeds (the export of Amion, QGenda, PagerDuty and similar) turned into shifts.

One ``[[sources]]`` entry per feed::

    type = "ical"
    name = "Amion cardiology"
    url = "https://amion.example/cardiology.ics"   # http(s)://, webcal:// or file://; or path = "feeds/x.ics"
    # url_env = "AMION_FEED_URL"     # or the URL (with its token) from the environment
    schedule_id = "oc-001"            # the on-call schedule the events belong to
    schedule_name = "Cardiology — on call"   # only if no other source defines that schedule:
    timezone = "America/Chicago"      #   then the feed creates it with this name and zone
    tier = 1                          # default tier; [sources.tiers] maps summary patterns to tiers
    role = "Attending"                # default role; or role_pattern with a (?P<role>…) group
    name_field = "summary"            # where the person's name is: summary, description, location, attendee
    name_pattern = '^(?:.*?:\s*)?(?P<name>.+?)\s*$'   # regex with a (?P<name>…) group (default: after a "Role:" prefix)
    match_on = ["display_name", "given_family", "alias", "email"]   # how a name finds its listing
    all_day_starts = "00:00"          # all-day events run from this wall time to the same time after
    timeout_s = 30

Times: TZID with its VTIMEZONE (or an IANA name), UTC (``Z``) and floating times (read in the
schedule's zone) are all honoured; RRULE, RDATE, EXDATE and RECURRENCE-ID overrides are expanded by
recurring-ical-events for the export window. An all-day event covers its dates from ``all_day_starts``
in the schedule's zone to the same wall time after its last day (exporter.sources.localtime's rule).

Matching a name to a listing ignores case, accents, punctuation and titles ("Dr.", "MD"), and accepts
"Family, Given". A name that matches no listing, or more than one, is left out and reported as an
unmatched name (the coverage check then shows the hole). This module must never guess between two
listings with the same name.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from backup_operator.core.model import format_utc
from backup_operator.errors import ConfigError

from backup_operator.errors import SourceError
from backup_operator.textsafe import shown
from exporter.sources import DirectoryData, ReadWindow, source_name
from exporter.sources.localtime import wall_to_utc, zone
from exporter.sources.files import DEFAULT_TIMEOUT_S, fetch, read_bytes
from exporter.sources.mapping import check_keys, positive

__all__ = ["read", "NameMatcher", "events_to_shifts", "load_calendar"]

_KEYS = {"type", "name", "url", "path", "schedule_id", "schedule_name", "timezone", "tier", "tiers", "role",
         "role_pattern", "name_field", "name_pattern", "match_on", "all_day_starts", "timeout_s", "department",
         "site", "escalation", "fallback_listing_id", "allow_overlaps", "unknown_names",
         "max_occurrences_per_event", "max_shifts", "url_env"}
# The whole field, trimmed: a name is never cut at a colon unless name_pattern says so.
DEFAULT_NAME_PATTERN = r"^\s*(?P<name>.+?)\s*$"
# For feeds whose SUMMARY reads "Role: Name" (documented in docs/EXPORTER.md).
AFTER_COLON_PATTERN = r"^(?:[^:]*:\s*)?(?P<name>.+?)\s*$"
MAX_FEED_BYTES = 50 * 1024 * 1024
# Occurrences of one event inside the export window, and shifts from one feed: above these the feed is
# refused, naming the event (an hourly or minutely RRULE is a mistake in an on-call feed, not a rota).
MAX_OCCURRENCES_PER_EVENT = 2_000
MAX_SHIFTS_PER_FEED = 20_000
# Occurrences the recurrence library would step through from an event's DTSTART to the end of the window
# (it always starts at DTSTART): estimated from the RRULE before anything is expanded.
MAX_RECURRENCE_STEPS = 100_000
UNKNOWN_NAMES = ("report", "create")
_TITLES = {"dr", "doctor", "md", "do", "rn", "np", "pa", "pac", "phd", "mbbs", "frcr", "prof", "mr", "mrs", "ms",
           "miss", "dnp", "crna", "cnm", "pharmd"}


def normalise_name(text: str) -> str:
    """'Dr. José  O'Brien, MD' -> 'jose obrien'; 'Smith, John' -> 'john smith'."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    if text.count(",") == 1:
        family, rest = text.split(",")
        rest_words = [w for w in re.findall(r"[a-z0-9']+", rest) if w.replace("'", "") not in _TITLES]
        if rest_words:  # "Smith, John" (and not "John Smith, MD")
            text = " ".join(rest_words) + " " + family
    words = [w.replace("'", "") for w in re.findall(r"[a-z0-9'-]+", text)]
    words = [w for w in words if w.replace("-", "") not in _TITLES and w]
    return " ".join(words)


class NameMatcher:
    """Finds the one listing a calendar name means, by the configured rules; never guesses."""

    RULES = ("display_name", "given_family", "alias", "email", "id")

    def __init__(self, listings: list[dict[str, Any]], contact_methods: list[dict[str, Any]], rules: list[str]):
        unknown = [r for r in rules if r not in self.RULES]
        if unknown:
            raise ConfigError(f"match_on: {unknown[0]!r} is not a rule; use {', '.join(self.RULES)}.")
        index: dict[str, set[str]] = defaultdict(set)
        emails: dict[str, set[str]] = defaultdict(set)
        for row in contact_methods:
            if str(row.get("kind")) == "email" and row.get("value"):
                emails[str(row["listing_id"])].add(str(row["value"]).strip().casefold())
        for row in listings:
            if str(row.get("kind", "person")) != "person":
                continue
            lid = str(row.get("id"))
            keys = set()
            if "display_name" in rules:
                keys.add(normalise_name(str(row.get("display_name") or "")))
            if "given_family" in rules and row.get("family_name"):
                given, family = str(row.get("given_name") or ""), str(row["family_name"])
                keys.add(normalise_name(f"{given} {family}"))
                if given:
                    keys.add(normalise_name(f"{given[0]} {family}"))  # "J. Smith"
            if "alias" in rules:
                aliases = row.get("aliases") or ""
                items = aliases if isinstance(aliases, list) else re.split(r"[;|]", str(aliases).strip("[]"))
                keys.update(normalise_name(str(a).strip('" ')) for a in items)
            if "email" in rules:
                keys.update(emails.get(lid, set()))
            if "id" in rules:
                keys.add(lid.casefold())
            for key in keys:
                if key:
                    index[key].add(lid)
        self.index = index

    def match(self, name: str) -> tuple[str | None, str]:
        """(listing id, '') or (None, why not)."""
        raw = name.strip()
        for key in (raw.casefold().removeprefix("mailto:"), normalise_name(raw)):
            found = self.index.get(key)
            if found and len(found) == 1:
                return next(iter(found)), ""
            if found:
                return None, f"matches {len(found)} listings ({', '.join(sorted(found)[:3])})"
        return None, "matches no listing"


def load_calendar(spec: dict[str, Any], config, where: str):
    import icalendar

    if spec.get("url_env"):  # feed URLs carry their access token: keep it out of the config file
        url = os.environ.get(str(spec["url_env"]))
        if not url:
            raise ConfigError(f"{where}: the environment variable {spec['url_env']} (url_env) is not set.")
        spec = {**{k: v for k, v in spec.items() if k != "url_env"}, "url": url}
    if "url" in spec and "path" in spec:
        raise ConfigError(f"{where}: give a url or a path, not both.")
    timeout_s = positive(spec, "timeout_s", DEFAULT_TIMEOUT_S, where)
    if "path" in spec:
        path = config.resolve(spec["path"])
        data = read_bytes(path, where=f"{where} (calendar file)", timeout_s=timeout_s,
                          max_bytes=MAX_FEED_BYTES)
        origin = str(path)
    elif "url" in spec:
        data, origin = fetch(str(spec["url"]), where=where, timeout_s=timeout_s, max_bytes=MAX_FEED_BYTES)
    else:
        raise ConfigError(f"{where}: an ical source needs a url or a path.")
    text, encoding_note = decode_feed(data, where)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:
        raise SourceError(f"{where}: {origin} is not a valid iCalendar file ({exc}).") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise SourceError(f"{where}: {origin} does not contain a VCALENDAR.")
    return calendar, origin, [encoding_note] if encoding_note else []


def decode_feed(data: bytes, where: str) -> tuple[str, str | None]:
    """The feed as text, and a note when it was not UTF-8 (as RFC 5545 requires).

    Older Windows schedulers write Windows-1252 (a superset of Latin-1's printable characters): read as
    UTF-8 with replacement, "Núñez" became "N\ufffd\ufffdez", matched no listing and the shift was dropped.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        position = exc.start
    try:
        text = data.decode("cp1252")
        legacy = "Windows-1252 (Latin-1)"
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        legacy = "Latin-1"
    line = data.count(b"\n", 0, position) + 1
    return text, (f"note: {where}: the feed is not UTF-8 (first at line {line}); it was read as {legacy}. "
                  "Ask the calendar system for UTF-8 to be sure names come through as written")


def _refuse_unknown_zones(calendar, where: str) -> None:
    """A TZID that is neither in the file's VTIMEZONEs nor an IANA name would silently float: refuse it."""
    for event in calendar.walk("VEVENT"):
        for key in ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE"):
            props = event.get(key)
            for prop in props if isinstance(props, list) else [props]:
                tzid = getattr(prop, "params", {}).get("TZID") if prop is not None else None
                if not tzid:
                    continue
                values = [d.dt for d in getattr(prop, "dts", [])] or [getattr(prop, "dt", None)]
                if any(isinstance(v, datetime) and v.tzinfo is None for v in values):
                    raise SourceError(f"{where}, event {str(event.get('SUMMARY', ''))!r}: time zone {tzid!r} is "
                                      "neither defined in the calendar (VTIMEZONE) nor an IANA time zone.")


def _instant(value: Any, tz, all_day_start: time) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return wall_to_utc(value.date(), value.time(), tz)  # floating time: the schedule's zone
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return wall_to_utc(value, all_day_start, tz)
    raise ValueError(f"{value!r} is not a date or time")


def _name_of(event, field: str) -> str:
    if field == "attendee":
        attendees = event.get("ATTENDEE")
        if attendees is None:
            return ""
        first = attendees[0] if isinstance(attendees, list) else attendees
        cn = first.params.get("CN") if hasattr(first, "params") else None
        return str(cn or first)
    return str(event.get(field.upper(), "") or "")


def name_key(name: str) -> str:
    """One spelling per name: case and spacing never make two names of one ("#TEC", "#tec ")."""
    return " ".join(name.split()).casefold()


def _label(where: str, event) -> str:
    # Feed text reaches the console and the log: escape codes, bidi overrides and newlines shown, not obeyed.
    return f"{where}, event {shown(str(event.get('SUMMARY', '') or ''))!r}"


def _end_value(event, start_value):
    """DTEND, or DTSTART + DURATION, or RFC 5545's default (one day for a date, zero for a time)."""
    if event.get("DTEND") is not None:
        return event["DTEND"].dt
    if event.get("DURATION") is not None:
        return start_value + event["DURATION"].dt
    return start_value + timedelta(days=1) if not isinstance(start_value, datetime) else start_value


_FREQ_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400,
                 # the shortest month and year: an upper bound on how many periods fit in a span
                 "MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}
_FREQ_WORDS = {"SECONDLY": "every second", "MINUTELY": "every minute", "HOURLY": "every hour",
               "DAILY": "every day", "WEEKLY": "every week", "MONTHLY": "every month", "YEARLY": "every year"}
_ORDER = list(_FREQ_SECONDS)


def recurrence_steps(rule, start: datetime, until_limit: datetime) -> tuple[int, str]:
    """An upper bound on the occurrences a recurrence library steps through from ``start`` (DTSTART, in
    UTC) to ``until_limit`` (the end of the export window), and the rule in words. Nothing is expanded:
    the bound comes from FREQ, INTERVAL, COUNT, UNTIL and the sizes of the BY… lists.
    """
    freq = str((rule.get("FREQ") or [""])[0]).upper()
    if freq not in _FREQ_SECONDS:
        raise ValueError(f"its RRULE has no valid FREQ ({freq or 'none'})")
    interval = int((rule.get("INTERVAL") or [1])[0] or 1)
    if interval < 1:
        raise ValueError(f"its RRULE has INTERVAL={interval}")
    end = until_limit
    if rule.get("UNTIL"):
        until = rule["UNTIL"][0]
        until = until if isinstance(until, datetime) else datetime.combine(until, time(23, 59, 59))
        until = until.replace(tzinfo=timezone.utc) if until.tzinfo is None else until.astimezone(timezone.utc)
        end = min(end, until + timedelta(days=1))  # a floating UNTIL may be up to a day off in UTC
    span = max((end - start).total_seconds(), 0.0)
    periods = int(span // (_FREQ_SECONDS[freq] * interval)) + 1
    rank = _ORDER.index(freq)

    def size(key: str) -> int:
        return max(len(rule.get(key) or []), 1)

    per_period = 1
    for key, finer_than in (("BYSECOND", "SECONDLY"), ("BYMINUTE", "MINUTELY"), ("BYHOUR", "HOURLY")):
        if rank > _ORDER.index(finer_than):
            per_period *= size(key)
    if freq == "WEEKLY":
        per_period *= min(size("BYDAY"), 7)
    elif freq == "MONTHLY":
        per_period *= min(size("BYMONTHDAY") if rule.get("BYMONTHDAY") else 5 * size("BYDAY"), 31)
    elif freq == "YEARLY":
        days = 1
        if rule.get("BYYEARDAY"):
            days = size("BYYEARDAY")
        elif rule.get("BYWEEKNO"):
            days = 7 * size("BYWEEKNO")
        elif rule.get("BYMONTH") or rule.get("BYMONTHDAY") or rule.get("BYDAY"):
            days = size("BYMONTH") * (size("BYMONTHDAY") if rule.get("BYMONTHDAY") else 5 * size("BYDAY"))
            if not rule.get("BYMONTH") and rule.get("BYDAY") and not rule.get("BYMONTHDAY"):
                days = 53 * size("BYDAY")
        per_period *= min(days, 366)
    steps = periods * per_period
    if rule.get("COUNT"):
        steps = min(steps, int(rule["COUNT"][0]))
    words = _FREQ_WORDS[freq] if interval == 1 else f"{_FREQ_WORDS[freq]} × {interval}"
    ends = "with COUNT" if rule.get("COUNT") else "with UNTIL" if rule.get("UNTIL") else "with no end"
    return steps, f"repeats {words} {ends}"


def screen_events(calendar, *, tz, all_day_start: time, window: ReadWindow, where: str,
                  max_steps: int = MAX_RECURRENCE_STEPS) -> None:
    """Refuse, before the recurrence library sees them, events it would mishandle or expand without end.

    * DTEND before DTSTART (or a negative DURATION): the library would swap them silently.
    * An RRULE whose occurrences from DTSTART to the end of the window exceed ``max_steps`` (FREQ=SECONDLY
      with no end, …): the library steps through every one of them, from DTSTART, keeping them in memory.
    """
    for event in calendar.walk("VEVENT"):
        label = _label(where, event)
        if event.get("DTSTART") is None:
            raise SourceError(f"{label}: it has no DTSTART.")
        start_value = event["DTSTART"].dt
        try:
            start = _instant(start_value, tz, all_day_start)
            end = _instant(_end_value(event, start_value), tz, all_day_start)
        except (ValueError, TypeError) as exc:
            raise SourceError(f"{label}: {exc}.") from None
        if end < start:
            raise SourceError(f"{label} ends before it starts (DTSTART {start_value}, ends {end:%Y-%m-%d %H:%M}Z "
                              f"= {_end_value(event, start_value)}); fix the event in the calendar system. "
                              "Nothing was published.")
        rules = event.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
            try:
                steps, words = recurrence_steps(rule, start, window.end)
            except (ValueError, TypeError) as exc:
                raise SourceError(f"{label}: {exc}; fix the event in the calendar system.") from None
            if steps > max_steps:
                raise SourceError(f"{label} {words}: about {steps:,} occurrences from its start "
                                  f"({start:%Y-%m-%d %H:%M}Z) to the end of the export window, more than the "
                                  f"{max_steps:,} the exporter expands for one event. Nothing was published; "
                                  "fix the event's RRULE (a COUNT or UNTIL, or a longer FREQ) in the calendar "
                                  "system.")


def _whole_number(spec: dict[str, Any], key: str, default: int, where: str) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {key} must be a whole number of 1 or more, not {value!r}.")
    return value


def _occurrences(calendar, window: ReadWindow, *, per_event: int, per_feed: int, where: str):
    """Each occurrence in the window as a component, lazily, with a count per event and per feed.

    Built on the recurrence library's series directly rather than ``recurring_ical_events.of``: ``of``
    re-reads floating times in the feed's X-WR-TIMEZONE, and this exporter reads them in the schedule's
    zone (one rule for every source, docs/EXPORTER.md).
    """
    import recurring_ical_events

    query = recurring_ical_events.CalendarQuery(calendar, skip_bad_series=False)
    total = 0
    for series in query.series:
        count = 0
        for occurrence in series.between(window.start, window.end):
            count += 1
            total += 1
            if count > per_event:
                component = occurrence.as_component(False)
                raise SourceError(f"{_label(where, component)} has more than {per_event:,} occurrences in the "
                                  "export window (max_occurrences_per_event); nothing was published. Fix its "
                                  "RRULE in the calendar system, or raise the limit for this source.")
            if total > per_feed:
                raise SourceError(f"{where} has more than {per_feed:,} events in the export window (max_shifts); "
                                  "nothing was published. Check the feed, or raise the limit for this source.")
            yield occurrence.as_component(False)


def events_to_shifts(calendar, *, schedule_id: str, tz_name: str, window: ReadWindow, matcher: NameMatcher,
                     spec: dict[str, Any], where: str,
                     so_far: DirectoryData | None = None) -> tuple[list[dict[str, Any]], list[str],
                                                                    list[dict[str, Any]]]:
    """Expand the calendar for the window; return (shifts, warnings and notes, listings created)."""
    tz = zone(tz_name, where)
    try:
        all_day_start = time.fromisoformat(str(spec.get("all_day_starts", "00:00")))
    except ValueError:
        raise ConfigError(f"{where}: all_day_starts {spec.get('all_day_starts')!r} is not a wall time like "
                          "07:00.") from None
    name_field = str(spec.get("name_field", "summary")).lower()
    if name_field not in ("summary", "description", "location", "attendee"):
        raise ConfigError(f"{where}: name_field must be summary, description, location or attendee.")
    try:
        name_re = re.compile(spec.get("name_pattern", DEFAULT_NAME_PATTERN))
        role_re = re.compile(spec["role_pattern"]) if spec.get("role_pattern") else None
        tier_rules = [(re.compile(p), int(t)) for p, t in dict(spec.get("tiers", {})).items()]
    except re.error as exc:
        raise ConfigError(f"{where}: a pattern is not a valid regular expression ({exc}).") from None
    if "name" not in name_re.groupindex:
        raise ConfigError(f"{where}: name_pattern needs a (?P<name>…) group.")
    unknown_names = spec.get("unknown_names", "report")
    if unknown_names not in UNKNOWN_NAMES:
        raise ConfigError(f"{where}: unknown_names must be \"report\" (leave those events out and say so) or "
                          f"\"create\" (a listing per unknown name), not {unknown_names!r}.")
    per_event = _whole_number(spec, "max_occurrences_per_event", MAX_OCCURRENCES_PER_EVENT, where)
    per_feed = _whole_number(spec, "max_shifts", MAX_SHIFTS_PER_FEED, where)
    default_tier = int(spec.get("tier", 1))
    default_role = str(spec.get("role", ""))

    _refuse_unknown_zones(calendar, where)
    screen_events(calendar, tz=tz, all_day_start=all_day_start, window=window, where=where)
    notes = []
    feed_zone = str(calendar.get("X-WR-TIMEZONE", "") or "").strip()
    if feed_zone and feed_zone != tz_name and any(
            isinstance(getattr(event.get("DTSTART"), "dt", None), datetime) and event["DTSTART"].dt.tzinfo is None
            for event in calendar.walk("VEVENT")):
        feed_zone = shown(feed_zone)
        notes.append(f"note: {where}: the feed's floating times were read in the schedule's zone {tz_name}, "
                     f"not in the feed's X-WR-TIMEZONE {feed_zone}; set timezone = \"{feed_zone}\" on this "
                     "source if the feed means its own zone")

    shifts, unmatched = [], {}
    zero_length: list[str] = []
    created: dict[str, dict[str, Any]] = {}
    try:
        for event in _occurrences(calendar, window, per_event=per_event, per_feed=per_feed, where=where):
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            summary = str(event.get("SUMMARY", "") or "")
            label = _label(where, event)
            start_value = event["DTSTART"].dt
            try:
                start = _instant(start_value, tz, all_day_start)
                end = _instant(_end_value(event, start_value), tz, all_day_start)
            except ValueError as exc:
                raise SourceError(f"{label}: {exc}.") from None
            if end <= start:
                zero_length.append(summary)  # a marker ("handover at 08:00"), not a shift: counted below
                continue
            text = _name_of(event, name_field)
            found = name_re.search(text)
            name = " ".join((found.group("name") if found else text).split())
            listing_id, why = matcher.match(name) if name else (None, "has no name")
            if listing_id is None and name and unknown_names == "create" and why == "matches no listing":
                key = name_key(name)
                if key not in created:
                    created[key] = _listing_for(name, schedule_id, spec, so_far)
                listing_id = created[key]["id"]
            if listing_id is None:
                entry = unmatched.setdefault(name_key(name), [name, why, []])
                entry[2].append(start)
                continue
            tier = next((t for pattern, t in tier_rules if pattern.search(summary)), default_tier)
            role = default_role
            if role_re and (m := role_re.search(summary)) and "role" in role_re.groupindex and m.group("role"):
                role = m.group("role").strip()
            shifts.append({"schedule_id": schedule_id, "tier": tier, "role": role, "listing_id": listing_id,
                           "start_utc": format_utc(start), "end_utc": format_utc(end),
                           "notes": str(event.get("DESCRIPTION", "") or "")[:500]
                           if name_field != "description" else ""})
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{where}: the calendar's events cannot be expanded ({type(exc).__name__}: {exc}).") \
            from None
    warnings = []
    for name, why, starts in sorted(unmatched.values(), key=lambda item: min(item[2])):
        first = min(starts).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        warnings.append(f"unmatched: {where}: {shown(name)!r} {why} ({len(starts)} events, first {first}); those "
                        "shifts were left out")
    if zero_length:
        examples = ", ".join(repr(shown(s)) for s in list(dict.fromkeys(zero_length))[:3])
        notes.append(f"note: {where}: left out {len(zero_length)} zero-length events (they end when they start: "
                     f"markers, not shifts), e.g. {examples}")
    if created:
        names = ", ".join(repr(shown(r["display_name"])) for r in list(created.values())[:3])
        notes.append(f"note: {where}: created {len(created)} listings for calendar names that are not in the "
                     f"directory (unknown_names = \"create\"), e.g. {names}")
    shifts.sort(key=lambda s: (s["tier"], s["start_utc"]))
    return shifts, warnings + notes, list(created.values())


def _listing_for(name: str, schedule_id: str, spec: dict[str, Any], so_far: DirectoryData | None) -> dict[str, Any]:
    """A listing for a calendar name the directory does not have (unknown_names = "create")."""
    slug = re.sub(r"[^a-z0-9]+", "-", normalise_name(name) or name_key(name)).strip("-") or "unnamed"
    department = str(spec.get("department") or "")
    if so_far is not None and not department:
        schedule = next((r for r in so_far.schedules if str(r.get("id")) == schedule_id), None)
        department = str((schedule or {}).get("department") or "")
    return {"id": f"calendar:{schedule_id}:{slug}", "kind": "person", "display_name": name,
            "department": department, "title": "on call (from the calendar; not in the directory)"}


def read(spec: dict[str, Any], config, window: ReadWindow, so_far: DirectoryData) -> DirectoryData:
    name = source_name(spec)
    where = f"Source {name!r}"
    check_keys(spec, _KEYS, f"{config.path} source {name!r}")
    if not spec.get("schedule_id"):
        raise ConfigError(f"{where}: an ical source needs the schedule_id its events belong to.")
    schedule_id = str(spec["schedule_id"])
    data = so_far.part()
    existing = next((s for s in so_far.schedules if str(s.get("id")) == schedule_id), None)
    if existing is None:
        if not spec.get("schedule_name") or not spec.get("timezone"):
            raise ConfigError(f"{where}: schedule {schedule_id!r} is not defined by another source; give "
                              "schedule_name and timezone so this feed defines it.")
        zone(str(spec["timezone"]), where)
        data.schedules.append({"id": schedule_id, "name": spec["schedule_name"], "timezone": spec["timezone"],
                               "department": spec.get("department", ""), "site": spec.get("site", ""),
                               "escalation": spec.get("escalation", ""),
                               "fallback_listing_id": spec.get("fallback_listing_id", "")})
        tz_name = str(spec["timezone"])
    else:
        tz_name = str(spec.get("timezone") or existing.get("timezone"))
    try:
        matcher = NameMatcher(so_far.listings, so_far.contact_methods,
                              list(spec.get("match_on", ["display_name", "given_family", "alias", "email"])))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    calendar, origin, notes = load_calendar(spec, config, where)
    shifts, warnings, created = events_to_shifts(calendar, schedule_id=schedule_id, tz_name=tz_name,
                                                 window=window, matcher=matcher, spec=spec, where=where,
                                                 so_far=so_far)
    if created:  # a name another feed of this schedule already created is the same listing
        new = so_far.missing_listings([r["id"] for r in created])
        data.listings.extend(r for r in created if r["id"] in new)
    data.shifts.extend(shifts)
    data.warnings.extend(notes + warnings)
    data.descriptions.append(f"{name} (iCalendar)")
    return data
