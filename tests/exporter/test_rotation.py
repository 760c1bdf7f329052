"""Planned signing-key rotation: desktops that pinned the old key move to the new one by themselves."""

from __future__ import annotations

import stat

import pytest

from backup_operator.config import Desktop
from backup_operator.errors import UntrustedSignature
from backup_operator.snapshot import envelope
from backup_operator.snapshot.keys import SignerKey, SignerPublicKey

from exporter.signing import load_endorsements, signer_public
from exporter_support import run_desktop


def _enrolled_desktop(tmp_path, cli, setup, signer_text: str):
    """A real desktop (separate process) enrolled with the exporter, pinning ``signer_text``."""
    home, inbox = tmp_path / "desktop", tmp_path / "inbox-d"
    inbox.mkdir()
    public = run_desktop(home, "enroll", "--name", "desk-d", "--key-file").stdout.strip().splitlines()[-1]
    code, _, err = cli("recipients", "add", "desk-d", public, "--inbox", str(inbox))
    assert code == 0, err
    run_desktop(home, "trust", signer_text)
    run_desktop(home, "inbox", "add", str(inbox))
    return home, inbox


def test_a_rotated_key_is_followed_by_desktops_that_pinned_the_old_one(demo_exporter, cli, tmp_path):
    old = signer_public(demo_exporter.home).to_text()
    home, _ = _enrolled_desktop(tmp_path, cli, demo_exporter, old)
    assert cli("run")[0] == 0
    assert "Installed snapshot version 1" in run_desktop(home, "sync").stdout

    code, out, err = cli("rotate-key")
    assert code == 0, err
    new = signer_public(demo_exporter.home).to_text()
    assert new != old and new in out and old in out
    retired = list(demo_exporter.home.retired_keys.glob("*.pem"))
    assert len(retired) == 1 and stat.S_IMODE(retired[0].stat().st_mode) == 0o600
    chain = load_endorsements(demo_exporter.home)
    assert [(e.by_signer.to_text(), e.new_signer.to_text()) for e in chain] == [(old, new)]

    assert cli("run")[0] == 0
    synced = run_desktop(home, "sync")
    assert "Installed snapshot version 2" in synced.stdout and new in synced.stdout
    assert new in Desktop(home).config.trusted_signers  # pinned by itself after a verified install

    # A second rotation: the chain old → new → newer still leads a desktop that only knew `old`.
    assert cli("rotate-key")[0] == 0
    newer = signer_public(demo_exporter.home)
    assert cli("run")[0] == 0
    blob = demo_exporter.snapshots("desk-a")[-1].read_bytes()
    assert envelope.verify(blob, [SignerPublicKey.from_text(old)]).signer == newer
    assert "Installed snapshot version 3" in run_desktop(home, "sync").stdout


def test_the_chain_only_helps_desktops_that_pinned_a_key_in_it(demo_exporter, cli):
    assert cli("rotate-key")[0] == 0
    assert cli("run")[0] == 0
    blob = demo_exporter.snapshots("desk-a")[-1].read_bytes()
    with pytest.raises(UntrustedSignature):
        envelope.verify(blob, [SignerKey.generate().public])
