"""The exporter's own errors, added under the project's error tree (``backup_operator.errors``).

The tree below the shared base (exit code in brackets)::

    BackupOperatorError
    └── ExportError [50] ............ an export could not be done; nothing was published
        ├── SourceError [51] ........ a source is down, dropped mid-read, or returned bad rows
        ├── ExportRefused [52] ...... a check failed (empty, big drop, broken references, gaps)
        ├── PublishFailed [53] ...... at least one destination could not be written
        └── ExporterBusy [54] ....... another export or exporter holds the lock

Shared ones the exporter also raises: ConfigError [2], ValidationError [3], KeyProblem [2x],
StorageError [40]. Every message is one sentence naming the source, row or destination, and what to do.

This module must never import anything but the standard library and ``backup_operator.errors``.
"""

from __future__ import annotations

from backup_operator.errors import BackupOperatorError

__all__ = ["ExportError", "SourceError", "ExportRefused", "PublishFailed", "ExporterBusy"]


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
