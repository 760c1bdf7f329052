"""Fixtures for the search and on-call tests: one small, hand-made hospital directory.

The directory is built once per session (``directory_db``, the database bytes) and every test opens its
own in-memory copy (``directory``). ``search_index`` is built once over its own read-only copy: the index
is read-only after opening, so sharing it cannot leak state between tests.

The on-call schedules cover the nights the clocks change in 2026. Their shifts are written here as UTC
instants worked out by hand (not by the code under test), with the local wall time in a comment.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backup_operator.core.model import build_database, open_database
from backup_operator.core.search import SearchIndex

NOW = datetime(2026, 3, 25, 12, 0, tzinfo=timezone.utc)


def _person(lid, family, given, *, title="", dept="", site="Riverside Hospital", middle="", display=None,
            aliases=(), building="", floor="", room=""):
    return {"id": lid, "kind": "person", "display_name": display or f"{family}, {given}", "family_name": family,
            "given_name": given, "middle_name": middle, "title": title, "department": dept, "site": site,
            "aliases": list(aliases), "building": building, "floor": floor, "room": room}


def _place(lid, kind, name, *, dept="", site="Riverside Hospital", aliases=(), building="", floor="", room="",
           keywords=()):
    return {"id": lid, "kind": kind, "display_name": name, "department": dept, "site": site,
            "aliases": list(aliases), "keywords": list(keywords), "building": building, "floor": floor,
            "room": room}


LISTINGS = [
    _person("p-jsmith", "Smith", "John", title="Attending Physician", dept="Cardiology"),
    _person("p-jasmith", "Smith", "Jane", title="Registered Nurse", dept="Oncology"),
    _person("p-josmith", "Smith", "Joseph", title="Unit Clerk", dept="Radiology"),
    _person("p-jsmithson", "Smithson", "Jonathan", title="Resident", dept="General Surgery"),
    _person("p-jsmyth", "Smyth", "Joan", title="Radiologic Technologist", dept="Radiology"),
    _person("p-jjones", "Jones", "John", title="Pharmacist", dept="Pharmacy"),
    _person("p-mjohnson", "Johnson", "Mary", title="Charge Nurse", dept="Emergency Department"),
    _person("p-sjohnston", "Johnston", "Sarah", title="Social Worker", dept="Social Work"),
    _person("p-obrien", "O'Brien", "Siobhán", title="Consultant", dept="Pediatrics",
            display="Dr Siobhán O'Brien"),
    _person("p-rbrown", "Brown", "Robert", title="Security Officer", dept="Security", aliases=["Bob"]),
    _person("p-nguyen", "Nguyen", "Thi Minh", title="Nurse Practitioner", dept="Neonatal Intensive Care Unit",
            middle="A"),
    _person("p-muller", "Müller", "Jürgen", title="Anesthetist", dept="Anesthesiology", display="Jürgen Müller"),
    _person("p-jsmithjones", "Smith-Jones", "Alice", title="Midwife", dept="Labor & Delivery"),
    _person("p-patel", "Patel", "Priya", title="Respiratory Therapist", dept="Respiratory Therapy",
            site="Lakeview Medical Center"),
    _person("p-cardoso", "Cardoso", "Ines", title="Dietitian", dept="Nutrition Services"),
    _place("d-card", "department", "Cardiology", dept="Cardiology", aliases=["Heart Center"]),
    _place("d-ed", "department", "Emergency Department", dept="Emergency Department"),
    _place("d-peds", "department", "Pediatrics", dept="Pediatrics"),
    _place("d-nicu", "department", "Neonatal Intensive Care Unit", dept="Neonatal Intensive Care Unit"),
    _place("d-rad", "department", "Radiology", dept="Radiology"),
    _place("d-onc", "department", "Oncology", dept="Oncology"),
    _place("d-pharm", "department", "Pharmacy", dept="Pharmacy"),
    _place("l-mri", "location", "MRI Suite", dept="Radiology", building="North Tower", floor="2", room="2B-110",
           keywords=["magnet", "scanner"]),
    _place("s-switch", "service", "Switchboard"),
    _place("s-lakeview-ed", "department", "Emergency Department", dept="Emergency Department",
           site="Lakeview Medical Center"),
]

CONTACTS = [
    ("p-jsmith", "extension", "4471"), ("p-jsmith", "phone", "608-555-4471"), ("p-jsmith", "pager", "30412"),
    ("p-jasmith", "extension", "4472"), ("p-josmith", "extension", "2044"), ("p-jsmithson", "extension", "2045"),
    ("p-jsmyth", "extension", "2046"), ("p-jjones", "extension", "3100"),
    ("p-mjohnson", "extension", "2210"), ("p-mjohnson", "mobile", "07700 900123"),
    ("p-mjohnson", "email", "mary.johnson@example.org"),
    ("p-sjohnston", "extension", "2211"), ("p-obrien", "extension", "5120"), ("p-rbrown", "extension", "6000"),
    ("p-nguyen", "extension", "5300"), ("p-muller", "extension", "5400"), ("p-jsmithjones", "extension", "5500"),
    ("p-patel", "phone", "+1 (414) 555-0199"), ("p-cardoso", "extension", "5600"),
    ("d-card", "extension", "4000"), ("d-card", "phone", "608-555-4000"),
    ("d-ed", "extension", "5000"), ("d-ed", "phone", "608-555-5000"),
    ("d-peds", "extension", "5100"), ("d-nicu", "extension", "5200"), ("d-rad", "extension", "4100"),
    ("d-onc", "extension", "4200"), ("d-pharm", "extension", "4300"), ("l-mri", "extension", "4110"),
    ("s-switch", "extension", "0"), ("s-switch", "phone", "608-555-1000"),
    ("s-lakeview-ed", "phone", "414-555-9000"),
]

SCHEDULES = [
    {"id": "card-att", "name": "Cardiology — attending", "department": "Cardiology", "site": "Riverside Hospital",
     "timezone": "America/Chicago", "fallback_listing_id": "d-card", "escalation": "Page the attending twice."},
    {"id": "london-ed", "name": "Emergency Department — registrar", "department": "Emergency Department",
     "site": "St Thomas'", "timezone": "Europe/London", "fallback_listing_id": "d-ed"},
    {"id": "ny-peds", "name": "Pediatrics — resident", "department": "Pediatrics", "site": "Riverside Hospital",
     "timezone": "America/New_York", "fallback_listing_id": "d-peds"},
    {"id": "empty-onc", "name": "Oncology — fellow", "department": "Oncology", "timezone": "America/Chicago",
     "fallback_listing_id": "d-onc"},
]


def _shift(schedule, who, start, end, tier=1, role="primary"):
    return {"schedule_id": schedule, "listing_id": who, "start_utc": start, "end_utc": end, "tier": tier,
            "role": role}


SHIFTS = [
    # card-att (America/Chicago, CDT = UTC-5 in late March): a plain day and night
    _shift("card-att", "p-jsmith", "2026-03-25T13:00:00Z", "2026-03-26T01:00:00Z"),     # 08:00-20:00 CDT
    _shift("card-att", "p-jjones", "2026-03-26T01:00:00Z", "2026-03-26T13:00:00Z"),     # 20:00-08:00 CDT
    _shift("card-att", "p-mjohnson", "2026-03-25T13:00:00Z", "2026-03-26T13:00:00Z", tier=2, role="backup"),
    # london-ed, fall-back night 2026-10-24/25 (BST = UTC+1 until 02:00 BST, then GMT)
    _shift("london-ed", "p-jasmith", "2026-10-24T05:00:00Z", "2026-10-24T17:00:00Z"),   # Sat 06:00-18:00 BST
    _shift("london-ed", "p-jsmith", "2026-10-24T17:00:00Z", "2026-10-25T06:00:00Z"),    # Sat 18:00 BST-Sun 06:00 GMT
    _shift("london-ed", "p-jjones", "2026-10-25T06:00:00Z", "2026-10-25T18:00:00Z"),    # Sun 06:00-18:00 GMT
    # london-ed, spring-forward night 2026-03-28/29 (GMT until 01:00 GMT, then BST)
    _shift("london-ed", "p-jasmith", "2026-03-28T06:00:00Z", "2026-03-28T18:00:00Z"),   # Sat 06:00-18:00 GMT
    _shift("london-ed", "p-jsmith", "2026-03-28T18:00:00Z", "2026-03-29T05:00:00Z"),    # Sat 18:00 GMT-Sun 06:00 BST
    _shift("london-ed", "p-jjones", "2026-03-29T05:00:00Z", "2026-03-29T17:00:00Z"),    # Sun 06:00-18:00 BST
    # ny-peds, fall-back night 2026-10-31/11-01 (EDT = UTC-4 until 02:00 EDT, then EST = UTC-5)
    _shift("ny-peds", "p-obrien", "2026-10-31T10:00:00Z", "2026-10-31T22:00:00Z"),      # Sat 06:00-18:00 EDT
    _shift("ny-peds", "p-jsmithson", "2026-10-31T22:00:00Z", "2026-11-01T11:00:00Z"),   # Sat 18:00 EDT-Sun 06:00 EST
    _shift("ny-peds", "p-obrien", "2026-11-01T11:00:00Z", "2026-11-01T23:00:00Z"),      # Sun 06:00-18:00 EST
    # ny-peds, spring-forward night 2026-03-07/08 (EST until 02:00 EST, then EDT)
    _shift("ny-peds", "p-obrien", "2026-03-07T11:00:00Z", "2026-03-07T23:00:00Z"),      # Sat 06:00-18:00 EST
    _shift("ny-peds", "p-jsmithson", "2026-03-07T23:00:00Z", "2026-03-08T10:00:00Z"),   # Sat 18:00 EST-Sun 06:00 EDT
    _shift("ny-peds", "p-obrien", "2026-03-08T10:00:00Z", "2026-03-08T22:00:00Z"),      # Sun 06:00-18:00 EDT
]


def build_directory(listings=LISTINGS, contacts=CONTACTS, schedules=SCHEDULES, shifts=SHIFTS) -> bytes:
    return build_database(
        listings=listings,
        contact_methods=[{"listing_id": lid, "kind": kind, "value": value, "rank": n}
                         for n, (lid, kind, value) in enumerate(contacts, 1)],
        schedules=schedules, shifts=shifts, snapshot_version=1, created_at=NOW,
        expires_at=NOW + timedelta(days=2), expected_interval_s=3600, source="tests/core/conftest.py")


@pytest.fixture(scope="session")
def directory_records():
    """The records the template is built from, and a builder for variants of it."""
    return {"listings": LISTINGS, "contacts": CONTACTS, "schedules": SCHEDULES, "shifts": SHIFTS,
            "build": build_directory}


@pytest.fixture(scope="session")
def directory_db() -> bytes:
    """The template directory's database bytes, built once."""
    return build_directory()


@pytest.fixture
def directory(directory_db):
    """A private in-memory copy of the template directory."""
    conn = open_database(directory_db)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def search_index(directory_db):
    conn = open_database(directory_db)
    yield SearchIndex.build(conn)
    conn.close()
