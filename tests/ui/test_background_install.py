"""The window's installs run in a real child process: what it installs and refuses, a child that hangs
or dies halfway, and what the child is (and is not) given.

Every child here is the real program (``python -m backup_operator _install-worker``, or the installed
``backup-operator`` script as a frozen bundle starts itself); the hooks that make one hang or die are
the worker's ``--test-stall`` argument, which the window never passes.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
from pathlib import Path

import pytest
from ui_support import PASSPHRASE

from backup_operator.core import install as install_module
from backup_operator.core.install import TOO_LONG, InstallChild, install_from_inboxes, install_in_child
from backup_operator.core.store import SnapshotStore
from backup_operator.errors import InstallFailed, UntrustedSignature
from backup_operator.fsutil import TEMP_PREFIX
from backup_operator.snapshot import envelope, keys


def _corrupt(env, version: int) -> Path:
    bad = bytearray(env.template.seal(version))
    bad[len(bad) // 2] ^= 0xFF
    path = env.inbox / f"snapshot-{version:06d}.bosnap"
    path.write_bytes(bytes(bad))
    return path


def _store(env) -> SnapshotStore:
    return env.desktop.store(interactive=False)


# --- the child on its own ------------------------------------------------------------------------------


def test_the_child_installs_and_leaves_the_receipt(env):
    env.drop(1843)
    done = install_in_child(env.desktop)
    assert done.installed == [1843] and done.current == 1843
    assert done.refused == [] and done.unreachable == [] and done.inboxes == 1
    assert _store(env).installed_versions()[0] == 1843
    assert (env.inbox / "receipts" / "switchboard-1.json").is_file()


def test_a_refused_file_comes_back_as_the_same_error_with_the_same_sentence(env):
    path = _corrupt(env, 1844)
    through_child = install_in_child(env.desktop)
    here = install_from_inboxes(env.desktop)  # the same look in this process: nothing was installed meanwhile
    assert [(p, type(e), str(e)) for p, e in through_child.refused] == \
        [(p, type(e), str(e)) for p, e in here.refused] == [(path, UntrustedSignature, str(here.refused[0][1]))]
    assert through_child.installed == [] and through_child.current == 1842


def test_an_unreachable_inbox_is_counted(env, tmp_path):
    env.desktop.config.inboxes.append(str(tmp_path / "share-offline"))  # only in memory: the child is told
    done = install_in_child(env.desktop)
    assert done.unreachable == [tmp_path / "share-offline"] and done.inboxes == 2


def _rotated(env, version: int) -> keys.SignerPublicKey:
    """Publish ``version`` signed by a new exporter key that the pinned one endorses (a key rotation)."""
    new = keys.SignerKey.generate()
    (env.inbox / "rotated.bosnap").write_bytes(env.template.seal(
        version, signer=new, endorsements=[envelope.Endorsement.make(env.template.signer, new.public)]))
    return new.public


def test_a_new_signer_endorsed_by_the_pinned_key_comes_back(env):
    new = _rotated(env, 1843)
    done = install_in_child(env.desktop)
    assert done.installed == [1843] and done.new_signers == [new]


def test_a_hung_child_is_killed_at_its_time_and_nothing_changes(env):
    env.drop(1843)
    child = InstallChild(env.desktop, stall="hang")
    with pytest.raises(InstallFailed) as stopped:
        child.finish(timeout_s=0.3)
    assert str(stopped.value) == TOO_LONG
    assert child.process.returncode is not None  # killed and reaped, not left running
    assert _store(env).installed_versions() == [1842]
    assert install_in_child(env.desktop).installed == [1843]  # the next look installs it


def test_a_child_killed_halfway_through_an_install_leaves_a_store_that_opens(env):
    env.drop(1843)
    with pytest.raises(InstallFailed, match="stopped unexpectedly") as died:
        install_in_child(env.desktop, stall="die")
    assert "Traceback" not in str(died.value)
    folder = env.desktop.snapshots_dir
    # It died with the new file in place and its open copy written but not yet named (what the hook does).
    assert any(p.name.startswith(TEMP_PREFIX) for p in folder.iterdir())
    assert 1843 in _store(env).installed_versions()  # opening a store removes the abandoned temp file
    assert not any(p.name.startswith(TEMP_PREFIX) for p in folder.iterdir())
    done = install_in_child(env.desktop)  # nothing new to install: 1843 is in
    assert done.installed == [] and done.current == 1843
    opened = _store(env).open_newest()  # no open copy of 1843: it opens the full way, verified
    try:
        assert opened.version == 1843
    finally:
        opened.close()


def test_a_child_that_crashes_says_so_in_one_sentence(env, monkeypatch):
    monkeypatch.setattr(install_module, "worker_command", lambda stall=None: [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(InstallFailed) as crashed:
        install_in_child(env.desktop)
    assert str(crashed.value).startswith("Installing new data stopped unexpectedly (the installing process ended "
                                         "with code 3)")


def test_an_error_that_stops_the_look_is_raised_as_the_same_error(env):
    from backup_operator.errors import NotTrusted

    env.desktop.config.trusted_signers = []  # only in memory: the child is handed this desktop as it stands
    with pytest.raises(NotTrusted) as here:
        install_from_inboxes(env.desktop)
    with pytest.raises(NotTrusted) as there:
        install_in_child(env.desktop)
    assert str(there.value) == str(here.value)


def test_a_locked_key_stays_locked_in_the_child(locked_env):
    """A key-file desktop whose passphrase nobody typed: the child meets the same WrongPassphrase where an
    install here would have (decrypting the new file), and asks for nothing."""
    from backup_operator.errors import WrongPassphrase

    locked_env.drop(1843)
    locked_env.desktop._key = None
    with pytest.raises(WrongPassphrase):
        install_in_child(locked_env.desktop)
    assert _store(locked_env).installed_versions() == [1842]


def test_no_key_material_in_the_childs_arguments_environment_or_files(env):
    env.drop(1843)
    key = env.desktop.key(interactive=False)
    secrets = [PASSPHRASE, base64.b64encode(key.raw()).decode(), key.raw().hex()]
    child = InstallChild(env.desktop, stall="hang")
    try:
        assert child.process.args[-2:] == ["--test-stall", "hang"]
        assert install_module.WORKER_COMMAND in child.process.args
        shown = [" ".join(child.process.args)]
        if Path(f"/proc/{child.process.pid}").is_dir():  # Linux: what the running child really got
            shown.append(Path(f"/proc/{child.process.pid}/cmdline").read_bytes().decode("utf-8", "replace"))
            environ = Path(f"/proc/{child.process.pid}/environ").read_bytes().decode("utf-8", "replace")
            assert "BACKUP_OPERATOR_PASSPHRASE=" not in environ
            shown.append(environ)
        assert os.environ["BACKUP_OPERATOR_PASSPHRASE"] == PASSPHRASE  # the window's own is left as it was
        if hasattr(os, "getpriority"):  # and it runs below the window's priority (it lowers its own first)
            assert child.process.stderr.readline().startswith(b"install worker: hanging")
            wanted = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
            assert os.getpriority(os.PRIO_PROCESS, child.process.pid) == wanted
        for text in shown:
            for secret in secrets:
                assert secret not in text
    finally:
        with pytest.raises(InstallFailed):
            child.finish(timeout_s=0.2)
    on_disk = b"".join(p.read_bytes() for p in env.home.rglob("*") if p.is_file())
    assert key.raw() not in on_disk and secrets[1].encode() not in on_disk and secrets[2].encode() not in on_disk


def test_the_installed_program_runs_the_worker_as_a_frozen_bundle_would(env, monkeypatch):
    """Frozen, the child is ``sys.executable _install-worker``: the bundle's executable runs the same
    ``cli.main`` as the installed ``backup-operator`` script, which stands in for it here."""
    script = Path(sys.executable).with_name("backup-operator")
    if not script.is_file():
        script = Path(shutil.which("backup-operator") or "/nonexistent")
    if not script.is_file():
        pytest.skip("the backup-operator script is not installed beside this interpreter")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(script))
    assert install_module.worker_command() == [str(script), "_install-worker"]
    env.drop(1843)
    assert install_in_child(env.desktop).installed == [1843]


# --- through the window ------------------------------------------------------------------------------------


def _children(window, monkeypatch) -> list[InstallChild]:
    seen: list[InstallChild] = []
    real = window.watcher._started
    monkeypatch.setattr(window.watcher, "_started", lambda child: (seen.append(child), real(child)))
    return seen


def test_the_window_installs_through_a_child_and_shows_the_new_version(qtbot, window, env, monkeypatch):
    children = _children(window, monkeypatch)
    order: list[str] = []
    window.sync_finished.connect(lambda: order.append("look handled"))
    window.session_changed.connect(lambda _v: order.append("new results shown"))
    env.drop(1843)
    with qtbot.waitSignal(window.session_changed, timeout=20_000) as changed:
        window.check_inbox()
    assert changed.args == [1843] and window.session.version == 1843
    # The new data's search runs on the next turn of the event loop, not in the same one as the look's
    # result: a key or the clock can run between the two.
    assert order == ["look handled", "new results shown"]
    assert len(children) == 1 and install_module.WORKER_COMMAND in children[0].process.args
    assert children[0].process.returncode == 0


def test_the_window_pins_a_signer_the_child_reports(qtbot, window, env):
    new = _rotated(env, 1843)
    with qtbot.waitSignal(window.session_changed, timeout=20_000):
        window.check_inbox()
    assert new.to_text() in env.desktop.config.trusted_signers


def test_a_hung_install_is_stopped_with_one_sentence_and_the_data_stays(qtbot, window, env):
    window.watcher.install_timeout_s = 0.5
    window.watcher.install_stall = "hang"
    notices: list[str] = []
    window.notice_shown.connect(notices.append)
    env.drop(1843)
    with qtbot.waitSignal(window.sync_finished, timeout=20_000):
        window.check_inbox()
    assert notices == [TOO_LONG]
    assert window.session.version == 1842 and window.notice.isVisible()
    window.watcher.install_stall = None
    window.watcher.install_timeout_s = 60
    with qtbot.waitSignal(window.session_changed, timeout=20_000):
        window.check_inbox()
    assert window.session.version == 1843


def test_closing_the_window_stops_an_install_under_way(qtbot, window, env, monkeypatch):
    children = _children(window, monkeypatch)
    window.watcher.install_stall = "hang"
    env.drop(1843)
    window.check_inbox()
    qtbot.waitUntil(lambda: bool(children), timeout=10_000)
    with qtbot.waitSignal(window.sync_finished, timeout=20_000):
        window.close()
    assert children[0].process.returncode is not None
    assert _store(env).installed_versions() == [1842]


def test_a_refused_http_inbox_is_reported_once_by_its_address(qtbot, window):
    """An http(s) inbox's refusal names its address (a str, not a file): shown once, like a file's."""
    from backup_operator.core.session import SyncOutcome
    from backup_operator.errors import DownloadFailed

    notices: list[str] = []
    window.notice_shown.connect(notices.append)
    refused = ("https://inbox.example.org/backup/", DownloadFailed("The inbox answered 403 Forbidden; tell IT."))
    for _ in range(2):
        window._sync_done(SyncOutcome(refused=[refused], current=1842, inboxes=1))
    assert len(notices) == 1 and "https://inbox.example.org/backup/" in notices[0]
    assert "403 Forbidden" in notices[0] and "still using version 1842" in notices[0]
