"""Every error Backup Operator raises on purpose, and what it means to an operator.

The tree (exit code of the command line in brackets)::

    BackupOperatorError [1]
    ├── ConfigError [2] ............ a setting is missing or wrong
    ├── ValidationError [3] ........ directory data breaks the model (names the row and field)
    ├── SnapshotError
    │   ├── NotASnapshot [10] ...... not a .bosnap file at all
    │   ├── UnsupportedFormat [11] . a format version this program does not read
    │   ├── TooLarge [12] .......... bigger than the size cap
    │   ├── UntrustedSignature [13]  not signed by the pinned exporter key
    │   ├── RollbackRefused [14] ... older than (or as old as) what is installed
    │   ├── NotARecipient [15] ..... not encrypted to this desktop's key
    │   ├── CorruptSnapshot [16] ... signed, but damaged: truncated, bad chunk, bad hash, bad SQLite
    │   └── BrokenChain [32] ....... a delta does not fit what is installed (the full snapshot is used)
    ├── KeyProblem
    │   ├── NoDesktopKey [20] ...... this desktop was never enrolled
    │   ├── WrongPassphrase [21] ... the key file's passphrase is wrong
    │   ├── KeyStoreUnavailable [22] the OS key store cannot be reached
    │   ├── NotTrusted [23] ........ no exporter key is pinned yet
    │   └── BadKeyText [24] ........ a pasted key is mistyped or of the wrong kind
    ├── NoSnapshot [30] ............ nothing installed yet
    ├── StaleSnapshot [31] ......... the newest snapshot is too old for a kit to be called ready
    ├── DownloadFailed [33] ........ an http(s) inbox did not answer properly, after retries
    ├── InstallFailed [34] ......... the window's install process hung (stopped at its limit) or died
    ├── ClockBehind [60] ........... this computer's clock is earlier than the snapshot's own time
    ├── StorageError [40] .......... the disk is full or not writable
    ├── JournalError [70] .......... the outage journal cannot be saved or read
    │   ├── JournalDamaged [71] .... some saved entries cannot be read back (the file was damaged)
    │   └── NoExporterKey [72] ..... no snapshot has told this desktop the exporter's receiving key yet
    ├── SealedFileRefused [73] ..... a journal file or drill receipt from a desktop is not accepted
    │   ├── CorruptSealedFile [74]  damaged, cut short, forged, or sealed to another exporter
    │   └── UnknownSender [75] ..... signed by a key no enrolled desktop has
    ├── VersionNotAvailable [76] ... changes/diff: that snapshot version is not kept here
    ├── DrillNotPassed [77] ........ a drill ended below the passing score (or the kit check failed)
    └── ExportError [50] ........... (exporter) an export could not be done; nothing was published
        ├── SourceError [51] ....... a source is down, dropped mid-read, or returned bad rows
        ├── ExportRefused [52] ..... a check failed (empty, big drop, broken references, gaps)
        ├── PublishFailed [53] ..... at least one destination could not be written
        ├── ExporterBusy [54] ...... another export or exporter holds the lock
        ├── ExportTimedOut [55] .... the whole export went past its deadline; stopped, lock released
        ├── DesktopsBehind [56] .... (status) a desktop missed snapshots for over two intervals
        ├── ExportFailing [57] ..... (status) the last run failed, was refused or skipped, or none is recent
        └── NotificationFailed [58]  an alert email or webhook could not be delivered

Each error carries one sentence for the operator or IT: what is wrong and what to do next. The UI
and the command line show ``str(error)``; they never show a traceback. Messages name files, rows and
fields, never key material or directory contents.

This module must never import anything but the standard library.
"""

from __future__ import annotations

__all__ = [
    "BackupOperatorError",
    "ConfigError",
    "ValidationError",
    "SnapshotError",
    "NotASnapshot",
    "UnsupportedFormat",
    "TooLarge",
    "UntrustedSignature",
    "RollbackRefused",
    "NotARecipient",
    "CorruptSnapshot",
    "BrokenChain",
    "KeyProblem",
    "NoDesktopKey",
    "WrongPassphrase",
    "KeyStoreUnavailable",
    "NotTrusted",
    "BadKeyText",
    "NoSnapshot",
    "StaleSnapshot",
    "DownloadFailed",
    "InstallFailed",
    "ClockBehind",
    "StorageError",
    "JournalError",
    "JournalDamaged",
    "NoExporterKey",
    "SealedFileRefused",
    "CorruptSealedFile",
    "UnknownSender",
    "VersionNotAvailable",
    "DrillNotPassed",
    "ExportError",
    "SourceError",
    "ExportRefused",
    "PublishFailed",
    "ExporterBusy",
    "ExportTimedOut",
    "DesktopsBehind",
    "ExportFailing",
    "NotificationFailed",
]


class BackupOperatorError(Exception):
    """Base of every deliberate error; ``exit_code`` is what the command line returns."""

    exit_code = 1


class ConfigError(BackupOperatorError):
    exit_code = 2


class ValidationError(BackupOperatorError):
    """Directory data that breaks the model. ``problems`` lists every offending row, not just the first."""

    exit_code = 3

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


class SnapshotError(BackupOperatorError):
    """A snapshot file was refused. The last good snapshot stays in use."""


class NotASnapshot(SnapshotError):
    exit_code = 10


class UnsupportedFormat(SnapshotError):
    exit_code = 11


class TooLarge(SnapshotError):
    exit_code = 12


class UntrustedSignature(SnapshotError):
    exit_code = 13


class RollbackRefused(SnapshotError):
    exit_code = 14


class NotARecipient(SnapshotError):
    exit_code = 15


class CorruptSnapshot(SnapshotError):
    exit_code = 16


class BrokenChain(SnapshotError):
    """A delta that does not fit the installed snapshot, or whose result is not what its header signed.

    Nothing is installed from it; the desktop takes the full snapshot instead.
    """

    exit_code = 32


class KeyProblem(BackupOperatorError):
    pass


class NoDesktopKey(KeyProblem):
    exit_code = 20


class WrongPassphrase(KeyProblem):
    exit_code = 21


class KeyStoreUnavailable(KeyProblem):
    exit_code = 22


class NotTrusted(KeyProblem):
    exit_code = 23


class BadKeyText(KeyProblem):
    exit_code = 24


class NoSnapshot(BackupOperatorError):
    exit_code = 30


class StaleSnapshot(BackupOperatorError):
    exit_code = 31


class DownloadFailed(BackupOperatorError):
    """An http(s) inbox could not be reached, timed out, or answered wrongly, after the retries."""

    exit_code = 33


class InstallFailed(BackupOperatorError):
    """The child process that installs for the window took too long (and was killed) or died. What was in
    use stays in use: an install is atomic, so a stopped one leaves nothing half-written in use."""

    exit_code = 34


class ClockBehind(BackupOperatorError):
    """This computer's clock says a time before the snapshot was made: "on call now" would be wrong."""

    exit_code = 60


class StorageError(BackupOperatorError):
    exit_code = 40


class JournalError(BackupOperatorError):
    exit_code = 70


class JournalDamaged(JournalError):
    """Some frames of the journal log do not authenticate; ``readable`` entries were still read."""

    exit_code = 71


class NoExporterKey(JournalError):
    exit_code = 72


class SealedFileRefused(BackupOperatorError):
    exit_code = 73


class CorruptSealedFile(SealedFileRefused):
    exit_code = 74


class UnknownSender(SealedFileRefused):
    exit_code = 75


class VersionNotAvailable(BackupOperatorError):
    exit_code = 76


class DrillNotPassed(BackupOperatorError):
    exit_code = 77


# --- raised by the exporter (defined here so that every error lives in one tree) ---------------


class ExportError(BackupOperatorError):
    exit_code = 50


class SourceError(ExportError):
    """A source could not be read completely. No snapshot is built from a partial read."""

    exit_code = 51


class ExportRefused(ExportError):
    """A check failed; ``report`` is the full CheckReport so the CLI and status can list the rows."""

    exit_code = 52

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class PublishFailed(ExportError):
    """Some destinations failed; the others were written. ``results`` has one entry per destination."""

    exit_code = 53

    def __init__(self, message: str, results=None):
        super().__init__(message)
        self.results = results or []


class ExporterBusy(ExportError):
    exit_code = 54


class ExportTimedOut(ExportError):
    """The export as a whole took longer than ``[export] deadline_minutes``; nothing was published."""

    exit_code = 55


class DesktopsBehind(ExportError):
    """``status``: the exporter is fine, but desktops are behind (a monitoring WARNING)."""

    exit_code = 56


class ExportFailing(ExportError):
    """``status``: exports are failing, refused, skipped or not running (a monitoring CRITICAL)."""

    exit_code = 57


class NotificationFailed(ExportError):
    """An alert could not be delivered (``notify-test``; during runs it is only logged)."""

    exit_code = 58
