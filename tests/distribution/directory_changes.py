"""Random hospital directories and random change sets between two exports, for the delta tests and bench.

A change set does what a day at a hospital does to its directory, at random: people join and leave,
numbers change, contact methods are added and reordered, departments are renamed, on-call shifts are
swapped, a schedule is added or dropped. Every change set is reproducible from its seed.
"""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta, timezone

from backup_operator.core.model import build_database

START = datetime(2026, 3, 7, 12, 0, tzinfo=timezone.utc)
DEPARTMENTS = ["Cardiology", "Radiology", "Oncology", "Pediatrics", "Emergency", "Neurology", "Pharmacy"]
GIVEN = ["Amelia", "Jonas", "Priya", "Chen", "Fatima", "Oskar", "Léa", "Mateo", "Ngozi", "Søren"]
FAMILY = ["Hart", "Okafor", "Novák", "Zhang", "García", "O'Brien", "Kowalski", "Nguyen", "Müller"]
KINDS = ["extension", "phone", "mobile", "pager", "email"]


def _listing(rng: random.Random, ident: str) -> dict:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    return {"id": ident, "kind": rng.choice(["person"] * 8 + ["department", "service"]),
            "display_name": f"{given} {family}", "given_name": given, "family_name": family,
            "title": rng.choice(["Attending", "Fellow", "Nurse", "Clerk", ""]),
            "department": rng.choice(DEPARTMENTS), "site": rng.choice(["Main", "North"]),
            "room": str(rng.randrange(100, 999)), "aliases": rng.sample(["Dr X", "Doc", "Chief"], rng.randrange(3)),
            "notes": rng.choice(["", "Mornings only", "Text first", "Ünïcödé “quotes” \\ and \"this\""])}


def _contact(rng: random.Random, listing_id: str, rank: int) -> dict:
    kind = rng.choice(KINDS)
    value = f"{listing_id}@example.org" if kind == "email" else f"608-555-{rng.randrange(10000):04d}"
    return {"listing_id": listing_id, "kind": kind, "value": value, "rank": rank,
            "label": rng.choice(["", "Office", "Ward"]), "instructions": rng.choice(["", "Text only"])}


def _shift(rng: random.Random, schedule_id: str, listing_id: str, day: int, tier: int) -> dict:
    start = START + timedelta(days=day, hours=rng.choice([0, 7, 19]))
    return {"schedule_id": schedule_id, "tier": tier, "role": "Attending" if tier == 1 else "Backup",
            "listing_id": listing_id, "start_utc": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_utc": (start + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def directory(seed: int, listings: int = 120) -> dict:
    """A random directory: listings, 0-4 contact methods each, a few schedules with shifts."""
    rng = random.Random(seed)
    records = {"listings": [], "contact_methods": [], "schedules": [], "shifts": []}
    for n in range(listings):
        ident = f"L{rng.randrange(10**6):06d}-{n}"
        records["listings"].append(_listing(rng, ident))
        for rank in range(rng.randrange(5)):
            records["contact_methods"].append(_contact(rng, ident, rank + 1))
    ids = [row["id"] for row in records["listings"]]
    for s in range(4):
        sid = f"S{s}"
        records["schedules"].append({"id": sid, "name": f"{DEPARTMENTS[s]} — attending",
                                     "department": DEPARTMENTS[s], "timezone": "America/New_York",
                                     "fallback_listing_id": rng.choice(ids)})
        for day in range(5):
            for tier in (1, 2):
                records["shifts"].append(_shift(rng, sid, rng.choice(ids), day, tier))
    return records


def change(records: dict, seed: int, changes: int | None = None) -> dict:
    """A copy of ``records`` with a random set of changes, as a day of edits at the source would make."""
    rng = random.Random(seed)
    out = copy.deepcopy(records)
    listings, contacts, shifts, schedules = (out[k] for k in ("listings", "contact_methods", "shifts",
                                                              "schedules"))
    for _ in range(rng.randrange(1, 12) if changes is None else changes):
        what = rng.randrange(12)
        if what == 0 and listings:  # someone joins, somewhere in the source's order
            ident = f"N{rng.randrange(10**9):09d}"
            listings.insert(rng.randrange(len(listings) + 1), _listing(rng, ident))
            for rank in range(rng.randrange(4)):
                contacts.insert(rng.randrange(len(contacts) + 1), _contact(rng, ident, rank + 1))
        elif what == 1 and len(listings) > 10:  # someone leaves (with their numbers and shifts)
            used = {s["fallback_listing_id"] for s in schedules}
            gone = rng.choice([row for row in listings if row["id"] not in used] or listings)
            if gone["id"] in used:
                continue
            listings.remove(gone)
            contacts[:] = [c for c in contacts if c["listing_id"] != gone["id"]]
            shifts[:] = [s for s in shifts if s["listing_id"] != gone["id"]]
        elif what in (2, 3) and listings:  # a title, a room, a name changes
            row = rng.choice(listings)
            field = rng.choice(["title", "room", "display_name", "department", "notes"])
            row[field] = f"{row.get(field) or ''} {rng.randrange(100)}".strip()
        elif what in (4, 5) and contacts:  # a number changes
            rng.choice(contacts)["value"] = f"608-555-{rng.randrange(10000):04d}"
        elif what == 6 and listings:  # a contact method is added
            contacts.insert(rng.randrange(len(contacts) + 1), _contact(rng, rng.choice(listings)["id"], 9))
        elif what == 7 and contacts:  # one is removed
            contacts.pop(rng.randrange(len(contacts)))
        elif what == 8 and len(contacts) > 2:  # two swap places (reordered at the source)
            i, j = rng.sample(range(len(contacts)), 2)
            contacts[i], contacts[j] = contacts[j], contacts[i]
        elif what == 9 and shifts and listings:  # a shift is swapped to someone else
            rng.choice(shifts)["listing_id"] = rng.choice(listings)["id"]
        elif what == 10 and listings:  # a schedule is added with shifts, or one is dropped
            if rng.random() < 0.5 or len(schedules) < 2:
                sid = f"S-new-{rng.randrange(10**6)}"
                schedules.append({"id": sid, "name": "Night float", "department": "Emergency",
                                  "timezone": "Europe/London", "fallback_listing_id": rng.choice(listings)["id"]})
                for day in range(3):
                    shifts.append(_shift(rng, sid, rng.choice(listings)["id"], day, 1))
            else:
                dropped = schedules.pop(rng.randrange(len(schedules)))
                shifts[:] = [s for s in shifts if s["schedule_id"] != dropped["id"]]
        elif what == 11 and shifts:  # the rota moves on: old shifts fall off, new ones appear
            shifts.pop(rng.randrange(len(shifts)))
            sid = rng.choice(schedules)["id"]
            shifts.append(_shift(rng, sid, rng.choice(listings)["id"], rng.randrange(7), rng.choice([1, 2])))
    return out


def build(records: dict, version: int) -> bytes:
    created = START + timedelta(minutes=15 * version)
    return build_database(listings=records["listings"], contact_methods=records["contact_methods"],
                          schedules=records["schedules"], shifts=records["shifts"], snapshot_version=version,
                          created_at=created, expires_at=created + timedelta(days=3),
                          expected_interval_s=900, source="random test directory")
