"""Every error the window can meet, in an operator's words: a title, what happened, what to do now,
and the command IT runs. Plain Python (no Qt). The sentence inside each error (``errors.py``) is kept
as the "what happened" line; this module adds the heading and the next steps around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup_operator.errors import (
    BackupOperatorError,
    ConfigError,
    KeyStoreUnavailable,
    NoDesktopKey,
    NoSnapshot,
    NotTrusted,
    SnapshotError,
    StorageError,
    WrongPassphrase,
)

__all__ = ["Explanation", "explain", "refusal_sentence"]

MEANWHILE = "Meanwhile use the printed crash sheet, or ask the switchboard supervisor for the paper directory."


@dataclass(frozen=True)
class Explanation:
    title: str
    what: str
    operator: str  # what the operator does now
    it: str  # what IT does (with the command)
    unlock: bool = False  # offer the passphrase dialog


def explain(exc: BaseException, support: str = "the IT service desk") -> Explanation:
    what = str(exc) if isinstance(exc, BackupOperatorError) else (
        "Backup Operator met a problem it did not expect while opening the directory.")
    if isinstance(exc, WrongPassphrase):
        return Explanation("This desktop's directory is locked", what,
                           "Type the kit's passphrase (Ctrl+U). It is on the sealed card in the kit, or "
                           f"call {support}.",
                           "If the passphrase is lost: 'backup-operator enroll --replace --key-file' on this "
                           "desktop, then 'backup-operator-export recipients add' with the new key.",
                           unlock=True)
    if isinstance(exc, NoDesktopKey):
        return Explanation("This desktop is not set up to read the directory", what,
                           f"{MEANWHILE} Call {support} and say: \"the backup directory has no key\".",
                           "1. On this desktop: 'backup-operator enroll'. 2. On the exporter: "
                           "'backup-operator-export recipients add NAME bo-desktop-…'. 3. Here, if not done yet: "
                           "'backup-operator trust bo-signer-…' and 'backup-operator inbox add PATH'. "
                           "4. 'backup-operator sync'.")
    if isinstance(exc, KeyStoreUnavailable):
        return Explanation("The computer's key store cannot be reached", what,
                           f"Log out and back in to this computer, then press F5. If it still fails, call {support}.",
                           "Check the user's key store (Credential Manager / Secret Service), or re-enrol with "
                           "'backup-operator enroll --replace --key-file'.")
    if isinstance(exc, NotTrusted):
        return Explanation("This desktop does not know the hospital's exporter yet", what,
                           f"{MEANWHILE} Call {support}.",
                           "Run 'backup-operator trust bo-signer-…' with the key printed by "
                           "'backup-operator-export init', then 'backup-operator sync'.")
    if isinstance(exc, NoSnapshot):
        return Explanation("No directory data on this desktop yet", what,
                           f"{MEANWHILE} Call {support} and say: \"the backup directory is empty on this desk\".",
                           "Check 'backup-operator status' and 'backup-operator inbox list', that the exporter "
                           "publishes to that inbox ('backup-operator-export status'), then 'backup-operator sync'.")
    if isinstance(exc, SnapshotError):
        return Explanation("The directory data on this desktop cannot be opened", what,
                           f"{MEANWHILE} Call {support}.",
                           "Run 'backup-operator verify FILE' on the files in the inbox to see which check fails, "
                           "then export again ('backup-operator-export run') and 'backup-operator sync'.")
    if isinstance(exc, ConfigError):
        return Explanation("This desktop's settings are damaged", what, f"{MEANWHILE} Call {support}.",
                           "Fix or restore config.toml in the desktop home ('backup-operator status' shows where).")
    if isinstance(exc, StorageError):
        return Explanation("This computer's disk refused to save", what,
                           f"Keep working; the directory still opens. Tell {support}.",
                           "Free disk space or fix permissions on the desktop home.")
    return Explanation("Something went wrong", what,
                       f"Press F5 to try again. {MEANWHILE} Call {support}.",
                       f"Details for IT: {type(exc).__name__}: {exc}. The window's log is ui.log in the desktop home.")


def refusal_sentence(filename: str, exc: BaseException, version: int | None, as_of: str) -> str:
    """The one-time notice for a bad file that arrived while the window was open."""
    keep = f" You are still using version {version} ({as_of})." if version else ""
    reason = str(exc) if isinstance(exc, BackupOperatorError) else "it could not be read"
    return f"A new directory file ({filename}) was not installed: {reason}{keep} Tell IT."
