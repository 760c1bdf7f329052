#!/usr/bin/env python3
"""Generate the demo hospital (Lakeshore Regional Health) that ``backup-operator-export demo`` exports.

Run from anywhere: ``python3 resources/demo/generate.py``. The output is fixed by the seed, so running
it again gives byte-identical files; both this script and its output are committed.

Writes, next to this script:

* ``listings.csv``        people, departments, locations and services (model columns)
* ``contact_methods.csv`` extensions, direct lines, mobiles, pagers, email, fax, overhead pages
* ``schedules.csv``       ~50 on-call schedules with their IANA time zones
* ``rotas.json``          who rotates through each schedule's tiers 1 and 2, in local wall time; the
                          exporter expands them into UTC shifts around the day it runs
                          (exporter/sources/rota.py), so the demo is "on call now" on any date.

All names are invented; phone numbers use the 555 exchange. This script must never read the network
or the clock: the same seed must give the same hospital.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20260315
PEOPLE = 2600
UPDATED_AT = "2026-01-15T09:00:00Z"
EMAIL_DOMAIN = "lakeshore-health.example"

SITES = {
    "main": {"site": "Lakeshore Main Campus", "tz": "America/Chicago", "area": "608",
             "buildings": ["Tower A", "Tower B", "Pavilion", "Heart Center", "Children's Wing"]},
    "north": {"site": "Northside Clinic", "tz": "America/Chicago", "area": "608",
              "buildings": ["Clinic Building", "Surgery Center"]},
    "harbor": {"site": "Harborview Heart & Vascular (Boston)", "tz": "America/New_York", "area": "617",
               "buildings": ["Harborview Main", "Research Annex"]},
}

# (department, site key, on-call tiers pattern, schedule role label, staff weight)
DEPARTMENTS = [
    ("Cardiology", "main", "day-night", "Cardiology fellow", 5),
    ("Cardiothoracic Surgery", "main", "weekly", "CT surgeon", 3),
    ("Emergency Medicine", "main", "day-night", "ED attending", 8),
    ("Hospital Medicine", "main", "day-night", "Hospitalist", 8),
    ("Internal Medicine", "main", "day-night", "Medicine resident", 6),
    ("Pediatrics", "main", "day-night", "Pediatrics resident", 5),
    ("Neonatal Intensive Care", "main", "day-night", "NICU attending", 4),
    ("Obstetrics and Gynecology", "main", "day-night", "OB attending", 5),
    ("Labor and Delivery", "main", "day-night", "L&D charge nurse", 4),
    ("Anesthesiology", "main", "day-night", "Anesthesiologist", 6),
    ("General Surgery", "main", "day-night", "Surgery resident", 6),
    ("Trauma Surgery", "main", "daily", "Trauma surgeon", 4),
    ("Orthopedic Surgery", "main", "weekly", "Orthopedics", 4),
    ("Neurology", "main", "day-night", "Neurology resident", 4),
    ("Neurosurgery", "main", "weekly", "Neurosurgeon", 3),
    ("Oncology", "main", "weekly", "Oncologist", 4),
    ("Hematology", "main", "weekly", "Hematologist", 3),
    ("Radiology", "main", "day-night", "Radiologist", 5),
    ("Interventional Radiology", "main", "weekly", "IR attending", 3),
    ("Pathology", "main", "weekly", "Pathologist", 3),
    ("Clinical Laboratory", "main", "day-night", "Lab supervisor", 4),
    ("Blood Bank", "main", "daily", "Blood bank MD", 2),
    ("Pharmacy", "main", "day-night", "Pharmacist", 5),
    ("Psychiatry", "main", "daily", "Psychiatry resident", 4),
    ("Nephrology", "main", "weekly", "Nephrologist", 3),
    ("Dialysis Unit", "main", "daily", "Dialysis nurse", 3),
    ("Pulmonology", "main", "weekly", "Pulmonologist", 3),
    ("Critical Care", "main", "day-night", "Intensivist", 6),
    ("Gastroenterology", "main", "weekly", "GI attending", 3),
    ("Infectious Diseases", "main", "weekly", "ID attending", 2),
    ("Urology", "main", "weekly", "Urologist", 2),
    ("Otolaryngology", "main", "weekly", "ENT attending", 2),
    ("Ophthalmology", "north", "weekly", "Ophthalmologist", 2),
    ("Dermatology", "north", "weekly", "Dermatologist", 2),
    ("Endocrinology", "north", "weekly", "Endocrinologist", 2),
    ("Plastic Surgery", "north", "weekly", "Plastic surgeon", 2),
    ("Respiratory Therapy", "main", "day-night", "Respiratory therapist", 4),
    ("Social Work", "main", "daily", "Social worker", 3),
    ("Case Management", "main", "daily", "Case manager", 3),
    ("Chaplaincy", "main", "daily", "Chaplain", 1),
    ("Security", "main", "day-night", "Security supervisor", 4),
    ("Facilities Engineering", "main", "daily", "Engineer", 3),
    ("IT Service Desk", "main", "daily", "IT on call", 3),
    ("Nursing Administration", "main", "day-night", "House supervisor", 3),
    ("Bed Management", "main", "day-night", "Bed coordinator", 2),
    ("Interventional Cardiology", "harbor", "weekly", "Cath lab attending", 3),
    ("Electrophysiology", "harbor", "weekly", "EP attending", 2),
    ("Vascular Surgery", "harbor", "weekly", "Vascular surgeon", 2),
    ("Cardiac Intensive Care", "harbor", "day-night", "CICU attending", 3),
]
# Remote services read from London overnight (US evening/night = UK morning).
REMOTE = [
    ("Teleradiology Overnight Reads", "Europe/London", "NightWatch Teleradiology, London", "Teleradiologist"),
    ("Remote ECG Reading", "Europe/London", "NightWatch Teleradiology, London", "ECG reader"),
]

GIVEN = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan
Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark
Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda
Brian Melissa George Deborah Timothy Stephanie Ronald Dorothy Jason Rebecca Edward Sharon Jeffrey Laura Ryan
Cynthia Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Brenda Stephen Emma Larry Anna Justin
Pamela Scott Nicole Brandon Samantha Benjamin Katherine Samuel Christine Gregory Helen Alexander Debra
Patrick Rachel Frank Carolyn Raymond Janet Jack Maria Dennis Olivia Jerry Heather Tyler Diane Aaron Julie
Jose Joyce Adam Victoria Nathan Ruth Henry Virginia Zachary Lauren Douglas Kelly Peter Christina Kyle Joan
Noah Evelyn Ethan Judith Jeremy Andrea Christian Hannah Walter Megan Keith Cheryl Austin Jacqueline Roger
Martha Terry Madison Sean Teresa Gerald Gloria Carl Sara Dylan Janice Harold Ann Jordan Kathryn Jesse Abigail
Bryan Sophia Lawrence Frances Arthur Jean Gabriel Alice Bruce Judy Logan Isabella Billy Julia Joe Grace Alan
Amber Juan Denise Elijah Danielle Willie Marilyn Albert Beverly Wayne Charlotte Randy Natalie Mason Theresa
Vincent Diana Liam Brittany Roy Doris Bobby Kayla Caleb Alexis Bradley Lori Russell Marie Priya Wei Aisha
Mohammed Fatima Hiroshi Yuki Mei Arjun Ananya Chen Olga Dmitri Ingrid Lars Siobhan Declan Kwame Amara
Chidi Ngozi Mateo Camila Santiago Valentina Diego Lucia Rahul Deepa Tariq Leila Omar Yasmin Seo-yeon Min-jun
Thanh Linh Bogdan Agnieszka Ewa Tomasz Giulia Marco Francesca Luca Nkechi Emeka Aroha Tane Ximena Joaquin""".split()

FAMILY = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox
Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes
Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace
Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall
Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman
Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes
Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson
Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen
Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado
Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval
Okafor Adeyemi Mensah Nakamura Tanaka Sato Suzuki Yamamoto Singh Sharma Gupta Iyer Reddy Khan Hussain Ahmed
Ali Rahman Cohen Levi Friedman Novak Kowalski Nowak Wisniewski Petrov Ivanova Sokolov Larsen Nilsen Lindqvist
O'Brien O'Connor McCarthy Gallagher Byrne Quinn Nguyen-Tran Pham Le Vu Dang Park Choi Jung Kang Yoon Rossi
Russo Ferrari Esposito Bianchi Romano Colombo Moretti Schneider Fischer Weber Becker Schulz Dubois Lefevre
Moreau Laurent Girard Haddad Nasser Saleh Mbeki Dlamini Nkosi Achebe Eze Ngata Te_Rangi Kaur Chowdhury
St._John Van_der_Berg De_la_Cruz Al-Sayed Hall-Jones""".split()
FAMILY = [name.replace("_", " ") for name in FAMILY]  # "_" joins two-word family names above

NICKNAMES = {"Robert": "Bob", "William": "Bill", "Richard": "Rick", "Elizabeth": "Liz", "Margaret": "Maggie",
             "Katherine": "Kate", "Jennifer": "Jen", "Michael": "Mike", "Christopher": "Chris",
             "Matthew": "Matt", "Anthony": "Tony", "Joseph": "Joe", "Thomas": "Tom", "Daniel": "Dan",
             "Benjamin": "Ben", "Samuel": "Sam", "Alexander": "Alex", "Nicholas": "Nick", "Patricia": "Pat",
             "Deborah": "Deb", "Jonathan": "Jon", "Stephanie": "Steph", "Rebecca": "Becky", "Jacqueline": "Jackie",
             "Victoria": "Vicky", "Kimberly": "Kim", "Gregory": "Greg", "Timothy": "Tim", "Zachary": "Zach",
             "Abigail": "Abby", "Samantha": "Sam", "Christina": "Tina", "Kathleen": "Kathy", "Edward": "Ed"}

# (title, credential suffix, weight, is_clinician_on_call)
TITLES = [
    ("Attending Physician", "MD", 14, True),
    ("Resident Physician (PGY-1)", "MD", 5, True),
    ("Resident Physician (PGY-2)", "MD", 5, True),
    ("Resident Physician (PGY-3)", "DO", 4, True),
    ("Fellow", "MD", 4, True),
    ("Nurse Practitioner", "NP", 6, True),
    ("Physician Assistant", "PA-C", 4, True),
    ("Registered Nurse", "RN", 24, False),
    ("Charge Nurse", "RN", 6, True),
    ("Nurse Manager", "RN", 2, False),
    ("Clinical Pharmacist", "PharmD", 2, False),
    ("Respiratory Therapist", "RRT", 2, False),
    ("Medical Technologist", "MLS", 2, False),
    ("Unit Clerk", "", 5, False),
    ("Patient Care Technician", "", 5, False),
    ("Social Worker", "LCSW", 1, False),
    ("Administrative Assistant", "", 3, False),
    ("Department Chair", "MD", 1, False),
]

# Departments whose people are not physicians and nurses: their own titles (same tuple layout).
SUPPORT_TITLES = {
    "Security": [("Security Officer", "", 8, False), ("Security Supervisor", "", 2, True)],
    "Facilities Engineering": [("Facilities Engineer", "", 5, True), ("Electrician", "", 2, False),
                               ("HVAC Technician", "", 2, False), ("Facilities Manager", "", 1, True)],
    "IT Service Desk": [("Service Desk Analyst", "", 5, True), ("Systems Engineer", "", 2, True),
                        ("Network Engineer", "", 2, False), ("IT Manager", "", 1, True)],
    "Social Work": [("Social Worker", "LCSW", 6, True), ("Social Work Manager", "LCSW", 1, True)],
    "Case Management": [("Case Manager", "RN", 5, True), ("Utilization Review Nurse", "RN", 2, False),
                        ("Case Management Supervisor", "RN", 1, True)],
    "Chaplaincy": [("Chaplain", "", 4, True), ("Director of Spiritual Care", "", 1, True)],
    "Bed Management": [("Bed Coordinator", "", 4, True), ("Patient Flow Manager", "RN", 1, True)],
    "Nursing Administration": [("House Supervisor", "RN", 4, True), ("Director of Nursing", "RN", 1, True),
                               ("Nurse Manager", "RN", 2, True)],
    "Pharmacy": [("Clinical Pharmacist", "PharmD", 5, True), ("Pharmacy Technician", "CPhT", 4, False),
                 ("Pharmacy Manager", "PharmD", 1, True)],
    "Clinical Laboratory": [("Medical Technologist", "MLS", 5, True), ("Phlebotomist", "", 3, False),
                            ("Lab Supervisor", "MLS", 1, True)],
    "Blood Bank": [("Blood Bank Technologist", "MLS", 4, True), ("Blood Bank Medical Director", "MD", 1, True)],
    "Respiratory Therapy": [("Respiratory Therapist", "RRT", 6, True), ("RT Supervisor", "RRT", 1, True)],
    "Dialysis Unit": [("Dialysis Nurse", "RN", 5, True), ("Dialysis Technician", "", 3, False),
                      ("Charge Nurse", "RN", 1, True), ("Attending Physician", "MD", 1, True)],
    "Labor and Delivery": [("Registered Nurse", "RN", 8, False), ("Charge Nurse", "RN", 2, True),
                           ("Certified Nurse Midwife", "CNM", 2, True), ("Attending Physician", "MD", 2, True),
                           ("Unit Clerk", "", 1, False)],
}
SENIOR_WORDS = ("Attending", "Chair", "Fellow", "Supervisor", "Manager", "Director", "Charge Nurse")

LOCATIONS = [
    ("Main Lobby Information Desk", "main", "Tower A", "1", "1001"),
    ("Emergency Department Triage", "main", "Tower A", "1", "1120"),
    ("Emergency Department Nurses' Station", "main", "Tower A", "1", "1140"),
    ("Operating Room Front Desk", "main", "Tower B", "2", "2010"),
    ("Post-Anesthesia Care Unit (PACU)", "main", "Tower B", "2", "2100"),
    ("4 West Medical-Surgical Nurses' Station", "main", "Tower A", "4", "4W01"),
    ("4 East Medical-Surgical Nurses' Station", "main", "Tower A", "4", "4E01"),
    ("5 West Oncology Nurses' Station", "main", "Tower A", "5", "5W01"),
    ("6 North Cardiac Step-Down", "main", "Heart Center", "6", "6N01"),
    ("Medical ICU Nurses' Station", "main", "Tower B", "3", "3100"),
    ("Surgical ICU Nurses' Station", "main", "Tower B", "3", "3200"),
    ("Neonatal ICU Front Desk", "main", "Children's Wing", "3", "C310"),
    ("Labor and Delivery Front Desk", "main", "Pavilion", "2", "P201"),
    ("Mother-Baby Unit", "main", "Pavilion", "3", "P301"),
    ("Pediatrics Unit Nurses' Station", "main", "Children's Wing", "4", "C401"),
    ("Cardiac Catheterization Lab", "main", "Heart Center", "2", "H210"),
    ("Interventional Radiology Suite", "main", "Tower B", "1", "B150"),
    ("CT Scanner Control Room", "main", "Tower B", "1", "B120"),
    ("MRI Control Room", "main", "Tower B", "B", "B010"),
    ("Central Pharmacy Window", "main", "Tower A", "B", "A050"),
    ("Core Laboratory Reception", "main", "Tower A", "B", "A070"),
    ("Blood Bank Window", "main", "Tower A", "B", "A075"),
    ("Dialysis Unit Front Desk", "main", "Pavilion", "1", "P110"),
    ("Security Dispatch Office", "main", "Tower A", "1", "1015"),
    ("Loading Dock", "main", "Tower B", "B", "B001"),
    ("Helipad Operations", "main", "Tower B", "Roof", "R001"),
    ("Northside Clinic Front Desk", "north", "Clinic Building", "1", "101"),
    ("Northside Surgery Center Desk", "north", "Surgery Center", "1", "110"),
    ("Harborview Cath Lab Control", "harbor", "Harborview Main", "2", "220"),
    ("Harborview CICU Nurses' Station", "harbor", "Harborview Main", "4", "410"),
]

SERVICES = [
    ("Code Blue Team", "Adult cardiac arrest response", "overhead", "Overhead page \"Code Blue\" + location, "
     "then call ext 5555", ["cardiac arrest", "resuscitation"]),
    ("Rapid Response Team", "Deteriorating patient outside ICU", "pager", "Page with callback number and room",
     ["RRT", "MET"]),
    ("Stroke Alert", "Acute stroke team activation", "pager", "Group page; neurology calls back within 5 min",
     ["code stroke", "tPA"]),
    ("STEMI Alert", "Cath lab activation for STEMI", "pager", "Group page; ED physician only may activate",
     ["heart attack", "cath lab"]),
    ("Trauma Activation", "Level 1 trauma team", "overhead", "Overhead \"Trauma Alert\" + ETA, then page",
     ["trauma alert"]),
    ("Pediatric Code Team", "Pediatric cardiac arrest", "overhead", "Overhead \"Code Pink\" + location",
     ["code pink"]),
    ("Security Dispatch", "Security emergencies and escorts", "extension", "24/7; say 'urgent' for emergencies",
     ["police", "escort"]),
    ("Interpreter Services", "Spoken and sign language interpreters", "extension",
     "Video interpreter carts in every unit; phone line 24/7", ["translation", "ASL"]),
    ("Patient Transport", "Wheelchair and stretcher transport", "extension", "Request online first if possible",
     ["porter", "transporter"]),
    ("Environmental Services", "Cleaning and spill response", "extension", "Biohazard spills: say so first",
     ["EVS", "housekeeping"]),
    ("Facilities Emergency Line", "Power, water, HVAC, elevators", "extension", "24/7 engineer on duty",
     ["maintenance", "engineering"]),
    ("IT Service Desk", "Computer and phone problems", "extension", "Downtime procedures: press 1",
     ["helpdesk", "computer"]),
    ("Bed Placement Center", "Admissions and bed assignments", "extension", "", ["admitting", "bed board"]),
    ("Poison Control Center", "Regional poison control (external)", "phone", "External call; free 24/7",
     ["poison"]),
    ("Organ Procurement Organization", "Donor referrals (external)", "phone",
     "Call within 1 hour of imminent death", ["OPO", "donor"]),
    ("Lakeshore Switchboard Supervisor", "Switchboard shift lead", "extension", "", ["operator", "PBX"]),
    ("NightWatch Teleradiology", "Overnight remote radiology reads (London)", "phone",
     "Call for preliminary reads 22:00-07:00 Central", ["teleradiology", "nighthawk"]),
    ("Chaplain on Call", "Spiritual care, 24/7", "pager", "Page; callback within 15 min", ["spiritual care"]),
]


def main() -> None:
    rng = random.Random(SEED)
    listings: list[dict] = []
    contacts: list[dict] = []
    used_ext: set[str] = set()

    def new_ext(first_digit: str | None = None) -> str:
        while True:
            ext = (first_digit or rng.choice("2345678")) + f"{rng.randrange(1000):03d}"
            if ext not in used_ext and ext != "5555":
                used_ext.add(ext)
                return ext

    def add_contact(listing_id: str, kind: str, value: str, label: str = "", instructions: str = "") -> None:
        rank = 1 + sum(1 for c in contacts[-12:] if c["listing_id"] == listing_id)
        contacts.append({"listing_id": listing_id, "kind": kind, "value": value, "label": label,
                         "rank": rank, "instructions": instructions})

    def listing(**row) -> dict:
        base = {c: "" for c in ("id", "kind", "display_name", "family_name", "given_name", "middle_name",
                                "title", "department", "site", "building", "floor", "room", "aliases",
                                "keywords", "notes", "updated_at")}
        base.update(row)
        base["updated_at"] = UPDATED_AT
        listings.append(base)
        return base

    dept_ids: dict[str, str] = {}
    dept_site: dict[str, str] = {}
    for n, (dept, site_key, _, _, _) in enumerate(DEPARTMENTS, 1):
        site = SITES[site_key]
        lid = f"dept-{n:03d}"
        dept_ids[dept] = lid
        dept_site[dept] = site_key
        building = rng.choice(site["buildings"])
        listing(id=lid, kind="department", display_name=dept, department=dept, site=site["site"],
                building=building, floor=str(rng.randint(1, 6)), room=f"{rng.randint(100, 699)}",
                aliases=_dept_aliases(dept), keywords=f"{dept} main line;{dept} office")
        ext = new_ext()
        add_contact(lid, "extension", ext, "Main line",
                    "Staffed 08:00-17:00; after hours ask for the on-call" if rng.random() < 0.5 else "")
        add_contact(lid, "phone", f"{site['area']}-555-{ext}", "Direct line")
        if rng.random() < 0.7:
            add_contact(lid, "fax", f"{site['area']}-555-{new_ext('9')}", "Fax")
        add_contact(lid, "email", _email(dept.lower()), "Department inbox")

    for n, (name, site_key, building, floor, room) in enumerate(LOCATIONS, 1):
        site = SITES[site_key]
        lid = f"loc-{n:03d}"
        listing(id=lid, kind="location", display_name=name, site=site["site"], building=building, floor=floor,
                room=room, keywords="unit;desk" if "Station" in name or "Desk" in name else "")
        ext = new_ext()
        add_contact(lid, "extension", ext, "Desk")
        if rng.random() < 0.4:
            add_contact(lid, "extension", new_ext(), "Second line")
        add_contact(lid, "phone", f"{site['area']}-555-{ext}", "Direct line")
        if rng.random() < 0.3:
            add_contact(lid, "fax", f"{site['area']}-555-{new_ext('9')}", "Fax")

    for n, (name, notes, kind, instructions, aliases) in enumerate(SERVICES, 1):
        lid = f"svc-{n:03d}"
        listing(id=lid, kind="service", display_name=name, notes=notes, site=SITES["main"]["site"],
                aliases=";".join(aliases))
        if kind == "overhead":
            add_contact(lid, "overhead", name.split(" Team")[0].split(" Activation")[0], "Overhead page",
                        instructions)
            add_contact(lid, "extension", "5555" if name == "Code Blue Team" else new_ext(), "Activation line")
        elif kind == "pager":
            add_contact(lid, "pager", f"{rng.randint(10000, 99999)}", "Group pager", instructions)
            add_contact(lid, "extension", new_ext(), "Coordinator")
        elif kind == "phone":
            if "London" in notes:
                add_contact(lid, "phone", f"+44 20 7946 {rng.randint(0, 9999):04d}", "Reading room (UK)",
                            instructions)
            else:
                add_contact(lid, "phone", f"800-555-{rng.randint(100, 9999):04d}", "External line", instructions)
        else:
            ext = new_ext()
            add_contact(lid, "extension", ext, "24/7 line", instructions)
            add_contact(lid, "phone", f"608-555-{ext}", "Direct line")

    title_choices = [t for t in TITLES]
    title_weights = [t[2] for t in TITLES]
    dept_weights = [d[4] for d in DEPARTMENTS]
    people_by_dept: dict[str, list[tuple[str, str, bool]]] = {d[0]: [] for d in DEPARTMENTS}
    seen_names: set[tuple[str, str]] = set()
    for n in range(1, PEOPLE + 1):
        while True:
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            if (given, family) not in seen_names or rng.random() < 0.05:  # a few true namesakes, as in life
                seen_names.add((given, family))
                break
        middle = rng.choice("ABCDEFGHJKLMNPRSTW") + "." if rng.random() < 0.45 else ""
        dept = rng.choices([d[0] for d in DEPARTMENTS], dept_weights)[0]
        if dept in SUPPORT_TITLES:
            choices = SUPPORT_TITLES[dept]
            title, credential, _, on_call = rng.choices(choices, [t[2] for t in choices])[0]
        else:
            title, credential, _, on_call = rng.choices(title_choices, title_weights)[0]
        site = SITES[dept_site[dept]]
        lid = f"p-{n:05d}"
        display = " ".join(p for p in (given, middle, family) if p) + (f", {credential}" if credential else "")
        aliases = []
        if given in NICKNAMES:
            aliases.append(f"{NICKNAMES[given]} {family}")
        if credential in ("MD", "DO"):
            aliases.append(f"Dr. {family}")
        building = rng.choice(site["buildings"])
        floor = str(rng.randint(1, 7))
        listing(id=lid, kind="person", display_name=display, family_name=family, given_name=given,
                middle_name=middle.rstrip("."), title=title, department=dept, site=site["site"],
                building=building, floor=floor, room=f"{floor}{rng.randint(0, 99):02d}",
                aliases=";".join(aliases))
        ext = new_ext()
        add_contact(lid, "extension", ext, "Office" if on_call else "Work")
        if rng.random() < 0.55:
            add_contact(lid, "phone", f"{site['area']}-555-{ext}", "Direct line")
        if on_call or rng.random() < 0.25:
            text_only = rng.random() < 0.2
            add_contact(lid, "mobile", f"{rng.choice(['608', '414', '262', site['area']])}-555-"
                        f"{rng.randint(0, 9999):04d}", "Mobile",
                        "Text only" if text_only else ("Call after pager" if rng.random() < 0.3 else ""))
        if on_call:
            add_contact(lid, "pager", f"{rng.randint(20000, 89999)}", "Pager",
                        "Page first, then mobile" if rng.random() < 0.3 else "")
        if rng.random() < 0.9:
            handle = f"{given}.{family}".lower().replace(" ", "").replace("'", "")
            add_contact(lid, "email", f"{handle}{n % 97 if rng.random() < 0.1 else ''}@{EMAIL_DOMAIN}", "Email")
        people_by_dept[dept].append((lid, title, on_call))

    schedules, rotas = [], []
    for n, (dept, site_key, pattern, role, _) in enumerate(DEPARTMENTS, 1):
        site = SITES[site_key]
        sid = f"oc-{n:03d}"
        # Only people whose job takes call go on a rota: no pharmacist as the cardiology fellow.
        staff = [(lid, t) for lid, t, takes_call in people_by_dept[dept] if takes_call] \
            or [(lid, t) for lid, t, _ in people_by_dept[dept]]
        seniors = [lid for lid, t in staff if "Attending" in t or t == "Fellow"] \
            or [lid for lid, t in staff if any(w in t for w in SENIOR_WORDS)] or [lid for lid, _ in staff]
        juniors = [lid for lid, t in staff if lid not in seniors and any(
            w in t for w in ("Resident", "Fellow", "Nurse Practitioner", "Physician Assistant"))] \
            or [lid for lid, _ in staff if lid not in seniors] or [lid for lid, _ in staff]
        schedules.append({"id": sid, "name": f"{dept} — on call", "department": dept, "site": site["site"],
                          "timezone": site["tz"],
                          "escalation": f"Tier 1 {role}; if no answer in 10 minutes, page tier 2; then the "
                                        f"{dept} main line or the house supervisor.",
                          "fallback_listing_id": dept_ids[dept]})
        anchor = "2026-01-05"  # a Monday
        for tier, members, label in ((1, juniors, role), (2, seniors, "Backup attending")):
            rng.shuffle(members)
            count = {"day-night": 8, "daily": 7, "weekly": 5}[pattern]
            rota = {"schedule_id": sid, "tier": tier, "role": label, "anchor": anchor,
                    "members": members[:max(2, min(count, len(members)))]}
            if pattern == "day-night":
                rota["daily"] = ["07:00", "19:00"]
            elif pattern == "daily":
                rota["daily"] = ["08:00"]
            else:
                rota["weekly"] = {"weekday": "monday", "at": "08:00"}
            rotas.append(rota)
    radiologists = [lid for lid, t, _ in people_by_dept["Radiology"] if "Attending" in t or "Fellow" in t]
    cardiologists = [lid for lid, t, _ in people_by_dept["Cardiology"] if "Attending" in t or "Fellow" in t]
    for n, (name, tz, site, role) in enumerate(REMOTE, len(DEPARTMENTS) + 1):
        sid = f"oc-{n:03d}"
        dept = "Radiology" if "Radiology" in name else "Cardiology"
        pool = radiologists if dept == "Radiology" else cardiologists
        schedules.append({"id": sid, "name": name, "department": dept, "site": site, "timezone": tz,
                          "escalation": "Reading room first; if unreachable, the on-site radiologist.",
                          "fallback_listing_id": "svc-017"})
        for tier in (1, 2):
            members = rng.sample(pool, min(len(pool), 4))
            rotas.append({"schedule_id": sid, "tier": tier, "role": role if tier == 1 else "Backup reader",
                          "anchor": "2026-01-05", "daily": ["08:00", "20:00"], "members": members,
                          "notes": "Times are UK wall time; reads are preliminary."})

    _write_csv(HERE / "listings.csv", listings)
    _write_csv(HERE / "contact_methods.csv", contacts)
    _write_csv(HERE / "schedules.csv", schedules)
    (HERE / "rotas.json").write_text(json.dumps({"rotas": rotas}, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    print(f"{len(listings)} listings, {len(contacts)} contact methods, {len(schedules)} schedules, "
          f"{len(rotas)} rotas written to {HERE}")


def _dept_aliases(dept: str) -> str:
    known = {"Emergency Medicine": "ED;ER;Emergency Room", "Critical Care": "ICU;MICU",
             "Obstetrics and Gynecology": "OB;OBGYN", "Otolaryngology": "ENT", "Gastroenterology": "GI",
             "Neonatal Intensive Care": "NICU", "Interventional Radiology": "IR",
             "Cardiothoracic Surgery": "CT Surgery;CTS", "Labor and Delivery": "L&D;Birth Center",
             "Infectious Diseases": "ID", "Cardiac Intensive Care": "CICU", "Electrophysiology": "EP",
             "Hospital Medicine": "Hospitalists", "IT Service Desk": "Helpdesk",
             "Clinical Laboratory": "Lab", "Respiratory Therapy": "RT"}
    return known.get(dept, "")


def _email(name: str) -> str:
    return name.replace(" and ", "-").replace(" ", "-").replace("'", "") + "@" + EMAIL_DOMAIN


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
