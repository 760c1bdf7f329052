"""A small, realistic sample hospital for the UI tests and the screenshots (not the demo data set).

``records(first_day)`` returns the keyword arguments of ``core.model.build_database`` (without the
meta fields): about thirty listings, their contact methods, four on-call schedules and two weeks of
shifts starting on ``first_day`` (a local date), written as UTC instants from local wall times so that
the weeks around a DST change come out right.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZONE = "America/New_York"

PEOPLE = [
    # id, given, family, title, department, contacts [(kind, value, label, instructions)]
    ("p-hart", "Amelia", "Hart", "Attending cardiologist", "Cardiology",
     [("pager", "4471", "Pager", "Page, then wait 5 minutes before trying the mobile"),
      ("mobile", "608-555-0147", "Mobile", "Text only while in the cath lab"),
      ("extension", "4402", "Office", "")]),
    ("p-smith", "John", "Smith", "Cardiology fellow", "Cardiology",
     [("pager", "4475", "Pager", ""), ("mobile", "608-555-0175", "Mobile", "")]),
    ("p-raman", "Priya", "Raman", "Attending cardiologist", "Cardiology",
     [("pager", "4473", "Pager", ""), ("mobile", "608-555-0173", "Mobile", "Calls after 22:00 only if urgent")]),
    ("p-oconnor", "Liam", "O'Connor", "Attending cardiologist", "Cardiology",
     [("pager", "4478", "Pager", ""), ("extension", "4408", "Office", "")]),
    ("p-alvarez", "Sofia", "Alvarez", "Emergency physician", "Emergency Department",
     [("voip", "7102", "Spectralink phone", "Carries it on shift"), ("mobile", "608-555-0712", "Mobile", "")]),
    ("p-becker", "Hannah", "Becker", "Emergency physician", "Emergency Department",
     [("voip", "7104", "Spectralink phone", ""), ("mobile", "608-555-0714", "Mobile", "")]),
    ("p-watanabe", "Kenji", "Watanabe", "Emergency physician", "Emergency Department",
     [("voip", "7106", "Spectralink phone", ""), ("pager", "7116", "Pager", "")]),
    ("p-alsayed", "Mohammed", "Al-Sayed", "Clinical pharmacist", "Pharmacy",
     [("mobile", "608-555-0301", "On-call mobile", "Leave a voicemail if no answer"),
      ("email", "m.alsayed@stmarys.example", "Email", "Not for urgent requests")]),
    ("p-kim", "Grace", "Kim", "Clinical pharmacist", "Pharmacy",
     [("mobile", "608-555-0302", "On-call mobile", "")]),
    ("p-brown", "Olivia", "Brown", "Interventional radiologist", "Radiology",
     [("pager", "5521", "Pager", ""), ("mobile", "608-555-0521", "Mobile", "")]),
    ("p-nguyen", "Minh", "Nguyen", "Charge nurse", "Intensive Care Unit",
     [("extension", "6100", "Nurses' station", "Ask for the charge nurse")]),
    ("p-johnson", "Emily", "Johnson", "Nurse manager", "Intensive Care Unit",
     [("extension", "6104", "Office", ""), ("mobile", "608-555-0610", "Mobile", "")]),
    ("p-smithson", "Johanna", "Smithson", "Switchboard supervisor", "Switchboard",
     [("extension", "1000", "Desk", ""), ("mobile", "608-555-0100", "Mobile", "")]),
    ("p-mueller", "Lukas", "Müller", "Anaesthetist", "Anaesthesia",
     [("pager", "3302", "Pager", ""), ("mobile", "608-555-0332", "Mobile", "")]),
    ("p-obrien", "Siobhan", "O'Brien", "Security lead", "Security",
     [("phone", "608-555-0999", "Direct", ""), ("overhead", "Code Grey", "Overhead page", "Only for an incident")]),
]

DEPARTMENTS = [
    ("d-cardio", "Cardiology", "Cardiology department line",
     [("extension", "4400", "Reception", "Staffed 07:00–19:00; after hours it rings the ward"),
      ("phone", "608-555-4400", "From outside", "")]),
    ("d-ed", "Emergency Department", "Emergency Department",
     [("extension", "7100", "Charge desk", ""), ("phone", "608-555-7100", "From outside", "")]),
    ("d-pharmacy", "Pharmacy", "Pharmacy",
     [("extension", "3000", "Dispensary", "Open 08:00–20:00"), ("fax", "608-555-3009", "Fax", "")]),
    ("d-radiology", "Radiology", "Radiology reception",
     [("extension", "5500", "Reception", ""), ("phone", "608-555-5500", "From outside", "")]),
    ("d-icu", "Intensive Care Unit", "Intensive Care Unit",
     [("extension", "6100", "Nurses' station", "")]),
    ("d-security", "Security", "Security control room",
     [("extension", "2222", "Control room", "24/7"), ("phone", "608-555-2222", "From outside", "")]),
]

LOCATIONS = [
    ("l-cathlab", "location", "Cardiac catheterisation lab", "Cardiology", "Main building, floor 2, room 214",
     [("extension", "4420", "Control room", "")]),
    ("l-helipad", "location", "Helipad", "Emergency Department", "Roof, tower B",
     [("voip", "7190", "Helipad phone", "")]),
    ("s-interp", "service", "Interpreter service", "Patient services", "",
     [("phone", "608-555-8800", "Phone line", "Say the language first"), ("extension", "8800", "", "")]),
    # A service whose first method is said over the speakers, not dialled: Enter copies 5555.
    ("s-codeblue", "service", "Code Blue team", "Patient safety", "",
     [("overhead", "Code Blue", "Overhead page", "Say \"Code Blue\" and the location, twice"),
      ("extension", "5555", "Activation line", "")]),
]


def _contacts(listing_id: str, methods) -> list[dict]:
    return [{"listing_id": listing_id, "kind": kind, "value": value, "label": label, "rank": n,
             "instructions": instructions} for n, (kind, value, label, instructions) in enumerate(methods, 1)]


def _utc(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(ZONE)).astimezone(UTC)


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def records(first_day: date, days: int = 14) -> dict:
    listings, contacts = [], []
    for lid, given, family, title, dept, methods in PEOPLE:
        listings.append({"id": lid, "kind": "person", "display_name": f"{given} {family}", "given_name": given,
                         "family_name": family, "title": title, "department": dept, "site": "St Mary's"})
        contacts += _contacts(lid, methods)
    for lid, dept, name, methods in DEPARTMENTS:
        listings.append({"id": lid, "kind": "department", "display_name": name, "department": dept,
                         "site": "St Mary's", "aliases": ["Cardio"] if dept == "Cardiology" else []})
        contacts += _contacts(lid, methods)
    for lid, kind, name, dept, where, methods in LOCATIONS:
        listings.append({"id": lid, "kind": kind, "display_name": name, "department": dept, "site": "St Mary's",
                         "building": where})
        contacts += _contacts(lid, methods)

    schedules = [
        {"id": "cardio-attending", "name": "Cardiology — attending", "department": "Cardiology",
         "site": "St Mary's", "timezone": ZONE, "fallback_listing_id": "d-cardio",
         "escalation": "Page the primary; if no answer in 10 minutes page the backup; then call the "
                       "department line."},
        {"id": "ed-physician", "name": "Emergency — physician in charge", "department": "Emergency Department",
         "site": "St Mary's", "timezone": ZONE, "fallback_listing_id": "d-ed",
         "escalation": "Call the Spectralink phone; the charge desk always knows who is in charge."},
        {"id": "pharmacy", "name": "Pharmacy — on-call pharmacist", "department": "Pharmacy",
         "site": "St Mary's", "timezone": ZONE, "fallback_listing_id": "d-pharmacy",
         "escalation": "Call the on-call mobile; leave a voicemail and call again after 5 minutes."},
        {"id": "ir", "name": "Radiology — interventional", "department": "Radiology", "site": "St Mary's",
         "timezone": ZONE, "fallback_listing_id": "d-radiology",
         "escalation": "Weekdays only; at weekends call radiology reception."},
    ]
    shifts = []

    def shift(schedule, tier, role, who, start, end):
        shifts.append({"schedule_id": schedule, "tier": tier, "role": role, "listing_id": who,
                       "start_utc": _fmt(start), "end_utc": _fmt(end)})

    attendings = ["p-hart", "p-raman", "p-oconnor"]
    ed = ["p-alvarez", "p-becker", "p-watanabe"]
    for n in range(days):
        day = first_day + timedelta(days=n)
        nxt = day + timedelta(days=1)
        # Cardiology: day 08–20 and night 20–08 (local), a backup for each.
        shift("cardio-attending", 1, "Primary", attendings[n % 3], _utc(day, 8), _utc(day, 20))
        shift("cardio-attending", 1, "Primary", attendings[(n + 1) % 3], _utc(day, 20), _utc(nxt, 8))
        shift("cardio-attending", 2, "Backup", "p-smith", _utc(day, 8), _utc(nxt, 8))
        # ED: three 8-hour shifts a day, 07–15, 15–23, 23–07.
        shift("ed-physician", 1, "Physician in charge", ed[n % 3], _utc(day, 7), _utc(day, 15))
        shift("ed-physician", 1, "Physician in charge", ed[(n + 1) % 3], _utc(day, 15), _utc(day, 23))
        shift("ed-physician", 1, "Physician in charge", ed[(n + 2) % 3], _utc(day, 23), _utc(nxt, 7))
        # Pharmacy: 24 h from 08:00.
        shift("pharmacy", 1, "On-call pharmacist", ["p-alsayed", "p-kim"][n % 2], _utc(day, 8), _utc(nxt, 8))
        # Interventional radiology: weekdays 08–18 only, so nights and weekends fall back.
        if day.weekday() < 5:
            shift("ir", 1, "Interventional radiologist", "p-brown", _utc(day, 8), _utc(day, 18))
    return {"listings": listings, "contact_methods": contacts, "schedules": schedules, "shifts": shifts}
