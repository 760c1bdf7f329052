"""One shared inbox read by many desktops: the snapshot is written once, each desktop installs it and
leaves its own receipt, and IT's status sees every one of them (docs/EXPORTER.md, "One shared inbox").

The desktops are the real desktop program, run as separate processes with their own homes and keys.
"""

from __future__ import annotations

import hashlib

import pytest

from exporter_support import run_desktop

from exporter.signing import signer_public


def _snapshot_files(inbox):
    """Everything in the inbox except the receipts folder, with each file's content hash."""
    return {p.relative_to(inbox).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in inbox.rglob("*") if p.is_file() and "receipts" not in p.relative_to(inbox).parts}


def _desktop(tmp_path, cli, signer: str, shared, name: str, *, folder: str | None = None):
    desk = tmp_path / (folder or name)
    key = run_desktop(desk, "enroll", "--name", name, "--key-file").stdout.strip().splitlines()[-1]
    run_desktop(desk, "trust", signer)
    run_desktop(desk, "inbox", "add", str(shared))
    code, out, err = cli("recipients", "add", folder or name, key)
    assert code == 0, err
    return desk


@pytest.mark.slow
def test_one_shared_inbox_many_desktops_receipts_per_desktop(demo_exporter, cli, tmp_path):
    """A share that every switchboard desktop reads: one file per snapshot, one receipt per desktop."""
    home = demo_exporter.home
    shared = tmp_path / "share" / "bo-inbox"
    shared.mkdir(parents=True)
    signer = signer_public(home).to_text()
    config = home.config.read_text(encoding="utf-8")
    home.config.write_text(config.replace("[publish]\n", f'[[destinations]]\nname = "switchboard share"\n'
                                          f'type = "folder"\npath = "{shared}"\n\n[publish]\n', 1),
                           encoding="utf-8")
    code, out, err = cli("recipients", "remove", "desk-a")
    assert code == 0, err
    desks = {name: _desktop(tmp_path, cli, signer, shared, name)
             for name in ("switch-1", "switch-2", "switch-3")}

    code, out, err = cli("run")
    assert code == 0, err + out
    assert "to 1 inboxes" in out  # written once, not once per desktop
    files = _snapshot_files(shared)
    assert sorted(files) == ["snapshot-000000000001.bosnap"]

    for name, desk in desks.items():
        synced = run_desktop(desk, "sync")
        assert "Installed snapshot version 1" in synced.stdout, (name, synced.stdout, synced.stderr)
        assert "Cardiology" in run_desktop(desk, "search", "cardiology").stdout, name
    # Desktops only ever add their own receipt: the snapshots in the share are untouched.
    assert _snapshot_files(shared) == files
    receipts = sorted(p.name for p in (shared / "receipts").iterdir())
    assert len(receipts) == 3, receipts

    code, out, err = cli("status")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("switch-")}
    assert set(rows) == set(desks)
    for name, row in rows.items():
        assert row.split()[1] == "1" and row.rstrip().endswith("ok"), out

    # Revoking one desktop: the next snapshot in the same share is sealed for the others only.
    code, out, err = cli("recipients", "remove", "switch-3")
    assert code == 0, err
    code, out, err = cli("run")
    assert code == 0, err + out
    for name in ("switch-1", "switch-2"):
        assert "Installed snapshot version 2" in run_desktop(desks[name], "sync").stdout
    revoked = run_desktop(desks["switch-3"], "sync", check=False)
    assert revoked.returncode != 0 and "not sealed for this desktop" in revoked.stderr, revoked.stderr
    # ... and it keeps answering from what it had.
    assert "Data as of" in run_desktop(desks["switch-3"], "search", "cardiology", check=False).stdout
