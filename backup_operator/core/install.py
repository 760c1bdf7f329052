"""Installing what the inboxes offer, in this process or in a child process of its own.

``install_from_inboxes`` is the installing half of "a file arrived in the inbox": verify, decrypt, unpack
and install the newest good snapshot from the folder inboxes, pull the http(s) ones, and leave receipts.
Opening what was installed is the other half (``core.session``).

The window runs the installing half in a child process (``install_in_child``): its Python work would
otherwise share the window's GIL with the typing thread for the length of the install. The child is this
same program started again with a hidden first argument (``_install-worker``): ``sys.executable`` is the
frozen executable in the bundle, or the interpreter with ``-m backup_operator`` from a source tree. It is
handed what it needs over its standard input — the desktop's settings and, when the window holds it
unlocked, the desktop's private key — never on its command line, in its environment or on disk, and it
answers with plain data on its standard output, which the window turns back into the same outcome an
install in its own process gives. Every wait on the child is bounded: a child that does not answer within
its time is killed, and one that dies says so in one sentence. The store's installs are atomic (a
temporary file renamed into place, locked while written), so a child killed at any moment leaves the
snapshot that was in use untouched and at most a temporary file that the next look removes.

This module must never import Qt, and never put key material in an argument, a variable or a file.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from backup_operator import errors
from backup_operator.config import PASSPHRASE_ENV, Desktop, DesktopConfig, is_url
from backup_operator.core.pull import pull
from backup_operator.core.store import SyncReport, write_receipt
from backup_operator.errors import BackupOperatorError, InstallFailed
from backup_operator.snapshot.keys import DesktopKey, SignerPublicKey

__all__ = ["INSTALL_TIMEOUT_S", "WORKER_COMMAND", "Installed", "InstallChild", "install_from_inboxes",
           "install_in_child", "worker_command", "worker_main"]

log = logging.getLogger(__name__)

WORKER_COMMAND = "_install-worker"
# A full snapshot fetched over a slow link is the longest honest install; a download cut here resumes at
# the next look (core/fetch keeps what arrived), so the bound costs a slow link nothing but a sentence.
INSTALL_TIMEOUT_S = 300.0
_REAP_S = 10.0  # what a killed child is given to be gone
_NICENESS = 10  # the install's priority below the window's, where the system has priorities (POSIX)
_STDERR_KEPT = 4000  # characters of a child's own complaints kept for the log

TOO_LONG = ("Installing new data took too long and was stopped; the current data stays in use. The next "
            "look at the inbox tries again; if this keeps happening, tell IT.")
# Test hooks, chosen by an argument the window never passes: "hang" sleeps before doing anything; "die"
# kills the child itself halfway through an install (the new file written, its open copy not yet named).
_STALLS = ("hang", "die")


@dataclass
class Installed:
    """What one look at the inboxes installed: plain data, the same whichever process did the work."""

    installed: list[int] = field(default_factory=list)
    refused: list[tuple[Path | str, BackupOperatorError]] = field(default_factory=list)  # str: an http address
    new_signers: list[SignerPublicKey] = field(default_factory=list)
    current: int = 0
    receipt_problems: list[str] = field(default_factory=list)
    unreachable: list[Path | str] = field(default_factory=list)  # inboxes that could not be read
    inboxes: int = 0  # how many inboxes were looked at
    notes: list[str] = field(default_factory=list)  # what went wrong after an install succeeded


def install_from_inboxes(desktop: Desktop) -> Installed:
    """Install the newest good snapshot from the inboxes, here; leave a receipt in each folder inbox as
    ``backup-operator sync`` does. Raises only what stops the whole look (no trusted key, a full disk)."""
    store = desktop.store(interactive=False)
    inboxes = desktop.inboxes()
    report: SyncReport = store.sync(inboxes)
    done = Installed(list(report.installed), list(report.refused), list(report.new_signers), report.current)
    done.unreachable = [inbox for inbox in inboxes if not inbox.is_dir()]
    done.inboxes = len(inboxes)
    for web in desktop.http_inboxes():  # http(s) inboxes: manifest, then deltas or the full snapshot
        pulled = pull(store, web, cache_root=desktop.home / "downloads", desktop=desktop.name,
                      public_key=desktop.config.public_key, key=desktop.key_without_asking)
        done.inboxes += 1
        if pulled.unreachable:
            done.unreachable.append(web.url)  # the web server is down: an outage, shown as one
        done.installed += pulled.installed
        done.refused += pulled.refused
        done.new_signers += pulled.new_signers
        done.current = report.current = max(report.current, pulled.current)
        if pulled.receipt_problem:
            done.receipt_problems.append(pulled.receipt_problem)
    if report.current:
        for inbox in inboxes:
            if inbox.is_dir():
                try:
                    write_receipt(inbox, desktop=desktop.name, public_key=desktop.config.public_key,
                                  version=report.current, installed_at=store.installed_at(report.current)
                                  if report.current in store.installed_versions() else None,
                                  key=desktop.key_without_asking(), keep_in=store.folder)
                except (BackupOperatorError, OSError) as exc:
                    done.receipt_problems.append(f"{inbox}: {exc}")
    done.notes = list(store.notes)
    return done


# --- the window's side: start the child, hand it its work, wait a bounded time -------------------------


def worker_command(stall: str | None = None) -> list[str]:
    """How this program starts itself as an install worker: the frozen executable, or this interpreter
    running this package (the same copy of it: see ``_child_environment``)."""
    if getattr(sys, "frozen", False):
        command = [sys.executable, WORKER_COMMAND]
    else:  # -P: not the current folder first on the path (a backup_operator/ there is not this program)
        command = [sys.executable, "-P", "-m", "backup_operator", WORKER_COMMAND]
    if stall is not None:
        if stall not in _STALLS:
            raise ValueError(f"unknown stall {stall!r}")
        command += ["--test-stall", stall]
    return command


def _child_environment() -> dict[str, str]:
    """The window's environment without the key file's passphrase (the child gets the opened key over
    its standard input, or no key at all), and, from a source tree, this package first on the path."""
    env = {name: value for name, value in os.environ.items() if name != PASSPHRASE_ENV}
    if not getattr(sys, "frozen", False):
        here = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _error_text(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "module": type(exc).__module__, "message": str(exc)}


def _error_from(doc: dict) -> BackupOperatorError:
    """The error the child met, as the same class of ``errors`` (with its sentence); anything else as the
    sentence the window has always given an unexpected failure."""
    cls = getattr(errors, str(doc.get("type", "")), None) if doc.get("module") == errors.__name__ else None
    if isinstance(cls, type) and issubclass(cls, BackupOperatorError):
        return cls(str(doc.get("message", "")))
    return InstallFailed(f"Checking the inbox failed ({doc.get('type', 'an unknown error')}); the current data "
                         "stays. Tell IT.")


def _request(desktop: Desktop) -> bytes:
    """What the child is told: this desktop's settings as the window holds them, and its key if open.

    The key is the one the window's own install would have used: opened already, from the OS key store,
    or from the passphrase in the environment. Where none opens without a prompt, the child is told why,
    and meets that error exactly where an install here would have (only when something must be decrypted).
    """
    key, key_error = None, None
    try:
        key = desktop.key(interactive=False)
    except BackupOperatorError as exc:
        key_error = _error_text(exc)
    return json.dumps({
        "home": str(desktop.home),
        "config": asdict(desktop.config),
        "site": desktop.site,
        "key": base64.b64encode(key.raw()).decode() if key is not None else None,
        "key_error": key_error,
    }).encode()


class InstallChild:
    """One install worker: started at once, its request written and its answer read by ``finish``."""

    def __init__(self, desktop: Desktop, *, stall: str | None = None):
        self._request = _request(desktop)
        # Windows: no console window of its own, and below the window's priority (as os.nice in the child).
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)
        self.process = subprocess.Popen(worker_command(stall), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=_child_environment(), creationflags=flags)

    def finish(self, timeout_s: float = INSTALL_TIMEOUT_S) -> Installed:
        """Hand the child its request and wait at most ``timeout_s`` for its answer; a child still working
        then is killed. Raises ``InstallFailed`` (with the operator's sentence) for a killed or crashed child,
        and the child's own error for one that stopped the look."""
        request, self._request = self._request, b""
        try:
            out, err = self.process.communicate(request, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            try:
                self.process.communicate(timeout=_REAP_S)
            except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                log.warning("the install worker could not be reaped: %s", exc)
            log.warning("the install worker did not finish in %.0f s and was stopped", timeout_s)
            raise InstallFailed(TOO_LONG) from None
        complaints = err.decode("utf-8", "replace").strip()
        if complaints:
            log.warning("the install worker said: %s", complaints[-_STDERR_KEPT:])
        try:
            answer = json.loads(out) if self.process.returncode == 0 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            code = self.process.returncode
            how = f"was ended by signal {-code}" if code is not None and code < 0 else f"ended with code {code}"
            raise InstallFailed(f"Installing new data stopped unexpectedly (the installing process {how}); the "
                                "current data stays in use. The next look at the inbox tries again; if this "
                                "keeps happening, tell IT.")
        if "error" in answer:
            raise _error_from(answer["error"])
        return _installed_from(answer)

    def kill(self) -> None:
        """Stop the child now (an install is atomic: nothing half-written is ever used). From any thread:
        the thread in ``finish`` then sees it end, and reaps it."""
        try:
            self.process.kill()
        except OSError as exc:  # already gone
            log.debug("the install worker could not be killed: %s", exc)


def install_in_child(desktop: Desktop, *, timeout_s: float = INSTALL_TIMEOUT_S, stall: str | None = None,
                     started=None) -> Installed:
    """``install_from_inboxes`` in a child process, waited for at most ``timeout_s``. ``started`` (if given)
    is told the ``InstallChild`` as soon as it runs, so that its owner can stop it (the window closing)."""
    child = InstallChild(desktop, stall=stall)
    if started is not None:
        started(child)
    return child.finish(timeout_s)


# --- plain data both ways ---------------------------------------------------------------------------------


def _answer_of(done: Installed) -> dict:
    return {
        "installed": done.installed,
        "refused": [[str(where), _error_text(exc)] for where, exc in done.refused],
        "new_signers": [signer.to_text() for signer in done.new_signers],
        "current": done.current,
        "receipt_problems": done.receipt_problems,
        "unreachable": [str(where) for where in done.unreachable],
        "inboxes": done.inboxes,
        "notes": done.notes,
    }


def _place(text: str) -> Path | str:
    return text if is_url(text) else Path(text)


def _installed_from(answer: dict) -> Installed:
    return Installed(
        installed=[int(v) for v in answer["installed"]],
        refused=[(_place(where), _error_from(why)) for where, why in answer["refused"]],
        new_signers=[SignerPublicKey.from_text(text) for text in answer["new_signers"]],
        current=int(answer["current"]),
        receipt_problems=[str(p) for p in answer["receipt_problems"]],
        unreachable=[_place(where) for where in answer["unreachable"]],
        inboxes=int(answer["inboxes"]),
        notes=[str(n) for n in answer["notes"]],
    )


# --- the child's side --------------------------------------------------------------------------------------


class _HandedDesktop(Desktop):
    """The window's desktop as the child was told it: settings from the request, the key handed over or
    the reason there is none. It never opens a key store or asks for a passphrase itself."""

    def __init__(self, request: dict, stall: str | None = None):
        super().__init__(Path(request["home"]), config=DesktopConfig(**request["config"]),
                         site=dict(request["site"]))
        self._key = DesktopKey.from_raw(base64.b64decode(request["key"])) if request.get("key") else None
        self._key_error = request.get("key_error")
        self._stall = stall

    def store(self, **kwargs):
        store = super().store(**kwargs)
        if self._stall == "die":
            _die_mid_install(store)
        return store

    def key(self, passphrase: str | None = None, *, interactive: bool = True) -> DesktopKey:
        if self._key is not None:
            return self._key
        if self._key_error:
            raise _error_from(self._key_error)
        raise errors.NoDesktopKey("This desktop is not enrolled yet; run 'backup-operator enroll' and send the "
                                  "key it prints to IT.")

    def key_without_asking(self) -> DesktopKey | None:
        return self._key


def _die_mid_install(store) -> None:
    """The "die" hook: the new snapshot's file is in place, its open copy written under its temporary name
    (sealed while the snapshot was decrypted) but not yet given its own, when the child kills itself
    (SIGKILL: no cleanup of any kind, as when the window kills it)."""

    def keep_open_copy(verified) -> None:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    store._keep_open_copy = keep_open_copy


def worker_main(argv: list[str]) -> int:
    """The child: read the request from standard input, install, print the answer on standard output."""
    if hasattr(os, "nice"):
        # A core the window's typing needs goes to the window first: the install can wait a little.
        os.nice(_NICENESS)
    answer_to = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever else prints goes to standard error, never into the answer
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    stall = argv[argv.index("--test-stall") + 1] if "--test-stall" in argv else None
    if stall == "hang":
        print("install worker: hanging, as a test asked", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    try:
        request = json.loads(sys.stdin.buffer.read())
        desktop = _HandedDesktop(request, stall)
        answer = _answer_of(install_from_inboxes(desktop))
    except Exception as exc:  # noqa: BLE001 - every failure is answered, as the window's own install raised it
        log.debug("the install failed", exc_info=True)
        answer = {"error": _error_text(exc)}
    json.dump(answer, answer_to)
    answer_to.close()
    return 0
