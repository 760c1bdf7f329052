"""The desktop's outage commands as an operator on a kit without a screen runs them: real processes.

``journal add/list/amend/withdraw/new`` and ``changes``; the journal's export and its drop into the inbox
are in tests/exporter/test_journal_import.py, where the exporter reads them back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from backup_operator.core import changes as core_changes
from backup_operator.core.model import build_database
from backup_operator.errors import JournalError, VersionNotAvailable


def bo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backup_operator", *args], capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_journal_add_list_amend_withdraw_as_processes(desk, kit):
    done = bo("journal", "add", "--caller", "Ward 7 nurse", "--callback", "608-555-0101", "--for",
              kit.CANARIES[0], "--number", "4471", "--on-call", kit.CANARIES[0], "--message",
              "Bed 7 chest pain, please call back", "--action", "paged", "--operator", "ana",
              "--time", "2026-03-07T14:05:00Z")
    assert done.returncode == 0, done.stderr
    assert "Saved entry" in done.stdout and "number 1" in done.stdout
    entry_id = done.stdout.split("Saved entry ")[1].split()[0]
    done = bo("journal", "add", "--caller", "Front desk", "--message", "Visitor asks for pharmacy",
              "--action", "transferred", "--time", "2026-03-07T14:20:00Z")
    assert done.returncode == 0, done.stderr

    listed = bo("journal", "list")
    assert listed.returncode == 0, listed.stderr
    assert "2 entries" in listed.stdout
    assert listed.stdout.index("Bed 7 chest pain") < listed.stdout.index("Visitor asks")
    found = bo("journal", "list", "pharmacy")
    assert "1 matching" in found.stdout and "Visitor asks" in found.stdout and "Bed 7" not in found.stdout

    done = bo("journal", "amend", entry_id, "--message", "Bed 7 chest pain, paged twice", "--reason",
              "second page at 14:15")
    assert done.returncode == 0, done.stderr
    assert "the original is kept" in done.stdout
    done = bo("journal", "withdraw", entry_id[:4] + "zz", "--reason", "x")
    assert done.returncode == JournalError.exit_code and "no entry" in done.stderr
    done = bo("journal", "withdraw", entry_id, "--reason", "entered on the wrong desktop")
    assert done.returncode == 0, done.stderr

    history = bo("journal", "list", "--history")
    assert "WITHDRAWN" in history.stdout
    assert "Bed 7 chest pain, please call back" in history.stdout  # the original is still shown
    assert "entered on the wrong desktop" in history.stdout
    doc = json.loads(bo("journal", "list", "--json").stdout)
    [first] = [e for e in doc["entries"] if e["entry_id"].startswith(entry_id)]
    assert [r["revision"] for r in first["revisions"]] == [0, 1, 2] and first["withdrawn"]

    # Nothing the operator wrote is on disk in the clear.
    for path in desk.home.rglob("*"):
        if path.is_file():
            assert b"chest pain" not in path.read_bytes() and b"Ward 7" not in path.read_bytes()

    started = bo("journal", "new", "--title", "network outage")
    assert started.returncode == 0
    assert "No journal entries" not in bo("journal", "list", "--all").stdout
    assert "0 entries" in bo("journal", "list").stdout


def test_an_empty_entry_is_refused_in_one_line(desk):
    done = bo("journal", "add", "--action", "paged")
    assert done.returncode == JournalError.exit_code
    assert done.stderr.count("\n") == 1 and "not saved" in done.stderr


def test_hostile_text_is_shown_not_obeyed(desk):
    done = bo("journal", "add", "--caller", "x\u202eevil", "--message", "bell\x07 and \x1b[31mred")
    assert done.returncode == 0, done.stderr
    out = bo("journal", "list").stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "from xevil" in out and "bell and [31mred" in out  # dropped when saved, never stored


def _annotated(kit, version: int, previous: bytes | None, records: dict) -> bytes:
    db = build_database(**records, snapshot_version=version, created_at=kit.created_at(version),
                        expires_at=kit.created_at(version) + timedelta(days=3), expected_interval_s=900,
                        source="test")
    if previous is None:
        return db
    summary = core_changes.diff_databases(db, previous, version=version, since_version=version - 1,
                                          now=kit.created_at(1))
    import sqlite3
    conn = sqlite3.connect(":memory:")
    conn.deserialize(db)
    core_changes.store_summary(conn, summary)
    conn.commit()
    return conn.serialize()


def test_changes_reads_the_stored_summary_or_compares_installed_versions(desk, kit):
    records = kit.template_records()
    v1 = _annotated(kit, 1, None, records)
    records["contact_methods"][0]["value"] = "4479"  # the canary's pager
    v2 = _annotated(kit, 2, v1, records)
    records["listings"].append({"id": "p-new", "kind": "person", "display_name": "Quilla Zabriskie"})
    v3 = _annotated(kit, 3, v2, records)
    for version, db in ((1, v1), (2, v2)):
        desk.drop(version, database=db)
        assert bo("sync").returncode == 0
    done = bo("changes")
    assert done.returncode == 0, done.stderr
    assert "Version 2 since version 1: 1 number change." in done.stdout
    assert "pager 4471 → pager 4479" in done.stdout
    desk.drop(3, database=v3)
    assert bo("sync").returncode == 0
    assert "1 listing added" in bo("changes").stdout
    # Against version 1, which this desktop still holds: compared here, both changes.
    done = bo("changes", "--since", "1", "--json")
    doc = json.loads(done.stdout)
    assert doc["since_version"] == 1 and doc["counts"] == {"numbers": 1, "added": 1}
    done = bo("changes", "--since", "0")
    assert done.returncode == VersionNotAvailable.exit_code and "holds 3, 2, 1" in done.stderr


@pytest.mark.parametrize("command", [("journal",), ("journal", "add"), ("changes",)])
def test_help(command):
    done = bo(*command, "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: backup-operator")
