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

from exporter.sources import DirectoryData

__all__ = ["tidy", "drop_broken_references", "EMPTY_CONTACTS"]

EMPTY_CONTACTS = ("skip", "refuse")
_EXAMPLES = 3


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:_EXAMPLES])
    return shown + (", …" if len(items) > _EXAMPLES else "")


def tidy(data: DirectoryData, settings) -> list[str]:
    """Skip contact methods with an empty value (unless the config says to refuse them)."""
    if getattr(settings, "empty_contacts", "skip") != "skip":
        return []
    # In SQL where the rows are (values are stored stripped, so a blank one is '').
    conn = data.builder.conn
    skipped = [f"listing {listing!r} {kind or 'contact'}" for listing, kind in conn.execute(
        "SELECT listing_id, kind FROM contact_methods WHERE value = '' ORDER BY rowid LIMIT ?",
        (_EXAMPLES + 1,))]
    if not skipped:
        return []
    count = conn.execute("DELETE FROM contact_methods WHERE value = ''").rowcount
    return [f"skipped {count} contact methods with an empty value ({_examples(skipped)}); set "
            "[checks] empty_contacts = \"refuse\" to refuse such an export instead"]


def drop_broken_references(data: DirectoryData) -> list[str]:
    """Under an override: drop rows that name listings or schedules that are not in the directory."""
    schedule_ids = {str(r.get("id")) for r in data.schedules}
    changes = []

    conn = data.builder.conn
    orphans = "FROM contact_methods WHERE listing_id NOT IN (SELECT id FROM listings)"
    names = [listing for (listing,) in
             conn.execute(f"SELECT DISTINCT listing_id {orphans} ORDER BY listing_id")]
    if names:
        dropped = conn.execute(f"DELETE {orphans}").rowcount
        changes.append(f"dropped {dropped} contact methods of {len(names)} listings that are no longer "
                       f"in the directory ({_examples(names)})")

    missing = data.missing_listings([str(r.get("listing_id")) for r in data.shifts] +
                                    [str(r.get("fallback_listing_id")) for r in data.schedules
                                     if r.get("fallback_listing_id") not in (None, "")])
    kept, gone_people, gone_schedules = [], [], []
    for row in data.shifts:
        if str(row.get("schedule_id")) not in schedule_ids:
            gone_schedules.append(row)
        elif str(row.get("listing_id")) in missing:
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
        if fallback not in (None, "") and str(fallback) in missing:
            cleared.append(f"{row.get('id')!r} ({fallback!r})")
            row["fallback_listing_id"] = ""
    if cleared:
        changes.append(f"cleared the fallback of {len(cleared)} on-call schedules whose fallback listing is no "
                       f"longer in the directory ({_examples(cleared)})")
    return changes
