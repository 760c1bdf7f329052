"""Fixtures for the window tests: one real sealed snapshot and desktop home, built once, copied per test.

The template is built with the real pipeline pieces (``build_database`` → ``envelope.seal`` → the
store's install), like Anki's tests copy a template collection. Each test gets its own copy, its own
inbox folder and a fixed clock, so nothing depends on today's date.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# The offscreen platform's screen is 800×600 unless told otherwise; the window fits itself to its screen,
# so the tests give it the 1366×768 of a common laptop (each test sizes the window as it needs).
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={Path(__file__).parent / 'offscreen-screen.json'}"

from sample_hospital import records

from backup_operator.config import Desktop
from backup_operator.core.model import build_database
from backup_operator.core.store import SnapshotStore
from backup_operator.snapshot import envelope, keys

from ui_support import CREATED, FIRST_DAY, INTERVAL, NOW, PASSPHRASE, VERSION  # noqa: E402


@dataclass
class Template:
    root: Path
    signer: keys.SignerKey
    desktop_key: keys.DesktopKey

    def seal(self, version: int, created_at: datetime = CREATED, *, expires_in: timedelta = timedelta(days=3),
             interval: int = INTERVAL, first_day: date = FIRST_DAY, mutate=None, signer: keys.SignerKey | None = None,
             endorsements=()) -> bytes:
        data = records(first_day)
        if mutate:
            mutate(data)
        database = build_database(**data, snapshot_version=version, created_at=created_at,
                                  expires_at=created_at + expires_in, expected_interval_s=interval,
                                  source="St Mary's test directory")
        return envelope.seal(database, snapshot_version=version, created_at=created_at,
                             expires_at=created_at + expires_in, recipients=[self.desktop_key.public],
                             signer=signer or self.signer, endorsements=endorsements)


def build_template(root: Path, inbox: Path | None = None) -> Template:
    """A desktop home in ``root/home``, enrolled with a key file, trusting a fresh signer, with version
    VERSION installed (the window tests copy it; take_screenshots.py uses it as it is)."""
    signer, desktop_key = keys.SignerKey.generate(), keys.DesktopKey.generate()
    home = root / "home"
    desktop = Desktop(home)
    desktop.config.name = "switchboard-1"
    desktop.config.key_store = "file"
    desktop.config.public_key = desktop_key.public.to_text()
    desktop.config.trusted_signers = [signer.public.to_text()]
    if inbox is not None:
        inbox.mkdir(parents=True, exist_ok=True)
        desktop.config.inboxes = [str(inbox)]
    desktop.save()
    (home / "desktop-key.json").write_bytes(keys.seal_key_file(desktop_key, PASSPHRASE, n=2**14))
    tpl = Template(root, signer, desktop_key)
    sealed = root / "first.bosnap"
    sealed.write_bytes(tpl.seal(VERSION))
    SnapshotStore(desktop.snapshots_dir, trusted=[signer.public], key=lambda: desktop_key).install(sealed)
    sealed.unlink()
    return tpl


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Template:
    return build_template(tmp_path_factory.mktemp("template"))


@dataclass
class Env:
    """One test's desktop: its home, inbox, unlocked Desktop, and a settable clock."""

    home: Path
    inbox: Path
    desktop: Desktop
    template: Template
    now: datetime = NOW

    def clock(self) -> datetime:
        return self.now

    def drop(self, version: int, **kwargs) -> Path:
        """Publish a new snapshot into the inbox the way the exporter does (temp name, then rename)."""
        data = self.template.seal(version, **kwargs)
        temp = self.inbox / f".{version}.tmp.bosnap"
        temp.write_bytes(data)
        final = self.inbox / f"snapshot-{version:06d}.bosnap"
        temp.rename(final)
        return final


@pytest.fixture
def env(template, tmp_path, monkeypatch) -> Env:
    # The key file is sealed with a cheap scrypt cost (n=2**14), so unlocking it per test costs nothing.
    monkeypatch.setenv("BACKUP_OPERATOR_PASSPHRASE", PASSPHRASE)
    home = tmp_path / "home"
    shutil.copytree(template.root / "home", home)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    desktop = Desktop(home)
    desktop.config.inboxes = [str(inbox)]
    desktop.save()
    return Env(home, inbox, desktop, template)


@pytest.fixture
def locked_env(env, monkeypatch) -> Env:
    """A key-file desktop with no passphrase in the environment: the window must ask for it."""
    monkeypatch.delenv("BACKUP_OPERATOR_PASSPHRASE")
    return env


@pytest.fixture
def window(qtbot, env):
    """The main window on the test desktop, opened and idle (its first inbox look finished)."""
    from PySide6.QtCore import QThreadPool

    from backup_operator.ui.window import MainWindow

    w = MainWindow(env.desktop, clock=env.clock, poll_ms=3_600_000)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    # Opened, its first inbox look done, and its frame fitted to the screen (a timer after the first show):
    # nothing left that would move or resize the window while a test looks at it.
    qtbot.waitUntil(lambda: w.session is not None and not w.watcher.busy and not w.frame_check.isActive(),
                    timeout=15_000)
    w.activateWindow()
    w.focus_search()
    yield w
    w.close()
    QThreadPool.globalInstance().waitForDone(10_000)
