"""The issue's "done when", end to end with the real programs as processes:

A journal written during a simulated outage on two desktops (one of them killed with kill -9 while saving,
again and again) is sent when the inbox comes back, imported once, merged and complete — into a CSV and
into PostgreSQL, twice with the same result; a forged, damaged or foreign file is refused by name. A drill
runs end to end and IT sees it in ``status --drills``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from backup_operator.errors import CorruptSealedFile, DrillNotPassed, UnknownSender
from backup_operator.snapshot.keys import DesktopKey

from exporter_support import demo_sources_toml
from site_database import PG_URL, reachable

KILL_TRIALS = 25

# Journals and drill receipts are signed with the desktop's Ed25519 enrolment key (issue 10's key store).
pytestmark = pytest.mark.skipif(not hasattr(DesktopKey, "can_sign"),
                                reason="needs the desktop signing key made at enrolment (issue 10)")


def desktop(home: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "BACKUP_OPERATOR_HOME": str(home), "BACKUP_OPERATOR_PASSPHRASE": "kit passphrase",
           "QT_QPA_PLATFORM": "offscreen"}
    env.pop("BACKUP_OPERATOR_SITE", None)
    done = subprocess.run([sys.executable, "-m", "backup_operator", *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=180)
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


@pytest.fixture
def site(home, cli, tmp_path):
    """An exporter with the demo hospital and two enrolled desktops, each with its own folder inbox."""
    code, out, err = cli("init")
    assert code == 0, err
    signer = out.strip().splitlines()[-1]
    home.config.write_text("[publish]\nretries = 0\n\n" + demo_sources_toml(), encoding="utf-8")
    desks = {}
    for name in ("switchboard-1", "switchboard-2"):
        desk_home, inbox = tmp_path / name, tmp_path / f"{name}-inbox"
        inbox.mkdir()
        key = desktop(desk_home, "enroll", "--name", name, "--key-file").stdout.strip().splitlines()[-1]
        desktop(desk_home, "trust", signer)
        desktop(desk_home, "inbox", "add", str(inbox))
        code, out, err = cli("recipients", "add", name, key, "--inbox", str(inbox))
        assert code == 0, err
        desks[name] = (desk_home, inbox)
    code, out, err = cli("run")
    assert code == 0, err + out
    for desk_home, _ in desks.values():
        assert "Installed snapshot version 1" in desktop(desk_home, "sync").stdout
    return desks


def _revisions(desk_home: Path) -> set[tuple[str, int]]:
    doc = json.loads(desktop(desk_home, "journal", "list", "--all", "--json").stdout)
    return {(e["entry_id"], r["revision"]) for j in doc for e in j["entries"] for r in e["revisions"]}


def _kill_trials(desk_home: Path, figures) -> list[str]:
    """``journal add`` processes killed with SIGKILL at random moments; returns the entries reported saved."""
    rng = random.Random(15)
    env = {**os.environ, "BACKUP_OPERATOR_HOME": str(desk_home)}
    saved, killed = [], 0
    for trial in range(KILL_TRIALS):
        proc = subprocess.Popen([sys.executable, "-m", "backup_operator", "journal", "add", "--caller",
                                 f"kill trial {trial}", "--message", f"message {trial}", "--action", "paged"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(rng.uniform(0.2, 3.0))  # before, during or after the save (the start alone takes ~0.5 s)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        out, _ = proc.communicate(timeout=60)
        if proc.returncode == 0 and "Saved entry" in out:
            saved.append(out.split("Saved entry ")[1].split()[0])
    figures("end-to-end journal add processes killed", {"trials": KILL_TRIALS, "killed": killed,
                                                        "reported saved": len(saved)})
    return saved


@pytest.mark.slow
def test_an_outage_journal_on_two_desktops_is_imported_once_merged_and_complete(site, home, cli, tmp_path, figures,
                                                                                 require):
    (one, inbox1), (two, inbox2) = site["switchboard-1"], site["switchboard-2"]
    # The outage: the share with the inboxes is gone.
    inbox1.rename(tmp_path / "share-offline-1")
    inbox2.rename(tmp_path / "share-offline-2")
    desktop(one, "journal", "add", "--caller", "Ward 7 nurse", "--for", "Dr Hart", "--message", "Bed 7 chest pain",
            "--action", "paged", "--time", "2026-03-07T14:05:00Z")
    first = desktop(two, "journal", "add", "--caller", "ED desk", "--message", "Pharmacy please",
                    "--action", "transferred", "--time", "2026-03-07T14:01:00Z").stdout.split("Saved entry ")[1].split()[0]
    desktop(two, "journal", "add", "--caller", "Front desk", "--message", "Visitor lost", "--time",
            "2026-03-07T14:30:00Z")
    desktop(two, "journal", "amend", first, "--message", "Pharmacy please, urgent", "--reason", "rang again")
    second = json.loads(desktop(two, "journal", "list", "--json").stdout)["entries"][1]["entry_id"]
    desktop(two, "journal", "withdraw", second, "--reason", "entered twice")
    saved_by_survivors = _kill_trials(one, figures)
    offline = desktop(one, "sync", check=False)
    assert "cannot be reached" in offline.stderr and not list(tmp_path.glob("*/journals"))

    # The share is back: the next sync sends each journal by itself.
    (tmp_path / "share-offline-1").rename(inbox1)
    (tmp_path / "share-offline-2").rename(inbox2)
    for desk_home in (one, two):
        assert "Sent the journal" in desktop(desk_home, "sync").stdout
    files = sorted(inbox1.glob("journals/*.bojournal")) + sorted(inbox2.glob("journals/*.bojournal"))
    assert len(files) == 2
    for path in files:
        assert b"Bed 7" not in path.read_bytes() and b"Pharmacy" not in path.read_bytes()

    on_desktops = {"switchboard-1": _revisions(one), "switchboard-2": _revisions(two)}
    ids = {e for e, _ in on_desktops["switchboard-1"]}
    lost = [s for s in saved_by_survivors if not any(e.startswith(s) for e in ids)]  # the CLI prints 8 characters
    assert lost == []

    merged = tmp_path / "merged.csv"
    code, out, err = cli("journal", "import", "--from-inboxes", "-o", str(merged))
    assert code == 0, err + out
    total = sum(len(v) for v in on_desktops.values())
    assert f"{total} distinct revisions" in out
    assert f"switchboard-2: 1 file, 2 entries (2 amended, 1 withdrawn), 4 revisions: 4 new, 0 already imported" in out
    rows = list(csv.DictReader(merged.open(encoding="utf-8")))
    assert {(r["desktop"], r["entry_id"], int(r["revision"])) for r in rows} == {
        (name, e, rev) for name, revs in on_desktops.items() for e, rev in revs}
    assert [r["call_time"] for r in rows] == sorted(r["call_time"] for r in rows)
    assert rows[0]["message"] == "Pharmacy please" and rows[0]["revision"] == "0"  # the original is kept
    first_bytes = merged.read_bytes()
    code, out, err = cli("journal", "import", *map(str, files), "-o", str(merged))
    assert code == 0 and f"{total} revisions in all, 0 added now" in out and "already imported" in out
    assert merged.read_bytes() == first_bytes  # importing twice gives the same result
    figures("journal import", {"desktops": 2, "files": 2, "revisions": total, "second import added": 0})

    ok, why = reachable(PG_URL)
    require(ok, f"postgresql: {why}")
    table = f"bo{os.urandom(4).hex()}_journal"
    try:
        for attempt in (1, 2):
            code, out, err = cli("journal", "import", "--from-inboxes", "--into", PG_URL, "--table", table)
            assert code == 0, err + out
            assert f"{total} revisions in all, {total if attempt == 1 else 0} added now" in out
        from sqlalchemy import create_engine, text
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            in_db = {(d, e, int(r)) for d, e, r in conn.execute(text(f"SELECT desktop, entry_id, revision FROM {table}"))}
        assert in_db == {(r["desktop"], r["entry_id"], int(r["revision"])) for r in rows}
    finally:
        from sqlalchemy import create_engine, text
        with create_engine(PG_URL).begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))

    # Refused by name, the others still imported: a damaged file, and one from a desktop IT removed.
    damaged = tmp_path / "damaged.bojournal"
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    code, out, err = cli("journal", "import", str(damaged), str(files[1]))
    assert code == CorruptSealedFile.exit_code and "REFUSED" in out and "1 of 2 journal files" in out
    code, out, err = cli("recipients", "remove", "switchboard-1")
    assert code == 0
    code, out, err = cli("journal", "import", str(files[0]))
    assert code == UnknownSender.exit_code and "not enrolled" in out


def _answers(desk_home: Path, seed: int, now: str, wrong: int = 0) -> str:
    """The right answers, computed from the installed snapshot the way the drill draws its questions."""
    import random as rnd

    from backup_operator.config import Desktop
    from backup_operator.core.drill import generate
    from backup_operator.core.model import parse_utc

    os.environ["BACKUP_OPERATOR_PASSPHRASE"] = "kit passphrase"
    snapshot = Desktop(desk_home).store().open_newest()
    try:
        questions = generate(snapshot.conn, parse_utc(now), rnd.Random(seed))
    finally:
        snapshot.close()
    lines = []
    for n, q in enumerate(questions):
        right = q.accepted_names[0] if q.accepted_names else q.accepted_numbers[0]
        lines.append("skip" if n < wrong else right)
    return "? cardiology\n" + "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_drill_runs_end_to_end_and_it_sees_it_in_status(site, cli, tmp_path, monkeypatch):
    desk_home, inbox = site["switchboard-1"]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    passed = desktop(desk_home, "drill", "--seed", "11", "--now", now, "--operator", "ana", "--report",
                     str(tmp_path / "drill.pdf"), stdin=_answers(desk_home, 11, now), check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Score: 5 of 5 right" in passed.stdout and "PASSED" in passed.stdout
    assert "sent to 1 inbox" in passed.stdout
    assert (tmp_path / "drill.pdf").read_bytes().startswith(b"%PDF")
    failed = desktop(desk_home, "drill", "--seed", "12", "--now", now, stdin=_answers(desk_home, 12, now, wrong=2),
                     check=False)
    assert failed.returncode == DrillNotPassed.exit_code and "Score: 3 of 5" in failed.stdout
    [receipt] = [p for p in inbox.glob("drills/*.json") if json.loads(p.read_text())["correct"] == 5]
    text = receipt.read_text()
    assert "Hart" not in text and "608-555" not in text  # scores and times, never directory data

    # A forged receipt (signed by another key) and a tampered one are shown as ignored, never counted.
    forged = json.loads(text)
    forged["correct"] = 0
    (inbox / "drills" / "tampered.json").write_text(json.dumps(forged))
    code, out, err = cli("status", "--drills")
    assert code == 0, err
    line = next(row for row in out.splitlines() if row.startswith("switchboard-1"))
    assert "NOT PASSED" in line and line.rstrip().endswith("2") and "3/5" in line
    assert next(row for row in out.splitlines() if row.startswith("switchboard-2")).split()[1] == "never"
    assert "ignored" in out and "tampered.json" in out
