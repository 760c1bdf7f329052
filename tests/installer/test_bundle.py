"""Smoke test of the PyInstaller bundle: built once, then run as IT and a kit owner would run it:
enroll, trust, sync, search, the window (offscreen, through its self-test), verify and kit-check.

Everything runs from the built folder, not the source tree, in portable mode (a portable.txt marker
beside the executable), with HOME and TMPDIR pointed at empty folders to prove the kit writes nowhere
but beside itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backup_operator.core import model
from backup_operator.snapshot import envelope, keys

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

PASSPHRASE = "kit passphrase for the bundle test"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """Build the bundle into a temporary folder (about a minute), or skip if PyInstaller is missing."""
    pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (pip install -e '.[test]')")
    work = tmp_path_factory.mktemp("pyinstaller")
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath",
         str(work / "dist"), "--workpath", str(work / "build"), str(ROOT / "installer" / "backup_operator.spec")],
        check=True, cwd=ROOT, capture_output=True, text=True, timeout=900)
    folder = work / "dist" / "backup-operator"
    assert (folder / "backup-operator").is_file()
    # The kit runs from a copy far from the source tree, as a USB stick would.
    kit = tmp_path_factory.mktemp("kit") / "backup-operator"
    shutil.copytree(folder, kit, symlinks=True)
    (kit / "portable.txt").write_text("Backup Operator keeps everything in data/ beside this file.\n")
    return kit


def _run(kit: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(kit / "backup-operator"), *args], env=env, cwd=env["HOME"],
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}: {result.stdout}\n{result.stderr}")
    return result


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def test_bundle_runs_as_a_portable_kit(bundle: Path, tmp_path: Path, figures):
    home, tmp, inbox = tmp_path / "home", tmp_path / "tmp", tmp_path / "inbox"
    for folder in (home, tmp, inbox):
        folder.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp), "QT_QPA_PLATFORM": "offscreen",
           "BACKUP_OPERATOR_PASSPHRASE": PASSPHRASE, "LANG": "C.UTF-8"}

    enrolled = _run(bundle, env, "enroll", "--name", "kit-07")
    public = keys.DesktopPublicKey.from_text(enrolled.stdout.strip().splitlines()[-1])
    assert (bundle / "data" / "desktop-key.json").is_file(), "portable mode keeps the key beside the kit"

    signer = keys.SignerKey.generate()
    now = datetime.now(timezone.utc)
    database = model.build_database(
        listings=[{"id": "p1", "kind": "person", "display_name": "Okonkwo, Adaeze", "department": "Cardiology"}],
        contact_methods=[{"listing_id": "p1", "kind": "pager", "value": "608-555-0142", "rank": 1}],
        snapshot_version=5, created_at=now, expires_at=now + timedelta(days=2), expected_interval_s=900,
        source="bundle test")
    sealed = envelope.seal(database, snapshot_version=5, created_at=now, expires_at=now + timedelta(days=2),
                           recipients=[public], signer=signer)
    (inbox / "snapshot-000000000005.bosnap").write_bytes(sealed)

    # As the Windows installer does: the exporter key and the inbox come from site.toml beside the
    # executable, so the kit needs no 'trust' or 'inbox add' of its own.
    (bundle / "site.toml").write_text(f'trusted_signers = ["{signer.public.to_text()}"]\n'
                                      f"inboxes = ['{inbox}']\n", encoding="utf-8")
    assert str(inbox) in _run(bundle, env, "inbox", "list").stdout
    assert "Installed snapshot version 5" in _run(bundle, env, "sync").stdout
    started = time.perf_counter()
    found = _run(bundle, env, "search", "okonkwo")
    cold_start_to_result = time.perf_counter() - started
    assert "Okonkwo, Adaeze" in found.stdout and "608-555-0142" in found.stdout
    window = _run(bundle, env, "window", "--self-test", "okonkwo adaeze")
    assert "first result for 'okonkwo adaeze': Okonkwo, Adaeze" in window.stdout, window.stdout + window.stderr
    assert "This snapshot is good." in _run(bundle, env, "verify", str(inbox / "snapshot-000000000005.bosnap")).stdout
    check = _run(bundle, env, "kit-check")
    assert "This kit is ready." in check.stdout

    # The window installs in a child: the bundle's executable started again as its install worker, handed
    # the desktop (and its opened key) on standard input. Run it as the window would.
    from backup_operator.config import Desktop
    from backup_operator.core.install import WORKER_COMMAND, _installed_from, _request

    desktop = Desktop(bundle / "data", site={"inboxes": [str(inbox)], "trusted_signers": [signer.public.to_text()]})
    desktop.key(PASSPHRASE, interactive=False)
    newer = model.build_database(
        listings=[{"id": "p1", "kind": "person", "display_name": "Okonkwo, Adaeze", "department": "Cardiology"}],
        contact_methods=[{"listing_id": "p1", "kind": "pager", "value": "608-555-0143", "rank": 1}],
        snapshot_version=6, created_at=now, expires_at=now + timedelta(days=2), expected_interval_s=900,
        source="bundle test")
    (inbox / "snapshot-000000000006.bosnap").write_bytes(envelope.seal(
        newer, snapshot_version=6, created_at=now, expires_at=now + timedelta(days=2), recipients=[public],
        signer=signer))
    worker = subprocess.run([str(bundle / "backup-operator"), WORKER_COMMAND], input=_request(desktop),
                            env={k: v for k, v in env.items() if k != "BACKUP_OPERATOR_PASSPHRASE"},
                            cwd=env["HOME"], capture_output=True, timeout=120)
    assert worker.returncode == 0, worker.stderr.decode()
    assert _installed_from(json.loads(worker.stdout)).installed == [6]

    tampered = bytearray(sealed)
    tampered[len(tampered) // 2] ^= 0x01
    bad = inbox / "tampered.bosnap"
    bad.write_bytes(bytes(tampered))
    refused = _run(bundle, env, "verify", str(bad), check=False)
    assert refused.returncode == 13 and "signature" in refused.stdout

    # Portable mode writes nowhere but beside the kit: not in HOME, not in TMPDIR.
    assert _files(home) == set(), f"the kit wrote into HOME: {_files(home)}"
    assert _files(tmp) == set(), f"the kit wrote into TMPDIR: {_files(tmp)}"
    figures("bundle: size (MiB)", round(sum(f.stat().st_size for f in _files(bundle)) / 2**20))
    figures("bundle: cold start to the first search result, command line (s)", round(cold_start_to_result, 2))
    figures("bundle: window self-test", window.stdout.strip().splitlines()[-1])
