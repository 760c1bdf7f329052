#!/usr/bin/env python3
"""A million listings, end to end: export from PostgreSQL, sync a desktop, first search, window open.

    python3 bench/desktop.py                          # 1,000,000 listings / 3,000,000 contact methods /
                                                      # 200,000 shifts, 50 desktops; tables dropped after
    python3 bench/desktop.py --prefix bench_scale --keep   # build once, reuse on the next run, keep
    python3 bench/desktop.py --listings 100000        # the 100k window goal
    python3 bench/desktop.py --steps export,check     # only some steps (export is needed by the desktop ones)
    python3 bench/desktop.py --prefix bench_scale --workdir W --steps sync,search,window --reuse-export
                                                      # again on the export a run with --workdir W left
    python3 bench/desktop.py --keyring ...            # the desktop's key in a key store (no scrypt), not a
                                                      # passphrase key file

Builds the directory inside PostgreSQL (``bench/sitedata.py``; tables ``PREFIX_*``, reused when they
already hold the right number of rows), then runs every step as its own process, the way IT and
operators run them, and takes each one's wall time and peak resident memory (``wait4``):

* ``export`` — ``backup-operator-export run`` for DESKTOPS enrolled desktops into one shared inbox,
  with the pipeline's own stage times from its log; peer: ``pg_dump --data-only | zstd -3`` of the
  same tables (a plain compressed dump: no checks, no snapshot, no encryption, no signature).
* ``check``  — ``backup-operator-export check``.
* ``sync``   — ``backup-operator sync`` on a freshly enrolled desktop (verify, decrypt, check, install).
* ``search`` — the first ``backup-operator search`` after the sync, for a name taken from the data;
  peer: SQLite FTS5 (unicode61, prefix queries) over the same snapshot's listings in a plain,
  unencrypted database file, queried by a fresh Python process — what an app without encryption,
  signature or typo tolerance would pay.
* ``window`` — ``backup-operator window --self-test QUERY`` under ``QT_QPA_PLATFORM=offscreen``: start
  of the process to the first result shown; its peak RSS bounds the open window's memory.

``sync``, ``search`` and ``window`` run ``--repeat`` times (default 3), in that order, each sync on a desktop
with nothing installed; each figure is the median, and every run is listed beside it. A single cold start
on this virtual machine varies by 0.3 s and more: the kernel time of touching fresh memory does.

Each figure is printed beside its goal (issue 12; the 100k window goal at 100k) and the load average
at the time. This is a benchmark, not a test: it asserts nothing. It never touches tables without its
prefix, and drops the tables it loaded at the end unless --keep (tables it found already loaded, such
as a shared ``bench_scale_*``, are never dropped).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sitedata  # noqa: E402

PASSPHRASE = "bench passphrase, not a secret"
GOALS_1M = {  # step -> (seconds, MB); from issue 12, for 1,000,000 listings
    "export": (30.0, 1536.0),
    "check": (10.0, None),
    "sync": (2.0, 1024.0),
    "search": (1.0, 700.0),
    "window": (2.0, 800.0),
}
GOALS_100K = {"window": (0.5, None)}


@dataclass
class Run:
    argv: list[str]
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str
    load: str
    cpu_seconds: float | None = None  # user + system: what the step costs whatever the machine's load


def load_average() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def measure(argv: list[str], *, env: dict | None = None, stdin: str | None = None) -> Run:
    """Run one process to its end; its wall time and peak RSS.

    The peak comes from GNU time (``/usr/bin/time -f %M``), which forks the process from its own small
    image: ``wait4`` from this process would report at least this process's own peak, because a child
    made by (v)fork + exec inherits its parent's high-water mark.
    """
    load = load_average()
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.TemporaryDirectory() as tmp:
        out, err, inp, peak = (Path(tmp) / name for name in ("out", "err", "in", "peak"))
        inp.write_text(stdin or "")
        wrapped = [gnu_time, "-f", "%M %U %S", "-o", str(peak), *argv] if gnu_time else argv
        with open(inp, "rb") as i, open(out, "wb") as o, open(err, "wb") as e:
            t0 = time.perf_counter()
            proc = subprocess.Popen(wrapped, stdin=i, stdout=o, stderr=e, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if gnu_time:
            fields = (peak.read_text().strip().splitlines() or [""])[-1].split()
            if len(fields) == 3 and fields[0].isdigit():
                peak_kb, cpu = int(fields[0]), float(fields[1]) + float(fields[2])
        return Run(argv, seconds, peak_kb / 1024, proc.returncode, out.read_text(errors="replace"),
                   err.read_text(errors="replace"), load, cpu)


def verdict(value: float | None, goal: float | None) -> str:
    if goal is None or value is None:
        return ""
    return "met" if value <= goal else "NOT met"


class Report:
    def __init__(self, goals: dict):
        self.goals = goals
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, step: str, run: Run, note: str = "", *, seconds: float | None = None) -> None:
        seconds_goal, mb_goal = self.goals.get(step, (None, None))
        seconds = run.seconds if seconds is None else seconds
        figure = f"{seconds:6.2f} s, {run.peak_mb:6.0f} MB"
        if run.cpu_seconds is not None:
            figure += f" ({run.cpu_seconds:.1f} s CPU)"
        goal = []
        if seconds_goal is not None:
            goal.append(f"≤ {seconds_goal:g} s {verdict(seconds, seconds_goal)}")
        if mb_goal is not None:
            goal.append(f"≤ {mb_goal:g} MB {verdict(run.peak_mb, mb_goal)}")
        self.rows.append((step, figure, "; ".join(goal) or "(no goal at this size)", run.load))
        print(f"  {step:8} {figure}   goal: {'; '.join(goal) or '-'}   load {run.load}"
              + (f"\n           {note}" if note else ""), flush=True)
        if run.returncode != 0:
            print(f"           exit {run.returncode}: {run.stderr.strip()[-400:]}", flush=True)

    def summary(self) -> None:
        print("\nsummary (figure | goal | load average when measured)")
        for step, figure, goal, load in self.rows:
            print(f"  {step:8} | {figure} | {goal} | {load}")


def pg_dump_peer(url, tables: list[str], compressor: list[str]) -> tuple[float, int, str]:
    env = dict(os.environ, PGPASSWORD=url.password or "")
    dump = ["pg_dump", "--data-only", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "postgres", "-d", url.database or "postgres"]
    for table in tables:
        dump += ["-t", table]
    load = load_average()
    t0 = time.perf_counter()
    producer = subprocess.Popen(dump, stdout=subprocess.PIPE, env=env)
    packed = subprocess.run(compressor, stdin=producer.stdout, stdout=subprocess.PIPE, check=True)
    producer.stdout.close()
    producer.wait()
    return time.perf_counter() - t0, len(packed.stdout), load


def exporter_config(url: str, prefix: str, inbox: Path) -> str:
    queries = "\n".join(f'{k} = """{v}"""' for k, v in sitedata.exporter_queries(prefix).items())
    return (f'[export]\ndescription = "desktop benchmark"\n[checks]\ncoverage_days = 7\n'
            f'[publish]\nretries = 0\n'
            f'[[destinations]]\ntype = "folder"\npath = "{inbox}"\n'
            f'[[sources]]\ntype = "sql"\nname = "bench"\nurl = "{url}"\nnaive_times = "utc"\n'
            f'[sources.queries]\n{queries}\n')


def stage_seconds(log_text: str) -> str:
    """The pipeline's own stage times, from the last 'export N published' line of its log."""
    lines = [line for line in log_text.splitlines() if re.search(r"export \d+ (published|partial)", line)]
    if not lines:
        return ""
    stages = re.findall(r"(read|check|build|seal|publish) ([\d.]+)s", lines[-1])
    return ", ".join(f"{name} {float(s):.1f} s" for name, s in stages)


FTS5_QUERY_CHILD = r"""
import sqlite3, sys, time
t0 = time.perf_counter()
conn = sqlite3.connect(sys.argv[1])
words = ' '.join('"' + w.replace('"', '') + '"*' for w in sys.argv[2].split())
rows = conn.execute("SELECT l.display_name FROM fts JOIN listings l ON l.rowid = fts.rowid "
                    "WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT 10", (words,)).fetchall()
print(rows[0][0] if rows else "(nothing)", f"{time.perf_counter() - t0:.3f}")
"""


def build_fts5_peer(database: bytes, path: Path) -> None:
    """A plain SQLite file of the same snapshot with an FTS5 table over each listing's searchable text."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    source = sqlite3.connect(":memory:")
    source.deserialize(database)
    conn.execute("CREATE TABLE listings (id TEXT PRIMARY KEY, display_name TEXT, title TEXT, department TEXT,"
                 " site TEXT)")
    conn.executemany("INSERT INTO listings VALUES (?, ?, ?, ?, ?)",
                     source.execute("SELECT id, display_name, title, department, site FROM listings"))
    conn.execute("CREATE VIRTUAL TABLE fts USING fts5(name, title, department, site, numbers, "
                 "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
    conn.executemany(
        "INSERT INTO fts (rowid, name, title, department, site, numbers) VALUES (?, ?, ?, ?, ?, ?)",
        source.execute("SELECT l.rowid, l.display_name, l.title, l.department, l.site, "
                       "(SELECT group_concat(value, ' ') FROM contact_methods c WHERE c.listing_id = l.id) "
                       "FROM listings l"))
    conn.commit()
    conn.close()
    source.close()


def fts5_peer(tmp: Path, reuse: bool, query: str, ours: Run) -> str:
    """The FTS5 peer's line: a plain FTS5 copy of the installed snapshot, queried by a fresh process."""
    try:
        from backup_operator.config import Desktop

        os.environ.update(BACKUP_OPERATOR_PASSPHRASE=PASSPHRASE)
        if not (reuse and (tmp / "fts5.sqlite3").is_file()):  # else built from this snapshot
            (tmp / "fts5.sqlite3").unlink(missing_ok=True)
            opened = Desktop(tmp / "desktop").store().open_newest()
            database = opened.conn.serialize()
            opened.close()
            build_fts5_peer(database, tmp / "fts5.sqlite3")
            del database
        fts = measure([sys.executable, "-c", FTS5_QUERY_CHILD, str(tmp / "fts5.sqlite3"), query])
        return (f"FTS5 on a plain copy of the same snapshot: {fts.seconds:.2f} s, {fts.peak_mb:.0f} MB "
                f"(load {fts.load}), top: {fts.stdout.strip()}; ours (first run) / peer = "
                f"{ours.seconds / fts.seconds:.1f}x")
    except Exception as exc:  # the peer is information; its failure must not hide our figure
        return f"FTS5 peer failed: {type(exc).__name__}: {exc}"


def median_run(runs: list[Run], seconds: list[float] | None = None) -> tuple[Run, str]:
    """One Run standing for several: the median wall time (or of ``seconds``) and CPU, the highest peak
    RSS, the first failure's exit; and the line that lists every run."""
    walls = seconds or [r.seconds for r in runs]
    failed = next((r for r in runs if r.returncode != 0), runs[0])
    cpus = [r.cpu_seconds for r in runs if r.cpu_seconds is not None]
    merged = Run(failed.argv, statistics.median(walls), max(r.peak_mb for r in runs), failed.returncode,
                 failed.stdout, failed.stderr, runs[0].load if len(runs) == 1 else f"{runs[0].load} … {runs[-1].load}",
                 statistics.median(cpus) if cpus else None)
    listed = (f"median of {len(runs)} runs: " + ", ".join(f"{w:.2f}" for w in walls) + " s"
              if len(runs) > 1 else "")
    return merged, listed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--listings", type=int, default=1_000_000)
    parser.add_argument("--desktops", type=int, default=50)
    parser.add_argument("--prefix", help="table prefix (default: bench_scale_ and a random suffix); "
                                         "tables that already hold the right counts are reused")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL tables this run loaded for the next run "
                        "(tables it found already loaded are always kept)")
    parser.add_argument("--steps", default="export,check,sync,search,window",
                        help="comma-separated subset of export,check,sync,search,window")
    parser.add_argument("--workdir", help="keep the exporter and desktop homes here (emptied first) to look "
                                          "at or re-run steps by hand; default: a temporary folder")
    parser.add_argument("--query", help="what the first search types (default: a person taken from the data)")
    parser.add_argument("--keyring", action="store_true",
                        help="enrol the desktop with its key in a key store (bench/bench_keyring.py, a plain file "
                             "standing in for the OS store: no passphrase, no scrypt) instead of a passphrase key "
                             "file; pass it again with --reuse-export")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="run sync, search and window N times each, in that order, each sync on a desktop "
                             "with nothing installed (default 3); each figure is the median, every run listed: "
                             "one cold start on this virtual machine varies by 0.3 s and more")
    parser.add_argument("--reuse-export", action="store_true",
                        help="with --workdir: keep the snapshot, exporter and desktop a previous run left there "
                             "(no enrolment, no export; the desktop's installed snapshots are removed first, so "
                             "sync starts fresh): the desktop steps again in seconds instead of minutes")
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    reuse = args.reuse_export
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    if reuse and not (args.workdir and list((Path(args.workdir) / "inbox").glob("*.bosnap"))
                      and (Path(args.workdir) / "desktop" / "config.toml").is_file()):
        parser.error("--reuse-export needs --workdir holding a previous run's inbox/*.bosnap and desktop/")
    if reuse and "export" in steps:
        parser.error("--reuse-export runs no export; leave export out of --steps")
    prefix = args.prefix or f"bench_scale_{secrets.token_hex(3)}"

    import psycopg2
    from sqlalchemy.engine import make_url

    from backup_operator.snapshot.keys import DesktopKey, DesktopPublicKey
    from exporter.home import ExporterHome
    from exporter.recipients import Recipient, save_recipients
    from exporter.signing import create_signing_key

    url = make_url(args.url)
    dsn = args.url.replace("postgresql+psycopg2://", "postgresql://")
    goals = GOALS_1M if args.listings >= 1_000_000 else GOALS_100K if args.listings <= 100_000 else {}
    bin_dir = Path(sys.executable).parent
    now = datetime.now(timezone.utc).replace(microsecond=0)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")

    loaded_here = False  # only tables this run loaded are dropped at the end
    conn = psycopg2.connect(dsn)
    try:
        want = sitedata.counts_for(args.listings)
        with conn.cursor() as cur:
            have = sitedata.describe(cur, prefix)
        loaded_here = have != want
        if not loaded_here:
            print(f"reusing {prefix}_*: {have}")
        else:
            t0 = time.perf_counter()
            have = sitedata.load(conn, prefix, args.listings, now)
            print(f"loaded {prefix}_*: {have} in {time.perf_counter() - t0:.1f} s (not part of any figure)")
        with conn.cursor() as cur:
            cur.execute(f"SELECT given, family FROM {prefix}_people WHERE kind = 'person' "
                        f"ORDER BY id OFFSET %s LIMIT 1", (args.listings // 2,))
            given, family = cur.fetchone()
        query = args.query or f"{family.lower()} {given.lower()}"

        report = Report(goals)
        with contextlib.ExitStack() as stack:
            if args.workdir:
                tmp = Path(args.workdir)
                if tmp.exists() and not reuse:
                    shutil.rmtree(tmp)
                tmp.mkdir(parents=True, exist_ok=True)
            else:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bo-bench-desktop-")))
            inbox = tmp / "inbox"
            inbox.mkdir(exist_ok=True)
            env = dict(os.environ, BACKUP_OPERATOR_HOME=str(tmp / "desktop"),
                       BACKUP_OPERATOR_PASSPHRASE=PASSPHRASE, QT_QPA_PLATFORM="offscreen")
            env.pop("BACKUP_OPERATOR_SITE", None)
            # Installed programs start from compiled bytecode (pip and the bundle compile it); a
            # PYTHONDONTWRITEBYTECODE environment would make every measured start compile ours again.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            if args.keyring:
                keyring_env = {"PYTHON_KEYRING_BACKEND": "bench_keyring.Keyring",
                               "BO_BENCH_KEYRING": str(tmp / "bench-keyring.json")}
                env.update(keyring_env, PYTHONPATH=os.pathsep.join(
                    filter(None, [str(ROOT / "bench"), env.get("PYTHONPATH")])))
                env.pop("BACKUP_OPERATOR_PASSPHRASE")
                os.environ.update(keyring_env)  # the FTS5 peer opens the snapshot in this process
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "backup_operator"),
                            str(ROOT / "exporter")], env=env, check=True)
            desktop_cli = [str(bin_dir / "backup-operator")]
            export_cli = [str(bin_dir / "backup-operator-export"), "--home", str(tmp / "exporter")]
            if reuse:  # the snapshot sealed for this desktop last time; sync starts from nothing installed
                shutil.rmtree(tmp / "desktop" / "snapshots", ignore_errors=True)
                shutil.rmtree(inbox / "receipts", ignore_errors=True)
                home = ExporterHome(tmp / "exporter")
            else:
                enrolled = subprocess.run(desktop_cli + ["enroll", *([] if args.keyring else ["--key-file"]),
                                                         "--name", "bench-desk-00"],
                                          env=env, capture_output=True, text=True, check=True)
                desk_key = DesktopPublicKey.from_text(re.search(r"bo-desktop-\S+", enrolled.stdout).group(0))
                home = ExporterHome(tmp / "exporter").ensure()
                signer = create_signing_key(home)
                others = [DesktopKey.generate().public for _ in range(args.desktops - 1)]
                save_recipients(home.recipients, [Recipient("bench-desk-00", desk_key, [])] +
                                [Recipient(f"bench-desk-{n:02d}", k, []) for n, k in enumerate(others, 1)])
                home.config.write_text(exporter_config(args.url, prefix, inbox), encoding="utf-8")
                subprocess.run(desktop_cli + ["trust", signer.to_text()], env=env, check=True,
                               capture_output=True)
                subprocess.run(desktop_cli + ["inbox", "add", str(inbox)], env=env, check=True,
                               capture_output=True)
            print(f"{args.listings:,} listings, {want['contact_methods']:,} contact methods, "
                  f"{want['shifts']:,} shifts, {args.desktops} desktops; query {query!r}")

            if not reuse and ("export" in steps or {"sync", "search", "window"} & steps):
                run = measure(export_cli + ["run"], env=env)
                sealed = sorted(inbox.glob("*.bosnap"))
                size = sealed[-1].stat().st_size if sealed else 0
                log_text = "".join(p.read_text(errors="replace") for p in sorted(home.logs.glob("*.log*")))
                seconds, packed, load = pg_dump_peer(url, sitedata.pg_tables(prefix),
                                                     ["zstd", "-3", "-q", "-c"])
                report.add("export", run,
                           f"peer: pg_dump --data-only | zstd -3: {seconds:.2f} s, {packed / 2**20:.1f} MiB "
                           f"(load {load}); export / peer = {run.seconds / seconds:.1f}x time, "
                           f"{size / max(packed, 1):.2f}x size\n"
                           f"           stages: {stage_seconds(log_text)}; sealed {size / 2**20:.1f} MiB")
            if "check" in steps:
                report.add("check", measure(export_cli + ["check"], env=env))
            runs: dict[str, list[Run]] = {"sync": [], "search": [], "window": []}
            shown_at: list[float | None] = []
            peer, window_text = "", ""
            for n in range({"sync", "search", "window"} & steps and args.repeat or 0):
                if n:  # the next sync starts, like the first, from nothing installed
                    shutil.rmtree(tmp / "desktop" / "snapshots", ignore_errors=True)
                    shutil.rmtree(inbox / "receipts", ignore_errors=True)
                runs["sync"].append(measure(desktop_cli + ["sync"], env=env))
                if "search" in steps:
                    runs["search"].append(measure(desktop_cli + ["search", query, "--limit", "5"], env=env))
                    if n == 0:
                        peer = fts5_peer(tmp, reuse, query, runs["search"][0])
                if "window" in steps:
                    run = measure(desktop_cli + ["window", "--self-test", query], env=env)
                    runs["window"].append(run)
                    # The figure is start of the process to the first result on screen (the self-test's
                    # own clock); the process's wall time also counts closing the window.
                    shown = re.search(r"\(([\d.]+) s after start\)", run.stdout)
                    shown_at.append(float(shown.group(1)) if shown else None)
                    window_text = f"{run.stdout.strip()} (process wall {run.seconds:.2f} s)"
            if runs["sync"]:
                report.add("sync", *median_run(runs["sync"]))
            if runs["search"]:
                top = next((line.strip() for line in runs["search"][0].stdout.splitlines()
                            if line.strip().startswith("1.")), "")
                run, listed = median_run(runs["search"])
                report.add("search", run, "\n           ".join(filter(None, [
                    listed, peer and f"peer: {peer}", f"our top: {top}"])))
            if runs["window"]:
                seconds = [s for s in shown_at if s is not None]
                median = statistics.median(seconds) if len(seconds) == len(shown_at) else None
                run, listed = median_run(runs["window"], shown_at if median is not None else None)
                report.add("window", run, f"{window_text}\n           {listed}", seconds=median)
        report.summary()
    finally:
        # Tables this run found already loaded are someone else's (the shared bench_scale_*): never dropped.
        if not args.keep and loaded_here:
            with conn.cursor() as cur:
                sitedata.drop(cur, prefix)
            conn.commit()
            print(f"dropped {prefix}_*")
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
