"""Where the exporter keeps its state: one home folder on the application server.

``BACKUP_OPERATOR_EXPORT_HOME`` overrides the platform's data folder, so tests, the demo and a second
exporter on one machine stay apart. Everything the exporter owns lives here::

    config.toml          sources, checks, destinations, schedule (edited by IT; never rewritten)
    recipients.toml      enrolled desktops and their inboxes (written by ``recipients add/remove``)
    signing-key.pem      the Ed25519 signing key (mode 0600; optionally passphrase-protected)
    endorsements.json    after a key rotation: old keys vouching for newer ones (sent in every snapshot)
    retired-keys/        signing keys replaced by rotate-key (mode 0600), kept to endorse again if needed
    state.sqlite         snapshot version counter, run history, destination results, receipts
    exporter.lock        held while an export runs; serve.lock while ``serve`` runs
    logs/exporter.log    rotating log

This module must never create key material or read the config; it only names places.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["ExporterHome", "export_home"]

HOME_ENV = "BACKUP_OPERATOR_EXPORT_HOME"


@dataclass(frozen=True)
class ExporterHome:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def recipients(self) -> Path:
        return self.root / "recipients.toml"

    @property
    def signing_key(self) -> Path:
        return self.root / "signing-key.pem"

    @property
    def endorsements(self) -> Path:
        return self.root / "endorsements.json"

    @property
    def retired_keys(self) -> Path:
        return self.root / "retired-keys"

    @property
    def state(self) -> Path:
        return self.root / "state.sqlite"

    @property
    def run_lock(self) -> Path:
        return self.root / "exporter.lock"

    @property
    def serve_lock(self) -> Path:
        return self.root / "serve.lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def demo(self) -> Path:
        return self.root / "demo"

    def ensure(self) -> "ExporterHome":
        self.root.mkdir(parents=True, exist_ok=True)
        if os.name != "nt":
            # The home holds the signing key; nobody else on the server needs to list it.
            os.chmod(self.root, 0o700)
        return self


def export_home(explicit: str | os.PathLike | None = None) -> ExporterHome:
    if explicit:
        return ExporterHome(Path(explicit).expanduser())
    env = os.environ.get(HOME_ENV)
    if env:
        return ExporterHome(Path(env).expanduser())
    return ExporterHome(Path(platformdirs.user_data_dir("BackupOperatorExporter", appauthor=False)))
