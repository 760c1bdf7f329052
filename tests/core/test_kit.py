"""kit-check: every way a kit can be unready is reported with its own message and exit code."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backup_operator import cli
from backup_operator.core.kit import run_kit_checks
from backup_operator.core.model import build_database
from backup_operator.snapshot.keys import DesktopKey


def _fresh_snapshot(desk, kit, version: int, *, recipients=None) -> None:
    """Install a snapshot created just now, so that only the check under test can fail."""
    now = datetime.now(timezone.utc)
    database = build_database(**kit.template_records(), snapshot_version=version, created_at=now,
                              expires_at=now + timedelta(days=3), expected_interval_s=3600, source="kit test")
    desk.drop(version, database=database, recipients=recipients)
    assert desk.store().sync([desk.inbox]).installed == [version]


def _run(capsys, *args) -> tuple[int, str]:
    code = cli.main(["kit-check", *args])
    return code, capsys.readouterr().out


def _line(out: str, check: str) -> str:
    return next(line for line in out.splitlines() if line[6:].startswith(check))


def test_a_ready_kit_passes_every_check(desk, kit, capsys):
    _fresh_snapshot(desk, kit, 4)
    code, out = _run(capsys)
    assert code == 0, out
    assert out.strip().endswith("This kit is ready.")
    for check in ("key store", "exporter key", "snapshot present", "signature", "decrypts", "data age", "PDF"):
        assert _line(out, check).startswith("ok"), out


def test_stale_data_fails_with_its_own_code(desk, kit, capsys):
    desk.drop(2)  # the template's data is from March 2026: long expired
    assert desk.store().sync([desk.inbox]).installed == [2]
    code, out = _run(capsys)
    assert code == 31
    line = _line(out, "data age")
    assert line.startswith("FAIL") and "expired" in line and "backup-operator sync" in line
    assert "NOT ready" in out


def test_age_limit_is_measured_against_the_snapshot_time(desk, kit):
    desk.drop(3)
    desk.store().sync([desk.inbox])
    created = kit.created_at(3)
    young = run_kit_checks(desk.desktop, now=created + timedelta(hours=2), max_age=timedelta(hours=3))
    old = run_kit_checks(desk.desktop, now=created + timedelta(hours=4), max_age=timedelta(hours=3))
    assert [r.ok for r in young if r.name == "data age"] == [True]
    aged = [r for r in old if r.name == "data age"][0]
    assert not aged.ok and aged.exit_code == 31 and "4.0 h old" in aged.detail


def test_missing_snapshot(desk, capsys):
    code, out = _run(capsys)
    assert code == 30
    assert _line(out, "snapshot present").startswith("FAIL") and "backup-operator sync" in out


def test_tampered_snapshot(desk, kit, capsys):
    _fresh_snapshot(desk, kit, 5)
    installed = desk.snapshots / f"{5:012d}.bosnap"
    data = bytearray(installed.read_bytes())
    data[len(data) // 2] ^= 0x40
    installed.write_bytes(bytes(data))
    code, out = _run(capsys)
    assert code == 13
    assert _line(out, "signature").startswith("FAIL") and "altered" in _line(out, "signature")


def test_snapshot_not_sealed_for_this_kit(desk, kit, capsys):
    # Installed while this kit still had its key, then the kit was re-enrolled with a new key.
    _fresh_snapshot(desk, kit, 6)
    kit.make_home(desk.home, DesktopKey.generate(), desk.signer.public, desk.inbox, "desk-a")
    code, out = _run(capsys)
    assert code == 15
    assert _line(out, "decrypts").startswith("FAIL") and "recipients add" in _line(out, "decrypts")


def test_wrong_passphrase(desk, kit, capsys, monkeypatch):
    _fresh_snapshot(desk, kit, 7)
    monkeypatch.setenv("BACKUP_OPERATOR_PASSPHRASE", "not the passphrase")
    code, out = _run(capsys)
    assert code == 21
    assert _line(out, "key store").startswith("FAIL") and "passphrase" in _line(out, "key store")
    assert _line(out, "decrypts").startswith("FAIL")


@pytest.mark.parametrize("missing", ["key file", "trust"])
def test_unenrolled_or_untrusting_kit(desk, capsys, missing):
    if missing == "key file":
        (desk.home / "desktop-key.json").unlink()
        expected = 20
    else:
        d = desk.desktop
        d.config.trusted_signers = []
        d.save()
        expected = 23
    code, out = _run(capsys)
    assert code == expected, out
