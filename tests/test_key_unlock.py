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


def test_the_unlock_thread_is_started_once(home, opened, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong passphrase")
    desktop = Desktop(home)
    desktop.unlock_in_background()
    desktop.unlock_in_background()  # the command line's early start, then the command's own
    with pytest.raises(WrongPassphrase):
        desktop.key(interactive=False)
    assert opened.count("key-unlock") == 1  # a second thread would have run scrypt again after the failure


@pytest.mark.parametrize("argv, early", [(["search", "someone"], True), ([], True), (["sync"], True),
                                         (["inbox", "list"], False), (["status"], False)])
def test_commands_that_need_the_key_start_scrypt_before_the_parser_is_built(home, opened, monkeypatch, argv,
                                                                             early):
    from backup_operator import cli

    monkeypatch.setenv(PASSPHRASE_ENV, "right passphrase")
    monkeypatch.setenv("BACKUP_OPERATOR_HOME", str(home))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)  # the window then says there is no screen
    seen = []
    real = cli.build_parser
    before = set(threading.enumerate())

    def unlocking() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "key-unlock" and t not in before]

    def build_parser():
        seen.append("key-unlock" in opened or bool(unlocking()))
        return real()

    monkeypatch.setattr(cli, "build_parser", build_parser)
    cli.main(argv)
    for thread in unlocking():
        thread.join()
    assert seen == [early]
