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


@dataclass
class Sshd:
    """A real OpenSSH server on loopback, started by the tests (see the ``sshd`` fixture)."""

    port: int
    user: str
    client_key: Path
    host_key_line: str  # "ssh-ed25519 AAAA…" for the destination's host_keys
    root: Path


def start_sshd(root: Path):
    """Start /usr/sbin/sshd on a free loopback port; returns (Sshd, process) or (None, reason)."""
    import getpass
    import socket
    import subprocess

    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists() or not shutil.which("ssh-keygen"):
        return None, "OpenSSH server (sshd) or ssh-keygen is not installed"
    import os
    if os.geteuid() != 0:
        return None, "starting sshd needs root in this test setup"
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (root / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {root / 'host_key'}
PidFile {root / 'sshd.pid'}
AuthorizedKeysFile {root / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
""")
    proc = subprocess.Popen([sshd, "-D", "-e", "-o", "LogLevel=INFO", "-f", str(root / "sshd_config")],
                            stderr=subprocess.PIPE, text=True)
    # sshd says when it listens; wait for that line rather than for a guessed time.
    for line in proc.stderr:
        if "Server listening" in line:
            break
    else:
        proc.wait()
        return None, f"sshd did not start (exit {proc.returncode})"
    import threading

    # Keep draining sshd's log so a full pipe never stalls it.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    host = (root / "host_key.pub").read_text().split()
    return Sshd(port, getpass.getuser(), root / "client_key", f"{host[0]} {host[1]}", root), proc


DESKTOP_PASSPHRASE = "test desktop passphrase"


def run_desktop(desktop_home: Path, *args: str, check: bool = True):
    """The DESKTOP program (``backup-operator``) as a separate process, with its own home."""
    import os
    import subprocess

    env = dict(os.environ)
    env["BACKUP_OPERATOR_HOME"] = str(desktop_home)
    env["BACKUP_OPERATOR_PASSPHRASE"] = DESKTOP_PASSPHRASE
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run(desktop_command() + list(args), env=env, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"backup-operator {' '.join(args)} failed ({done.returncode}): "
                             f"{done.stderr}{done.stdout}")
    return done
