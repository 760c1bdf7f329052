#!/usr/bin/env python3
"""Where a background install holds Python's GIL: the window's typing stalls for as long as it does.

    python3 bench/install_gil.py                   # 100,000 listings (bench/window.py's directory)
    python3 bench/install_gil.py --runs 3 --late 5

Not a test: it asserts nothing. It installs a new snapshot with ``sync_and_open`` (what the window's
inbox watcher runs) on a worker thread, as the window does, while this script's main thread wakes
every millisecond; a wake ``--late`` ms or more behind is a stretch in which some other thread held
the GIL, and the install thread's line at that moment is printed (the call that just let go of it).
Also printed: the install's wall time, and the total time the main thread waited. Each run installs
twice: as the window does (the installing in a child process, only the opening of the new snapshot on
the worker thread) and, the peer, all of it on the worker thread (the window before the child process).
Uses bench/window.py's cached directory ($BENCH_CACHE), so it is built once for both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import window as bench_window  # noqa: E402 - the directory, its cache and the passphrase


def one_install(root: Path, late_ms: float, in_child: bool) -> tuple[list[tuple[float, float, str]], float, float]:
    from backup_operator.config import Desktop
    from backup_operator.core.install import install_from_inboxes, install_in_child
    from backup_operator.core.session import open_session, sync_and_open

    work = bench_window._fresh_home(root)
    try:
        desktop = Desktop(work / "home")
        desktop.key(bench_window.PASSPHRASE, interactive=False)
        showing = open_session(desktop)
        shutil.copy(root / "v2.bosnap", work / "inbox" / "snapshot-2.bosnap")
        ident: dict[str, int] = {}
        outcome: dict[str, object] = {}

        def install() -> None:
            ident["worker"] = threading.get_ident()
            outcome["done"] = sync_and_open(desktop, showing.version,
                                            install_in_child if in_child else install_from_inboxes)

        worker = threading.Thread(target=install)
        started = last = time.perf_counter()
        worker.start()
        stretches, waited = [], 0.0
        while worker.is_alive():
            time.sleep(0.001)
            now = time.perf_counter()
            gap = (now - last) * 1000
            waited += max(0.0, gap - 1.1)
            if gap >= late_ms:
                frame = sys._current_frames().get(ident.get("worker"))
                where = " < ".join(f"{f.name} ({Path(f.filename).name}:{f.lineno})"
                                   for f in reversed(traceback.extract_stack(frame)[-3:])) if frame else "?"
                stretches.append(((last - started) * 1000, gap, where))
            last = now
        worker.join()
        total = (time.perf_counter() - started) * 1000
        session = getattr(outcome.get("done"), "session", None)
        if session is None:
            raise SystemExit("the install did not happen")
        session.close()
        showing.close()
        return stretches, total, waited
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--late", type=float, default=6.0, help="report wakes this many ms late or more")
    args = parser.parse_args()
    os.environ.setdefault("BACKUP_OPERATOR_PASSPHRASE", bench_window.PASSPHRASE)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"bench/install_gil: {args.listings:,} listings; load before: {load}")
    root = bench_window.prepare(args.listings)
    for run in range(1, args.runs + 1):
        for in_child, how in ((True, "installed in a child (the window)"), (False, "peer: all on the worker")):
            stretches, total, waited = one_install(root, args.late, in_child)
            worst = max((s[1] for s in stretches), default=0.0)
            print(f"\nrun {run}, {how}: install {total:.0f} ms; the main thread waited {waited:.0f} ms in all; "
                  f"longest stretch {worst:.1f} ms")
            for at, gap, where in stretches:
                print(f"   at {at:6.0f} ms  {gap:6.1f} ms  {where}")
    print(f"\nload after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
