"""A desktop's settings and identity: its config file, its private key, and the exporter keys it trusts.

Layout of a desktop home (see ``paths.desktop_home``)::

    config.toml            name, inboxes, trusted exporter keys, key store, size cap
    desktop-key.json       the private key sealed with a passphrase (when no OS key store is used)
    exporter-key.txt       optional: exporter public key(s) dropped by the installer, one per line
    snapshots/             installed sealed snapshots and the high-water mark (core.store)

A site file (``site.toml`` beside the installed executable, or named by ``BACKUP_OPERATOR_SITE``) lets
the installer give every desktop the exporter key and the inbox without touching per-user settings:
``trusted_signers = ["bo-signer-..."]`` and ``inboxes = ['\\\\server\\share\\inbox']``.

The private key never touches disk in the clear: it is in the OS key store, or in desktop-key.json
sealed with a passphrase. This module must never import Qt.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import threading
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import tomli_w

from backup_operator.errors import (
    BackupOperatorError,
    ConfigError,
    KeyStoreUnavailable,
    NoDesktopKey,
    NotTrusted,
    WrongPassphrase,
)
from backup_operator.fsutil import atomic_write
from backup_operator.paths import portable_root
from backup_operator.snapshot import format as F
from backup_operator.snapshot import keys

if TYPE_CHECKING:
    from backup_operator.core.pull import HttpInbox
    from backup_operator.core.store import SnapshotStore

__all__ = ["DesktopConfig", "Desktop", "PASSPHRASE_ENV", "is_url"]

PASSPHRASE_ENV = "BACKUP_OPERATOR_PASSPHRASE"
SITE_ENV = "BACKUP_OPERATOR_SITE"
SITE_FILE = "site.toml"
CONFIG_FILE = "config.toml"
KEY_FILE = "desktop-key.json"
INSTALLER_TRUST_FILE = "exporter-key.txt"


def is_url(inbox: str) -> bool:
    """An http(s) inbox (pulled from a web server) rather than a folder."""
    return inbox.lower().startswith(("http://", "https://"))


@dataclass
class DesktopConfig:
    name: str = ""
    key_store: str = ""  # "keyring" or "file"; empty until enrolled
    public_key: str = ""
    inboxes: list[str] = field(default_factory=list)
    trusted_signers: list[str] = field(default_factory=list)
    # Exporter keys IT withdrew (untrust, trust --only): never trusted again from any source, never re-pinned
    # by a sync, never accepted through an endorsement. Only 'backup-operator trust KEY' takes one back.
    untrusted_signers: list[str] = field(default_factory=list)
    size_cap_mb: int = F.DEFAULT_SIZE_CAP // (1024 * 1024)
    keep: int = 3
    # Per http(s) inbox: {"receipts": URL to PUT receipts under, "ca_file": CA bundle to trust}.
    inbox_options: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, home: Path) -> "DesktopConfig":
        path = home / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"The settings file {path} is damaged ({exc}); fix or delete it, then "
                              "enrol again.") from exc
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        try:
            config = cls(**known)
            config.size_cap_mb, config.keep = int(config.size_cap_mb), int(config.keep)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"The settings file {path} has a wrong value ({exc}).") from exc
        if config.keep < 1:
            raise ConfigError(f"'keep' in {path} must be 1 or more.")
        if not isinstance(config.inbox_options, dict) or \
                not all(isinstance(v, dict) for v in config.inbox_options.values()):
            raise ConfigError(f"'inbox_options' in {path} must map each http(s) inbox to its settings.")
        return config

    def save(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(home / CONFIG_FILE, tomli_w.dumps(asdict(self)).encode("utf-8"), mode=0o600)


def site_defaults() -> dict:
    """Settings the installer placed for every user of this machine (empty when there are none)."""
    explicit = os.environ.get(SITE_ENV)
    if explicit:
        path = Path(explicit)
    elif getattr(sys, "frozen", False):
        path = Path(sys.executable).resolve().parent / SITE_FILE
    else:
        return {}
    if not path.is_file():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"The site settings file {path} is damaged ({exc}); ask IT to reinstall.") from exc
    site = {"inboxes": [str(p) for p in doc.get("inboxes", [])],
            "trusted_signers": [str(k) for k in doc.get("trusted_signers", [])]}
    if doc.get("ca_file"):  # the hospital's CA for https inboxes, when it is not in the system's store
        site["ca_file"] = str(doc["ca_file"])
    if isinstance(doc.get("receipts"), str):  # where every desktop PUTs its receipt (https inboxes)
        site["receipts"] = doc["receipts"]
    return site


_UNLOCK_WAIT_S = 300.0  # what opening the key waits for another thread's unlock of it


class Desktop:
    """One desktop's home folder: settings, key and trust. The snapshot store sits in ``snapshots/``."""

    def __init__(self, home: Path, *, config: DesktopConfig | None = None, site: dict | None = None):
        """``config`` and ``site`` as another process already read them (an install worker is handed the
        window's); by default both are read here."""
        self.home = Path(home)
        self.config = DesktopConfig.load(self.home) if config is None else config
        self.site = site_defaults() if site is None else site
        self._key: keys.DesktopKey | None = None
        self._key_lock = threading.Lock()  # one unlock at a time (unlock_in_background's thread, or ours)
        self._unlocking = False  # unlock_in_background's thread was started (it is started once)

    def unlock_in_background(self) -> None:
        """Start opening a passphrase-sealed key file on a second thread, when that needs no prompt (the
        passphrase is in the environment): scrypt (a third of a second or more, by design) then runs
        while the caller reads and checks files or imports what it needs. ``key`` waits for it. Nothing
        about the key's protection changes; a failure here is met again, and said, by ``key``."""
        if (self._key is not None or self._unlocking or self.config.key_store != "file"
                or not os.environ.get(PASSPHRASE_ENV)):
            return
        self._unlocking = True
        threading.Thread(target=self.key_without_asking, name="key-unlock", daemon=True).start()

    @property
    def snapshots_dir(self) -> Path:
        return self.home / "snapshots"

    @property
    def name(self) -> str:
        return self.config.name or socket.gethostname()

    @property
    def keyring_account(self) -> str:
        return f"desktop-key:{self.home.resolve()}"

    def save(self) -> None:
        self.config.save(self.home)

    # --- enrolment and the private key ---------------------------------------------------------

    def enroll(self, name: str | None, *, use_key_file: bool | None = None, passphrase: str | None = None,
               replace: bool = False, announce=None) -> keys.DesktopPublicKey:
        """Make this desktop's key pair. ``announce`` (a callable) is told, before any prompt, that a NEW
        passphrase is being chosen: no key exists yet, so there is nothing to unlock."""
        if self.config.public_key and not replace:
            raise ConfigError(f"This desktop is already enrolled as {self.config.name!r}; use --replace to "
                              "make a new key (IT must then add the new key and remove the old one).")
        key = keys.DesktopKey.generate()
        if use_key_file is None:
            # A portable kit keeps everything beside itself, so never the OS key store of this machine.
            use_key_file = portable_root() is not None or not keys.keyring_available()
        if use_key_file:
            secret = passphrase if passphrase is not None else self._new_passphrase(announce)
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.home / KEY_FILE, keys.seal_key_file(key, secret), mode=0o600)
            self.config.key_store = "file"
        else:
            keys.keyring_save(self.keyring_account, key)
            self.config.key_store = "keyring"
        self.config.name = name or self.config.name or socket.gethostname()
        self.config.public_key = key.public.to_text()
        self.save()
        self._key = key
        return key.public

    def upgrade_key(self, passphrase: str | None = None) -> tuple[keys.DesktopPublicKey, bool]:
        """Give this desktop's key an Ed25519 signing key if it has none (enrolled before issue 10).

        The X25519 key stays, so snapshots still open; the new key text (which now carries the signing
        key too) must reach IT (``recipients add NAME KEY --replace``). Returns (public key, changed).
        """
        if not self.config.public_key:
            raise NoDesktopKey("This desktop is not enrolled yet; run 'backup-operator enroll' and send the "
                               "key it prints to IT.")
        secret = None
        if self.config.key_store == "file":
            secret = passphrase if passphrase is not None else self._ask_passphrase()
        key = self.key(secret)
        if key.can_sign:
            return key.public, False
        upgraded = key.with_signing_key()
        if self.config.key_store == "file":
            assert secret is not None
            atomic_write(self.home / KEY_FILE, keys.seal_key_file(upgraded, secret), mode=0o600)
        else:
            keys.keyring_save(self.keyring_account, upgraded)
        self.config.public_key = upgraded.public.to_text()
        self.save()
        self._key = upgraded
        return upgraded.public, True

    def key_without_asking(self) -> keys.DesktopKey | None:
        """The private key if it opens without a prompt (already open, OS key store, passphrase in the
        environment), else None: a receipt must never make a scheduled sync wait for a passphrase."""
        if self._key is None and (self.config.key_store == "keyring" or
                                  (self.config.key_store == "file" and os.environ.get(PASSPHRASE_ENV))):
            try:
                self.key(interactive=False)
            except BackupOperatorError:
                return None
        return self._key

    @property
    def can_sign(self) -> bool:
        """Whether this desktop's enrolled key text carries a signing key (no key store is opened)."""
        try:
            return keys.DesktopPublicKey.from_text(self.config.public_key).can_sign
        except Exception:
            return False

    @property
    def key_unlocked(self) -> bool:
        """True once the private key has been opened in this process (no passphrase needed again)."""
        return self._key is not None

    def key(self, passphrase: str | None = None, *, interactive: bool = True) -> keys.DesktopKey:
        """This desktop's private key, from the key store or the sealed key file.

        Without ``passphrase`` the key file's passphrase comes from BACKUP_OPERATOR_PASSPHRASE, then a
        terminal prompt; the window passes ``interactive=False`` so it never blocks on a terminal.
        """
        if self._key is not None:
            return self._key
        # Held by unlock_in_background's thread only while scrypt runs (it never prompts).
        if not self._key_lock.acquire(timeout=_UNLOCK_WAIT_S):
            raise KeyStoreUnavailable("This desktop's key could not be opened in time; try again, or ask IT.")
        try:
            return self._open_key(passphrase, interactive)
        finally:
            self._key_lock.release()

    def _open_key(self, passphrase: str | None, interactive: bool) -> keys.DesktopKey:
        if self._key is not None:
            return self._key
        if self.config.key_store == "keyring":
            self._key = keys.keyring_load(self.keyring_account)
        elif self.config.key_store == "file":
            path = self.home / KEY_FILE
            if not path.exists():
                raise NoDesktopKey(f"This desktop's key file ({path}) is missing; enrol again "
                                   "(backup-operator enroll --replace) and send IT the new key.")
            self._key = keys.open_key_file(path.read_bytes(),
                                           passphrase or self._ask_passphrase(interactive=interactive))
        else:
            raise NoDesktopKey("This desktop is not enrolled yet; run 'backup-operator enroll' and send the "
                               "key it prints to IT.")
        return self._key

    def store(self, *, interactive: bool = True,
              trusted: list[keys.SignerPublicKey] | None = None) -> SnapshotStore:
        """The snapshot store of this desktop, with its trusted keys, key and limits."""
        from backup_operator.core.store import SnapshotStore

        return SnapshotStore(self.snapshots_dir, trusted=self.trusted() if trusted is None else trusted,
                             revoked=self.revoked(), key=lambda: self.key(interactive=interactive),
                             size_cap=self.config.size_cap_mb * 1024 * 1024, keep=self.config.keep)

    @staticmethod
    def _new_passphrase(announce=None) -> str:
        """A passphrase for a key being made now: from the environment, or chosen at the terminal, twice."""
        secret = os.environ.get(PASSPHRASE_ENV)
        if secret:
            return secret
        if not sys.stdin or not sys.stdin.isatty():
            raise ConfigError(f"Enrolling makes a new key protected by a passphrase you choose; run "
                                  f"'backup-operator enroll' in a terminal to type it (twice), or set "
                                  f"{PASSPHRASE_ENV} to the new passphrase.")
        if announce is not None:
            announce("This desktop has no key yet: choose a NEW passphrase for it (asked twice). Keep it: "
                     "it opens the directory on this desktop.")
        secret = getpass.getpass("New passphrase for this desktop's key: ")
        if not secret:
            raise ConfigError("An empty passphrase would leave the key unprotected; nothing was changed.")
        if getpass.getpass("Same new passphrase again: ") != secret:
            raise ConfigError("The two passphrases differ; nothing was changed. Run enroll again.")
        return secret

    @staticmethod
    def _ask_passphrase(confirm: bool = False, interactive: bool = True) -> str:
        secret = os.environ.get(PASSPHRASE_ENV)
        if secret:
            return secret
        if not interactive or not sys.stdin or not sys.stdin.isatty():
            raise WrongPassphrase(f"This desktop's key needs its passphrase; set {PASSPHRASE_ENV} or run "
                                  "the command in a terminal.")
        secret = getpass.getpass("Passphrase for this desktop's key: ")
        if confirm and getpass.getpass("Same passphrase again: ") != secret:
            raise WrongPassphrase("The two passphrases differ; nothing was changed.")
        return secret

    # --- trust -------------------------------------------------------------------------------

    def trust(self, text: str, *, only: bool = False) -> keys.SignerPublicKey:
        """Pin an exporter key (IT's deliberate step; it also takes back an earlier 'untrust').

        ``only``: replace every pinned key by this one, and withdraw the others (from this desktop's
        settings, the site file and the installer's key file alike), as after a stolen signing key.
        """
        key = keys.SignerPublicKey.from_text(text)
        if only:
            others = [k.to_text() for k in self._pinned() if k != key]
            self.config.trusted_signers = [key.to_text()]
            self.config.untrusted_signers = list(dict.fromkeys(
                [t for t in self.config.untrusted_signers if t != key.to_text()] + others))
        else:
            if key.to_text() not in self.config.trusted_signers:
                self.config.trusted_signers.append(key.to_text())
            self.config.untrusted_signers = [t for t in self.config.untrusted_signers if t != key.to_text()]
        self.save()
        return key

    def untrust(self, text: str) -> keys.SignerPublicKey:
        """Withdraw an exporter key: it is refused from now on, whoever pinned or endorses it."""
        key = keys.SignerPublicKey.from_text(text)
        self.config.trusted_signers = [t for t in self.config.trusted_signers if t != key.to_text()]
        if key.to_text() not in self.config.untrusted_signers:
            self.config.untrusted_signers.append(key.to_text())
        self.save()
        return key

    def pin_endorsed(self, key: keys.SignerPublicKey) -> bool:
        """Pin a signer a sync accepted through a valid endorsement; never a withdrawn key. True if pinned."""
        if key in self.revoked() or key.to_text() in self.config.trusted_signers:
            return False
        self.config.trusted_signers.append(key.to_text())
        self.save()
        return True

    def revoked(self) -> list[keys.SignerPublicKey]:
        out = []
        for text in self.config.untrusted_signers:
            try:
                out.append(keys.SignerPublicKey.from_text(text))
            except BackupOperatorError:
                continue  # a damaged entry withdraws nothing, and must not stop the desktop
        return out

    def _pinned(self) -> list[keys.SignerPublicKey]:
        texts = list(self.config.trusted_signers) + self.site.get("trusted_signers", [])
        dropped = self.home / INSTALLER_TRUST_FILE
        if dropped.exists():
            texts += [line.strip() for line in dropped.read_text(encoding="utf-8").splitlines()
                      if line.strip() and not line.lstrip().startswith("#")]
        return list(dict.fromkeys(keys.SignerPublicKey.from_text(t) for t in texts))

    def trusted(self) -> list[keys.SignerPublicKey]:
        revoked = set(self.revoked())
        pinned = [k for k in self._pinned() if k not in revoked]
        if not pinned:
            raise NotTrusted("No exporter key is pinned on this desktop, so no snapshot can be trusted; IT runs "
                             "'backup-operator trust bo-signer-…' with the key from 'backup-operator-export init'.")
        return pinned

    # --- inboxes ------------------------------------------------------------------------------

    def inbox_texts(self) -> list[str]:
        """Every inbox as written, folders and http(s) addresses, this desktop's then the site's."""
        return list(dict.fromkeys(self.config.inboxes + self.site.get("inboxes", [])))

    def inboxes(self) -> list[Path]:
        """This desktop's folder inboxes and the site's, in that order, without repeats."""
        return [Path(p) for p in self.inbox_texts() if not is_url(p)]

    def http_inboxes(self) -> list[HttpInbox]:
        """The http(s) inboxes, with where receipts go and which CA to trust."""
        from backup_operator.core.pull import HttpInbox

        out = []
        for url in self.inbox_texts():
            if is_url(url):
                options = self.config.inbox_options.get(url, {})
                out.append(HttpInbox(url, options.get("receipts") or self.site.get("receipts"),
                                     options.get("ca_file") or self.site.get("ca_file")))
        return out

    def add_inbox(self, path: str, *, receipts: str | None = None, ca_file: str | None = None) -> None:
        from backup_operator.core.fetch import check_inbox_url

        if is_url(path):
            path = check_inbox_url(path)
            options = {k: v for k, v in (("receipts", receipts and check_inbox_url(receipts)),
                                         ("ca_file", ca_file)) if v}
            if options:
                self.config.inbox_options[path] = options
        elif receipts or ca_file:
            raise ConfigError("--receipts and --ca-file are for http(s) inboxes; a folder inbox gets receipts "
                              "in its receipts/ folder.")
        if path not in self.config.inboxes:
            self.config.inboxes.append(path)
        self.save()

    def remove_inbox(self, path: str) -> None:
        from backup_operator.core.fetch import check_inbox_url

        if path not in self.config.inboxes and is_url(path):
            path = check_inbox_url(path)
        if path not in self.config.inboxes:
            raise ConfigError(f"{path} is not one of this desktop's inboxes.")
        self.config.inboxes.remove(path)
        self.config.inbox_options.pop(path, None)
        self.save()
