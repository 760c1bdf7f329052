"""The desktop's snapshot store: verify and install sealed snapshots, and open the newest good one.

Install order (each step refuses before the next spends trust on the file)::

    size cap → signature → version above the high-water mark → unwrap → decrypt in memory
      → hash and structural check → atomic install (temp, fsync, rename, fsync folder)
      → high-water mark (atomic) → prune to the last K → receipt in each inbox

What is installed is the sealed file exactly as received: the store holds ciphertext only, and a
snapshot is decrypted into memory each time it is opened. Beside the newest one the store keeps its
**open copy** (snapshot/opencopy.py): the database, verified whole at install, sealed again under a key
only this desktop derives, so that a start (the window, every ``search``) decrypts it in one pass —
no hashing of the signed file, no unpacking, no page-by-page check — after checking that the copy was
made from the installed file as it stands and that its signer is still trusted. Any doubt about the
copy, and the signed file is opened the full way. The high-water mark is the highest version
ever installed; it is re-derived from the installed files whenever its file is missing or lower, so
deleting it cannot re-open the door to an older snapshot.

This module must never write plaintext to disk, never delete the last snapshot that opens, and never
import Qt.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from backup_operator.core import chain
from backup_operator.core.model import SnapshotMeta, format_utc, open_database, read_meta
from backup_operator.core.ramdb import RamImage
from backup_operator.errors import (
    CorruptSnapshot,
    NoSnapshot,
    RollbackRefused,
    SnapshotError,
    StorageError,
)
from backup_operator.fsutil import atomic_write, clean_temp_files
from backup_operator.snapshot import envelope
from backup_operator.snapshot import sealed as sealed_files
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopKey, SignerPublicKey
from backup_operator.snapshot.opencopy import OPEN_COPY_SUFFIX, OpenCopy, OpenCopyUnusable, OpenCopyWriter

__all__ = ["SnapshotStore", "OpenSnapshot", "Verified", "SyncReport", "write_receipt"]

log = logging.getLogger("backup_operator.store")

HIGH_WATER_FILE = "high-water-mark"
_COPY_PIECE = 4 * 1024 * 1024
_INSTALLED_RE = re.compile(r"^(\d{12,})\.bosnap$")  # 12 digits, more for versions >= 10**12


@dataclass
class Verified:
    """A snapshot that passed every check, decrypted into this process's RAM file, not yet installed.

    ``conn`` is the database open read-only; its bytes stay readable (``image.pieces``) until the open
    copy is sealed from them. ``close`` frees it all (``install`` does, once done)."""

    header: envelope.Header
    meta: SnapshotMeta
    sealed: bytes
    conn: sqlite3.Connection
    image: RamImage
    #: The open copy, sealed as the database was decrypted (``check_bytes(open_copy=True)``); committed by
    #: the install, dropped by ``close`` otherwise. None: made from ``image.pieces`` at install, if at all.
    open_copy: _OpenCopyAlongside | None = None

    @property
    def version(self) -> int:
        return self.header.snapshot_version

    @property
    def database(self) -> bytes:
        """The database's bytes (a copy: for tests and tools, never on the install path)."""
        return bytes(self.conn.serialize())

    def close(self) -> None:
        if self.open_copy is not None:
            self.open_copy.abort()
        self.image.release()
        self.conn.close()


class _OpenCopyAlongside:
    """Writes each decrypted piece into the RAM file, and has it sealed into the open copy on a thread of
    its own while the rest is still being unpacked (AES-GCM and the disk writes then run beside zstd
    and the hash, on the second core): the install then only gives the copy its name. The copy is only a
    speed-up: if it cannot be written (a full disk), it is dropped and the install goes on; it is given
    its name only once the snapshot has passed every check and is installed, and dropped otherwise."""

    _BATCH = 2 * 1024 * 1024  # bytes of pieces handed over at once (a piece is tens of kilobytes: one
    _QUEUE = 8                # hand-over per piece cost more than the sealing); batches waiting at most

    def __init__(self, write: Callable[[memoryview], None], writer: OpenCopyWriter, version: int):
        self._write, self._writer, self.version = write, writer, version
        self._failed: BaseException | None = None
        self._stopped = False  # set before the thread is told to stop: nothing is queued after that
        self._committed = False
        self._batch: list[bytes] = []
        self._batched = 0
        self._queue: queue.Queue = queue.Queue(maxsize=self._QUEUE)
        self._thread = threading.Thread(target=self._run, name="open-copy-writer", daemon=True)
        self._thread.start()

    def __call__(self, piece) -> None:
        self._write(piece)
        if self._failed is None and not self._stopped:
            self._batch.append(bytes(piece))  # bytes stay bytes (no copy); a view is copied, not kept
            self._batched += len(piece)
            if self._batched >= self._BATCH:
                self._queue.put(self._batch)
                self._batch, self._batched = [], 0

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._failed is None:  # after a failure, only drained: the decrypting side never waits
                try:
                    self._writer.write(b"".join(batch))
                except BaseException as exc:  # noqa: BLE001 - the copy is dropped, the install goes on
                    self._failed = exc

    def _stop(self) -> None:
        self._stopped = True
        if self._thread.is_alive():
            if self._batch and self._failed is None:
                self._queue.put(self._batch)
            self._batch = []
            self._queue.put(None)
            self._thread.join()

    def commit(self) -> bool:
        """Give the copy its name; False if it was dropped, or could not be finished."""
        self._stop()
        if self._failed is None:
            try:
                self._writer.commit()
                self._committed = True
                return True
            except OSError as exc:
                self._failed = exc
        self._writer.abort()
        log.warning("no open copy of version %d (%s); it opens from its signed file",
                    self.version, self._failed)
        return False

    def abort(self) -> None:
        """Drop the copy (a no-op once committed); never raises."""
        if self._committed:
            return
        self._failed = self._failed or OSError("not installed")
        self._stop()
        self._writer.abort()


@dataclass
class OpenSnapshot:
    """An installed snapshot, open in memory."""

    version: int
    path: Path
    conn: sqlite3.Connection
    meta: SnapshotMeta
    header: envelope.Header
    skipped: list[tuple[Path, SnapshotError]] = field(default_factory=list)  # newer files that failed

    def close(self) -> None:
        self.conn.close()


@dataclass
class SyncReport:
    installed: list[int] = field(default_factory=list)
    refused: list[tuple[Path, SnapshotError]] = field(default_factory=list)
    ignored_older: int = 0
    current: int = 0
    new_signers: list[SignerPublicKey] = field(default_factory=list)
    problem: SnapshotError | None = None  # why nothing new was installed: the newest candidate's refusal



def _now() -> datetime:
    return datetime.now(timezone.utc)


class SnapshotStore:
    """The installed snapshots of one desktop, in ``folder``.

    ``key`` is called only when a snapshot must be decrypted, so a passphrase is asked for only when
    there is something to open.
    """

    def __init__(self, folder: Path, *, trusted: Iterable[SignerPublicKey], key: Callable[[], DesktopKey],
                 size_cap: int = F.DEFAULT_SIZE_CAP, keep: int = 3, revoked: Iterable[SignerPublicKey] = ()):
        self.folder = Path(folder)
        # Keys IT withdrew (untrust, trust --only): never a signer, never endorsed into trust again.
        self.revoked = list(revoked)
        self.trusted = [k for k in trusted if k not in self.revoked]
        self._key = key
        self.size_cap = size_cap
        self.keep = max(1, keep)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.notes: list[str] = []  # what went wrong after an install succeeded (say it, it is not a failure)
        # Whatever a crash left half-written is never opened (it has the temp prefix); remove it now.
        clean_temp_files(self.folder)

    # --- what is installed -----------------------------------------------------------------------

    def installed_versions(self) -> list[int]:
        """Versions of installed files, newest first (by name; each is verified again when opened)."""
        versions = []
        for path in self.folder.iterdir():
            match = _INSTALLED_RE.match(path.name)
            if match:
                versions.append(int(match.group(1)))
        return sorted(versions, reverse=True)

    def path_of(self, version: int) -> Path:
        return self.folder / f"{version:012d}{F.FILE_SUFFIX}"

    def high_water(self) -> int:
        """The highest version ever installed: the larger of the mark file and what the store holds.

        Only installed files named above the recorded mark are verified (they are what a missing, lowered
        or damaged mark file would hide); when none is, the mark stands as recorded."""
        recorded = 0
        try:
            recorded = int((self.folder / HIGH_WATER_FILE).read_text().strip() or 0)
        except (OSError, ValueError):
            recorded = 0
        derived = 0
        for version in self.installed_versions():
            if version <= recorded:
                break  # nothing at or below the recorded mark can raise it: not read (176 MB at 1M)
            try:
                header = envelope.verify(envelope.read_capped(self.path_of(version), self.size_cap),
                                         self.trusted, revoked=self.revoked)
            except SnapshotError:
                continue
            if header.snapshot_version == version:
                derived = version
                break
        for version in reversed(chain.installed_deltas(self)):
            if version <= max(derived, recorded):
                break
            try:  # a delta's version counts as installed as soon as its signature verifies
                chain.read_link(self, envelope.read_capped(chain.delta_path(self, version), self.size_cap),
                                chain.delta_path(self, version))
            except SnapshotError:
                continue
            derived = version
            break
        if derived > recorded:
            try:
                self._write_high_water(derived)
            except StorageError:
                pass  # the derived value still protects this run; the next start tries again
        return max(recorded, derived)

    def _write_high_water(self, version: int) -> None:
        atomic_write(self.folder / HIGH_WATER_FILE, f"{version}\n".encode())

    # --- checking a file ---------------------------------------------------------------------------

    def check_bytes(self, sealed: bytes, *, high_water: int | None = None,
                    open_copy: bool = False) -> Verified:
        """Every check of a sealed snapshot, its database decrypted into a RAM file. ``open_copy``: for an
        install, seal the open copy (under a temporary name) from the pieces as they are decrypted."""
        header = envelope.verify(sealed, self.trusted, revoked=self.revoked)
        mark = self.high_water() if high_water is None else high_water
        if header.snapshot_version <= mark:
            raise RollbackRefused(
                f"This snapshot is version {header.snapshot_version}, not newer than version {mark} already "
                "installed; an older snapshot is never installed over a newer one.")
        # Decrypted, unpacked and hashed in one pass straight into the RAM file SQLite reads (core/ramdb):
        # the database is never held in a buffer of its own, and the decrypted payload never whole.
        image = RamImage.create()
        alongside = None
        try:
            key = self._key()
            if open_copy:
                alongside = self._open_copy_alongside(image.write, header.snapshot_version, sealed, key)
            envelope.decrypt_to(sealed, header, key, alongside or image.write)
        except BaseException:
            if alongside is not None:
                alongside.abort()
            image.close()
            raise
        # Signed, authenticated and matching the hash sealed inside: a structural check, not quick_check
        # (open_database explains why).
        try:
            conn = open_database(image, check="structure", keep_source=True)
        except BaseException:
            if alongside is not None:
                alongside.abort()
            raise
        try:
            meta = read_meta(conn)
            if meta.snapshot_version != header.snapshot_version:
                raise CorruptSnapshot("The snapshot's inside and outside disagree on its version; "
                                      "it was not built by a valid exporter.")
        except BaseException:
            if alongside is not None:
                alongside.abort()
            image.release()
            conn.close()
            raise
        return Verified(header, meta, sealed, conn, image, alongside)

    def _open_copy_alongside(self, write, version: int, sealed: bytes,
                             key: DesktopKey) -> _OpenCopyAlongside | None:
        try:
            writer = OpenCopyWriter(self.open_copy_path(version), key=key, version=version, sealed=sealed,
                                    sealed_header=envelope.prefix_of(sealed, kind="snapshot"))
        except (OSError, SnapshotError) as exc:
            log.warning("no open copy of version %d (%s); it opens from its signed file", version, exc)
            return None
        return _OpenCopyAlongside(write, writer, version)

    def check_file(self, path: Path, *, high_water: int | None = None) -> Verified:
        return self.check_bytes(envelope.read_capped(path, self.size_cap), high_water=high_water)

    # --- installing ------------------------------------------------------------------------------

    def install(self, path: Path) -> Verified:
        """Verify ``path`` fully, then install it atomically. Raises and changes nothing if it fails.
        The returned snapshot is closed (its ``header``, ``meta`` and ``version`` stay readable)."""
        verified = self.check_bytes(envelope.read_capped(Path(path), self.size_cap), open_copy=True)
        self._install_verified(verified)
        return verified

    def install_bytes(self, sealed: bytes) -> Verified:
        """Verify a sealed snapshot held in memory (an http download), then install it atomically."""
        verified = self.check_bytes(sealed, open_copy=True)
        self._install_verified(verified)
        return verified

    def _install_verified(self, verified: Verified) -> None:
        try:
            atomic_write(self.path_of(verified.version), verified.sealed, mode=0o600)
            # From here on the new version is installed and is what opens: a failure below must not say
            # "the previous copy is still in use".
            self.record_high_water(verified.version, meanwhile=lambda: (
                self._keep_open_copy(verified), self.prune()))
        finally:
            verified.close()

    def record_high_water(self, version: int, *, meanwhile: Callable[[], object] | None = None) -> None:
        """Write the mark after ``version`` was installed, then run ``meanwhile`` (the open copy, pruning).
        The mark only speeds up the check: it is worked out again from the installed files whenever it is
        lower, so a full disk here costs no protection. Pruning frees space, so a failed write is tried once
        more after it. What could not be written is said truthfully in ``notes``: the new version is
        installed and in use."""
        try:
            self._write_high_water(version)
            failed = None
        except StorageError as exc:
            failed = exc
        if meanwhile is not None:
            meanwhile()
        if failed is None:
            return
        try:
            self._write_high_water(version)
            return
        except StorageError as exc:
            failed = exc
        why = "the disk is full" if "full" in str(failed) else "it could not be written"
        self.notes.append(
            f"Version {version} is installed and in use, but its high-water mark was not recorded "
            f"({why}); it is worked out again from the installed files, so older snapshots stay refused. "
            f"Free some space in {self.folder} before the next snapshot arrives.")

    def installed_at(self, version: int) -> datetime:
        path = self.path_of(version)
        if not path.exists() and chain.delta_path(self, version).exists():
            path = chain.delta_path(self, version)
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)

    def current_version(self) -> int:
        """The version opening would give if every file verifies: the newest full snapshot's chain tip."""
        fulls = self.installed_versions()
        if not fulls:
            return 0
        at = fulls[0]
        for version in chain.installed_deltas(self):
            if version > at:
                at = version  # names only; open_newest verifies each link
        return at

    def newest_full_and_chain(self) -> tuple[int, bytes, envelope.Header, list]:
        """The newest full snapshot whose signature verifies, and the verified deltas that follow it."""
        for version in self.installed_versions():
            try:
                sealed = envelope.read_capped(self.path_of(version), self.size_cap)
                header = envelope.verify(sealed, self.trusted, revoked=self.revoked)
            except SnapshotError:
                continue
            if header.snapshot_version == version:
                return version, sealed, header, chain.chain_after(self, version)[0]
        raise NoSnapshot("No full snapshot is installed for a delta to apply to; the full snapshot is needed.")

    def install_deltas(self, sealed_deltas: list[bytes]) -> int:
        """Install deltas continuing what is installed (core/chain.py); returns the new version."""
        return chain.install_deltas(self, sealed_deltas)

    def prune(self) -> None:
        """Keep the newest K installed files; never delete the newest one that still opens."""
        versions = self.installed_versions()
        for version in versions[self.keep:]:
            try:
                self.path_of(version).unlink()
            except OSError:
                pass
        if versions:
            chain.prune_deltas(self, versions[0])

    def sync(self, inboxes: Iterable[Path]) -> SyncReport:
        """Install the newest snapshot that verifies from the inboxes; older and equal ones are ignored."""
        report = SyncReport()
        mark = self.high_water()
        unreadable: list[tuple[Path, SnapshotError]] = []
        candidates: list[tuple[int, Path, Path]] = []
        newest_older: tuple[int, Path] | None = None
        for inbox in inboxes:
            inbox = Path(inbox)
            if not inbox.is_dir():
                continue
            for path in inbox.glob(f"*{F.FILE_SUFFIX}"):
                if path.name.startswith("."):
                    continue  # a temp file the exporter is still writing
                try:
                    # Regular files only, never blocking, no link out of the inbox (a FIFO hung sync).
                    # Only the header, to order the files: the one installed is read whole below, once.
                    version = envelope.peek_prefix(envelope.read_head(path, self.size_cap,
                                                                      within=inbox)).snapshot_version
                except SnapshotError as exc:
                    unreadable.append((path, exc))
                    continue
                except OSError:
                    continue
                if version <= mark:
                    report.ignored_older += 1
                    newest_older = max(newest_older or (version, path), (version, path))
                else:
                    candidates.append((version, path, inbox))
        unreadable.sort(key=lambda item: item[0].name)
        report.refused.extend(unreadable)
        if not candidates and newest_older is not None and newest_older[0] < mark:
            # The inboxes went backwards (a replay, or a share restored from an old copy): say so, so the
            # command line can exit with RollbackRefused's code instead of "up to date".
            version, path = newest_older
            report.refused.insert(0, (path, RollbackRefused(
                f"The inbox offers only version {version}, older than version {mark} already installed; "
                "an older snapshot is never installed over a newer one. Tell IT: the inbox may have been "
                "restored from an old copy.")))
        # Newest first: one good file is enough; an older good one is the fallback if the newest fails.
        for _version, path, inbox in sorted(candidates, reverse=True):
            try:
                verified = self.check_bytes(envelope.read_capped(path, self.size_cap, within=inbox),
                                            high_water=mark, open_copy=True)
            except SnapshotError as exc:
                report.refused.insert(0 if report.problem is None else 1, (path, exc))
                report.problem = report.problem or exc
                continue
            self._install_verified(verified)
            report.installed.append(verified.version)
            if verified.header.signer not in self.trusted and verified.header.signer not in self.revoked:
                report.new_signers.append(verified.header.signer)  # endorsed by a trusted key, unexpired
            break
        report.current = max([mark, *report.installed])
        if report.installed:
            report.problem = None
        elif report.problem is None and report.refused:
            report.problem = report.refused[0][1]
        return report

    # --- the open copy -----------------------------------------------------------------------------

    def open_copy_path(self, version: int) -> Path:
        return self.folder / f"{version:012d}{OPEN_COPY_SUFFIX}"

    def _keep_open_copy(self, verified: Verified) -> None:
        """The installed version's open copy: the one sealed while it was decrypted, else made now."""
        if verified.open_copy is None:
            self.write_open_copy(verified.version, verified.sealed, verified.image.pieces())
        elif verified.open_copy.commit():
            self._drop_other_open_copies(verified.version)

    def write_open_copy(self, version: int, sealed: bytes, database: bytes | bytearray | Iterable, *,
                        kind: str = "snapshot") -> None:
        """Keep this desktop's open copy of ``database`` (its bytes, or its pieces in order), installed as
        the signed file ``sealed``, and drop any other. Only a speed-up: a failure is logged, and the
        signed file then opens the full way."""
        target = self.open_copy_path(version)
        try:
            writer = OpenCopyWriter(target, key=self._key(), version=version, sealed=sealed,
                                    sealed_header=envelope.prefix_of(sealed, kind=kind))
        except (OSError, SnapshotError) as exc:
            log.warning("no open copy of version %d (%s); it opens from its signed file", version, exc)
            return
        try:
            if isinstance(database, (bytes, bytearray, memoryview)):
                view = memoryview(database)
                database = (view[start:start + _COPY_PIECE] for start in range(0, len(view), _COPY_PIECE))
            for piece in database:
                writer.write(piece)
            writer.commit()
        except OSError as exc:
            writer.abort()
            log.warning("no open copy of version %d (%s); it opens from its signed file", version, exc)
            return
        self._drop_other_open_copies(version)

    def _drop_other_open_copies(self, version: int) -> None:
        target = self.open_copy_path(version)
        for other in self.folder.glob(f"*{OPEN_COPY_SUFFIX}"):
            if other.name != target.name:
                try:
                    other.unlink()
                except OSError:
                    pass

    def _open_from_copy(self) -> OpenSnapshot | None:
        """The newest installed version, opened from its open copy; None when that cannot be done."""
        fulls = self.installed_versions()
        if not fulls:
            return None
        tip = self.current_version()
        kind = "snapshot" if tip == fulls[0] else "delta"
        signed = self.path_of(tip) if kind == "snapshot" else chain.delta_path(self, tip)
        copy = self.open_copy_path(tip)
        if not copy.exists():
            return None
        image = copy_file = None
        try:
            with open(signed, "rb", buffering=0) as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < F.SIGNATURE_SIZE:
                    return None
                handle.seek(size - F.SIGNATURE_SIZE)
                signature = handle.read(F.SIGNATURE_SIZE)
            # What needs no key comes first, while a key file's passphrase may still be opening (scrypt on
            # another thread, Desktop.unlock_in_background): the copy is of this installed file, the header
            # it keeps is signed by a key still trusted, and the RAM file has room for the database.
            copy_file = OpenCopy.open(copy, version=tip, sealed_size=size, sealed_signature=signature)
            header = envelope.trusted_prefix(copy_file.sealed_header, self.trusted, kind=kind)
            if header.snapshot_version != tip:
                raise OpenCopyUnusable("the kept header names another version")
            image = RamImage.create()
            image.reserve(copy_file.size)
            copy_file.decrypt(self._key(), image.write_at)
            conn, image = open_database(image, check=False), None
        except (OpenCopyUnusable, OSError, SnapshotError) as exc:
            log.info("version %d opens from its signed file (open copy: %s)", tip, exc)
            if image is not None:
                image.close()
            return None
        except BaseException:  # the key could not be opened, or an interrupt: nothing decrypted is kept
            if image is not None:
                image.close()
            raise
        finally:
            if copy_file is not None:
                copy_file.close()
        meta = read_meta(conn)
        if meta.snapshot_version != tip:
            conn.close()
            return None
        return OpenSnapshot(tip, signed, conn, meta, header)

    # --- opening ---------------------------------------------------------------------------------

    def open_newest(self) -> OpenSnapshot:
        """Open the newest installed snapshot that verifies; older ones are the fallback."""
        fast = self._open_from_copy()
        if fast is not None:
            return fast
        skipped: list[tuple[Path, SnapshotError]] = []
        for version in self.installed_versions():
            path = self.path_of(version)
            try:
                sealed = envelope.read_capped(path, self.size_cap)
                header = envelope.verify(sealed, self.trusted, revoked=self.revoked)
                if header.snapshot_version != version:
                    raise CorruptSnapshot(f"{path.name} holds version {header.snapshot_version}, not {version}.")
                # The deltas installed after this full snapshot are applied in memory (core/chain.py).
                tip, conn, meta, tip_header, tip_path, broken = chain.open_chain(self, version, sealed, header)
                return OpenSnapshot(tip, tip_path, conn, meta, tip_header, skipped + broken)
            except SnapshotError as exc:
                skipped.append((path, exc))
        if skipped:
            raise skipped[0][1]
        raise NoSnapshot("No directory snapshot is installed on this desktop yet; run 'backup-operator sync' "
                         "or ask IT whether this desktop is enrolled and its inbox is set.")


def receipt_name(desktop: str) -> str:
    """The receipt's file name in an inbox's receipts/ folder (or at an http inbox's receipts URL)."""
    return (re.sub(r"[^A-Za-z0-9._-]", "_", desktop)[:80] or "desktop") + ".json"


RECEIPT_FORMAT = 1
SIGNED_RECEIPT_FILE = "last-receipt.json"  # in the store folder: the last receipt this desktop signed


def receipt_bytes(*, desktop: str, public_key: str, version: int, installed_at: datetime | None = None,
                  key: DesktopKey | None = None, keep_in: Path | None = None) -> bytes:
    """The receipt for ``version``: signed with the desktop's key (purpose "receipt") when it can sign.

    Without a key at hand (a key file and no passphrase in a scheduled sync), the last signed receipt kept
    in ``keep_in`` is sent again when it names the same version; only otherwise does an unsigned receipt
    go out, and the exporter shows it as unverified.
    """
    receipt = {
        "kind": "receipt",
        "format": RECEIPT_FORMAT,
        "desktop": desktop,
        "snapshot_version": version,
        "installed_at": format_utc(installed_at or _now()),
        "checked_at": format_utc(_now()),
        "public_key": public_key,
    }
    if key is not None and key.can_sign:
        doc = sealed_files.sign_document(receipt, lambda message: key.sign("receipt", message), key.public)
        data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        if keep_in is not None:
            try:
                atomic_write(Path(keep_in) / SIGNED_RECEIPT_FILE, data, mode=0o600)
            except StorageError:
                pass  # only a convenience for the next sync without a key
        return data
    if keep_in is not None:
        try:
            kept = (Path(keep_in) / SIGNED_RECEIPT_FILE).read_bytes()[:16384]
            if json.loads(kept).get("snapshot_version") == version:
                return kept
        except (OSError, ValueError, AttributeError):
            pass
    return (json.dumps(receipt, indent=2) + "\n").encode()


def receipts_folder(inbox: Path) -> Path:
    """``<inbox>/receipts``, made if missing; refused (one sentence) if a link or a file is in its place.

    The inbox is writable by others: a ``receipts`` link must never make this desktop write where it points.
    """
    folder = Path(inbox) / "receipts"
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise StorageError(f"{folder} cannot be read ({exc.strerror or exc}); no receipt was left there.") from None
    if info is not None and not stat.S_ISDIR(info.st_mode):
        what = "a link" if stat.S_ISLNK(info.st_mode) else "a file"
        raise StorageError(f"{folder} is {what}, not a folder, so no receipt was left there (nothing is written "
                           "through it); tell IT to remove it.")
    if info is None:
        try:
            folder.mkdir()
        except OSError as exc:
            raise StorageError(f"{folder} cannot be made ({exc.strerror or exc}); no receipt was left there.") from None
    return folder


def write_receipt(inbox: Path, *, desktop: str, public_key: str, version: int,
                  installed_at: datetime | None = None, key: DesktopKey | None = None,
                  keep_in: Path | None = None) -> Path:
    """Tell the exporter which version this desktop has (IT's 'who is behind' view reads these).

    The file is replaced with a rename, so a link put where the receipt goes is replaced, not followed.
    """
    path = receipts_folder(inbox) / receipt_name(desktop)
    atomic_write(path, receipt_bytes(desktop=desktop, public_key=public_key, version=version,
                                     installed_at=installed_at, key=key, keep_in=keep_in), mode=0o644)
    return path
