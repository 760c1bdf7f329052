"""The only changes an export makes to the data it read, each one counted and reported.

* ``tidy`` (every run): contact methods whose value is empty (a NULL pager or mobile column) are
  skipped, because a blank number helps no operator; ``[checks] empty_contacts = "refuse"`` makes
  them refuse the export instead (the model's validation then names them).
* ``drop_broken_references`` (only when failed checks are overridden, ``run --force``): after a purge
  of the directory, shifts and contact methods that still name removed listings, and shifts of removed
  schedules, are dropped; schedule fallbacks naming a removed listing are cleared. A dropped shift
  leaves a gap that the desktop shows as such, with the schedule's fallback line; it never shows a
  person who is no longer in the directory.

Each function returns one sentence per kind of change, with the count and a few examples, for the
log, the run summary and the run history. This module must never change anything silently, and never
touch a row that is valid.
"""

from __future__ import annotations

from typing import Any

from exporter.sources import DirectoryData

__all__ = ["tidy", "drop_broken_references", "EMPTY_CONTACTS"]

EMPTY_CONTACTS = ("skip", "refuse")
_EXAMPLES = 3


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:_EXAMPLES])
    return shown + (", …" if len(items) > _EXAMPLES else "")


def tidy(data: DirectoryData, settings) -> list[str]:
    """Skip contact methods with an empty value (unless the config says to refuse them)."""
    if getattr(settings, "empty_contacts", "skip") != "skip":
        return []
    kept, skipped = [], []
    for row in data.contact_methods:
        if _blank(row.get("value")):
            skipped.append(f"listing {row.get('listing_id')!r} {row.get('kind') or 'contact'}")
        else:
            kept.append(row)
    if not skipped:
        return []
    data.contact_methods[:] = kept
    return [f"skipped {len(skipped)} contact methods with an empty value ({_examples(skipped)}); set "
            "[checks] empty_contacts = \"refuse\" to refuse such an export instead"]


def drop_broken_references(data: DirectoryData) -> list[str]:
    """Under an override: drop rows that name listings or schedules that are not in the directory."""
    listing_ids = {str(r.get("id")) for r in data.listings}
    schedule_ids = {str(r.get("id")) for r in data.schedules}
    changes = []

    kept, dropped = [], []
    for row in data.contact_methods:
        (kept if str(row.get("listing_id")) in listing_ids else dropped).append(row)
    if dropped:
        data.contact_methods[:] = kept
        names = sorted({str(r.get("listing_id")) for r in dropped})
        changes.append(f"dropped {len(dropped)} contact methods of {len(names)} listings that are no longer "
                       f"in the directory ({_examples(names)})")

    kept, gone_people, gone_schedules = [], [], []
    for row in data.shifts:
        if str(row.get("schedule_id")) not in schedule_ids:
            gone_schedules.append(row)
        elif str(row.get("listing_id")) not in listing_ids:
            gone_people.append(row)
        else:
            kept.append(row)
    if gone_people or gone_schedules:
        data.shifts[:] = kept
    if gone_people:
        names = sorted({str(r.get("listing_id")) for r in gone_people})
        changes.append(f"dropped {len(gone_people)} shifts of {len(names)} people who are no longer in the "
                       f"directory ({_examples(names)}); desktops show those hours as a gap, with the "
                       "schedule's fallback line")
    if gone_schedules:
        names = sorted({str(r.get("schedule_id")) for r in gone_schedules})
        changes.append(f"dropped {len(gone_schedules)} shifts of {len(names)} on-call schedules that do not "
                       f"exist ({_examples(names)})")

    cleared = []
    for row in data.schedules:
        fallback = row.get("fallback_listing_id")
        if fallback not in (None, "") and str(fallback) not in listing_ids:
            cleared.append(f"{row.get('id')!r} ({fallback!r})")
            row["fallback_listing_id"] = ""
    if cleared:
        changes.append(f"cleared the fallback of {len(cleared)} on-call schedules whose fallback listing is no "
                       f"longer in the directory ({_examples(cleared)})")
    return changes
