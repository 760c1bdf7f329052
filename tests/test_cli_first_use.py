"""The desktop's first minutes on a new machine (issue 11, problem 7), through the real program.

* ``enroll`` on a machine with no key store makes a NEW key: it says so and asks for a new passphrase
  twice at a terminal (a real pseudo-terminal here, since getpass reads /dev/tty), and without a terminal
  it says how to choose one — never exit 21 "needs its passphrase", which means a key that exists.
* ``kit-check`` on an install without the window (no Qt) says the window is not installed, in one line
  per check, without a traceback. Qt is blocked by a ``sitecustomize`` that makes importing PySide6 fail,
  exactly as on a machine where it was never installed.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from backup_operator.config import KEY_FILE, PASSPHRASE_ENV, Desktop
from backup_operator.errors import ConfigError, WrongPassphrase

PROGRAM = [sys.executable, "-m", "backup_operator"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (PASSPHRASE_ENV, "BACKUP_OPERATOR_SITE")}
    # No OS key store on this machine: the keyring library finds no backend.
    env.update(BACKUP_OPERATOR_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", **extra)
    return env


def _read_until(fd: int, wanted: bytes, seen: bytearray, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} within {timeout_s} s; the terminal showed {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"the program ended before {wanted!r}; the terminal showed {bytes(seen)!r}"
            seen += chunk


def _enroll_at_a_terminal(home: Path, first: str, second: str) -> tuple[int, str]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of its own, like IT typing the command
        try:
            os.execve(PROGRAM[0], [*PROGRAM, "enroll", "--name", "desk-new"], _env(home))
        finally:
            os._exit(127)
    seen = bytearray()
    try:
        _read_until(fd, b"New passphrase", seen)
        os.write(fd, first.encode() + b"\n")
        _read_until(fd, b"again", seen)
        os.write(fd, second.encode() + b"\n")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), seen.decode("utf-8", "replace")


def test_first_enroll_without_a_key_store_asks_for_a_new_passphrase_twice(tmp_path):
    home = tmp_path / "home"
    code, screen = _enroll_at_a_terminal(home, "correct horse battery", "correct horse battery")
    assert code == 0, screen
    assert "no key yet" in screen and "NEW passphrase" in screen and "asked twice" in screen
    assert "needs its passphrase" not in screen
    desktop = Desktop(home)
    assert desktop.config.key_store == "file" and (home / KEY_FILE).exists()
    assert desktop.key("correct horse battery").public.to_text() == desktop.config.public_key
    assert desktop.config.public_key in screen


def test_first_enroll_with_two_different_passphrases_changes_nothing(tmp_path):
    home = tmp_path / "home"
    code, screen = _enroll_at_a_terminal(home, "one passphrase", "another one")
    assert code == ConfigError.exit_code != WrongPassphrase.exit_code, screen
    assert "differ" in screen and "Run enroll again" in screen
    assert not (home / KEY_FILE).exists()


def test_first_enroll_without_a_terminal_says_how_to_choose_a_passphrase(tmp_path):
    home = tmp_path / "home"
    result = subprocess.run([*PROGRAM, "enroll"], env=_env(home), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == ConfigError.exit_code != WrongPassphrase.exit_code
    assert "needs its passphrase" not in result.stderr
    assert "new key" in result.stderr and PASSPHRASE_ENV in result.stderr and "in a terminal" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    # With the passphrase in the environment, it enrols without asking.
    result = subprocess.run([*PROGRAM, "enroll"], env=_env(home, **{PASSPHRASE_ENV: "from the environment"}),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Desktop(home).key("from the environment")


def test_kit_check_without_qt_says_the_window_is_not_installed(tmp_path, desk, kit):
    from datetime import datetime, timedelta, timezone

    from backup_operator.core.model import build_database

    now = datetime.now(timezone.utc).replace(microsecond=0)
    database = build_database(**kit.template_records(), snapshot_version=2, created_at=now,
                              expires_at=now + timedelta(days=3), expected_interval_s=3600, source="first use")
    desk.drop(2, database=database)
    assert desk.store().sync([desk.inbox]).installed == [2]
    blocker = tmp_path / "no-qt"
    blocker.mkdir()
    # As on a machine where PySide6 was never installed: every import of it fails.
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoQt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'PySide6' or name.startswith('PySide6.'):\n"
        "            raise ModuleNotFoundError(f\"No module named {name!r}\", name=name)\n"
        "sys.meta_path.insert(0, _NoQt())\n")
    env = _env(desk.home, **{PASSPHRASE_ENV: os.environ.get(PASSPHRASE_ENV, "")})
    env = {k: v for k, v in env.items() if v != ""}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    probe = subprocess.run([sys.executable, "-c", "import PySide6"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert probe.returncode != 0, "the blocker did not hide Qt"
    result = subprocess.run([*PROGRAM, "kit-check"], env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr and "ModuleNotFoundError" not in result.stderr
    [pdf] = [line for line in result.stdout.splitlines() if " PDF " in line]
    assert pdf.startswith("FAIL") and "the window is not installed" in pdf and "backup-operator[gui]" in pdf
    others = [line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL")) and line != pdf]
    assert others and all(line.startswith("ok") for line in others), result.stdout
    assert result.returncode != 0
