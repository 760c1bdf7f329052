"""Receipts are untrusted input (issue 10, item 1): every reproduction from the issue, as a test.

Anyone who can write to a share can write a receipt or plant a file in an inbox. None of it may steer the
exporter's version numbers, hide the other receipts, or show a desktop as up to date: only a receipt signed
by the desktop's enrolled key counts, and ``status`` shows every other as UNVERIFIED.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from backup_operator.core.model import format_utc
from backup_operator.core.store import receipt_bytes
from backup_operator.snapshot.keys import DesktopKey

from exporter.publish import MAX_VERSION, parse_receipt, prunable, snapshot_filename, version_of
from exporter.state import State

from exporter_support import enrol


def unsigned(inbox, name, version, *, public_key="", raw=None):
    folder = inbox / "receipts"
    folder.mkdir(exist_ok=True)
    text = raw if raw is not None else json.dumps({
        "desktop": name, "snapshot_version": version, "public_key": public_key,
        "installed_at": format_utc(datetime.now(timezone.utc) - timedelta(minutes=1))})
    (folder / f"{name}.json").write_text(text)


def signed(inbox, name, version, key):
    folder = inbox / "receipts"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_bytes(receipt_bytes(desktop=name, public_key=key.public.to_text(),
                                                        version=version, key=key))


def rows(out):
    return {line.split()[0]: line for line in out.splitlines() if line.startswith("desk-")}


def test_a_receipt_claiming_2_63_never_sets_the_version(demo_exporter, cli, adversary):
    inbox = demo_exporter.inboxes["desk-a"]
    unsigned(inbox, "desk-a", 9223372036854775806, public_key=demo_exporter.keys["desk-a"].public.to_text())
    signed(inbox, "desk-b", 9223372036854775806, DesktopKey.generate())
    for expected in (1, 2):
        code, out, err = cli("run")
        assert code == 0, err + out
        assert (inbox / snapshot_filename(expected)).is_file()
    assert State(demo_exporter.home.state).last_version() == 2
    code, out, err = cli("status")
    assert code == 0 and "Traceback" not in err
    # Above 2^53 it is not even a receipt: ignored, and the desktop has confirmed nothing.
    assert "NO RECEIPT" in rows(out)["desk-a"] and "9223372036854775806" not in out
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'receipt claiming 2^63-2 (unsigned)')
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'receipt claiming 2^63-2 (signed by an unknown key)')


def test_a_planted_snapshot_name_never_sets_the_version_and_pruning_keeps_working(demo_exporter, cli, adversary):
    inbox = demo_exporter.inboxes["desk-a"]
    home = demo_exporter.home
    home.config.write_text(home.config.read_text().replace("[publish]\n", "[publish]\nkeep_snapshots = 2\n"))
    (inbox / "snapshot-999999999999.bosnap").write_bytes(b"")
    (inbox / "snapshot-99999999999999999999.bosnap").write_bytes(b"")  # wider than any version
    for _ in range(4):
        code, out, err = cli("run")
        assert code == 0, err + out
    names = sorted(p.name for p in inbox.glob("*.bosnap"))
    assert names == sorted([snapshot_filename(3), snapshot_filename(4), "snapshot-999999999999.bosnap",
                            "snapshot-99999999999999999999.bosnap"])
    assert State(home.state).last_version() == 4
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'empty snapshot-999999999999.bosnap')
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'snapshot name of 20 digits')


def test_names_of_any_width_are_versions_and_pruning_counts_them_by_number():
    assert version_of("snapshot-7.bosnap") == 7 and version_of("snapshot-0000000000123.bosnap") == 123
    assert version_of("snapshot-1000000000000.bosnap") == 10**12  # 13 digits: still a version
    assert version_of(f"snapshot-{MAX_VERSION + 1}.bosnap") is None and version_of("snapshot-0.bosnap") is None
    names = ["snapshot-1.bosnap", "snapshot-000000000002.bosnap", snapshot_filename(10**12 + 1),
             snapshot_filename(10**12 + 2), "snapshot-999999999999999.bosnap"]
    assert prunable(names, 2, snapshot_filename(10**12 + 2)) == ["snapshot-000000000002.bosnap", "snapshot-1.bosnap"]


def test_a_receipt_of_1e400_hides_nothing(demo_exporter, cli, tmp_path, adversary):
    enrol(cli, demo_exporter, "desk-b", tmp_path / "inbox-a")  # both desktops read the same inbox
    assert cli("run")[0] == 0
    inbox = demo_exporter.inboxes["desk-a"]
    signed(inbox, "desk-b", 1, demo_exporter.keys["desk-b"])
    unsigned(inbox, "desk-a", 0, raw='{"desktop": "desk-a", "snapshot_version": 1e400, '
                                     '"installed_at": "2026-03-07T11:00:00Z", "public_key": ""}')
    code, out, err = cli("status")
    assert code == 0, err
    assert rows(out)["desk-b"].split()[1] == "1" and rows(out)["desk-b"].rstrip().endswith("ok")
    assert "NO RECEIPT" in rows(out)["desk-a"]
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'receipt with version 1e400')


def test_a_forged_receipt_never_shows_a_desktop_ok(demo_exporter, cli, tmp_path, adversary):
    enrol(cli, demo_exporter, "desk-b", tmp_path / "inbox-b")
    enrol(cli, demo_exporter, "desk-c", tmp_path / "inbox-c")
    assert cli("run")[0] == 0
    keys = demo_exporter.keys
    # Unsigned, claiming the desktop's own public key; signed by a key IT never enrolled; and a genuine
    # receipt altered after signing.
    unsigned(demo_exporter.inboxes["desk-a"], "desk-a", 1000000, public_key=keys["desk-a"].public.to_text())
    signed(demo_exporter.inboxes["desk-b"], "desk-b", 1, DesktopKey.generate())
    signed(demo_exporter.inboxes["desk-c"], "desk-c", 1, keys["desk-c"])
    path = demo_exporter.inboxes["desk-c"] / "receipts" / "desk-c.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "installed_at": format_utc(datetime.now(timezone.utc) - timedelta(days=5))}))
    code, out, err = cli("status")
    assert code == 0, err
    shown = rows(out)
    for name in ("desk-a", "desk-b", "desk-c"):
        assert "UNVERIFIED" in shown[name] and not shown[name].rstrip().endswith("ok"), shown[name]
        assert shown[name].split()[1] == "—"
    assert "unsigned receipt claims version 1000000" in shown["desk-a"]
    assert "bad signature" in shown["desk-b"] and "bad signature" in shown["desk-c"]
    # The genuine receipt, signed by the enrolled key, counts.
    signed(demo_exporter.inboxes["desk-c"], "desk-c", 1, keys["desk-c"])
    code, out, err = cli("status")
    assert rows(out)["desk-c"].split()[1] == "1" and rows(out)["desk-c"].rstrip().endswith("ok")
    # A signed receipt for a version this exporter never published is not a confirmation either.
    signed(demo_exporter.inboxes["desk-b"], "desk-b", 1000000, keys["desk-b"])
    code, out, err = cli("status")
    assert "UNVERIFIED" in rows(out)["desk-b"] and "signed receipt for a version never published claims version 1000000" in out
    # A forgery written over a genuine receipt does not erase the confirmation already read from it.
    unsigned(demo_exporter.inboxes["desk-c"], "desk-c", 1000000)
    code, out, err = cli("status")
    assert rows(out)["desk-c"].split()[1] == "1" and rows(out)["desk-c"].rstrip().endswith("ok")
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'unsigned receipt claiming ok at 1000000')
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'receipt signed by a key IT never enrolled')
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'genuine receipt altered after signing')
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'signed receipt ahead of the exporter')
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", 'forgery written over a genuine receipt')


def test_receipts_are_bounded_and_never_read_through_links(demo_exporter, cli, tmp_path, figures, adversary):
    assert cli("run")[0] == 0
    inbox = demo_exporter.inboxes["desk-a"]
    key = demo_exporter.keys["desk-a"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    signed(elsewhere, "desk-a", 1, key)
    (inbox / "receipts").symlink_to(elsewhere / "receipts")  # a receipts folder that is a link: not read
    code, out, err = cli("status")
    assert code == 0 and "NO RECEIPT" in rows(out)["desk-a"]
    (inbox / "receipts").unlink()
    (inbox / "receipts").mkdir()
    (inbox / "receipts" / "desk-a.json").symlink_to(elsewhere / "receipts" / "desk-a.json")
    (inbox / "receipts" / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(inbox / "receipts" / "fifo.json")
    (inbox / "receipts" / "huge.json").write_bytes(b" " * (1 << 20) + b"{}")
    code, out, err = cli("status")
    assert code == 0 and "NO RECEIPT" in rows(out)["desk-a"]
    cases = {
        "not JSON": b"\xff\xfe", "a list": b"[1]", "nested": b"[" * 100_000, "version 1.5": b'{"snapshot_version": 1.5}',
        "version true": b'{"desktop": "d", "snapshot_version": true, "installed_at": "2026-03-07T11:00:00Z"}',
        "version NaN": b'{"desktop": "d", "snapshot_version": NaN, "installed_at": "2026-03-07T11:00:00Z"}',
        "version 2^53+1": json.dumps({"desktop": "d", "snapshot_version": MAX_VERSION + 1,
                                      "installed_at": "2026-03-07T11:00:00Z"}).encode(),
        "version -1": b'{"desktop": "d", "snapshot_version": -1, "installed_at": "2026-03-07T11:00:00Z"}',
        "time not a time": b'{"desktop": "d", "snapshot_version": 1, "installed_at": "yesterday"}',
        "name too long": json.dumps({"desktop": "d" * 5000, "snapshot_version": 1,
                                     "installed_at": "2026-03-07T11:00:00Z"}).encode(),
        "too large": b'{"desktop": "d", "snapshot_version": 1, "installed_at": "2026-03-07T11:00:00Z", "x": "'
                     + b"a" * 20000 + b'"}',
    }
    accepted = [name for name, data in cases.items() if parse_receipt(data, "inbox") is not None]
    for name in cases:
        adversary.record("receipts (exporter reads)", "accepted wrongly" if name in accepted else "refused", name)
    for name in ("receipts folder is a link", "receipt is a link", "link to /dev/zero", "FIFO", "1 MiB receipt"):
        adversary.record("receipts (exporter reads)", "refused", name)  # each asserted above: NO RECEIPT
    figures("untrusted receipts: malformed cases tried / accepted", f"{len(cases)} / {len(accepted)}")
    assert accepted == []


def test_a_lost_state_continues_above_its_own_signed_snapshots_but_never_above_a_planted_one(demo_exporter, cli, adversary):
    inbox = demo_exporter.inboxes["desk-a"]
    for _ in range(2):
        assert cli("run")[0] == 0
    # Planted: names claiming higher versions, an empty file and a real snapshot renamed (its signed version
    # is 2, not its name's) and one signed by another key.
    (inbox / "snapshot-000000000050.bosnap").write_bytes(b"")
    (inbox / "snapshot-000000000040.bosnap").write_bytes((inbox / snapshot_filename(2)).read_bytes())
    demo_exporter.home.state.unlink()
    code, out, err = cli("run")
    assert code == 0 and "Snapshot 3:" in out, out  # above its own signed snapshot 2, ignoring 40 and 50
    adversary.record("receipts and inbox names (exporter versions, status)", "refused", "planted names above a lost state's counter")


def test_the_version_counter_never_passes_2_53(tmp_path):
    import sqlite3

    import pytest

    from backup_operator.errors import StorageError

    state = State(tmp_path / "state.sqlite")
    with sqlite3.connect(state.path) as conn:
        conn.execute("INSERT INTO counters(name, value) VALUES ('snapshot_version', ?)", (MAX_VERSION - 1,))
    assert state.allocate_version() == MAX_VERSION
    with pytest.raises(StorageError, match="out of range"):
        state.allocate_version()
    assert state.last_version() == MAX_VERSION
