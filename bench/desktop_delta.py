#!/usr/bin/env python3
"""A delta installed on a desktop, at the size a bench/desktop.py run left: what a desktop pulling from an
http(s) inbox pays for each new version (core/pull.py: verify, decrypt the full snapshot, apply the chain,
check the content hash, rebuild the search index, install, seal the open copy).

    python3 bench/desktop.py --prefix bench_scale --keep --workdir /tmp/w --steps export,sync   # once
    python3 bench/desktop_delta.py --workdir /tmp/w                  # then this, on the database it holds
    python3 bench/desktop_delta.py --workdir /tmp/w --changes 5000   # more edited listings

Takes the database of the snapshot installed in ``W/desktop`` as version 1 (with a delta group key in its
meta table, as the exporter writes it), makes version 2 by editing ``--changes`` listings' titles, and
builds the delta with the exporter's own code (``exporter.delta.make_delta``, sealed to the group key).
A fresh desktop store under ``W/delta-bench`` installs version 1; then the delta is installed in a
process of its own (``SnapshotStore.install_deltas``, as ``pull`` calls it), measured by GNU time (wall,
CPU, peak RSS), and once more from the same starting point under cProfile for where the time goes.
The keys are made for this run and kept in ``W/delta-bench`` in the clear: a benchmark's, never a
desktop's. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from desktop import PASSPHRASE, measure  # noqa: E402

CHILD = r"""
import sys
from pathlib import Path
from backup_operator.core.store import SnapshotStore
from backup_operator.snapshot import keys
bench = Path(sys.argv[1])
key = keys.DesktopKey.from_raw(bytes.fromhex((bench / "desktop.key").read_text()))
signer = keys.SignerPublicKey.from_text((bench / "signer.pub").read_text().strip())
store = SnapshotStore(bench / "store", trusted=[signer], key=lambda: key)
print("installed version", store.install_deltas([(bench / "delta.bodelta").read_bytes()]))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a bench/desktop.py --workdir with a synced desktop")
    parser.add_argument("--changes", type=int, default=1000, help="listings whose title version 2 changes")
    args = parser.parse_args()
    work = Path(args.workdir)
    os.environ.setdefault("BACKUP_OPERATOR_PASSPHRASE", PASSPHRASE)

    from backup_operator.config import Desktop
    from backup_operator.snapshot import envelope, keys
    from exporter.delta import make_delta, with_group_key

    opened = Desktop(work / "desktop").store().open_newest()
    listings = opened.meta.counts.get("listings", 0)
    base = with_group_key(opened.conn.serialize(), (os.urandom(8).hex(), os.urandom(32)))
    opened.close()
    group_key = _group_key(base)
    edited = sqlite3.connect(":memory:")
    edited.deserialize(base)
    step = max(1, listings // max(1, args.changes))
    edited.execute("UPDATE listings SET title = coalesce(title, '') || ' (moved)' WHERE rowid % ? = 0", (step,))
    changed = edited.total_changes
    edited.execute("UPDATE meta SET value = '2' WHERE key = 'snapshot_version'")
    edited.commit()
    new = edited.serialize()
    edited.close()
    version = int(dict(_meta(base))["snapshot_version"])
    signer, desk = keys.SignerKey.generate(), keys.DesktopKey.generate()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    full = envelope.seal(base, snapshot_version=version, created_at=now, expires_at=now + timedelta(days=3),
                         recipients=[desk.public], signer=signer)
    # Version 2 must be the base's version plus one: the edited database says 2, so the base must be 1.
    if version != 1:
        print(f"the installed snapshot is version {version}; this bench expects a first export (version 1)")
        return 2
    made = make_delta(base, 1, new, 2, created_at=now, expires_at=now + timedelta(days=3),
                      recipients=[desk.public], signer=signer, endorsements=[], full_size=len(full),
                      group_key=group_key)
    if made is None:
        print("the exporter made no delta for these changes (see its log); nothing to measure")
        return 2
    bench = work / "delta-bench"
    shutil.rmtree(bench, ignore_errors=True)
    bench.mkdir(parents=True)
    (bench / "desktop.key").write_text(desk.raw().hex())
    (bench / "signer.pub").write_text(signer.public.to_text())
    (bench / "delta.bodelta").write_bytes(made.data)
    from backup_operator.core.store import SnapshotStore

    SnapshotStore(bench / "store", trusted=[signer.public], key=lambda: desk).install_bytes(full)
    shutil.copytree(bench / "store", bench / "store-v1")
    del base, new, full
    print(f"{listings:,} listings; version 2 edits {changed:,} titles; full snapshot sealed, delta "
          f"{len(made.data):,} bytes")

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = measure([sys.executable, "-c", CHILD, str(bench)], env=env)
    print(f"  install_deltas  {run.seconds:6.2f} s, {run.peak_mb:6.0f} MB ({run.cpu_seconds:.1f} s CPU)   "
          f"load {run.load}   {run.stdout.strip() or run.stderr.strip()[-300:]}")
    shutil.rmtree(bench / "store")
    shutil.copytree(bench / "store-v1", bench / "store")
    profile = subprocess.run([sys.executable, "-c", "import cProfile, pstats, sys; sys.argv = sys.argv[1:]; "
                              "cProfile.run(sys.argv[0], '" + str(bench / "profile") + "')", CHILD, str(bench)],
                             env=env, capture_output=True, text=True)
    if profile.returncode == 0:
        import pstats

        print("  where the time goes (cProfile of the same install, cumulative):")
        pstats.Stats(str(bench / "profile"), stream=sys.stdout).sort_stats("cumulative").print_stats(
            r"chain|delta|envelope|store|model|index|method 'serialize'|method 'deserialize'", 16)
    else:
        print("  profile failed:", profile.stderr.strip()[-300:])
    return 0


def _meta(database: bytes):
    conn = sqlite3.connect(":memory:")
    conn.deserialize(database)
    try:
        return conn.execute("SELECT key, value FROM meta").fetchall()
    finally:
        conn.close()


def _group_key(database: bytes) -> tuple[str, bytes]:
    from backup_operator.snapshot import deltafile
    from backup_operator.snapshot import format as F

    return deltafile.parse_group_key(dict(_meta(database))[F.META_DELTA_KEY])


if __name__ == "__main__":
    sys.exit(main())
