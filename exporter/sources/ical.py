r"""iCalendar on-call feeds (the export of Amion, QGenda, PagerDuty and similar) turned into shifts.

One ``[[sources]]`` entry per feed::

    type = "ical"
    name = "Amion cardiology"
    url = "https://amion.example/cardiology.ics"   # http(s)://, webcal:// or file://; or path = "feeds/x.ics"
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

import re
import unicodedata
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from backup_operator.core.model import format_utc
from backup_operator.errors import ConfigError

from backup_operator.errors import SourceError
from exporter.sources import DirectoryData, ReadWindow, source_name
from exporter.sources.localtime import wall_to_utc, zone
from exporter.sources.files import DEFAULT_TIMEOUT_S, fetch, read_bytes
from exporter.sources.mapping import check_keys, positive

__all__ = ["read", "NameMatcher", "events_to_shifts", "load_calendar"]

_KEYS = {"type", "name", "url", "path", "schedule_id", "schedule_name", "timezone", "tier", "tiers", "role",
         "role_pattern", "name_field", "name_pattern", "match_on", "all_day_starts", "timeout_s", "department",
         "site", "escalation", "fallback_listing_id"}
DEFAULT_NAME_PATTERN = r"^(?:[^:]*:\s*)?(?P<name>.+?)\s*$"
MAX_FEED_BYTES = 50 * 1024 * 1024
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
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as exc:
        raise SourceError(f"{where}: {origin} is not a valid iCalendar file ({exc}).") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise SourceError(f"{where}: {origin} does not contain a VCALENDAR.")
    return calendar, origin


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


def events_to_shifts(calendar, *, schedule_id: str, tz_name: str, window: ReadWindow, matcher: NameMatcher,
                     spec: dict[str, Any], where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Expand the calendar for the window; return (shifts, unmatched-name warnings)."""
    import recurring_ical_events

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
    default_tier = int(spec.get("tier", 1))
    default_role = str(spec.get("role", ""))

    _refuse_unknown_zones(calendar, where)
    try:
        events = recurring_ical_events.of(calendar, skip_bad_series=False).between(window.start, window.end)
    except Exception as exc:
        raise SourceError(f"{where}: the calendar's events cannot be expanded ({type(exc).__name__}: {exc}).") \
            from None
    shifts, unmatched = [], defaultdict(list)
    for event in events:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        summary = str(event.get("SUMMARY", "") or "")
        label = f"{where}, event {summary!r}"
        start_prop = event.get("DTSTART")
        if start_prop is None:
            raise SourceError(f"{label}: it has no DTSTART.")
        start_value = start_prop.dt
        end_prop = event.get("DTEND")
        if end_prop is not None:
            end_value = end_prop.dt
        elif event.get("DURATION") is not None:
            end_value = start_value + event["DURATION"].dt
        else:
            end_value = start_value + timedelta(days=1) if not isinstance(start_value, datetime) else start_value
        try:
            start = _instant(start_value, tz, all_day_start)
            end = _instant(end_value, tz, all_day_start)
        except ValueError as exc:
            raise SourceError(f"{label}: {exc}.") from None
        if end <= start:
            continue  # a zero-length marker ("handover at 08:00"), not a shift
        text = _name_of(event, name_field)
        found = name_re.search(text)
        name = (found.group("name") if found else text).strip()
        listing_id, why = matcher.match(name) if name else (None, "has no name")
        if listing_id is None:
            unmatched[(name, why)].append(start)
            continue
        tier = next((t for pattern, t in tier_rules if pattern.search(summary)), default_tier)
        role = default_role
        if role_re and (m := role_re.search(summary)) and "role" in role_re.groupindex and m.group("role"):
            role = m.group("role").strip()
        shifts.append({"schedule_id": schedule_id, "tier": tier, "role": role, "listing_id": listing_id,
                       "start_utc": format_utc(start), "end_utc": format_utc(end),
                       "notes": str(event.get("DESCRIPTION", "") or "")[:500] if name_field != "description" else ""})
    warnings = []
    for (name, why), starts in sorted(unmatched.items(), key=lambda item: min(item[1])):
        first = min(starts).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        warnings.append(f"unmatched: {where}: {name!r} {why} ({len(starts)} events, first {first}); those "
                        "shifts were left out")
    shifts.sort(key=lambda s: (s["tier"], s["start_utc"]))
    return shifts, warnings


def read(spec: dict[str, Any], config, window: ReadWindow, so_far: DirectoryData) -> DirectoryData:
    name = source_name(spec)
    where = f"Source {name!r}"
    check_keys(spec, _KEYS, f"{config.path} source {name!r}")
    if not spec.get("schedule_id"):
        raise ConfigError(f"{where}: an ical source needs the schedule_id its events belong to.")
    schedule_id = str(spec["schedule_id"])
    data = DirectoryData()
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
    calendar, origin = load_calendar(spec, config, where)
    shifts, warnings = events_to_shifts(calendar, schedule_id=schedule_id, tz_name=tz_name, window=window,
                                        matcher=matcher, spec=spec, where=where)
    data.shifts.extend(shifts)
    data.warnings.extend(warnings)
    data.descriptions.append(f"{name} (iCalendar)")
    return data
