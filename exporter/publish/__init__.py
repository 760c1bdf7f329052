"""Publishing: put one sealed snapshot into every inbox, prune old ones, read the desktops' receipts back.

Destinations come from two places and are merged (the same inbox named twice is written once):

* ``[[destinations]]`` in the config — a share or server that several desktops read from;
* each enrolled desktop's inboxes in recipients.toml — a folder path, a Windows UNC path, an
  ``sftp://user@host:port/path`` URL, or the name of a [[destinations]] entry.

Every destination is written on its own worker with retries and exponential backoff; one that fails
(unreachable, full, refused) never blocks or undoes the others, and is reported by name. A file is
named ``snapshot-<version:012d>.bosnap`` so that names sort like versions.

This module must never write a partial file where a desktop could pick it up (folders: temp + fsync +
rename; SFTP: temp name + rename), and never delete the snapshot it has just written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Callable, Protocol
from urllib.parse import unquote, urlsplit

from backup_operator.errors import BackupOperatorError, ConfigError
from backup_operator.snapshot.format import FILE_SUFFIX

from exporter.config import Config, DestinationConfig

__all__ = [
    "snapshot_filename",
    "version_of",
    "Destination",
    "DestinationResult",
    "Receipt",
    "resolve_destinations",
    "open_destination",
    "publish_all",
    "parse_receipt",
    "highest_published_version",
    "prunable",
    "read_plain_file",
    "MAX_VERSION",
    "MAX_RECEIPT_BYTES",
]

log = logging.getLogger("exporter.publish")

# Any width of digits (a version past 10^12 has 13), never more than 16: versions stay within 2^53.
_NAME_RE = re.compile(r"^snapshot-(\d{1,16})" + re.escape(FILE_SUFFIX) + "$")
MAX_BACKOFF_S = 60.0
MAX_VERSION = 2**53  # a version is a JSON number everywhere it travels: exact up to here, and nowhere near int64
MAX_RECEIPT_BYTES = 16 * 1024
MAX_RECEIPT_TEXT = 256


def snapshot_filename(version: int) -> str:
    return f"snapshot-{version:012d}{FILE_SUFFIX}"


def version_of(filename: str) -> int | None:
    match = _NAME_RE.match(filename)
    if not match:
        return None
    version = int(match.group(1))
    return version if 0 < version <= MAX_VERSION else None


def prunable(names: list[str], keep: int, protect: str) -> list[str]:
    """The snapshot files to delete after writing ``protect``: this exporter's older ones beyond ``keep``.

    Files of any name width count by their version. A name claiming a version above the one just written
    was not written by this exporter (a stray or planted file): it is left alone, and it never pushes this
    exporter's own newest files out of the ``keep`` window.
    """
    current = version_of(protect)
    if current is None:
        return []
    ours = sorted(((v, n) for n in names if (v := version_of(n)) is not None and v <= current), reverse=True)
    return [n for _v, n in ours[max(1, keep):] if n != protect]


@dataclass
class Receipt:
    """A receipt as the file states it. Nothing here is trusted until exporter/receipts.py checks it."""

    desktop: str
    snapshot_version: int
    installed_at: str
    public_key: str
    destination: str
    signed: tuple[str, bytes, bytes] | None = None  # (desktop key text, signed message, signature)


def _no_floats(text: str) -> None:
    raise ValueError(f"{text[:20]} is not a whole number")


def parse_receipt(text: bytes | str, destination: str) -> Receipt | None:
    """A desktop's receipt, or None if it is not one (a receipt must never stop a publish or a status).

    Bounded and validated: at most MAX_RECEIPT_BYTES; a JSON object with no fractions, infinities or NaN;
    a version that is a whole number from 1 to 2^53; short texts; a time that is a time.
    """
    from backup_operator.core.model import parse_utc
    from backup_operator.snapshot.sealed import document_parts

    if len(text) > MAX_RECEIPT_BYTES:
        return None
    try:
        doc = json.loads(text, parse_float=_no_floats, parse_constant=_no_floats)
        if not isinstance(doc, dict):
            return None
        version = doc["snapshot_version"]
        if type(version) is not int or not 0 < version <= MAX_VERSION:
            return None
        texts = [doc["desktop"], doc["installed_at"], doc.get("public_key", "")]
        if not all(isinstance(t, str) and len(t) <= MAX_RECEIPT_TEXT for t in texts) or not texts[0]:
            return None
        parse_utc(texts[1])
        return Receipt(texts[0], version, texts[1], texts[2], destination, document_parts(doc))
    except (ValueError, KeyError, TypeError, RecursionError, OverflowError):
        return None


def read_plain_file(path: Path, cap: int) -> bytes | None:
    """The bytes of ``path`` if it is a plain file of at most ``cap`` bytes; None for anything else.

    A link is never followed (O_NOFOLLOW), a FIFO or device never blocks (O_NONBLOCK, then fstat), and at
    most ``cap + 1`` bytes are read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
            return None
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(fd, cap + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) if size <= cap else None
    except OSError:
        return None
    finally:
        os.close(fd)


class Destination(Protocol):
    label: str

    def write_snapshot(self, filename: str, data: bytes) -> None: ...
    def prune(self, keep: int, protect: str) -> list[str]: ...
    def read_receipts(self) -> list[Receipt]: ...
    def snapshot_versions(self) -> list[int]: ...
    def read_snapshot(self, version: int, cap: int) -> bytes | None: ...
    def close(self) -> None: ...


@dataclass
class DestinationResult:
    destination: str
    ok: bool
    attempts: int
    message: str = ""
    seconds: float = 0.0
    pruned: list[str] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)


def _folder_dest(path: str, name: str | None = None, keep: int | None = None) -> DestinationConfig:
    return DestinationConfig(name=name or path, kind="folder", path=path, keep_snapshots=keep)


def _sftp_from_url(url: str, config: Config) -> DestinationConfig:
    parts = urlsplit(url)
    if not parts.hostname or not parts.path:
        raise ConfigError(f"The inbox {url!r} is not an SFTP address like sftp://user@host:22/path/to/inbox.")
    defaults = config.sftp
    for dest in config.destinations:
        if dest.kind == "sftp" and dest.host == parts.hostname and (parts.port or dest.port) == dest.port:
            # Credentials from the matching [[destinations]] entry, path from the URL.
            return DestinationConfig(**{**dest.__dict__, "name": url, "path": unquote(parts.path),
                                        "username": parts.username or dest.username})
    return DestinationConfig(
        name=url, kind="sftp", path=unquote(parts.path), host=parts.hostname,
        port=parts.port or defaults.port, username=parts.username or defaults.username,
        key_file=defaults.key_file, key_passphrase_env=defaults.key_passphrase_env,
        password_env=defaults.password_env, known_hosts=defaults.known_hosts,
        host_keys=list(defaults.host_keys))


def resolve_destinations(config: Config, recipients) -> list[DestinationConfig]:
    """Every distinct destination, config entries first, then the desktops' own inboxes."""
    by_name = {d.name: d for d in config.destinations}
    out: list[DestinationConfig] = list(config.destinations)
    for recipient in recipients:
        for inbox in recipient.inboxes:
            if inbox in by_name or inbox.lower().startswith(("http://", "https://")):
                continue  # an http(s) inbox pulls from a [[destinations]] web folder; nothing to push
            if inbox.lower().startswith("sftp://"):
                out.append(_sftp_from_url(inbox, config))
            else:
                out.append(_folder_dest(inbox if inbox.startswith("\\\\") or PureWindowsPath(inbox).drive
                                        else str(config.resolve(inbox))))
    seen, unique = set(), []
    for dest in out:
        key = (dest.kind, dest.host, dest.port, dest.path.rstrip("/\\"))
        if key not in seen:
            seen.add(key)
            unique.append(dest)
    return unique


def open_destination(dest: DestinationConfig, timeout_s: float, publication=None) -> Destination:
    if dest.kind == "web":
        from exporter.publish.web import WebDestination
        return WebDestination(dest, publication)
    if dest.kind == "folder":
        from exporter.publish.folder import FolderDestination
        return FolderDestination(dest)
    if dest.kind == "sftp":
        from exporter.publish.sftp import SftpDestination
        return SftpDestination(dest, timeout_s)
    raise ConfigError(f"Destination {dest.name!r} has unknown type {dest.kind!r}.")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BackupOperatorError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def publish_one(dest: DestinationConfig, filename: str, data: bytes, *, keep: int, retries: int,
                backoff_s: float, timeout_s: float, sleep: Callable[[float], None] = time.sleep,
                opener: Callable[[DestinationConfig, float], Destination] = open_destination) -> DestinationResult:
    """Write, prune and read receipts at one destination, retrying the write with backoff."""
    started = time.monotonic()
    label = dest.label
    attempts, last_error = 0, ""
    for attempt in range(1, retries + 2):
        attempts = attempt
        target = None
        try:
            target = opener(dest, timeout_s)
            target.write_snapshot(filename, data)
            result = DestinationResult(label, True, attempts)
            # Pruning and receipts are housekeeping: a failure there is reported, never a failed publish.
            try:
                result.pruned = target.prune(dest.keep_snapshots or keep, protect=filename)
            except Exception as exc:
                result.message = f"written, but old snapshots could not be pruned ({_describe(exc)})"
                log.warning("%s: %s", label, result.message)
            try:
                result.receipts = target.read_receipts()
            except Exception as exc:
                log.warning("%s: receipts could not be read (%s)", label, _describe(exc))
            result.seconds = time.monotonic() - started
            return result
        except ConfigError as exc:
            last_error = str(exc)
            break  # retrying cannot fix a wrong setting
        except Exception as exc:
            last_error = _describe(exc)
            log.warning("%s: attempt %d of %d failed: %s", label, attempt, retries + 1, last_error)
            if attempt <= retries:
                sleep(min(MAX_BACKOFF_S, backoff_s * 2 ** (attempt - 1)))
        finally:
            if target is not None:
                try:
                    target.close()
                except Exception:
                    pass
    return DestinationResult(label, False, attempts, last_error, time.monotonic() - started)


def publish_all(data: bytes, version: int, destinations: list[DestinationConfig], settings, *,
                sleep: Callable[[float], None] = time.sleep,
                opener: Callable[[DestinationConfig, float], Destination] = open_destination,
                publication=None) -> list[DestinationResult]:
    """Publish to every destination at once; results come back in the destinations' order.

    ``publication`` (exporter/delta.py) is what web folders get besides the snapshot: deltas, and the
    key that signs their manifest.
    """
    filename = snapshot_filename(version)
    if not destinations:
        return []
    if publication is not None and opener is open_destination:
        def opener(dest: DestinationConfig, timeout_s: float) -> Destination:
            return open_destination(dest, timeout_s, publication)

    def one(dest: DestinationConfig) -> DestinationResult:
        return publish_one(dest, filename, data, keep=settings.keep_snapshots, retries=settings.retries,
                           backoff_s=settings.backoff_s, timeout_s=settings.timeout_s, sleep=sleep,
                           opener=opener)

    workers = max(1, min(settings.parallel, len(destinations)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="publish") as pool:
        return list(pool.map(one, destinations))


SIGNED_FLOOR_CANDIDATES = 3  # per inbox: the highest names above the counter whose signature is checked


def highest_published_version(destinations: list[DestinationConfig], timeout_s: float,
                              opener: Callable[[DestinationConfig, float], Destination] = open_destination,
                              *, own_keys: list = (), above: int = 0, cap: int = 512 * 1024 * 1024,
                              ) -> tuple[int, int]:
    """(highest version this exporter signed that sits in a reachable inbox, highest version any name claims).

    Names and receipts are not authenticated (anyone who can write to a share can plant one), so neither
    sets a version. Only a snapshot whose signature verifies with one of this exporter's own keys
    (``own_keys``) counts: after a lost or restored state the next version still goes above what desktops
    hold. For each inbox only the few highest names above ``above`` are read (each at most ``cap`` bytes),
    so planted names cost little; the second number is only for a warning.
    """
    from backup_operator.errors import SnapshotError
    from backup_operator.snapshot import envelope

    def one(dest: DestinationConfig) -> tuple[int, int]:
        target = None
        try:
            target = opener(dest, timeout_s)
            versions = sorted(target.snapshot_versions(), reverse=True)
            named = versions[0] if versions else 0
            for version in [v for v in versions if v > above][:SIGNED_FLOOR_CANDIDATES]:
                blob = target.read_snapshot(version, cap)
                if blob is None:
                    continue
                try:
                    header = envelope.verify(blob, own_keys)
                except SnapshotError:
                    continue
                if header.snapshot_version == version:
                    return version, named
            return 0, named
        except Exception as exc:
            log.info("%s: could not look for earlier snapshots (%s)", dest.label, _describe(exc))
            return 0, 0
        finally:
            if target is not None:
                try:
                    target.close()
                except Exception:
                    pass

    if not destinations or not own_keys:
        return 0, 0
    with ThreadPoolExecutor(max_workers=min(8, len(destinations)), thread_name_prefix="scan") as pool:
        found = list(pool.map(one, destinations))
    return max(f[0] for f in found), max(f[1] for f in found)
