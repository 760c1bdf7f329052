#!/usr/bin/env python3
"""What the change summary costs the exporter: the diff of two snapshots against building one.

    python3 bench/changes.py [--listings 100000]

Builds a synthetic directory (fixed seed: N listings, 3 contact methods each, 200 on-call schedules with a
week of 12-hour shifts) twice, the second with a day of typical changes (0.5% of listings: numbers changed,
listings added and removed, on-call swaps), then times ``core.changes.diff_databases`` — what every export
runs since issue 15 — and, as the peer in the same run, ``core.model.build_database`` of the same data
(what every export already runs). Prints both, their ratio, and what the summary found.

A benchmark, not a test: it asserts nothing. State the machine's load beside any figure (``uptime``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backup_operator.core.changes import diff_databases  # noqa: E402
from backup_operator.core.model import build_database, format_utc  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def records(n: int, rng: random.Random) -> dict:
    listings = [{"id": f"p{i}", "kind": "person", "display_name": f"Person {i}", "department": f"Dept {i % 200}",
                 "title": "Nurse" if i % 3 else "Physician"} for i in range(n)]
    contacts = [{"listing_id": f"p{i}", "kind": kind, "value": f"{i:06d}{k}", "rank": k + 1}
                for i in range(n) for k, kind in enumerate(("extension", "pager", "mobile"))]
    schedules = [{"id": f"s{j}", "name": f"Dept {j} on call", "department": f"Dept {j}", "timezone": "America/Chicago"}
                 for j in range(200)]
    shifts = []
    for j in range(200):
        start = NOW - timedelta(days=1)
        for k in range(16):
            shifts.append({"schedule_id": f"s{j}", "tier": 1, "listing_id": f"p{rng.randrange(n)}",
                           "start_utc": format_utc(start + timedelta(hours=12 * k)),
                           "end_utc": format_utc(start + timedelta(hours=12 * (k + 1)))})
    return {"listings": listings, "contact_methods": contacts, "schedules": schedules, "shifts": shifts}


def change(data: dict, n: int, rng: random.Random) -> dict:
    count = max(1, n // 200)  # 0.5%
    gone = {f"p{i}" for i in rng.sample(range(n), count)}
    on_call = {s["listing_id"] for s in data["shifts"]}
    gone -= on_call
    data = {k: [dict(r) for r in v] for k, v in data.items()}
    data["listings"] = [r for r in data["listings"] if r["id"] not in gone]
    data["contact_methods"] = [r for r in data["contact_methods"] if r["listing_id"] not in gone]
    for r in rng.sample(data["contact_methods"], count):
        r["value"] = r["value"] + "9"
    data["listings"] += [{"id": f"new{i}", "kind": "person", "display_name": f"New person {i}"} for i in range(count)]
    for s in rng.sample(data["shifts"], max(1, len(data["shifts"]) // 200)):
        s["listing_id"] = f"p{rng.randrange(n)}"
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(15)
    old_data = records(args.listings, rng)
    new_data = change(old_data, args.listings, rng)

    def build(data, version):
        return build_database(**data, snapshot_version=version, created_at=NOW, expires_at=NOW + timedelta(days=3),
                              expected_interval_s=900, source="bench")

    t0 = time.perf_counter()
    old = build(old_data, 1)
    t1 = time.perf_counter()
    new = build(new_data, 2)
    t2 = time.perf_counter()
    summary = diff_databases(new, old, version=2, since_version=1, now=NOW)
    t3 = time.perf_counter()
    build_s = ((t1 - t0) + (t2 - t1)) / 2
    diff_s = t3 - t2
    print(f"listings {args.listings:,}, contact methods {len(new_data['contact_methods']):,}, "
          f"shifts {len(new_data['shifts']):,}; database {len(new) / 2**20:.1f} MiB")
    print(f"build_database (peer, per snapshot): {build_s:.2f} s")
    print(f"diff_databases (the change summary): {diff_s:.2f} s")
    print(f"ratio diff / build: {diff_s / build_s:.2f}")
    print(f"found: {summary.describe_counts()}")


if __name__ == "__main__":
    main()
