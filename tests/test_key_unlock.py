"""Opening a passphrase-sealed key file on a second thread (``Desktop.unlock_in_background``): scrypt runs
while sync reads and checks the inbox file, or while search and the window import what they need. The
key is opened once, by whichever thread gets there first; a wrong passphrase is still said by ``key``."""

from __future__ import annotations

import threading

import pytest

from backup_operator import config
from backup_operator.config import PASSPHRASE_ENV, Desktop
from backup_operator.errors import WrongPassphrase
from backup_operator.snapshot import keys


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    Desktop(tmp_path).enroll("desk-a", use_key_file=True, passphrase="right passphrase")
    return tmp_path


@pytest.fixture
def opened(monkeypatch):
    calls = []
    real = keys.open_key_file

    def counting(data, passphrase):
        calls.append(threading.current_thread().name)
        return real(data, passphrase)

    monkeypatch.setattr(config.keys, "open_key_file", counting)
    return calls


def test_the_key_is_opened_once_on_the_unlock_thread(home, opened, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "right passphrase")
    desktop = Desktop(home)
    desktop.unlock_in_background()
    key = desktop.key(interactive=False)
    assert key.public.to_text() == desktop.config.public_key
    assert desktop.key(interactive=False) is key
    assert len(opened) == 1  # scrypt ran once: whichever thread came second waited for the first


def test_a_wrong_passphrase_is_still_said_by_key(home, opened, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong passphrase")
    desktop = Desktop(home)
    desktop.unlock_in_background()
    with pytest.raises(WrongPassphrase):
        desktop.key(interactive=False)
    assert len(opened) == 2 and "key-unlock" in opened


def test_no_thread_without_a_passphrase_in_the_environment(home, opened):
    desktop = Desktop(home)
    before = threading.active_count()
    desktop.unlock_in_background()
    assert threading.active_count() == before and opened == [] and not desktop.key_unlocked
