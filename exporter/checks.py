"""Checks that run before anything is published: a suspicious export must never replace what desktops have.

Each check returns a ``CheckResult`` naming the rows concerned (the first few, and how many in all):

* ``no_listings``      — the sources gave no listings at all (a source table emptied or a bad query)
* ``drop``             — listings or contact methods fell by more than ``max_drop_percent`` (default 10)
                         against the last published snapshot
* ``references``       — contact methods, shifts or schedules pointing at listings or schedules that do
                         not exist
* ``overlaps``         — two shifts of one schedule at the same tier overlapping in time (a warning
                         instead when both come from sources with ``allow_overlaps = true``)
* ``coverage``         — a schedule with nobody on call (at the covered tiers) at some moment of the
                         next ``coverage_days`` days
* ``unmatched_names``  — calendar events whose name matched no listing (a warning, never refusing)

A failed check refuses the export unless overridden (``--force`` or ``[checks] force = true``), and the
override is logged with the rows it let through. This module must never publish, and never change the
data it checks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backup_operator.core.model import parse_utc
from backup_operator.errors import ValidationError

from exporter.sources import OVERLAPS_ALLOWED, DirectoryData

__all__ = ["CheckResult", "CheckReport", "run_checks", "SHOWN_ROWS", "explain_validation", "remedy"]

SHOWN_ROWS = 20  # rows listed per check; the count says how many there were in all


@dataclass
class CheckResult:
    name: str
    ok: bool
    message: str
    rows: list[str] = field(default_factory=list)
    total_rows: int = 0
    refuses: bool = True  # False for warnings: reported, never blocking

    def describe(self) -> str:
        lines = [f"{'ok  ' if self.ok else ('FAIL' if self.refuses else 'WARN')} {self.name}: {self.message}"]
        lines += [f"       - {row}" for row in self.rows]
        if self.total_rows > len(self.rows):
            lines.append(f"       … and {self.total_rows - len(self.rows)} more")
        return "\n".join(lines)


@dataclass
class CheckReport:
    results: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok and r.refuses]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok and not r.refuses]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        return "; ".join(r.message for r in self.failures)

    def describe(self) -> str:
        return "\n".join(r.describe() for r in self.results)


def _result(name: str, problems: list[str], ok_message: str, fail_message: str, *,
            refuses: bool = True) -> CheckResult:
    if not problems:
        return CheckResult(name, True, ok_message, refuses=refuses)
    return CheckResult(name, False, fail_message, problems[:SHOWN_ROWS], len(problems), refuses=refuses)


def check_no_listings(data: DirectoryData) -> CheckResult:
    n = len(data.listings)
    if n:
        return CheckResult("no_listings", True, f"{n} listings")
    return CheckResult("no_listings", False, "the sources gave 0 listings (an empty directory would leave "
                       "operators with nothing)", ["listings: 0 rows from every source"], 1)


def check_drop(data: DirectoryData, baseline: dict[str, int] | None, max_drop_percent: float) -> CheckResult:
    if not baseline:
        return CheckResult("drop", True, "no earlier snapshot to compare with (first export)")
    problems, notes = [], []
    for table, key in (("listings", "listings"), ("contact methods", "contact_methods")):
        before = int(baseline.get(key, 0))
        after = len(data.table(key))
        if before <= 0:
            continue
        drop = 100.0 * (before - after) / before
        notes.append(f"{table} {before} → {after}")
        if drop > max_drop_percent:
            problems.append(f"{table} fell from {before} to {after} (-{drop:.1f}%, the limit is "
                            f"{max_drop_percent:g}%)")
    if problems:
        return CheckResult("drop", False, "; ".join(problems), problems, len(problems))
    return CheckResult("drop", True, ", ".join(notes) or "nothing to compare")


def check_references(data: DirectoryData) -> CheckResult:
    conn = data.builder.conn
    # Contact methods are checked where they are, in SQL: millions of rows, usually not one of them bad.
    bad = conn.execute("SELECT rowid, kind, value, listing_id FROM contact_methods "
                       "WHERE listing_id NOT IN (SELECT id FROM listings) ORDER BY rowid").fetchall()
    positions = data.builder.positions("contact_methods", [r[0] for r in bad[:SHOWN_ROWS]])
    shown = [f"contact method {n} ({kind} {value}): listing {listing!r} does not exist"
             for n, (_, kind, value, listing) in zip(positions, bad)]
    total = len(bad)
    schedule_ids = {str(r.get("id")) for r in data.schedules}
    named = [str(r.get("fallback_listing_id")) for r in data.schedules
             if r.get("fallback_listing_id") not in (None, "")]
    named += [str(r.get("listing_id")) for r in data.shifts]
    missing = data.missing_listings(named)
    problems = []
    for row in data.schedules:
        fallback = row.get("fallback_listing_id")
        if fallback not in (None, "") and str(fallback) in missing:
            problems.append(f"on-call schedule {row.get('id')!r}: fallback listing {fallback!r} does not "
                            "exist")
    for n, row in enumerate(data.shifts, 1):
        if str(row.get("schedule_id")) not in schedule_ids:
            problems.append(f"shift {n} ({row.get('start_utc')}): schedule {row.get('schedule_id')!r} "
                            "does not exist")
        if str(row.get("listing_id")) in missing:
            problems.append(f"shift {n} of {row.get('schedule_id')!r} ({row.get('start_utc')}): listing "
                            f"{row.get('listing_id')!r} does not exist")
    total += len(problems)
    ok = "every reference points at an existing listing and schedule"
    if not total:
        return CheckResult("references", True, ok)
    return CheckResult("references", False, f"{total} references point at listings or schedules that do not "
                       "exist", (shown + problems)[:SHOWN_ROWS], total)


def _spans(data: DirectoryData) -> dict[tuple[str, int], list[tuple[datetime, datetime, dict]]]:
    spans: dict[tuple[str, int], list[tuple[datetime, datetime, dict]]] = defaultdict(list)
    parsed: dict[str, datetime] = {}  # a shift's end is usually the next one's start: parse each once

    def instant(text: str) -> datetime:
        moment = parsed.get(text)
        if moment is None:
            moment = parsed[text] = parse_utc(text)
        return moment

    for row in data.shifts:
        try:
            start, end = instant(str(row.get("start_utc"))), instant(str(row.get("end_utc")))
            tier = int(row.get("tier") or 1)
        except (TypeError, ValueError):
            continue  # the model's validation names malformed rows
        if end > start:
            spans[(str(row.get("schedule_id")), tier)].append((start, end, row))
    for items in spans.values():
        items.sort(key=lambda item: (item[0], item[1]))
    return spans


def _zone(schedule: dict[str, Any] | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(str((schedule or {}).get("timezone") or ""))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local(moment: datetime, tz: ZoneInfo | None) -> str:
    if tz is None:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")


def _overlaps(data: DirectoryData, spans) -> tuple[list[str], list[str]]:
    """(overlaps that refuse, overlaps between shifts whose sources allow them)."""
    schedules = {str(s.get("id")): s for s in data.schedules}
    problems, allowed = [], []
    for (schedule_id, tier), items in sorted(spans.items()):
        tz = _zone(schedules.get(schedule_id))
        latest_end, latest_row = None, None
        for start, end, row in items:
            if latest_end is not None and start < latest_end:
                text = (f"{schedule_id} tier {tier}: {latest_row.get('listing_id')} until "
                        f"{_local(latest_end, tz)} overlaps {row.get('listing_id')} from {_local(start, tz)}")
                both_allowed = row.get(OVERLAPS_ALLOWED) and latest_row.get(OVERLAPS_ALLOWED)
                (allowed if both_allowed else problems).append(text)
            if latest_end is None or end > latest_end:
                latest_end, latest_row = end, row
    return problems, allowed


def check_overlaps(data: DirectoryData, spans=None) -> CheckResult:
    spans = spans if spans is not None else _spans(data)
    problems, _ = _overlaps(data, spans)
    return _result("overlaps", problems, "no overlapping shifts at the same tier",
                   f"{len(problems)} shifts overlap another at the same tier")


def check_allowed_overlaps(data: DirectoryData, spans=None) -> CheckResult:
    """Overlaps between shifts of sources with allow_overlaps = true: said, never refusing."""
    spans = spans if spans is not None else _spans(data)
    _, allowed = _overlaps(data, spans)
    return _result("allowed_overlaps", allowed, "no overlaps in sources that allow them",
                   f"{len(allowed)} shifts overlap another at the same tier (allowed by their source's "
                   "allow_overlaps)", refuses=False)


def check_coverage(data: DirectoryData, now: datetime, days: int, tiers: list[int], exempt: list[str],
                   spans=None) -> CheckResult:
    spans = spans if spans is not None else _spans(data)
    horizon = now + timedelta(days=days)
    problems = []
    for schedule in data.schedules:
        schedule_id = str(schedule.get("id"))
        if schedule_id in exempt:
            continue
        tz = _zone(schedule)
        for tier in tiers:
            cursor = now
            for start, end, _ in spans.get((schedule_id, tier), []):
                if end <= cursor:
                    continue
                if start >= horizon:
                    break
                if start > cursor:
                    problems.append(f"{schedule_id} tier {tier}: nobody on call from {_local(cursor, tz)} "
                                    f"to {_local(start, tz)}")
                cursor = max(cursor, end)
                if cursor >= horizon:
                    break
            if cursor >= horizon:
                continue
            if cursor > now:
                problems.append(f"{schedule_id} tier {tier}: nobody on call from {_local(cursor, tz)} "
                                f"to the end of the {days} days checked")
            else:
                problems.append(f"{schedule_id} tier {tier}: nobody on call in the next {days} days")
    return _result("coverage", problems, f"every schedule is covered for the next {days} days",
                   f"{len(problems)} on-call coverage gaps in the next {days} days")


def check_unmatched(data: DirectoryData) -> CheckResult:
    unmatched = [w for w in data.warnings if w.startswith("unmatched:")]
    rows = [w.removeprefix("unmatched:").strip() for w in unmatched]
    return _result("unmatched_names", rows, "every calendar name matched a listing",
                   f"{len(rows)} calendar names matched no listing (those shifts were left out)",
                   refuses=False)


def run_checks(data: DirectoryData, *, now: datetime, baseline: dict[str, int] | None, settings) -> CheckReport:
    """All checks, in the order an operator would care about; ``settings`` is the config's [checks]."""
    if not data.listings:
        # Everything else is noise when the directory is empty.
        return CheckReport([check_no_listings(data)])
    spans = _spans(data)
    return CheckReport([
        check_no_listings(data),
        check_drop(data, baseline, settings.max_drop_percent),
        check_references(data),
        check_overlaps(data, spans),
        check_allowed_overlaps(data, spans),
        check_coverage(data, now, settings.coverage_days, settings.coverage_tiers,
                       settings.coverage_exempt, spans),
        check_unmatched(data),
    ])


# What to do about each kind of problem the model's validation finds (backup_operator.core.model.validate),
# matched on its wording; the first match wins.
_REMEDIES = (
    ("value is empty", "filter NULL or empty numbers out in the query (e.g. WHERE number <> ''), or set "
                       "[checks] empty_contacts = \"skip\" to leave them out with a count"),
    ("names no listing", "the row names a listing that is not in the directory: fix the source, or publish "
                         "with run --force, which drops such rows and counts them"),
    ("names no on-call schedule", "add the schedule to a source listed before the shifts, or publish with run "
                                  "--force, which drops shifts of unknown schedules and counts them"),
    ("the id is used twice", "ids must be unique: look for a JOIN that repeats rows, or two sources giving "
                             "the same id"),
    ("the id is empty", "every row needs an id: filter rows without one out in the query"),
    ("display_name is empty", "give every listing a name, e.g. with a template in the mapping: "
                              "templates = { display_name = \"{given_name} {family_name}\" }"),
    ("name is empty", "give every on-call schedule a name"),
    ("is not one of", "recode the source's values in the mapping, e.g. [sources.mapping.contact_methods.values"
                      ".kind] \"CELL\" = \"mobile\""),
    ("is not an IANA time zone", "use an IANA zone name like America/Chicago (not CST or a UTC offset)"),
    ("is not a whole number", "give a whole number (rank 0 or more, tier 1 or more), or leave it empty for "
                              "the default"),
    ("is not after start_utc", "every shift must end after it starts: look for swapped columns or "
                               "zero-length rows"),
)


def remedy(problem: str) -> str:
    for needle, advice in _REMEDIES:
        if needle in problem:
            return advice
    return "fix the source rows named above"


def explain_validation(exc: ValidationError) -> ValidationError:
    """The model's refusal with what to do about it; ``problems`` keeps every row."""
    problems = list(exc.problems)
    first = problems[0] if problems else str(exc)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    advice = []
    for problem in problems:
        tip = remedy(problem)
        if tip not in advice:
            advice.append(tip)
    return ValidationError(f"The directory data is not valid, so nothing was built or published: {first}{more}. "
                           f"What to do: {'; '.join(advice[:3])}.", problems)
