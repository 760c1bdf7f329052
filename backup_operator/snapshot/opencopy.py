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
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backup_operator.fsutil import RENAME_WHILE_OPEN, create_temp
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopKey

__all__ = ["OpenCopyUnusable", "OpenCopyWriter", "read_open_copy", "OPEN_COPY_SUFFIX"]

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


def read_open_copy(path: Path, *, key: DesktopKey, version: int, sealed_size: int, sealed_signature: bytes,
                   write: Callable[[memoryview], None]) -> bytes:
    """Decrypt the open copy into ``write`` (pieces in order); return the sealed header it carries.

    Raises OpenCopyUnusable before writing anything when the copy is not of this installed file, and
    part-way when a chunk does not authenticate (the caller then drops what was written).
    """
    try:
        handle = open(path, "rb", buffering=0)
    except OSError as exc:
        raise OpenCopyUnusable(f"no open copy ({exc.strerror})") from None
    with handle:
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
        aead, aad = _key(key, salt), hashlib.sha256(head + header_bytes).digest()
        left = total - len(head) - size
        if left < _TAG or left - _TAG > F.MAX_DATABASE_BYTES + F.MAX_DATABASE_BYTES // chunk_size * _TAG:
            raise OpenCopyUnusable("no chunks, or more than a database may be")
        sealed_chunk = bytearray(chunk_size + _TAG)
        plain = bytearray(chunk_size)
        counter = 0
        while left:
            want = min(left, chunk_size + _TAG)
            last = want == left
            if want < _TAG or (last and want == _TAG and counter > 0):
                raise OpenCopyUnusable("an empty or short last chunk")
            if handle.readinto(memoryview(sealed_chunk)[:want]) != want:
                raise OpenCopyUnusable("cut short")
            try:
                n = aead.decrypt_into(_nonce(counter, last), memoryview(sealed_chunk)[:want], aad,
                                      memoryview(plain)[:want - _TAG])
            except InvalidTag:
                raise OpenCopyUnusable(f"chunk {counter} does not authenticate (another key, or damaged)") \
                    from None
            write(memoryview(plain)[:n])
            left -= want
            counter += 1
    return sealed_header
