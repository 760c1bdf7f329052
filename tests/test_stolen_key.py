"""A stolen exporter signing key, end to end on a desktop (issue 10, item 2; docs/DESIGN.md §6).

The story: the desktop trusts K0 (the installer's key) and K1 (pinned after a planned rotation K0 -> K1).
K1 is stolen. IT follows the documented procedure: a new key K2 on the exporter (``init --force``), then
``backup-operator trust --only K2`` on each desktop. From then on the thief, holding K1, cannot get a
snapshot installed: not signed by K1, not by a key K1 endorses, not by replaying the old endorsement
K0 -> K1, and no sync ever pins K1 again. Endorsements expire, and only a trusted key's count.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from backup_operator import cli
from backup_operator.config import Desktop
from backup_operator.errors import UntrustedSignature
from backup_operator.snapshot import envelope, keys
from backup_operator.snapshot import format as F



def fixed_bytes(label: str) -> bytes:
    return hashlib.sha256(b"test_stolen_key: " + label.encode()).digest()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


K0 = keys.SignerKey.from_raw(fixed_bytes("stolen story K0"))
K1 = keys.SignerKey.from_raw(fixed_bytes("stolen story K1"))
K2 = keys.SignerKey.from_raw(fixed_bytes("stolen story K2"))
THIEF = keys.SignerKey.from_raw(fixed_bytes("stolen story thief"))


def endorse(old, new, *, days=30):
    return envelope.Endorsement.make(old, new.public, expires_at=datetime.now(timezone.utc) + timedelta(days=days))


def attempt(desk, capsys, version, signer, endorsements=()):
    desk.clear_inbox()
    desk.drop(version, signer=signer, endorsements=list(endorsements))
    return run(capsys, "sync")


def pinned(desk) -> list[str]:
    return Desktop(desk.home).config.trusted_signers


def test_after_trust_only_the_stolen_key_never_gets_a_snapshot_installed(desk, capsys, figures, adversary):
    d = Desktop(desk.home)
    d.config.trusted_signers = [K0.public.to_text()]
    d.save()
    old_rotation = endorse(K0, K1)
    code, out, err = attempt(desk, capsys, 2, K1, [old_rotation])  # the planned rotation K0 -> K1
    assert code == 0 and "Now also trusting" in out and K1.public.to_text() in pinned(desk)

    # K1 is stolen. IT: a new key K2 on the exporter, then on each desktop:
    code, out, err = run(capsys, "trust", "--only", K2.public.to_text())
    assert code == 0, err
    assert pinned(desk) == [K2.public.to_text()]

    tries = {
        "signed by the stolen key": (K1, []),
        "stolen key + the old endorsement K0 -> K1 replayed": (K1, [old_rotation]),
        "thief's key endorsed by the stolen key": (THIEF, [endorse(K1, THIEF)]),
        "thief's key endorsed by the stolen key, via K0 -> K1": (THIEF, [old_rotation, endorse(K1, THIEF)]),
        "stolen key endorsed by K0 (withdrawn too)": (K1, [endorse(K0, K1, days=365)]),
    }
    installed = []
    for n, (what, (signer, chain)) in enumerate(tries.items()):
        code, out, err = attempt(desk, capsys, 99 + n, signer, chain)
        if code != UntrustedSignature.exit_code or "Installed" in out:
            installed.append(what)
        adversary.record("stolen signing key", "accepted wrongly" if what in installed else "refused", what)
        assert "Now also trusting" not in out
    figures("stolen key after 'trust --only': attacks tried / installed", f"{len(tries)} / {len(installed)}")
    assert installed == []
    assert pinned(desk) == [K2.public.to_text()]
    assert desk.store().high_water() == 2

    code, out, err = attempt(desk, capsys, 3, K2)  # the exporter's new key works
    assert code == 0 and "Installed snapshot version 3" in out


def test_untrust_withdraws_a_key_even_when_a_trusted_key_endorsed_it(desk, capsys, adversary):
    d = Desktop(desk.home)
    d.config.trusted_signers = [K0.public.to_text()]
    d.save()
    old_rotation = endorse(K0, K1)
    assert attempt(desk, capsys, 2, K1, [old_rotation])[0] == 0
    code, out, err = run(capsys, "untrust", K1.public.to_text())
    assert code == 0 and "no longer trusts" in out
    assert pinned(desk) == [K0.public.to_text()]
    # Replaying the endorsement K0 -> K1 (K0 is still trusted, the endorsement is unexpired): refused.
    code, out, err = attempt(desk, capsys, 3, K1, [old_rotation])
    assert code == UntrustedSignature.exit_code and "withdrew" in err
    assert K1.public.to_text() not in pinned(desk)
    adversary.record("stolen signing key", "refused", "old endorsement replayed after untrust")
    # IT can take it back deliberately, and only deliberately.
    assert run(capsys, "trust", K1.public.to_text())[0] == 0
    assert attempt(desk, capsys, 3, K1)[0] == 0


def test_endorsements_expire_and_count_only_from_a_trusted_key(desk, capsys, adversary):
    new = keys.SignerKey.from_raw(fixed_bytes("stolen story planned"))
    expired = envelope.Endorsement.make(desk.signer, new.public,
                                        expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
    code, out, err = attempt(desk, capsys, 2, new, [expired])
    assert code == UntrustedSignature.exit_code and new.public.to_text() not in pinned(desk)
    # One made by the release before expiries (no expires_at, old message): refused too.
    legacy = envelope.Endorsement(new.public, desk.signer.public,
                                  desk.signer.sign(F.ENDORSEMENT_CONTEXT + new.public.to_text().encode()))
    assert attempt(desk, capsys, 2, new, [legacy])[0] == UntrustedSignature.exit_code
    # An expiry moved later by hand breaks the signature.
    good = endorse(desk.signer, new)
    moved = envelope.Endorsement(good.new_signer, good.by_signer, good.signature, "2099-01-01T00:00:00Z")
    assert attempt(desk, capsys, 2, new, [moved])[0] == UntrustedSignature.exit_code
    # By a key this desktop does not trust: refused.
    assert attempt(desk, capsys, 2, new, [endorse(THIEF, new)])[0] == UntrustedSignature.exit_code
    for what in ("expired endorsement", "endorsement without expiry", "expiry moved later", "untrusted endorser"):
        adversary.record("stolen signing key", "refused", what)  # each asserted above
    # Valid and unexpired, by the trusted key: accepted, and then pinned.
    code, out, err = attempt(desk, capsys, 2, new, [good])
    assert code == 0 and new.public.to_text() in pinned(desk)
    doc = good.to_json()
    assert set(doc) == {"new_signer", "by_signer", "expires_at", "signature"}
    assert envelope.Endorsement.from_json(json.loads(json.dumps(doc))) == good
