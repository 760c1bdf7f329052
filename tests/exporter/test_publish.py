"""Publishing: every inbox on its own, retries with backoff, a full disk, pruning, SFTP, receipts, status."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from backup_operator.core.model import format_utc

from exporter.config import DestinationConfig, PublishSettings, parse_config
from backup_operator.errors import PublishFailed
from exporter.publish import publish_all, publish_one, resolve_destinations, snapshot_filename
from exporter.recipients import Recipient, load_recipients
from exporter.state import State

from exporter_support import enrol


def receipt(inbox, name, version, key, *, ago=timedelta(minutes=3)):
    """The receipt a desktop leaves, signed with its enrolment key (an unsigned one is only 'unverified')."""
    from backup_operator.core.store import receipt_bytes

    folder = inbox / "receipts"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_bytes(receipt_bytes(desktop=name, public_key=key.public.to_text(), version=version,
                                                        installed_at=datetime.now(timezone.utc) - ago, key=key))


def test_one_failing_inbox_never_blocks_the_others(demo_exporter, cli, tmp_path):
    enrol(cli, demo_exporter, "desk-b", tmp_path / "inbox-b")
    enrol(cli, demo_exporter, "desk-c", tmp_path / "inbox-c")
    (tmp_path / "inbox-b").rmdir()  # an unmounted share
    code, out, err = cli("run")
    assert code == 53
    assert f"written to 2 of 3 inboxes; not to {tmp_path / 'inbox-b'}" in err
    assert "does not exist or is not reachable" in out
    assert [p.name for p in demo_exporter.snapshots("desk-a")] == ["snapshot-000000000001.bosnap"]
    assert [p.name for p in demo_exporter.snapshots("desk-c")] == ["snapshot-000000000001.bosnap"]
    state = State(demo_exporter.home.state)
    run = state.runs()[0]
    assert run.result == "partial" and "inbox-b" in run.message
    results = {r["destination"]: r["ok"] for r in state.destination_results(run.id)}
    assert results == {str(tmp_path / "inbox-a"): 1, str(tmp_path / "inbox-b"): 0, str(tmp_path / "inbox-c"): 1}


def test_a_full_disk_fails_that_inbox_only(demo_exporter, cli, tiny_disk):
    inbox = tiny_disk / "inbox"
    inbox.mkdir()
    enrol(cli, demo_exporter, "kit-on-tiny-disk", inbox)
    code, out, err = cli("run")
    assert code == 53
    assert "is full" in out and str(tiny_disk) in out
    assert list(inbox.iterdir()) == []  # no partial file left behind
    assert demo_exporter.snapshots("desk-a")


class Flaky:
    """A destination that fails ``failures`` times, then works."""

    def __init__(self, failures):
        self.failures = failures
        self.written = []
        self.label = "flaky"

    def __call__(self, dest, timeout):
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection reset by peer")
        return self

    def write_snapshot(self, name, data):
        self.written.append(name)

    def prune(self, keep, protect):
        return []

    def read_receipts(self):
        return []

    def snapshot_versions(self):
        return []

    def close(self):
        pass


def test_retries_back_off_exponentially_then_succeed():
    flaky, waits = Flaky(failures=3), []
    dest = DestinationConfig(name="x", kind="folder", path="/nowhere")
    result = publish_one(dest, "snapshot-000000000007.bosnap", b"data", keep=3, retries=3, backoff_s=2.0,
                         timeout_s=1, sleep=waits.append, opener=flaky)
    assert result.ok and result.attempts == 4 and flaky.written == ["snapshot-000000000007.bosnap"]
    assert waits == [2.0, 4.0, 8.0]


def test_retries_give_up_with_the_last_reason():
    waits = []
    result = publish_one(DestinationConfig(name="x", kind="folder", path="/nowhere"), "f", b"", keep=3,
                         retries=2, backoff_s=1.0, timeout_s=1, sleep=waits.append, opener=Flaky(failures=9))
    assert not result.ok and result.attempts == 3 and waits == [1.0, 2.0]
    assert "connection reset by peer" in result.message


def test_a_slow_destination_does_not_hold_up_the_others():
    """Destinations are written in parallel: the slow one is still busy when the fast one is written."""
    import threading

    fast_written = threading.Event()

    class Slow(Flaky):
        def write_snapshot(self, name, data):
            # Written one after the other, this would wait for the fast one forever (and fail).
            assert fast_written.wait(30)
            super().write_snapshot(name, data)

    class Fast(Flaky):
        def write_snapshot(self, name, data):
            super().write_snapshot(name, data)
            fast_written.set()

    slow, fast = Slow(0), Fast(0)
    dests = [DestinationConfig(name="slow", kind="folder", path="/a"),
             DestinationConfig(name="fast", kind="folder", path="/b")]
    results = publish_all(b"x", 1, dests, PublishSettings(retries=0),
                          opener=lambda dest, timeout: slow if dest.name == "slow" else fast)
    assert [r.ok for r in results] == [True, True] and slow.written and fast.written


def test_a_lost_state_never_reuses_a_version(demo_exporter, cli):
    for _ in range(2):
        assert cli("run")[0] == 0
    demo_exporter.home.state.unlink()
    code, out, err = cli("run")
    assert code == 0 and "Snapshot 3:" in out


def test_receipts_are_read_back_and_status_flags_desktops_behind(demo_exporter, cli, tmp_path):
    enrol(cli, demo_exporter, "desk-b", tmp_path / "inbox-b")
    enrol(cli, demo_exporter, "desk-never", tmp_path / "inbox-n")
    assert cli("run")[0] == 0
    receipt(demo_exporter.inboxes["desk-a"], "desk-a", 1, demo_exporter.keys["desk-a"])
    assert cli("run")[0] == 0  # version 2: desk-a confirmed only 1 so far
    receipt(demo_exporter.inboxes["desk-b"], "desk-b", 2, demo_exporter.keys["desk-b"], ago=timedelta(hours=2))
    code, out, err = cli("status")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("desk-")}
    assert rows["desk-a"].split()[1] == "1" and "BEHIND (latest is 2)" in rows["desk-a"]
    assert rows["desk-b"].split()[1] == "2" and rows["desk-b"].rstrip().endswith("ok") and "2 h 00 min" in rows["desk-b"]
    assert "NO RECEIPT" in rows["desk-never"]
    assert "PUBLISHED snapshot 2" in out and "PUBLISHED snapshot 1" in out
    # Remembered: status still answers when the share is gone.
    for inbox in demo_exporter.inboxes.values():
        for path in inbox.rglob("*"):
            if path.is_file():
                path.unlink()
    code, out, err = cli("status", "--cached")
    assert "BEHIND (latest is 2)" in out


def test_unc_paths_and_destination_names_resolve():
    config = parse_config({"destinations": [{"type": "folder", "name": "share", "path": "\\\\fs\\bo\\inbox"}]})
    from backup_operator.snapshot.keys import DesktopKey

    key = DesktopKey.generate().public
    recipients = [Recipient("a", key, ["share", "\\\\fs2\\kits\\a", "D:\\BackupOperator\\inbox"]),
                  Recipient("b", key, ["share"])]
    dests = resolve_destinations(config, recipients)
    assert [d.path for d in dests] == ["\\\\fs\\bo\\inbox", "\\\\fs2\\kits\\a", "D:\\BackupOperator\\inbox"]


@pytest.mark.sshd
def test_sftp_inbox_with_checked_host_key_pruning_and_receipts(demo_exporter, cli, sshd, tmp_path):
    remote = tmp_path / "sftp-inbox"
    remote.mkdir()
    home = demo_exporter.home
    home.config.write_text(home.config.read_text().replace("[publish]\n", "[publish]\nkeep_snapshots = 2\n") +
                           f'\n[sftp]\nkey_file = "{sshd.client_key}"\nhost_keys = ["{sshd.host_key_line}"]\n',
                           encoding="utf-8")
    from backup_operator.snapshot.keys import DesktopKey

    key = DesktopKey.generate()
    url = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{remote}"
    assert cli("recipients", "add", "kit-1", key.public.to_text(), "--inbox", url)[0] == 0
    for _ in range(3):
        code, out, err = cli("run")
        assert code == 0, err + out
    assert sorted(p.name for p in remote.iterdir()) == [snapshot_filename(2), snapshot_filename(3)]
    assert not [p for p in remote.iterdir() if p.name.startswith(".tmp-")]
    receipt(remote, "kit-1", 3, key)
    code, out, err = cli("status")
    line = next(row for row in out.splitlines() if row.startswith("kit-1"))
    assert line.split()[1] == "3" and line.rstrip().endswith("ok")


@pytest.mark.sshd
def test_sftp_refuses_an_unknown_or_wrong_host_key(demo_exporter, cli, sshd, tmp_path):
    remote = tmp_path / "sftp-inbox"
    remote.mkdir()
    home = demo_exporter.home
    wrong = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    base = home.config.read_text()
    from backup_operator.snapshot.keys import DesktopKey

    url = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{remote}"
    assert cli("recipients", "add", "kit-1", DesktopKey.generate().public.to_text(), "--inbox", url)[0] == 0
    home.config.write_text(base + f'\n[sftp]\nkey_file = "{sshd.client_key}"\nhost_keys = ["{wrong}"]\n')
    code, out, err = cli("run")
    assert code == 53 and "host key does not match" in out and list(remote.iterdir()) == []
    home.config.write_text(base + f'\n[sftp]\nkey_file = "{sshd.client_key}"\nknown_hosts = "/dev/null"\n')
    code, out, err = cli("run")
    assert code == 53 and "host key is unknown" in out and "attempts" not in out  # not retried
    assert demo_exporter.snapshots("desk-a")  # the folder desktop got both snapshots meanwhile
    assert len(load_recipients(home.recipients)) == 2


def test_publish_failed_error_carries_results():
    assert PublishFailed("x", [1]).results == [1]
