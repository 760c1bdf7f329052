"""Helpers shared by the exporter tests and their conftest.py: the CLI runner, enrolled desktops, paths.

This is a module with a unique name because test folders here are not packages.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from backup_operator.snapshot import envelope
from backup_operator.snapshot.keys import DesktopKey

from exporter.cli import main as cli_main
from exporter.home import ExporterHome
from exporter.signing import signer_public

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo"


class Cli:
    """Run ``backup-operator-export`` in-process and keep its exit code and output."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *args: str):
        code = cli_main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err


def demo_sources_toml(demo: Path = DEMO) -> str:
    return "\n".join([
        *(f'[[sources]]\ntype = "csv"\ntable = "{t}"\npath = "{demo / (t + ".csv")}"\n'
          for t in ("listings", "contact_methods", "schedules")),
        f'[[sources]]\ntype = "rota"\npath = "{demo / "rotas.json"}"\n',
    ])


@dataclass
class Exporter:
    """An initialised exporter home and the desktops enrolled in it (their private keys and inboxes)."""

    home: ExporterHome
    keys: dict[str, DesktopKey] = field(default_factory=dict)
    inboxes: dict[str, Path] = field(default_factory=dict)

    def snapshots(self, desktop: str) -> list[Path]:
        return sorted(self.inboxes[desktop].glob("snapshot-*.bosnap"))

    def open_newest(self, desktop: str) -> bytes:
        """The newest snapshot in that desktop's inbox, verified and decrypted as the desktop would."""
        blob = self.snapshots(desktop)[-1].read_bytes()
        header = envelope.verify(blob, [signer_public(self.home)])
        return envelope.decrypt(blob, header, self.keys[desktop])


def enrol(cli, setup: Exporter, name: str, inbox: Path) -> DesktopKey:
    key = DesktopKey.generate()
    inbox.mkdir(parents=True, exist_ok=True)
    code, out, err = cli("recipients", "add", name, key.public.to_text(), "--inbox", str(inbox))
    assert code == 0, err
    setup.keys[name] = key
    setup.inboxes[name] = inbox
    return key


def desktop_command() -> list[str]:
    return [sys.executable, "-m", "backup_operator"]


def have(program: str) -> bool:
    return shutil.which(program) is not None or Path("/usr/sbin", program).exists()
