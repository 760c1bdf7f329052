"""The open copy: a desktop's own re-sealed copy of its newest installed snapshot, for starting fast.

Every start of the window and every ``backup-operator search`` used to verify the installed snapshot
again from scratch: hash the whole signed file, decrypt it, decompress it, hash the database, check it
page by page. At a million listings that is several seconds, every time. A snapshot is verified once,
when it is installed (docs/FORMAT.md); the store then keeps, beside the signed file, its database sealed
again under a key only this desktop can derive, in a form that opens with one pass of AES-GCM and no
decompression.

Layout (docs/FORMAT.md, "The open copy")::

    magic     b"backup-operator.open-copy/v1\\n"
    length    uint32, big-endian, of the header
    header    canonical JSON: snapshot_version, sealed_size, sealed_signature (the installed file's
              last 64 bytes), sealed_header (its header bytes), chunk_size, salt
    chunks    AES-256-GCM of the database in chunk_size pieces to the end of the file; nonce = 11-byte
              counter || last-chunk flag (STREAM), AAD = SHA-256(magic..header)

    key = HKDF-SHA256(ikm = the desktop's X25519 private key, salt, info = "backup-operator/v1 open copy")

A copy opens only for the installed file it was made from (same size and signature bytes, same
version), only with this desktop's key, and only whole (every chunk authenticates, and the last one
is marked as the last). Anything else raises ``OpenCopyUnusable``, and the caller opens the signed
file the slow way (and makes a new copy). It is never sent anywhere: it is not a snapshot.

Only this module, envelope.py and keys.py call ``cryptography``; this one never writes plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backup_operator.fsutil import RENAME_WHILE_OPEN, create_temp
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopKey

__all__ = ["OpenCopy", "OpenCopyUnusable", "OpenCopyWriter", "read_open_copy", "OPEN_COPY_SUFFIX"]

MAGIC = b"backup-operator.open-copy/v1\n"
OPEN_COPY_SUFFIX = ".open"
CHUNK_SIZE = 1024 * 1024
_TAG = 16
_INFO = b"backup-operator/v1 open copy"
_MAX_HEADER = 64 * 1024 * 1024  # the sealed header it carries names every recipient


class OpenCopyUnusable(Exception):
    """This open copy cannot be used (missing, stale, damaged, or another key's): open the signed file."""


def _key(desktop: DesktopKey, salt: bytes) -> AESGCM:
    ikm = desktop.raw()[:32]  # the X25519 key: what opens the snapshots themselves
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(ikm))


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(F.STREAM_NONCE_COUNTER_BYTES, "big") + bytes([F.LAST_CHUNK_FLAG if last else 0])


class OpenCopyWriter:
    """Write the open copy of installed snapshot ``version`` (signed bytes ``sealed``) to ``path`` as the
    database's pieces come (``write``), then ``commit`` (or ``abort``).

    Written under a temporary name and renamed by ``commit``: a reader sees a whole copy or none. Not
    fsynced: a copy lost in a crash is made again from the signed file.
    """

    def __init__(self, path: Path, *, key: DesktopKey, version: int, sealed: bytes | memoryview,
                 sealed_header: bytes):
        self.path = Path(path)
        salt = os.urandom(32)
        header = json.dumps({
            "snapshot_version": version,
            "sealed_size": len(sealed),
            "sealed_signature": base64.b64encode(bytes(sealed[-F.SIGNATURE_SIZE:])).decode(),
            "sealed_header": base64.b64encode(bytes(sealed_header)).decode(),
            "chunk_size": CHUNK_SIZE,
            "salt": base64.b64encode(salt).decode(),
        }, sort_keys=True, separators=(",", ":")).encode()
        prefix = MAGIC + struct.pack(">I", len(header)) + header
        self._aead, self._aad = _key(key, salt), hashlib.sha256(prefix).digest()
        self._pending = bytearray()
        self._counter = 0
        # Locked as being written until it has its name: a store opened meanwhile leaves it alone (fsutil).
        self._temp, fd = create_temp(self.path, 0o600)
        self._out = os.fdopen(fd, "wb")
        try:
            self._out.write(prefix)
        except BaseException:
            self.abort()
            raise

    def _emit(self, chunk: bytes | bytearray | memoryview, last: bool) -> None:
        self._out.write(self._aead.encrypt(_nonce(self._counter, last), chunk, self._aad))
        self._counter += 1

    def write(self, piece: bytes | bytearray | memoryview) -> None:
        # A full chunk goes out only once more data follows it: the last chunk carries the flag. Whole
        # chunks are sealed straight from ``piece``; only a partial one is gathered in ``_pending``.
        view = memoryview(piece).cast("B")
        while view:
            if len(self._pending) == CHUNK_SIZE:  # full, and more follows
                self._emit(self._pending, False)
                self._pending = bytearray()
            if not self._pending and len(view) > CHUNK_SIZE:
                self._emit(view[:CHUNK_SIZE], False)
                view = view[CHUNK_SIZE:]
                continue
            take = CHUNK_SIZE - len(self._pending)
            self._pending += view[:take]
            view = view[take:]

    def commit(self) -> None:
        try:
            self._emit(self._pending, True)
            if RENAME_WHILE_OPEN:
                self._out.flush()
                os.replace(self._temp, self.path)  # still locked until here
                self._out.close()
            else:
                self._out.close()
                os.replace(self._temp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the copy being written; never raises (a full disk fails the last flush: it goes anyway)."""
        try:
            self._out.close()
        except OSError:
            pass
        finally:
            try:
                self._temp.unlink(missing_ok=True)
            except OSError:
                pass


class OpenCopy:
    """An open copy checked against the installed file it claims to be of, before the key is at hand.

    ``open`` reads and checks the header (the copy is of this installed file, its values in range, its
    length a whole number of chunks); ``sealed_header`` can then be checked for trust and ``size`` room
    made for the database while the desktop's key is still being opened (scrypt, for a key file).
    ``decrypt`` needs the key, and hands the plaintext only to its caller's ``write_at`` (into RAM, never
    to a file on a disk). Close it (or use it as a context manager) once done.
    """

    def __init__(self, handle, *, salt: bytes, chunk_size: int, sealed_header: bytes, aad: bytes,
                 start: int, sealed_bytes: int):
        self._handle = handle
        self._salt, self._aad = salt, aad
        self.chunk_size, self.sealed_header = chunk_size, sealed_header
        self._start = start
        step = chunk_size + _TAG
        self.chunks = max(1, -(-sealed_bytes // step))
        last = sealed_bytes - (self.chunks - 1) * step
        # Every chunk but the last is whole; the last one holds at least one byte (a copy of an empty
        # database is one empty chunk): a cut or an appended tail fails here or at the last chunk's tag.
        if last < _TAG or (last == _TAG and self.chunks > 1):
            raise OpenCopyUnusable("an empty or short last chunk")
        #: The database's size in bytes (what ``decrypt`` writes).
        self.size = sealed_bytes - self.chunks * _TAG

    @classmethod
    def open(cls, path: Path, *, version: int, sealed_size: int, sealed_signature: bytes) -> "OpenCopy":
        """The open copy at ``path`` if it was made from the installed file of ``version`` that is
        ``sealed_size`` bytes long and ends with ``sealed_signature``; else ``OpenCopyUnusable``."""
        try:
            handle = open(path, "rb", buffering=0)
        except OSError as exc:
            raise OpenCopyUnusable(f"no open copy ({exc.strerror})") from None
        try:
            try:
                total = os.fstat(handle.fileno()).st_size
                head = handle.read(len(MAGIC) + 4)
                if len(head) != len(MAGIC) + 4 or not head.startswith(MAGIC):
                    raise OpenCopyUnusable("not an open copy")
                (size,) = struct.unpack(">I", head[len(MAGIC):])
                if size > _MAX_HEADER or len(head) + size > total:
                    raise OpenCopyUnusable("header too large")
                header_bytes = handle.read(size)
                doc = json.loads(header_bytes)
                salt = base64.b64decode(doc["salt"], validate=True)
                chunk_size = int(doc["chunk_size"])
                if (doc["snapshot_version"] != version or doc["sealed_size"] != sealed_size
                        or base64.b64decode(doc["sealed_signature"], validate=True) != sealed_signature):
                    raise OpenCopyUnusable("made from another installed file")
                if not (4096 <= chunk_size <= 64 * CHUNK_SIZE) or len(salt) != 32:
                    raise OpenCopyUnusable("values out of range")
                sealed_header = base64.b64decode(doc["sealed_header"], validate=True)
            except OpenCopyUnusable:
                raise
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise OpenCopyUnusable(f"damaged header ({type(exc).__name__})") from None
            left = total - len(head) - size
            if left < _TAG or left - _TAG > F.MAX_DATABASE_BYTES + F.MAX_DATABASE_BYTES // chunk_size * _TAG:
                raise OpenCopyUnusable("no chunks, or more than a database may be")
            return cls(handle, salt=salt, chunk_size=chunk_size, sealed_header=sealed_header,
                       aad=hashlib.sha256(head + header_bytes).digest(), start=len(head) + size,
                       sealed_bytes=left)
        except BaseException:
            handle.close()
            raise

    def decrypt(self, key: DesktopKey, write_at: Callable[[int, memoryview], None], *,
                threads: int = 2) -> None:
        """Decrypt the whole database into ``write_at(offset, piece)``, which is called from more than one
        thread (for pieces that do not overlap) and must keep the plaintext in memory.

        The chunks are independent (each has its own nonce and tag): ``threads`` threads each read,
        decrypt and write every ``threads``-th run of chunks. Reading, AES-GCM and a RAM file's writes all
        run without the GIL, so on two cores one thread decrypts while the other writes. Raises
        OpenCopyUnusable when a chunk does not authenticate; what was written is then the caller's to drop,
        unused (nothing unauthenticated is ever passed to ``write_at``)."""
        aead = _key(key, self._salt)
        per_run = max(1, (4 * CHUNK_SIZE) // self.chunk_size)
        runs = list(range(0, self.chunks, per_run))
        failure: list[BaseException] = []

        def work(mine: list[int]) -> None:
            sealed_chunk = bytearray(self.chunk_size + _TAG)
            plain = bytearray(self.chunk_size)
            fd = self._handle.fileno()
            try:
                for first in mine:
                    for counter in range(first, min(first + per_run, self.chunks)):
                        if failure:
                            return
                        offset = counter * self.chunk_size
                        want = min(self.chunk_size, self.size - offset) + _TAG
                        sealed_view = memoryview(sealed_chunk)[:want]
                        at = self._start + counter * (self.chunk_size + _TAG)
                        if os.preadv(fd, [sealed_view], at) != want:
                            raise OpenCopyUnusable("cut short")
                        try:
                            n = aead.decrypt_into(_nonce(counter, counter == self.chunks - 1), sealed_view,
                                                  self._aad, memoryview(plain)[:want - _TAG])
                        except InvalidTag:
                            raise OpenCopyUnusable(f"chunk {counter} does not authenticate (another key, "
                                                   "or damaged)") from None
                        write_at(offset, memoryview(plain)[:n])
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, raised there
                failure.append(exc)

        threads = max(1, min(threads, len(runs)))
        helpers = [threading.Thread(target=work, args=(runs[t::threads],), name=f"open-copy-{t}", daemon=True)
                   for t in range(1, threads)]
        for helper in helpers:
            helper.start()
        work(runs[0::threads])
        for helper in helpers:
            helper.join()
        if failure:
            raise failure[0]

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "OpenCopy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_open_copy(path: Path, *, key: DesktopKey, version: int, sealed_size: int, sealed_signature: bytes,
                   write: Callable[[memoryview], None]) -> bytes:
    """Decrypt the open copy into ``write`` (in one piece); return the sealed header it carries.

    Raises OpenCopyUnusable before writing anything when the copy is not of this installed file, or when
    a chunk does not authenticate. (The store decrypts straight into its RAM file with ``OpenCopy``.)
    """
    with OpenCopy.open(path, version=version, sealed_size=sealed_size,
                       sealed_signature=sealed_signature) as copy:
        plain = bytearray(copy.size)

        def write_at(offset: int, piece: memoryview) -> None:
            plain[offset:offset + len(piece)] = piece

        copy.decrypt(key, write_at)
        write(memoryview(plain))
        return copy.sealed_header
