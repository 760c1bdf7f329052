#!/usr/bin/env python3
"""Distribution at 10,000 desktops: a simulated day of 96 exports, push vs pull-full vs pull-deltas.

    python3 bench/distribution.py                       # 100k listings, 10,000 desktops (~15 min)
    python3 bench/distribution.py --listings 20000      # a quicker day for development
    python3 bench/distribution.py --json out.json       # also every interval's figures
    python3 bench/distribution.py --ratio-only          # only: one day's delta against the full snapshot

Two parts:

1. **Real files.** A synthetic directory (fixed seed; people with 3 contact methods each, departments,
   on-call schedules and a 14-day rota) changes through a day at realistic rates: ``--daily-change``
   of its rows (default 0.5%), 70% of the edits between 08:00 and 18:00, and the rota rolling forward
   every interval. Every 15 minutes the real exporter code builds the database (with its stored search
   index), seals it for ``--desktops`` recipients, computes, checks and seals the delta from the
   previous version (``exporter.delta.make_delta``) and signs the manifest (``publish/web.py``). The
   byte counts below are those files' real sizes.
2. **Desktops, simulated.** Each of ``--desktops`` desktops polls its inbox once per interval at its own
   phase. Most are always on; ``--offline-share`` (default 15%) are off for a random 2-10 hour block
   (night shifts, maintenance, a share or a VPN down); ``--home-share`` (default 20%) are home workers
   on 10 Mbit/s instead of the LAN's 100 Mbit/s. The web server (or the file server, for push) has
   ``--egress-gbit`` of bandwidth. Compared, per interval:

   - **push**: today — the exporter writes the full snapshot into every desktop's inbox;
   - **pull-full**: one published copy, desktops fetch the full snapshot over http(s) when it changed;
   - **pull-delta**: one published copy plus deltas; desktops fetch the manifest (a conditional GET:
     304 when nothing changed) and the deltas from their version, or the full snapshot when the chain
     is gone or heavier than half of it (``core.pull``'s rule).

   Freshness is the share of desktops holding the newest version within one interval + 1 minute of its
   publication (all desktops, and those online), given each desktop's phase, its link, and the server's
   egress shared by everyone fetching in that interval.

Prints the day's totals and a row per interval; a benchmark, not a test (it asserts nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backup_operator.core.model import build_database  # noqa: E402
from backup_operator.core.pull import DELTA_SHARE_LIMIT  # noqa: E402
from backup_operator.core.search import store_index  # noqa: E402
from backup_operator.snapshot import envelope  # noqa: E402
from backup_operator.snapshot.keys import DesktopKey, SignerKey  # noqa: E402
from backup_operator.snapshot.manifest import describe_delta, describe_file, manifest_for  # noqa: E402

from exporter.delta import make_delta, with_group_key  # noqa: E402

INTERVALS, INTERVAL_S = 96, 900
START = datetime(2026, 3, 9, 0, 0, tzinfo=timezone.utc)
GIVEN = "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth Wei Priya Omar Ingrid Kwame".split()
FAMILY = "Smith Johnson Garcia Nguyen Patel Kowalski Okafor Tanaka Rossi Schmidt Haddad Larsen Cohen Silva".split()
TITLES = ["Attending Physician", "Registered Nurse", "Charge Nurse", "Resident Physician", "Pharmacist", "Clerk"]
KINDS = ["extension", "phone", "mobile", "pager"]
REQUEST_OVERHEAD = 350  # bytes of HTTP request + response headers per request
NOT_MODIFIED = 250  # a 304: headers only


class Directory:
    """A synthetic directory that a day of edits changes in place (rows as dicts, source order kept)."""

    def __init__(self, listings: int, seed: int = 7):
        self.rng = random.Random(seed)
        self.depts = [f"Department {n:03d}" for n in range(max(20, listings // 500))]
        self.listings, self.contacts, self.shifts = [], [], []
        self.next_id = 0
        for _ in range(listings):
            self._add_person()
        self.schedules = [{"id": f"S{n:03d}", "name": f"{d} — on call", "department": d,
                           "timezone": "America/New_York"} for n, d in enumerate(self.depts[:max(10, listings // 500)])]
        self.people = [row["id"] for row in self.listings]
        for day in range(-1, 13):
            self._rota_day(day)

    def _add_person(self, at: int | None = None) -> None:
        rng = self.rng
        self.next_id += 1
        ident = f"P{self.next_id:08d}"
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        row = {"id": ident, "kind": "person", "display_name": f"{given} {family}", "given_name": given,
               "family_name": family, "title": rng.choice(TITLES), "department": rng.choice(self.depts),
               "site": rng.choice(["Main", "North", "South"]), "room": str(rng.randrange(100, 999))}
        contacts = [{"listing_id": ident, "kind": KINDS[k], "value": f"608-555-{rng.randrange(10000):04d}",
                     "rank": k + 1} for k in range(3)]
        if at is None:
            self.listings.append(row)
            self.contacts.extend(contacts)
        else:
            self.listings.insert(at, row)
            self.contacts[3 * at:3 * at] = contacts  # the source lists numbers in listing order

    def _rota_day(self, day: int) -> None:
        for schedule in self.schedules:
            for start_h in (7, 19):
                start = START + timedelta(days=day, hours=start_h)
                for tier in (1, 2):
                    self.shifts.append({"schedule_id": schedule["id"], "tier": tier, "role": "On call",
                                        "listing_id": self.rng.choice(self.people),
                                        "start_utc": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        "end_utc": (start + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")})

    def edit(self, edits: int, now: datetime) -> None:
        rng = self.rng
        for _ in range(edits):
            what = rng.random()
            i = rng.randrange(len(self.listings))
            if what < 0.45:  # a number changes
                self.contacts[3 * i + rng.randrange(3)]["value"] = f"608-555-{rng.randrange(10000):04d}"
            elif what < 0.75:  # a title, department or room
                field = rng.choice(["title", "department", "room"])
                self.listings[i][field] = rng.choice(TITLES) if field == "title" else \
                    rng.choice(self.depts) if field == "department" else str(rng.randrange(100, 999))
            elif what < 0.88:  # someone joins
                self._add_person(rng.randrange(len(self.listings)))
            else:  # someone leaves (not someone on the rota: the source would reassign first)
                ident = self.listings[i]["id"]
                if any(s["listing_id"] == ident for s in self.shifts):
                    continue
                del self.listings[i]
                del self.contacts[3 * i:3 * i + 3]
        # The rota window rolls forward: past shifts drop off; a new day appears at midnight.
        stamp = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.shifts = [s for s in self.shifts if s["end_utc"] > stamp]
        if now.hour == 0 and now.minute == 0:
            self.people = [row["id"] for row in self.listings]
            self._rota_day((now - START).days + 13)

    def database(self, version: int, now: datetime) -> bytes:
        database = build_database(listings=self.listings, contact_methods=self.contacts, schedules=self.schedules,
                                  shifts=self.shifts, snapshot_version=version, created_at=now,
                                  expires_at=now + timedelta(days=3), expected_interval_s=INTERVAL_S,
                                  source="bench/distribution.py")
        return store_index(database)

    @property
    def rows(self) -> int:
        return len(self.listings) + len(self.contacts) + len(self.shifts) + len(self.schedules)


def edits_per_interval(rows: int, daily_change: float, rng: random.Random) -> list[int]:
    """0.5% of rows a day, 70% of it in office hours (08:00-18:00), the rest spread over the night."""
    total = rows * daily_change
    out = []
    for n in range(INTERVALS):
        hour = n * INTERVAL_S / 3600
        share = 0.7 / 40 if 8 <= hour < 18 else 0.3 / 56
        mean = total * share
        out.append(max(0, int(round(rng.gauss(mean, mean ** 0.5)))))
    return out


@dataclass
class Published:
    version: int
    full: int  # sealed full snapshot bytes
    delta: int | None  # sealed delta from the previous version
    manifest: int
    changed_rows: int
    seconds: float


def make_files(args) -> tuple[list[Published], dict]:
    rng = random.Random(11)
    directory = Directory(args.listings)
    signer = SignerKey.generate()
    recipients = [DesktopKey.generate().public for _ in range(args.desktops)]
    group_key = (os.urandom(8).hex(), os.urandom(32))  # as exporter.delta.group_key_for keeps it
    info = {"rows": directory.rows}
    plan = edits_per_interval(directory.rows, args.daily_change, rng)
    out: list[Published] = []
    previous: bytes | None = None
    first: bytes | None = None
    chain: list = []  # (name, size, sha) of deltas kept in the manifest, newest first
    for n in range(INTERVALS + 1):  # version 1 is the start of the day
        now = START + timedelta(seconds=n * INTERVAL_S)
        t0 = time.perf_counter()
        if n:
            directory.edit(plan[n - 1], now)
        version = n + 1
        database = with_group_key(directory.database(version, now), group_key)
        sealed = envelope.seal(database, snapshot_version=version, created_at=now, expires_at=now + timedelta(days=3),
                               recipients=recipients, signer=signer)
        delta_size, changed = None, 0
        if previous is not None:
            made = make_delta(previous, version - 1, database, version, created_at=now,
                              expires_at=now + timedelta(days=3), recipients=recipients, signer=signer,
                              endorsements=[], full_size=len(sealed), group_key=group_key)
            if made is not None:
                delta_size, changed = len(made.data), made.changed_rows
                chain.insert(0, describe_delta(made.filename, made.data, version - 1, version))
                chain = chain[:args.keep_deltas]
            else:
                chain = []
        manifest = manifest_for(describe_file(f"snapshot-{version:012d}.bosnap", sealed), version, now, signer, chain)
        out.append(Published(version, len(sealed), delta_size, len(manifest), changed, time.perf_counter() - t0))
        previous = database
        first = first or database
        if n % 8 == 0:
            print(f"  interval {n:2d}: full {len(sealed):,} B, delta {delta_size or 0:,} B "
                  f"({changed} rows), manifest {len(manifest):,} B, {out[-1].seconds:.1f} s", file=sys.stderr)
    info["database_bytes"] = len(previous)
    # A desktop away all day could also get one delta for the whole day: how big would it be?
    day = make_delta(first, 1, previous, INTERVALS + 1, created_at=now, expires_at=now + timedelta(days=3),
                     recipients=recipients, signer=signer, endorsements=[], full_size=10 * out[-1].full,
                     group_key=group_key)
    info["day_delta"], info["day_delta_rows"] = (len(day.data), day.changed_rows) if day else (None, 0)
    return out, info


@dataclass
class Desk:
    phase: float  # seconds after the interval's start at which it polls
    link: float  # bytes/s
    offline: range  # intervals it is offline
    version: int = 0
    chain_bytes: int = 0  # deltas installed since its last full snapshot
    chain_files: int = 0
    push_version: int = 0
    full_version: int = 0


def simulate(files: list[Published], args) -> tuple[list[dict], dict]:
    rng = random.Random(5)
    desks = []
    for _ in range(args.desktops):
        home = rng.random() < args.home_share
        offline = range(0)
        if rng.random() < args.offline_share:
            start = rng.randrange(INTERVALS)
            offline = range(start, start + rng.randrange(8, 41))  # 2 to 10 hours
        desks.append(Desk(rng.uniform(0, INTERVAL_S), (10 if home else 100) * 1e6 / 8, offline,
                          version=1, push_version=1, full_version=1))
    egress = args.egress_gbit * 1e9 / 8
    deadline = INTERVAL_S + 60
    rows, totals = [], {k: 0 for k in ("push_written", "push_served", "full_written", "full_served",
                                       "delta_written", "delta_served", "delta_requests", "fulls_fetched",
                                       "deltas_fetched", "not_modified")}
    by_version = {p.version: p for p in files}
    for n in range(1, INTERVALS + 1):
        current = by_version[n + 1]
        online = [d for d in desks if n not in d.offline]
        row = {"interval": n, "time": (START + timedelta(seconds=n * INTERVAL_S)).strftime("%H:%M"),
               "online": len(online), "changed_rows": current.changed_rows}
        # What the exporter writes this interval.
        row["push_written"] = current.full * args.desktops  # the file system counts every inbox copy
        row["full_written"] = current.full
        row["delta_written"] = current.full + (current.delta or 0) + current.manifest
        # What desktops fetch, per model; each desktop's own bytes decide when it is done.
        push_bytes, full_bytes, delta_bytes = [], [], []
        for d in online:
            if d.push_version < current.version:
                push_bytes.append((d, current.full))
                d.push_version = current.version
            if d.full_version < current.version:
                full_bytes.append((d, current.full + REQUEST_OVERHEAD))
                d.full_version = current.version
            if d.version == current.version:
                delta_bytes.append((d, NOT_MODIFIED))
                totals["not_modified"] += 1
                continue
            steps = [by_version[v].delta for v in range(d.version + 1, current.version + 1)]
            usable = (d.version >= current.version - args.keep_deltas and all(s is not None for s in steps)
                      and d.chain_bytes + sum(steps) <= DELTA_SHARE_LIMIT * current.full)
            cost = current.manifest + REQUEST_OVERHEAD
            if usable:
                cost += sum(steps) + REQUEST_OVERHEAD * len(steps)
                d.chain_bytes += sum(steps)
                d.chain_files += len(steps)
                totals["deltas_fetched"] += len(steps)
            else:
                cost += current.full + REQUEST_OVERHEAD
                d.chain_bytes = d.chain_files = 0
                totals["fulls_fetched"] += 1
            delta_bytes.append((d, cost))
            d.version = current.version
        for model, fetched in (("push", push_bytes), ("full", full_bytes), ("delta", delta_bytes)):
            served = sum(b for _, b in fetched)
            row[f"{model}_served"] = served
            # Freshness: a desktop is current in time if its phase plus its own transfer, slowed to its share
            # of the server's egress when the server is the bottleneck, ends within the interval + 1 min.
            busy = served / egress  # seconds the server needs for everything asked of it this interval
            slow = max(1.0, busy / INTERVAL_S)
            fresh = sum(1 for d, b in fetched if d.phase + (b / d.link) * slow <= deadline)
            already = len(online) - len(fetched) if model != "delta" else \
                sum(1 for _, b in fetched if b == NOT_MODIFIED)
            if model == "delta":
                fresh -= already  # the 304s were counted in fetched
            row[f"{model}_fresh_online"] = (fresh + already) / max(1, len(online))
            row[f"{model}_fresh_all"] = (fresh + already) / len(desks)
            totals[f"{model}_served"] += served
            totals[f"{model}_written"] += row[f"{model}_written"]
        totals["delta_requests"] += len(online) + sum(1 for _, b in delta_bytes if b > NOT_MODIFIED)
        rows.append(row)
    return rows, totals


def day_ratio(args) -> None:
    """One day of edits (0.5% of rows, and the rota rolling forward) as one delta, against the full snapshot."""
    rng = random.Random(11)
    t0 = time.perf_counter()
    directory = Directory(args.listings)
    rows_before = directory.rows
    signer = SignerKey.generate()
    group_key = (os.urandom(8).hex(), os.urandom(32))
    start = with_group_key(directory.database(1, START), group_key)
    plan = edits_per_interval(directory.rows, args.daily_change, rng)
    for n, edits in enumerate(plan, 1):
        directory.edit(edits, START + timedelta(seconds=n * INTERVAL_S))
    end_time = START + timedelta(days=1)
    end = with_group_key(directory.database(2, end_time), group_key)
    built = time.perf_counter() - t0
    for desktops in sorted({500, args.desktops}):
        recipients = [DesktopKey.generate().public for _ in range(desktops)]
        sealed = envelope.seal(end, snapshot_version=2, created_at=end_time, expires_at=end_time + timedelta(days=3),
                               recipients=recipients, signer=signer)
        t1 = time.perf_counter()
        made = make_delta(start, 1, end, 2, created_at=end_time, expires_at=end_time + timedelta(days=3),
                          recipients=recipients, signer=signer, endorsements=[], full_size=10 * len(sealed),
                          group_key=group_key)
        took = time.perf_counter() - t1
        print(f"{args.listings:,} listings ({rows_before:,} rows), {desktops:,} desktops: a day's delta "
              f"{human(len(made.data))} for {made.changed_rows:,} changed rows ({100 * made.changed_rows / rows_before:.2f}% "
              f"of rows) = {100 * len(made.data) / len(sealed):.2f}% of the full snapshot ({human(len(sealed))}); "
              f"computed, self-checked and sealed in {took:.1f} s")
    print(f"(directory built and edited in {built:.0f} s)", file=sys.stderr)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1000
    return str(n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--desktops", type=int, default=10_000)
    parser.add_argument("--daily-change", type=float, default=0.005)
    parser.add_argument("--offline-share", type=float, default=0.15)
    parser.add_argument("--home-share", type=float, default=0.20)
    parser.add_argument("--egress-gbit", type=float, default=1.0)
    parser.add_argument("--keep-deltas", type=int, default=96)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--ratio-only", action="store_true", help="only one day's delta against the full snapshot")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average; 2 cores)", file=sys.stderr)
    if args.ratio_only:
        day_ratio(args)
        return 0
    t0 = time.perf_counter()
    files, info = make_files(args)
    rows, totals = simulate(files, args)
    deltas = [p.delta for p in files if p.delta is not None]
    day_changed = sum(p.changed_rows for p in files)
    full = files[-1].full
    print(f"\nDirectory: {args.listings:,} listings, {info['rows']:,} rows; sealed for {args.desktops:,} desktops: "
          f"full snapshot {human(full)}; database {human(info['database_bytes'])}")
    print(f"Deltas: {len(deltas)} of {INTERVALS} intervals; median {human(sorted(deltas)[len(deltas) // 2])}, "
          f"max {human(max(deltas))}; a day's deltas together {human(sum(deltas))} "
          f"= {100 * sum(deltas) / full:.2f}% of one full snapshot ({day_changed:,} changed rows, "
          f"{100 * day_changed / info['rows']:.2f}% of rows incl. the rota rolling forward)")
    if info["day_delta"]:
        print(f"One delta for the whole day (first to last version): {human(info['day_delta'])} = "
              f"{100 * info['day_delta'] / full:.2f}% of the full snapshot ({info['day_delta_rows']:,} rows "
              f"differ, {100 * info['day_delta_rows'] / info['rows']:.2f}% of rows)")
    print(f"Manifest: {human(files[-1].manifest)} with {min(args.keep_deltas, len(deltas))} deltas")
    print("\nThe day (96 intervals):")
    print(f"  {'model':<11} {'exporter writes':>16} {'served':>12} {'fresh, all':>11} {'fresh, online':>14}")
    for model, name in (("push", "push"), ("full", "pull-full"), ("delta", "pull-delta")):
        fresh_all = min(r[f"{model}_fresh_all"] for r in rows)
        fresh_online = min(r[f"{model}_fresh_online"] for r in rows)
        print(f"  {name:<11} {human(totals[f'{model}_written']):>16} {human(totals[f'{model}_served']):>12} "
              f"{100 * fresh_all:>10.1f}% {100 * fresh_online:>13.1f}%   (worst interval)")
    print(f"  pull-delta: {totals['deltas_fetched']:,} delta downloads, {totals['fulls_fetched']:,} full downloads, "
          f"{totals['not_modified']:,} answered 304")
    print(f"  served, pull-delta vs pull-full: {100 * totals['delta_served'] / totals['full_served']:.2f}%; "
          f"exporter writes, pull-delta vs push: {100 * totals['delta_written'] / totals['push_written']:.4f}%")
    print("\nPer interval (bytes written by the exporter / served; freshness = share of ALL desktops current within "
          "15+1 min):")
    print(f"  {'time':>5} {'online':>6} {'rows':>5} | {'push write':>10} {'fresh':>6} | {'full served':>11} "
          f"{'fresh':>6} | {'delta write':>11} {'served':>9} {'fresh':>6}")
    for r in rows:
        print(f"  {r['time']:>5} {r['online']:>6} {r['changed_rows']:>5} | {human(r['push_written']):>10} "
              f"{100 * r['push_fresh_all']:>5.1f}% | {human(r['full_served']):>11} {100 * r['full_fresh_all']:>5.1f}% | "
              f"{human(r['delta_written']):>11} {human(r['delta_served']):>9} {100 * r['delta_fresh_all']:>5.1f}%")
    print(f"\n{time.perf_counter() - t0:.0f} s; load after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"files": [p.__dict__ for p in files], "intervals": rows, "totals": totals,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
