"""The exporter's signing key: created once by ``init``, loaded for every export.

The key is a PEM file in the exporter home, mode 0600, optionally encrypted with the passphrase in
``BACKUP_OPERATOR_EXPORT_PASSPHRASE``. Desktops pin its public half (``bo-signer-...``).

This module must never print, log or return the private key except as the PEM it writes, and never
overwrite an existing key unless told to (a lost key means re-pinning every desktop).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from backup_operator.errors import ConfigError, KeyProblem
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import format as F
from backup_operator.snapshot.envelope import Endorsement
from backup_operator.snapshot.keys import SignerKey, SignerPublicKey

from exporter.home import ExporterHome

__all__ = ["PASSPHRASE_ENV", "create_signing_key", "load_signing_key", "signer_public", "rotate_signing_key",
           "load_endorsements"]

PASSPHRASE_ENV = "BACKUP_OPERATOR_EXPORT_PASSPHRASE"


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


def create_signing_key(home: ExporterHome, *, force: bool = False) -> SignerPublicKey:
    home.ensure()
    if home.signing_key.exists() and not force:
        raise ConfigError(f"A signing key already exists at {home.signing_key}; desktops have pinned it. "
                          "Use --force only if you mean to replace it (every desktop must then trust the "
                          "new key).")
    key = SignerKey.generate()
    atomic_write(home.signing_key, key.to_pem(_passphrase()), mode=0o600)
    return key.public


def load_signing_key(home: ExporterHome) -> SignerKey:
    try:
        pem = home.signing_key.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"There is no signing key in {home.root}; run 'backup-operator-export init' "
                          "first.") from None
    try:
        return SignerKey.from_pem(pem, _passphrase())
    except KeyProblem as exc:
        raise type(exc)(f"{exc} Set {PASSPHRASE_ENV} to the passphrase given at init.") from None


def signer_public(home: ExporterHome) -> SignerPublicKey:
    return load_signing_key(home).public


def load_endorsements(home: ExporterHome) -> list[Endorsement]:
    """The chain from every earlier signing key to the current one (empty before the first rotation)."""
    try:
        doc = json.loads(home.endorsements.read_text(encoding="utf-8"))
        # Endorsements made before they expired (no expires_at) are no longer valid anywhere: left out.
        return [Endorsement.from_json(item) for item in doc if not isinstance(item, dict) or "expires_at" in item]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{home.endorsements} is damaged ({exc}); restore it from a backup, or re-pin "
                          "the current key on every desktop (backup-operator trust).") from exc


def rotate_signing_key(home: ExporterHome, *, valid_days: int = F.ENDORSEMENT_DEFAULT_DAYS,
                       ) -> tuple[SignerPublicKey, SignerPublicKey, str]:
    """Replace the signing key by a new one that the old one endorses; return (old, new, expiry).

    Desktops that trust the old key accept snapshots signed by the new key through the endorsement carried
    in every snapshot (docs/FORMAT.md §9), until it expires, and then pin the new key themselves. A desktop
    that does not sync before then needs 'backup-operator trust NEW'. Earlier endorsements that have
    expired are dropped from the chain. Planned rotation only: after a stolen key, see docs/DESIGN.md §6.
    """
    if not 1 <= valid_days <= 366:
        raise ConfigError("An endorsement is valid for 1 to 366 days.")
    old = load_signing_key(home)
    new = SignerKey.generate()
    endorsement = Endorsement.make(old, new.public, valid_for=timedelta(days=valid_days))
    chain = [e for e in load_endorsements(home) if e.is_valid()] + [endorsement]
    home.retired_keys.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    # Order matters for a crash: keep the old key and the endorsement before the new key replaces it.
    atomic_write(home.retired_keys / f"signing-key-{stamp}.pem", old.to_pem(_passphrase()), mode=0o600)
    atomic_write(home.endorsements, (json.dumps([e.to_json() for e in chain], indent=2) + "\n").encode(),
                 mode=0o600)
    atomic_write(home.signing_key, new.to_pem(_passphrase()), mode=0o600)
    return old.public, new.public, endorsement.expires_at
