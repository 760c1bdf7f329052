"""A synthetic hospital directory generated inside PostgreSQL, for the export and desktop benchmarks.

``load(dsn, prefix, listings)`` creates four tables — ``{prefix}_people``, ``{prefix}_phones``,
``{prefix}_groups``, ``{prefix}_shifts`` — with ``listings`` listings, three contact methods per listing,
one on-call schedule per 500 listings (at least 20) and a fifth as many 12-hour shifts as listings,
starting 14 days before ``now``. The rows are made by SQL (``generate_series`` and a seeded
``random()``), so a million listings load in well under a minute without a Python object per row.

Names follow a long-tailed distribution like a real directory's: a few hundred common surnames and a
tail of invented ones drawn with a Zipf-like skew, so search has common names and singletons.
``describe`` tells whether tables of that prefix and size already exist, for reuse between runs.

The SQL source configuration for the exporter (``exporter_queries``) maps these columns onto the
model, as a site's own queries would. This module is for benchmarks only; it never touches tables
without its prefix.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

__all__ = ["TABLES", "counts_for", "load", "describe", "drop", "exporter_queries", "pg_tables"]

TABLES = ("people", "phones", "groups", "shifts")
SEED = 0.4242

GIVEN = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
Susan
Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony
Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth
Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Wei Priya Omar Ingrid Kwame Aisha
Hiroshi Fatima Mateo Sofia Lars Yuki Ahmed Chloe Rahul Olga Diego Zainab Sven Mei Tariq Ana Kofi
Leila Pavel Nadia Ravi Elena Jamal Ines Tomasz Grace Luca Amara Jonas Hana""".split()
COMMON_FAMILY = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark
Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker
Hall Rivera Campbell Mitchell Carter Roberts Patel Kowalski Okafor Tanaka Rossi Schmidt Haddad Larsen Cohen
Silva Kim Chen Singh Murphy O'Brien Novak Jensen Müller Dubois Yamamoto Mensah Ivanova Costa
Andersson""".split()
SYLLABLES = ("ab ad al an ar as ba be bi bo bra bre ca ce chi co cra da de di do dra du el en er es fa fe fi "
             "fo ga ge gi go gra ha he hi ho ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no pa pe pi "
             "po ra re ri ro ru sa se si so ta te ti to tra tu va ve vi vo wa we wi ya za").split()
ENDINGS = "son sen ski ez es er man ton ley well ford berg stein ov ova ini ello ard ell ick".split()
DEPARTMENTS = """Emergency Department|Cardiology|Pediatrics|Intensive Care Unit|Neonatal Intensive Care Unit|
Oncology|Radiology|General Surgery|Orthopedics|Neurology|Obstetrics|Labor and Delivery|Pharmacy|Laboratory|
Anesthesiology|Psychiatry|Nephrology|Gastroenterology|Pulmonology|Dermatology|Urology|Endocrinology|
Infectious Diseases|Hematology|Rheumatology|Physical Therapy|Respiratory Therapy|Social Work|Nutrition|
Case Management|Security|Facilities|Information Technology|Admitting|Medical Records|Chaplaincy""".replace(
    "\n", "").split("|")
TITLES = ["Registered Nurse", "Charge Nurse", "Nurse Manager", "Nurse Practitioner", "Attending Physician",
          "Resident Physician", "Fellow", "Pharmacist", "Respiratory Therapist", "Unit Clerk", "Technologist",
          "Physician Assistant", "Social Worker", "Case Manager", "Dietitian", "Chaplain"]
SITE_NAMES = ("St Mary's|Riverside|Mercy|Lakeview|Good Samaritan|Northwestern|Sacred Heart|Valley|Memorial|"
              "Saint Luke's|Children's|University|Providence|Baptist|Methodist|County|Regional|"
              "Summit").split("|")
SITE_KINDS = ["Hospital", "Medical Center", "General Hospital", "Community Hospital", "Health Center"]
BUILDINGS = ["Main", "North Tower", "South Tower", "East Wing", "West Wing", "Pavilion A", "Pavilion B"]
AREAS = [608, 414, 312, 617, 212, 415, 206, 503, 720, 919]


def counts_for(listings: int) -> dict[str, int]:
    """Rows per table for ``listings`` listings (1M → 3M contact methods, 200k shifts, 2000 schedules)."""
    schedules = max(20, listings // 500)
    shifts = listings // 5
    return {"listings": listings, "contact_methods": 3 * listings, "schedules": schedules,
            "shifts": shifts - shifts % schedules}


def _surnames(count: int) -> list[str]:
    rng = random.Random(4242)
    names = list(dict.fromkeys(COMMON_FAMILY))
    seen = {n.lower() for n in names}
    while len(names) < count:
        name = "".join([rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))] + [rng.choice(ENDINGS)])
        if 4 <= len(name) <= 13 and name not in seen:
            seen.add(name)
            names.append(name.capitalize())
    return names


def _sites(count: int) -> list[str]:
    out = []
    for n in range(count):
        name = f"{SITE_NAMES[n % len(SITE_NAMES)]} {SITE_KINDS[n // len(SITE_NAMES) % len(SITE_KINDS)]}"
        if n >= len(SITE_NAMES) * len(SITE_KINDS):
            name += f" {n}"
        out.append(name)
    return out


def _check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", prefix):
        raise ValueError(f"table prefix {prefix!r}: use lower-case letters, digits and _")
    return prefix


def pg_tables(prefix: str) -> list[str]:
    return [f"{_check_prefix(prefix)}_{t}" for t in TABLES]


def describe(cur, prefix: str) -> dict[str, int] | None:
    """Row counts of existing tables with this prefix, or None when any is missing."""
    out = {}
    for table, key in zip(pg_tables(prefix), ("listings", "contact_methods", "schedules", "shifts")):
        cur.execute("SELECT to_regclass(%s)", (table,))
        if cur.fetchone()[0] is None:
            return None
        cur.execute(f"SELECT count(*) FROM {table}")
        out[key] = cur.fetchone()[0]
    return out


def drop(cur, prefix: str) -> None:
    for table in pg_tables(prefix):
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def load(conn, prefix: str, listings: int, now: datetime) -> dict[str, int]:
    """(Re)create the four tables for ``listings`` listings; return their row counts."""
    counts = counts_for(listings)
    people, phones, groups, shifts = pg_tables(prefix)
    n_sites = max(2, listings // 7000)
    sites = _sites(n_sites)
    surnames = _surnames(400 + listings // 12)
    n_fixed = n_sites * len(DEPARTMENTS)  # one listing per department per site, then people
    start = (now - timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
    per_schedule = counts["shifts"] // counts["schedules"]
    with conn.cursor() as cur:
        drop(cur, prefix)
        # Serial plans and a seed: the same rows on every load.
        cur.execute("SET max_parallel_workers_per_gather = 0")
        cur.execute("SELECT setseed(%s)", (SEED,))
        cur.execute(f"CREATE TABLE {people} (id text PRIMARY KEY, kind text NOT NULL, "
                    "display_name text NOT NULL, family text, given text, middle text, title text, "
                    "dept text, site text, building text, floor text, room text, aliases text)")
        cur.execute(f"CREATE TABLE {phones} (listing_id text NOT NULL, kind text NOT NULL, "
                    "value text NOT NULL, label text, rank int, instructions text)")
        cur.execute(f"CREATE TABLE {groups} (id text PRIMARY KEY, name text NOT NULL, department text,"
                    " site text, tz text NOT NULL, fallback text)")
        cur.execute(f"CREATE TABLE {shifts} (schedule_id text NOT NULL, tier int, listing_id text NOT NULL,"
                    " starts timestamptz NOT NULL, ends timestamptz NOT NULL)")
        # Departments: one listing per department and site.
        cur.execute(
            f"INSERT INTO {people} (id, kind, display_name, dept, site, building, floor, aliases) "
            "SELECT 'L' || lpad(((s.si - 1) * %(n_dep)s + d.di - 1)::text, 7, '0'), 'department', d.name, "
            "  d.name, s.name, (%(buildings)s::text[])[1 + (d.di %% 7)::int], (1 + d.di %% 9)::text, '' "
            "FROM unnest(%(sites)s::text[]) WITH ORDINALITY s(name, si) "
            "CROSS JOIN unnest(%(depts)s::text[]) WITH ORDINALITY d(name, di)",
            {"buildings": BUILDINGS, "sites": sites, "depts": DEPARTMENTS, "n_dep": len(DEPARTMENTS)})
        # People: Zipf-like surnames (random()^3 favours the first, common ones), 65% "Family, Given".
        cur.execute(
            f"INSERT INTO {people} "
            "SELECT 'L' || lpad(n::text, 7, '0'), 'person', "
            "  CASE WHEN style < 0.65 THEN fam || ', ' || giv || CASE WHEN mid <> '' THEN ' ' || mid || '.' "
            "       ELSE '' END WHEN style < 0.85 THEN giv || ' ' || fam "
            "  ELSE 'Dr ' || giv || ' ' || fam END, "
            "  fam, giv, mid, tit, dep, sit, bld, flo, roo, ali "
            "FROM (SELECT n, random() AS style, "
            "  (%(sur)s::text[])[1 + floor(power(random(), 3) * %(n_sur)s)::int] AS fam, "
            "  (%(giv)s::text[])[1 + floor(power(random(), 1.6) * %(n_giv)s)::int] AS giv, "
            "  CASE WHEN random() < 0.25 THEN chr(65 + floor(random() * 26)::int) ELSE '' END AS mid, "
            "  (%(titles)s::text[])[1 + floor(power(random(), 1.8) * %(n_tit)s)::int] AS tit, "
            "  (%(depts)s::text[])[1 + floor(power(random(), 1.5) * %(n_dep)s)::int] AS dep, "
            "  (%(sites)s::text[])[1 + floor(power(random(), 1.3) * %(n_sit)s)::int] AS sit, "
            "  (%(buildings)s::text[])[1 + floor(random() * 7)::int] AS bld, "
            "  (1 + floor(random() * 9))::text AS flo, "
            "  (1 + floor(random() * 9))::text || chr(65 + floor(random() * 4)::int) || '-' "
            "      || (100 + floor(random() * 100))::text AS roo, "
            "  CASE WHEN random() < 0.03 THEN (ARRAY['Bob','Bill','Liz','Kate','Jim','Tom','Sam','Alex'])"
            "      [1 + floor(random() * 8)::int] ELSE '' END AS ali "
            "  FROM generate_series(%(first)s, %(last)s) AS n) p",
            {"sur": surnames, "n_sur": len(surnames), "giv": GIVEN, "n_giv": len(GIVEN), "titles": TITLES,
             "n_tit": len(TITLES), "depts": DEPARTMENTS, "n_dep": len(DEPARTMENTS), "sites": sites,
             "n_sit": n_sites, "buildings": BUILDINGS, "first": n_fixed, "last": listings - 1})
        # Three ways to reach each listing: an extension, a direct line, then a mobile or a pager.
        cur.execute(
            f"INSERT INTO {phones} "
            "SELECT id, k.kind, CASE k.kind "
            "    WHEN 'extension' THEN lpad((num %% 10000)::text, 4, '0') "
            "    WHEN 'phone' THEN area || '-' || lpad((200 + num / 10000 %% 800)::text, 3, '0') || '-' "
            "                      || lpad((num %% 10000)::text, 4, '0') "
            "    WHEN 'mobile' THEN area || '-' || (200 + floor(random() * 800))::text || '-' "
            "                      || lpad(floor(random() * 10000)::text, 4, '0') "
            "    ELSE (10000 + floor(random() * 90000))::text END, "
            "  initcap(k.kind), k.rank, CASE WHEN k.kind = 'pager' THEN 'text only' ELSE '' END "
            "FROM (SELECT id, substr(id, 2)::int AS num, "
            "        (%(areas)s::int[])[1 + substr(id, 2)::int %% 10]::text AS area, "
            "        CASE WHEN random() < 0.7 THEN 'mobile' ELSE 'pager' END AS third FROM " + people + ") l "
            "CROSS JOIN LATERAL (VALUES ('extension', 1), ('phone', 2), (l.third, 3)) AS k(kind, rank)",
            {"areas": AREAS})
        cur.execute(
            f"INSERT INTO {groups} "
            "SELECT 'S' || lpad(g::text, 5, '0'), "
            "  (%(depts)s::text[])[1 + g %% %(n_dep)s] || ' — ' || (ARRAY['attending','resident','nurse'])"
            "      [1 + g / %(n_dep)s %% 3], "
            "  (%(depts)s::text[])[1 + g %% %(n_dep)s], (%(sites)s::text[])[1 + g %% %(n_sit)s], "
            "  CASE WHEN g %% 3 = 0 THEN 'America/New_York' ELSE 'America/Chicago' END, "
            "  'L' || lpad((g %% %(n_fixed)s)::text, 7, '0') "
            "FROM generate_series(0, %(n_groups)s - 1) AS g",
            {"depts": DEPARTMENTS, "n_dep": len(DEPARTMENTS), "sites": sites, "n_sit": n_sites,
             "n_fixed": n_fixed, "n_groups": counts["schedules"]})
        cur.execute(
            f"INSERT INTO {shifts} "
            "SELECT 'S' || lpad(g::text, 5, '0'), 1, "
            "  'L' || lpad((%(n_fixed)s + floor(random() * %(n_people)s))::text, 7, '0'), "
            "  %(start)s::timestamptz + k * interval '12 hours', "
            "  %(start)s::timestamptz + (k + 1) * interval '12 hours' "
            "FROM generate_series(0, %(n_groups)s - 1) AS g CROSS JOIN generate_series(0, %(per)s - 1) AS k",
            {"n_fixed": n_fixed, "n_people": listings - n_fixed, "start": start,
             "n_groups": counts["schedules"], "per": per_schedule})
        for table in (people, phones, groups, shifts):
            cur.execute(f"ANALYZE {table}")
        found = describe(cur, prefix)
    conn.commit()
    return found


def exporter_queries(prefix: str) -> dict[str, str]:
    """The exporter's ``[sources.queries]`` for these tables (what a site's own SQL would look like)."""
    people, phones, groups, shifts = pg_tables(prefix)
    return {
        "listings": f"SELECT id, kind, display_name, family AS family_name, given AS given_name, "
                    f"middle AS middle_name, title, dept AS department, site, building, floor, room, aliases "
                    f"FROM {people}",
        "contact_methods": f"SELECT listing_id, kind, value, label, rank, instructions FROM {phones}",
        "schedules": f"SELECT id, name, department, site, tz AS timezone, fallback AS fallback_listing_id "
                     f"FROM {groups}",
        "shifts": f"SELECT schedule_id, tier, listing_id, starts AS start_utc, ends AS end_utc FROM {shifts} "
                  "WHERE ends > :window_start AND starts < :window_end",
    }
