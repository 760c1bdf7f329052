"""What changed, on the exporter: the summary stored in each snapshot, the kept history, and ``diff``."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3

from backup_operator.core.changes import read_summary
from backup_operator.core.model import open_database
from backup_operator.core.outbox import exporter_recipient
from backup_operator.errors import VersionNotAvailable
from backup_operator.snapshot import envelope

from exporter.changes import history_versions, receiving_key

from exporter_support import DEMO, demo_sources_toml


def _edit_demo(folder):
    """A colleague's pager number changes and a new colleague arrives."""
    rows = list(csv.DictReader(open(folder / "contact_methods.csv", newline="", encoding="utf-8")))
    changed = next(r for r in rows if r["kind"] == "pager")
    old_value = changed["value"]
    changed["value"] = "9999"
    with open(folder / "contact_methods.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(folder / "listings.csv", "a", newline="", encoding="utf-8") as handle:
        handle.write("p-new-77,person,Quilla Zabriskie,Zabriskie,Quilla,,Attending,Cardiology,,,,,,,,\n")
    return changed["listing_id"], old_value


def _summary(exporter, desktop="desk-a"):
    conn = open_database(exporter.open_newest(desktop))
    version = int(conn.execute("SELECT value FROM meta WHERE key = 'snapshot_version'").fetchone()[0])
    return conn, read_summary(conn, version)


def test_each_snapshot_says_what_changed_since_the_last_one(demo_exporter, cli, tmp_path):
    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder)
    demo_exporter.home.config.write_text("[publish]\nretries = 0\n\n" + demo_sources_toml(folder), encoding="utf-8")
    code, out, err = cli("run")
    assert code == 0, err
    conn, first = _summary(demo_exporter)
    assert first.since_version is None and first.total == 0
    # The snapshot names the key desktops seal their journals to, and it is this exporter's.
    assert exporter_recipient(conn) == receiving_key(demo_exporter.home).public
    assert history_versions(demo_exporter.home) == [1]
    # The kept copy is sealed (no plaintext on the server's disk) and opens with the receiving key.
    kept = (demo_exporter.home.root / "history" / "snapshot-000000000001.bosnap").read_bytes()
    assert b"Cardiology" not in kept and b"SQLite format" not in kept

    listing_id, old_value = _edit_demo(folder)

    # diff before publishing: shows the change, publishes nothing
    code, out, err = cli("diff")
    assert code == 0, err
    assert "From version 1 to the sources now (not published)" in out
    assert "1 number change, 1 listing added" in out
    assert "9999" in out and "Quilla Zabriskie" in out
    assert len(demo_exporter.snapshots("desk-a")) == 1 and history_versions(demo_exporter.home) == [1]
    code, out, err = cli("diff", "--json")
    doc = json.loads(out)
    assert doc["counts"] == {"numbers": 1, "added": 1} and doc["since_version"] == 1

    code, out, err = cli("run")
    assert code == 0, err
    conn, second = _summary(demo_exporter)
    assert second.since_version == 1 and second.counts == {"numbers": 1, "added": 1}
    numbers = next(c for c in second.items if c.kind == "numbers")
    assert numbers.listing_id == listing_id and old_value in numbers.before and "9999" in numbers.after
    assert history_versions(demo_exporter.home) == [1, 2]

    code, out, err = cli("diff", "1", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["counts"] == {"numbers": 1, "added": 1}
    code, out, err = cli("diff", "2")
    assert code == 0 and "nothing changed" in out

    code, out, err = cli("diff", "1", "7")
    assert code == VersionNotAvailable.exit_code and "not kept" in err and "kept: 1, 2" in err


def test_the_first_diff_says_there_is_nothing_to_compare_with(demo_exporter, cli):
    code, out, err = cli("diff")
    assert code == VersionNotAvailable.exit_code and "nothing to compare with" in err


def test_history_keeps_only_the_last_few_and_the_exporter_is_a_recipient(demo_exporter, cli):
    for _ in range(7):
        code, out, err = cli("run")
        assert code == 0, err
    assert history_versions(demo_exporter.home) == [3, 4, 5, 6, 7]
    blob = demo_exporter.snapshots("desk-a")[-1].read_bytes()
    header = envelope.peek_header(blob)
    own = receiving_key(demo_exporter.home).as_recipient().recipient_id
    assert own in header.recipients and len(header.recipients) == 2
    conn = sqlite3.connect(":memory:")
    conn.deserialize(demo_exporter.open_newest("desk-a"))
    assert conn.execute("SELECT value FROM meta WHERE key = 'changes_since'").fetchone()[0] == "6"
