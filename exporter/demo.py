"""``backup-operator-export demo``: the whole chain on the sample hospital, on one machine.

Lakeshore Regional Health (resources/demo, made by resources/demo/generate.py) goes through the real
pipeline into a local desktop's inbox; the DESKTOP program (``backup-operator``) is then run as a
separate process to enrol, trust, sync and search, exactly as on a switchboard desktop. Everything lives
under ``<exporter home>/demo/``::

    demo/exporter/   a demo exporter home of its own (key, config, recipients, state)
    demo/desktop/    the demo desktop's home (BACKUP_OPERATOR_HOME for the desktop program)
    demo/inbox/      the inbox both sides share
    demo/enrolled.json   the demo desktop's public key, so a re-run does not enrol again

Re-running is safe: the key, the enrolment and the trust are kept; each run publishes a new version.
This module must never touch the real exporter's key, config or recipients, and never import the
desktop package: the two programs talk only through files and the command line, as in production.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import tomli_w

from backup_operator.errors import ConfigError
from backup_operator.resources import resource_path
from exporter.home import ExporterHome

__all__ = ["run_demo", "demo_resources", "demo_config", "DEMO_PASSPHRASE", "DEMO_DESKTOP"]

DEMO_PASSPHRASE = "lakeshore-demo"  # protects the demo desktop's key file; it is a demo, not a secret
DEMO_DESKTOP = "demo-desktop"


def demo_resources() -> Path:
    """resources/demo in a checkout, an installed share folder or a bundle."""
    try:
        return resource_path("demo", "listings.csv").parent
    except FileNotFoundError:
        raise ConfigError("The demo hospital's data (resources/demo) is missing from this installation; "
                          "reinstall Backup Operator or run the demo from a source checkout.") from None


def demo_config(resources: Path) -> dict:
    """The demo exporter's config: the sample hospital's CSV files and rotas, checks on, one inbox."""
    def src(table: str, name: str) -> dict:
        return {"type": "csv", "name": name, "table": table, "path": str(resources / f"{table}.csv")}

    return {
        "export": {"description": "Lakeshore Regional Health (demo data)", "interval_minutes": 15,
                   "expires_after_hours": 72},
        "checks": {"max_drop_percent": 10, "coverage_days": 7, "coverage_tiers": [1, 2]},
        "publish": {"keep_snapshots": 3, "retries": 1, "backoff_s": 0.5},
        "sources": [
            src("listings", "demo staff directory"),
            src("contact_methods", "demo contact methods"),
            src("schedules", "demo on-call schedules"),
            {"type": "rota", "name": "demo rotas", "path": str(resources / "rotas.json")},
        ],
        "schedule": {"timezone": "America/Chicago",
                     "jobs": [{"name": "every 15 minutes", "cron": "*/15 * * * *"},
                              {"name": "nightly full export", "cron": "30 2 * * *"}]},
    }


def _desktop_command() -> list[str]:
    """The desktop program as a separate process, with the same Python (so it works before install too)."""
    return [sys.executable, "-m", "backup_operator"]


def _desktop_env(desktop_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["BACKUP_OPERATOR_HOME"] = str(desktop_home)
    env["BACKUP_OPERATOR_PASSPHRASE"] = DEMO_PASSPHRASE
    # The desktop package must be importable by the child even when not installed (a source checkout).
    spec = importlib.util.find_spec("backup_operator")
    if spec and spec.submodule_search_locations:
        root = str(Path(list(spec.submodule_search_locations)[0]).parent)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


class _Desktop:
    def __init__(self, home: Path, verbose: bool):
        self.home = home
        self.env = _desktop_env(home)
        self.verbose = verbose

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = _desktop_command() + list(args)
        if self.verbose:
            print(f"    $ backup-operator {' '.join(args)}")
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise ConfigError(f"The desktop program failed on 'backup-operator {' '.join(args)}' (exit "
                              f"{done.returncode}): {detail[-1] if detail else 'no message'}")
        return done


def _sample_queries(resources: Path) -> list[str]:
    """A department, a person typed surname-first, and a number by its last digits."""
    queries = ["cardiology"]
    with open(resources / "listings.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "person" and row["title"] == "Attending Physician":
                queries.append(f"{row['family_name']} {row['given_name']}".lower())
                break
    with open(resources / "contact_methods.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "extension" and row["listing_id"].startswith("p-"):
                queries.append(row["value"])
                break
    return queries


def run_demo(home: ExporterHome, *, gui: bool = True, verbose: bool = False,
             queries: list[str] | None = None) -> int:
    from exporter.pipeline import run_export
    from exporter.recipients import add_recipient, load_recipients
    from exporter.signing import create_signing_key, signer_public

    resources = demo_resources()
    root = home.demo
    demo_home = ExporterHome(root / "exporter").ensure()
    desktop_home = root / "desktop"
    inbox = root / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    print("Backup Operator demo: Lakeshore Regional Health (invented sample data)")
    print(f"  demo folder: {root}")

    # 1. The exporter's signing key and config (the demo's own, never the real exporter's).
    if demo_home.signing_key.exists():
        signer = signer_public(demo_home)
        print(f"1. Exporter signing key (kept from an earlier run): {signer.to_text()}")
    else:
        signer = create_signing_key(demo_home)
        print(f"1. Exporter signing key created: {signer.to_text()}")
    demo_home.config.write_text("# Written by 'backup-operator-export demo' on every run.\n"
                                + tomli_w.dumps(demo_config(resources)), encoding="utf-8")

    # 2. Enrol the demo desktop with the desktop program, as IT would on a real desktop.
    desktop = _Desktop(desktop_home, verbose)
    marker = root / "enrolled.json"
    public_key = None
    if marker.exists() and (desktop_home / "config.toml").exists():
        public_key = json.loads(marker.read_text(encoding="utf-8")).get("public_key")
    if public_key and any(r.key.to_text() == public_key for r in load_recipients(demo_home.recipients)):
        print(f"2. Demo desktop already enrolled: {public_key}")
    else:
        done = desktop.run("enroll", "--name", DEMO_DESKTOP, "--key-file", check=False)
        if done.returncode != 0:  # enrolled by a run that stopped halfway: make a fresh key
            done = desktop.run("enroll", "--name", DEMO_DESKTOP, "--key-file", "--replace")
        public_key = done.stdout.strip().splitlines()[-1].strip()
        add_recipient(demo_home.recipients, DEMO_DESKTOP, public_key, [str(inbox)], replace=True)
        marker.write_text(json.dumps({"public_key": public_key}) + "\n", encoding="utf-8")
        print(f"2. Demo desktop enrolled by the desktop program: {public_key}")

    # 3. The desktop pins the exporter's key and reads the demo inbox.
    desktop.run("trust", signer.to_text())
    listed = desktop.run("inbox", "list", check=False).stdout
    if str(inbox) not in listed:
        desktop.run("inbox", "add", str(inbox))
    print(f"3. Desktop trusts the exporter key and reads the inbox {inbox}")

    # 4. The real pipeline: read → check → build → seal → publish.
    outcome = run_export(demo_home, trigger="demo")
    c = outcome.counts
    print(f"4. Exported snapshot {outcome.version}: {c['listings']} listings, {c['contact_methods']} contact "
          f"methods, {c['oncall_schedules']} on-call schedules, {c['oncall_shifts']} shifts; "
          f"{(outcome.size_bytes or 0) // 1024} KiB sealed for {len(load_recipients(demo_home.recipients))} "
          f"desktop ({outcome.timer.describe()})")
    if outcome.failed_destinations:
        raise ConfigError(f"The demo inbox could not be written: {outcome.failed_destinations[0].message}")

    # 5. The desktop installs it, as its scheduled sync would.
    synced = desktop.run("sync")
    print(f"5. Desktop sync: {synced.stdout.strip().splitlines()[-1] if synced.stdout.strip() else 'done'}")

    # 6. Searches, printed by the desktop program.
    for query in queries or _sample_queries(resources):
        found = desktop.run("search", query, "--limit", "5")
        print(f"6. backup-operator search {query!r}")
        for line in found.stdout.rstrip().splitlines():
            print(f"     {line}")

    if not gui:
        print("Done. The demo desktop's home is "
              f"{desktop_home}; try: BACKUP_OPERATOR_HOME={desktop_home} "
              f"BACKUP_OPERATOR_PASSPHRASE={DEMO_PASSPHRASE} backup-operator search QUERY")
        return 0
    print("7. Opening the desktop window on the demo data (close it to finish) …")
    return subprocess.call(_desktop_command(), env=desktop.env)
