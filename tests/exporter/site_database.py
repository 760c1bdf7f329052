"""A hospital's own directory database, shaped like a site's (not like our model), for the SQL tests.

The demo hospital is loaded into tables named the way an HR / on-call system might name them
(people, phones, oncall_groups, oncall_assignments) in SQLite, PostgreSQL or MariaDB; the exporter
reads it back with the site queries below, mapped onto the model with ``AS``. Every table name carries
a random prefix, so concurrent test runs and a developer's own tables never collide.
"""

from __future__ import annotations

import csv
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from backup_operator.core.model import parse_utc

from exporter.sources import ReadWindow
from exporter.sources.rota import Rota, expand_rota

from exporter_support import DEMO

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root:@127.0.0.1:3306/test"


def reachable(url: str) -> tuple[bool, str]:
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True, ""
    except Exception as exc:  # the reason goes into the skip message
        return False, f"{url.split('@')[-1]} is not reachable ({type(exc).__name__}: {str(exc).splitlines()[0]})"


def _demo_rows(name: str) -> list[dict]:
    with open(DEMO / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def demo_shifts(now: datetime, days_back: int = 2, days_ahead: int = 10) -> list[dict]:
    zones = {r["id"]: r["timezone"] for r in _demo_rows("schedules")}
    rotas = json.loads((DEMO / "rotas.json").read_text(encoding="utf-8"))["rotas"]
    window = ReadWindow.around(now, days_back, days_ahead)
    shifts = []
    for doc in rotas:
        rota = Rota(doc, "demo")
        shifts += expand_rota(rota, zones[rota.schedule_id], window)
    return shifts


@dataclass
class SiteDatabase:
    url: str
    engine: Engine
    prefix: str
    metadata: MetaData

    @property
    def people(self) -> str:
        return f"{self.prefix}_people"

    def queries(self) -> dict[str, str]:
        p = self.prefix
        return {
            "listings": f"SELECT person_id AS id, entry_type AS kind, full_name AS display_name, "
                        f"last_name AS family_name, first_name AS given_name, middle AS middle_name, "
                        f"job_title AS title, dept AS department, campus AS site, bldg AS building, flr AS floor, "
                        f"rm AS room, nicknames AS aliases, tags AS keywords, remarks AS notes "
                        f"FROM {p}_people WHERE active = 1",
            "contact_methods": f"SELECT ph.person_id AS listing_id, ph.phone_type AS kind, ph.number AS value, "
                               f"ph.label, ph.sort_order AS rank, ph.note AS instructions FROM {p}_phones ph "
                               f"JOIN {p}_people pe ON pe.person_id = ph.person_id WHERE pe.active = 1",
            "schedules": f"SELECT code AS id, title AS name, dept AS department, campus AS site, tz AS timezone, "
                         f"escalation, fallback AS fallback_listing_id FROM {p}_oncall_groups",
            "shifts": f"SELECT group_code AS schedule_id, tier, role_label AS role, person_id AS listing_id, "
                      f"starts_at AS start_utc, ends_at AS end_utc FROM {p}_oncall_assignments "
                      f"WHERE ends_at > :window_start AND starts_at < :window_end",
        }

    @property
    def naive_times(self) -> dict:
        """MariaDB and SQLite keep naive DATETIMEs in UTC here; PostgreSQL has TIMESTAMPTZ."""
        return {} if self.engine.dialect.name == "postgresql" else {"naive_times": "utc"}

    def source(self, name: str = "directory database", **extra) -> dict:
        return {"type": "sql", "name": name, "url": self.url, "queries": self.queries(), **self.naive_times,
                **extra}

    def source_toml(self, name: str = "directory database", extra: str = "") -> str:
        q = self.queries()
        lines = ["[[sources]]", 'type = "sql"', f'name = "{name}"', f'url = "{self.url}"']
        lines += [f'{k} = "{v}"' for k, v in self.naive_times.items()]
        lines += [extra] if extra else []
        lines += ["[sources.queries]"]
        lines += [f'{table} = """{sql}"""' for table, sql in q.items()]
        return "\n".join(lines) + "\n"

    def execute(self, sql: str, params: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql.replace("{p}", self.prefix)), params or {})

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT COUNT(*) FROM {self.prefix}_{table}")).scalar_one()

    def drop(self) -> None:
        self.metadata.drop_all(self.engine)
        self.engine.dispose()


def create_site_database(url: str, now: datetime, *, people_limit: int | None = None) -> SiteDatabase:
    engine = create_engine(url, poolclass=NullPool)
    prefix = f"bo{secrets.token_hex(4)}"
    md = MetaData()
    # PostgreSQL gets TIMESTAMPTZ; MariaDB and SQLite store naive UTC (the exporter's naive_times = "utc").
    tz_aware = engine.dialect.name == "postgresql"
    people = Table(f"{prefix}_people", md,
                   Column("person_id", String(32), primary_key=True), Column("entry_type", String(16)),
                   Column("full_name", String(200)), Column("last_name", String(100)),
                   Column("first_name", String(100)), Column("middle", String(50)), Column("job_title", String(100)),
                   Column("dept", String(100)), Column("campus", String(100)), Column("bldg", String(100)),
                   Column("flr", String(20)), Column("rm", String(20)), Column("nicknames", String(300)),
                   Column("tags", String(300)), Column("remarks", Text), Column("active", Integer))
    phones = Table(f"{prefix}_phones", md,
                   Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("person_id", String(32), index=True), Column("phone_type", String(16)),
                   Column("number", String(100)), Column("label", String(100)), Column("sort_order", Integer),
                   Column("note", String(300)))
    groups = Table(f"{prefix}_oncall_groups", md,
                   Column("code", String(32), primary_key=True), Column("title", String(200)),
                   Column("dept", String(100)), Column("campus", String(100)), Column("tz", String(64)),
                   Column("escalation", Text), Column("fallback", String(32)))
    assignments = Table(f"{prefix}_oncall_assignments", md,
                        Column("id", Integer, primary_key=True, autoincrement=True),
                        Column("group_code", String(32), index=True), Column("tier", Integer),
                        Column("role_label", String(100)), Column("person_id", String(32)),
                        Column("starts_at", DateTime(timezone=tz_aware)), Column("ends_at", DateTime(timezone=tz_aware)))
    md.create_all(engine)
    site = SiteDatabase(url, engine, prefix, md)

    listings = _demo_rows("listings")
    if people_limit is not None:
        keep = [r for r in listings if r["kind"] != "person"]
        keep += [r for r in listings if r["kind"] == "person"][:people_limit]
        listings = keep
    ids = {r["id"] for r in listings}

    def instant(value: str):
        moment = parse_utc(value)
        return moment if tz_aware else moment.replace(tzinfo=None)

    with engine.begin() as conn:
        conn.execute(people.insert(), [
            {"person_id": r["id"], "entry_type": r["kind"], "full_name": r["display_name"],
             "last_name": r["family_name"], "first_name": r["given_name"], "middle": r["middle_name"],
             "job_title": r["title"], "dept": r["department"], "campus": r["site"], "bldg": r["building"],
             "flr": r["floor"], "rm": r["room"], "nicknames": r["aliases"], "tags": r["keywords"],
             "remarks": r["notes"], "active": 1} for r in listings])
        conn.execute(phones.insert(), [
            {"person_id": r["listing_id"], "phone_type": r["kind"], "number": r["value"], "label": r["label"],
             "sort_order": int(r["rank"]), "note": r["instructions"]}
            for r in _demo_rows("contact_methods") if r["listing_id"] in ids])
        conn.execute(groups.insert(), [
            {"code": r["id"], "title": r["name"], "dept": r["department"], "campus": r["site"], "tz": r["timezone"],
             "escalation": r["escalation"], "fallback": r["fallback_listing_id"]} for r in _demo_rows("schedules")])
        shifts = [s for s in demo_shifts(now) if s["listing_id"] in ids]
        conn.execute(assignments.insert(), [
            {"group_code": s["schedule_id"], "tier": s["tier"], "role_label": s["role"],
             "person_id": s["listing_id"], "starts_at": instant(s["start_utc"]), "ends_at": instant(s["end_utc"])}
            for s in shifts])
    return site


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
