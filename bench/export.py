#!/usr/bin/env python3
"""Export benchmark: 100k listings, 300k contact methods, 20k shifts from PostgreSQL, sealed for 500 desktops.

    python3 bench/export.py [--url postgresql+psycopg2://postgres@127.0.0.1:5432/test]
    python3 bench/export.py --prefix bench_export --keep     # build the tables once, reuse them next time
    python3 bench/export.py --listings 1000000 --desktops 50  # the million-listing export (bench/desktop.py
                                                              # runs it too, with the desktop steps)
    python3 bench/export.py --profile /tmp/export.prof        # where the time goes (cProfile; slower)

Loads a synthetic directory into PostgreSQL tables ``PREFIX_*`` (``bench/sitedata.py``; not timed; a
random prefix unless given, so that two engineers' runs never share tables), then runs the real
pipeline in this process (``exporter.pipeline.run_export``: read → check → build → seal → publish to
one folder inbox) and prints the seconds per stage, the snapshot size, and, as the peers measured in
the same run, ``pg_dump --data-only`` of the same tables piped through ``gzip -6`` and through
``zstd -3`` (a plain compressed dump: no checks, no snapshot, no encryption, no signature), with the
ratio of our time to each. The goal is under 5 s for the whole export at 100k (issue 11), on an idle
machine: the load average is printed beside the figures.

This is a benchmark, not a test: it asserts nothing, and drops the tables it loaded unless --keep (tables it
found and reused are never dropped: other runs share them).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sitedata  # noqa: E402
from desktop import exporter_config, load_average, pg_dump_peer  # noqa: E402

from backup_operator.snapshot.keys import DesktopKey  # noqa: E402

from exporter.home import ExporterHome  # noqa: E402
from exporter.pipeline import run_export  # noqa: E402
from exporter.recipients import Recipient, save_recipients  # noqa: E402
from exporter.signing import create_signing_key  # noqa: E402

GOAL_S = 5.0  # at 100,000 listings for 500 desktops (issue 11)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--desktops", type=int, default=500)
    parser.add_argument("--prefix", help="table prefix (default: bench_export_ and a random suffix); "
                                         "tables that already hold the right counts are reused")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL tables for the next run")
    parser.add_argument("--profile", metavar="FILE", help="also profile the export with cProfile, write the "
                                                          "stats to FILE and print the top functions")
    args = parser.parse_args()
    prefix = args.prefix or f"bench_export_{secrets.token_hex(3)}"
    now = datetime.now(timezone.utc).replace(microsecond=0)

    import psycopg2
    from sqlalchemy.engine import make_url

    conn = psycopg2.connect(args.url.replace("postgresql+psycopg2://", "postgresql://"))
    loaded = False  # tables this run did not make (another run's, reused) are never dropped by it
    try:
        want = sitedata.counts_for(args.listings)
        with conn.cursor() as cur:
            have = sitedata.describe(cur, prefix)
        if have != want:
            t0 = time.perf_counter()
            have = sitedata.load(conn, prefix, args.listings, now)
            loaded = True
            print(f"loaded {prefix}_*: {have} in {time.perf_counter() - t0:.1f} s (not part of the export)")
        else:
            print(f"reusing {prefix}_*: {have}")

        with tempfile.TemporaryDirectory(prefix="bo-bench-") as tmp:
            home = ExporterHome(Path(tmp) / "home").ensure()
            inbox = Path(tmp) / "inbox"
            inbox.mkdir()
            create_signing_key(home)
            keys = [DesktopKey.generate().public for _ in range(args.desktops)]
            save_recipients(home.recipients, [Recipient(f"desk-{n:03d}", k, []) for n, k in enumerate(keys)])
            home.config.write_text(exporter_config(args.url, prefix, inbox), encoding="utf-8")

            load = load_average()
            t0, cpu0 = time.perf_counter(), time.process_time()
            if args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                outcome = profiler.runcall(run_export, home, trigger="bench", now=now)
                total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                profiler.dump_stats(args.profile)
                pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)
            else:
                outcome = run_export(home, trigger="bench", now=now)
                total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            goal = f"(goal < {GOAL_S:g} s: {'met' if total < GOAL_S else 'NOT met'})" \
                if args.listings == 100_000 and args.desktops == 500 else "(no goal at this size)"
            print(f"export of {have['listings']:,} listings, {have['contact_methods']:,} contact methods, "
                  f"{have['shifts']:,} shifts for {args.desktops} desktops: snapshot {outcome.version}, "
                  f"{outcome.result}; load average {load}")
            for stage, seconds in outcome.timer.seconds.items():
                print(f"  {stage:8} {seconds:6.2f} s  ({outcome.timer.cpu.get(stage, 0.0):5.2f} s CPU)")
            overhead = total - sum(outcome.timer.seconds.values())
            print(f"  {'other':8} {overhead:6.2f} s  (config, keys, version floor, state)")
            print(f"  {'total':8} {total:6.2f} s  {goal}; {cpu:.1f} s CPU in this process (all threads)")
            print(f"snapshot size: {outcome.size_bytes / 2**20:.1f} MiB sealed")
            url = make_url(args.url)
            for name, command in (("gzip -6", ["gzip", "-6", "-c"]), ("zstd -3", ["zstd", "-3", "-q", "-c"])):
                if not shutil.which(command[0]) or not shutil.which("pg_dump"):
                    print(f"peer pg_dump | {name}: not installed")
                    continue
                seconds, size, peer_load = pg_dump_peer(url, sitedata.pg_tables(prefix), command)
                print(f"peer: pg_dump --data-only | {name}: {seconds:.2f} s, {size / 2**20:.1f} MiB "
                      f"(load {peer_load}); export / peer = {total / seconds:.1f}x time, "
                      f"{outcome.size_bytes / size:.2f}x size")
    finally:
        if loaded and not args.keep:
            with conn.cursor() as cur:
                sitedata.drop(cur, prefix)
            conn.commit()
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
