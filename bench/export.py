#!/usr/bin/env python3
"""Export benchmark: 100k listings, 300k contact methods, 20k shifts from PostgreSQL, sealed for 500 desktops.

    python3 bench/export.py [--url postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--keep]

Loads a synthetic directory (fixed seed) into ``bench_export_*`` tables with COPY (not timed), then runs
the real pipeline (``exporter.pipeline.run_export``: read → check → build → seal → publish to one
folder inbox) and prints the seconds per stage, the snapshot size, and, as the peer measured in the same
run, ``pg_dump --data-only`` of the same tables piped through ``gzip -6`` (a plain compressed dump with
no checks, no encryption and no signature). The goal is under 10 s for the whole export.

This is a benchmark, not a test: it asserts nothing and leaves the tables only with --keep.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backup_operator.snapshot.keys import DesktopKey  # noqa: E402

from exporter.home import ExporterHome  # noqa: E402
from exporter.pipeline import run_export  # noqa: E402
from exporter.recipients import Recipient, save_recipients  # noqa: E402
from exporter.signing import create_signing_key  # noqa: E402

LISTINGS, CONTACTS, SHIFTS, RECIPIENTS = 100_000, 300_000, 20_000, 500
SCHEDULES = 200
PREFIX = "bench_export"

GIVEN = "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth Wei Priya Omar Ingrid Kwame".split()
FAMILY = "Smith Johnson Garcia Nguyen Patel Kowalski Okafor Tanaka Rossi Schmidt Haddad Larsen Cohen Silva".split()
TITLES = ["Attending Physician", "Registered Nurse", "Charge Nurse", "Resident Physician", "Pharmacist"]
DEPTS = [f"Department {n:03d}" for n in range(1, 201)]


def copy_rows(cur, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(str(v).replace("\t", " ").replace("\n", " ") for v in row) + "\n")
    buffer.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def load(dsn: str, now: datetime) -> None:
    import psycopg2

    rng = random.Random(42)
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    for t in ("people", "phones", "groups", "shifts"):
        cur.execute(f"DROP TABLE IF EXISTS {PREFIX}_{t}")
    cur.execute(f"CREATE TABLE {PREFIX}_people (id text primary key, kind text, display_name text, family text, "
                "given text, title text, dept text, site text, building text, floor text, room text, aliases text)")
    cur.execute(f"CREATE TABLE {PREFIX}_phones (listing_id text, kind text, value text, label text, rank int, "
                "instructions text)")
    cur.execute(f"CREATE TABLE {PREFIX}_groups (id text primary key, name text, department text, tz text, "
                "fallback text)")
    cur.execute(f"CREATE TABLE {PREFIX}_shifts (schedule_id text, tier int, listing_id text, starts timestamptz, "
                "ends timestamptz)")

    def people():
        for n in range(LISTINGS):
            g, f = rng.choice(GIVEN), rng.choice(FAMILY)
            yield (f"p{n:06d}", "person", f"{g} {f}", f, g, rng.choice(TITLES), rng.choice(DEPTS),
                   "Main Campus", "Tower A", str(rng.randint(1, 9)), str(rng.randint(100, 999)), "")

    copy_rows(cur, f"{PREFIX}_people", ["id", "kind", "display_name", "family", "given", "title", "dept", "site",
                                        "building", "floor", "room", "aliases"], people())
    kinds = ["extension", "mobile", "pager"]

    def phones():
        for n in range(CONTACTS):
            pid = n % LISTINGS
            kind = kinds[n // LISTINGS % 3]
            value = f"{pid % 10000:04d}" if kind == "extension" else f"608-555-{rng.randint(0, 9999):04d}"
            yield (f"p{pid:06d}", kind, value, kind.title(), n // LISTINGS + 1, "")

    copy_rows(cur, f"{PREFIX}_phones", ["listing_id", "kind", "value", "label", "rank", "instructions"], phones())
    copy_rows(cur, f"{PREFIX}_groups", ["id", "name", "department", "tz", "fallback"],
              ((f"oc{n:03d}", f"On call {n}", DEPTS[n % len(DEPTS)],
                "America/Chicago" if n % 3 else "America/New_York", "p000000") for n in range(SCHEDULES)))
    per_schedule = SHIFTS // SCHEDULES
    start = (now - timedelta(days=14)).replace(minute=0, second=0)

    def shifts():
        for s in range(SCHEDULES):
            for k in range(per_schedule):
                t0 = start + timedelta(hours=12 * k)
                yield (f"oc{s:03d}", 1, f"p{rng.randrange(LISTINGS):06d}", t0.isoformat(),
                       (t0 + timedelta(hours=12)).isoformat())

    copy_rows(cur, f"{PREFIX}_shifts", ["schedule_id", "tier", "listing_id", "starts", "ends"], shifts())
    conn.commit()
    cur.execute("ANALYZE")
    conn.close()


def config_text(url: str, inbox: Path) -> str:
    q = {
        "listings": f"SELECT id, kind, display_name, family AS family_name, given AS given_name, title, "
                    f"dept AS department, site, building, floor, room, aliases FROM {PREFIX}_people",
        "contact_methods": f"SELECT listing_id, kind, value, label, rank, instructions FROM {PREFIX}_phones",
        "schedules": f"SELECT id, name, department, tz AS timezone, fallback AS fallback_listing_id "
                     f"FROM {PREFIX}_groups",
        "shifts": f"SELECT schedule_id, tier, listing_id, starts AS start_utc, ends AS end_utc FROM {PREFIX}_shifts "
                  "WHERE ends > :window_start AND starts < :window_end",
    }
    queries = "\n".join(f'{k} = """{v}"""' for k, v in q.items())
    return (f'[export]\ndescription = "benchmark"\n[checks]\ncoverage_days = 7\n[publish]\nretries = 0\n'
            f'[[destinations]]\ntype = "folder"\npath = "{inbox}"\n'
            f'[[sources]]\ntype = "sql"\nname = "bench"\nurl = "{url}"\n[sources.queries]\n{queries}\n')


def peer_pg_dump(dsn_url: str) -> tuple[float, int] | None:
    if not shutil.which("pg_dump") or not shutil.which("gzip"):
        return None
    from sqlalchemy.engine import make_url

    url = make_url(dsn_url)
    env = dict(os.environ, PGPASSWORD=url.password or "")
    args = ["pg_dump", "--data-only", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "postgres", "-d", url.database or "postgres"]
    for t in ("people", "phones", "groups", "shifts"):
        args += ["-t", f"{PREFIX}_{t}"]
    t0 = time.perf_counter()
    dump = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
    packed = subprocess.run(["gzip", "-6"], stdin=dump.stdout, capture_output=True)
    dump.stdout.close()
    dump.wait()
    return time.perf_counter() - t0, len(packed.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", action="store_true", help="keep the bench_export_* tables")
    args = parser.parse_args()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    dsn = args.url.replace("postgresql+psycopg2://", "postgresql://")

    t0 = time.perf_counter()
    load(dsn, now)
    print(f"loaded {LISTINGS:,} listings, {CONTACTS:,} contact methods, {SHIFTS:,} shifts into PostgreSQL "
          f"in {time.perf_counter() - t0:.1f}s (not part of the export)")

    with tempfile.TemporaryDirectory(prefix="bo-bench-") as tmp:
        home = ExporterHome(Path(tmp) / "home").ensure()
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        create_signing_key(home)
        keys = [DesktopKey.generate().public for _ in range(RECIPIENTS)]
        save_recipients(home.recipients, [Recipient(f"desk-{n:03d}", k, []) for n, k in enumerate(keys)])
        home.config.write_text(config_text(args.url, inbox), encoding="utf-8")

        t0 = time.perf_counter()
        outcome = run_export(home, trigger="bench", now=now)
        total = time.perf_counter() - t0
        print(f"export for {RECIPIENTS} recipients: snapshot {outcome.version}, {outcome.result}")
        for stage, seconds in outcome.timer.seconds.items():
            print(f"  {stage:8} {seconds:6.2f} s")
        overhead = total - sum(outcome.timer.seconds.values())
        print(f"  {'other':8} {overhead:6.2f} s  (config, keys, version floor, state)")
        print(f"  {'total':8} {total:6.2f} s  (goal < 10 s: {'met' if total < 10 else 'NOT met'})")
        print(f"snapshot size: {outcome.size_bytes / 2**20:.1f} MiB sealed "
              f"({outcome.counts})")
        peer = peer_pg_dump(args.url)
        if peer:
            seconds, size = peer
            print(f"peer: pg_dump --data-only | gzip -6 of the same tables: {seconds:.2f} s, "
                  f"{size / 2**20:.1f} MiB")
            print(f"ratio: export / dump time = {total / seconds:.2f}x; sealed / dump size = "
                  f"{outcome.size_bytes / size:.2f}x")

    if not args.keep:
        import psycopg2

        conn = psycopg2.connect(dsn)
        with conn, conn.cursor() as cur:
            for t in ("people", "phones", "groups", "shifts"):
                cur.execute(f"DROP TABLE IF EXISTS {PREFIX}_{t}")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
