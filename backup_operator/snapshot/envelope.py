"""The sealed snapshot envelope (.bosnap): seal on the exporter, verify and open on the desktop.

Layout (docs/FORMAT.md is the normative text)::

    magic line   b"backup-operator.snapshot/v2\\n" (v1 is still read)
    header len   uint32, big-endian
    header       canonical JSON: versions, times, signer, payload nonce, recipient stanzas
    payload      STREAM: ChaCha20-Poly1305 chunks of 64 KiB, AAD = SHA-256(magic..header)
    signature    Ed25519 over SIGNATURE_CONTEXT || SHA-512(magic..payload)

Inside the payload: SHA-256 of the SQLite database, then the database compressed with Zstandard (one
frame that states its size; format 1: zlib).

Opening goes in the order that spends the least trust on unauthenticated bytes: size cap, magic,
signature, (caller: anti-rollback), unwrap, decrypt, decompress with a bound, hash. Decompression
produces at most ``F.DECOMPRESS_PIECE`` bytes at a time and stops as soon as the bound is passed; a
format 1 (zlib) stream is inflated once keeping nothing but its length before it is inflated for
real, so a compression bomb is refused with next to no memory. Nothing here
writes to disk. Only this module and keys.py call ``cryptography``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import queue
import re
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backup_operator.errors import (
    CorruptSnapshot,
    NotARecipient,
    NotASnapshot,
    TooLarge,
    UnsupportedFormat,
    UntrustedSignature,
)
from backup_operator.fsutil import NotAPlainFile, open_plain
from backup_operator.membuf import unfilled
from backup_operator.snapshot import format as F
from backup_operator.textsafe import shown
from backup_operator.snapshot.keys import DesktopKey, DesktopPublicKey, SignerKey, SignerPublicKey

__all__ = ["Header", "Endorsement", "seal", "Packed", "pack", "seal_packed", "read_capped", "read_head", "verify", "decrypt", "decrypt_to",
           "peek_header", "peek_prefix", "prefix_of",
           "trusted_prefix"]

_HEADER_FIELDS = {"format", "snapshot_version", "created_at", "expires_at", "signer", "payload_nonce",
                  "chunk_size", "compression", "recipients", "endorsements"}
_MAX_ENDORSEMENTS = 64  # a rotation chain is a handful of keys; this bounds the work on an unsigned header
# The envelope's kinds: a full snapshot, and a delta (docs/FORMAT.md §12), which adds signed header fields.
# Each kind: its magic line per readable format version, the prefix common to all versions, extra fields.
_KINDS = {"snapshot": ({2: F.MAGIC, 1: F.MAGIC_V1}, F.MAGIC_PREFIX, frozenset()),
          "delta": ({2: F.DELTA_MAGIC, 1: F.DELTA_MAGIC_V1}, F.DELTA_MAGIC_PREFIX,
                    frozenset(F.DELTA_HEADER_FIELDS))}
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def format_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """A time written ``YYYY-MM-DDTHH:MM:SSZ`` (FORMAT.md §2), exactly; ValueError otherwise."""
    if not isinstance(text, str) or len(text) != 20 or not text.endswith("Z"):
        raise ValueError("not a UTC time")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Endorsement:
    """A new signing key vouched for by an older one, until ``expires_at`` (planned key rotation, FORMAT.md §9).

    The expiry is inside what the old key signs, so an endorsement replayed from an old header stops working
    when it expires, and a desktop accepts it only while the endorsing key is trusted there.
    """

    new_signer: SignerPublicKey
    by_signer: SignerPublicKey
    signature: bytes
    expires_at: str = ""

    @staticmethod
    def message(new_signer: SignerPublicKey, expires_at: str) -> bytes:
        return F.ENDORSEMENT_CONTEXT + new_signer.to_text().encode() + b"\n" + expires_at.encode()

    @classmethod
    def make(cls, old: SignerKey, new: SignerPublicKey, *, expires_at: datetime | None = None,
             valid_for: timedelta = timedelta(days=F.ENDORSEMENT_DEFAULT_DAYS)) -> "Endorsement":
        until = format_utc(expires_at or datetime.now(timezone.utc) + valid_for)
        return cls(new, old.public, old.sign(cls.message(new, until)), until)

    def is_valid(self, now: datetime | None = None) -> bool:
        """The signature holds and the endorsement has not expired (at ``now``, the desktop's clock)."""
        try:
            until = parse_utc(self.expires_at)
        except ValueError:
            return False
        if (now or datetime.now(timezone.utc)) > until:
            return False
        return self.by_signer.verify(self.signature, self.message(self.new_signer, self.expires_at))

    def to_json(self) -> dict:
        return {"new_signer": self.new_signer.to_text(), "by_signer": self.by_signer.to_text(),
                "expires_at": self.expires_at, "signature": base64.b64encode(self.signature).decode()}

    @classmethod
    def from_json(cls, doc: dict) -> "Endorsement":
        """Exactly the four fields: two key texts, the expiry (a time, §2) and a 64-byte signature in
        canonical base64. The expiry is checked with the signature (``is_valid``), not here."""
        fields = {"new_signer", "by_signer", "expires_at", "signature"}
        if type(doc) is not dict or set(doc) != fields:
            raise ValueError("an endorsement has exactly new_signer, by_signer, expires_at and signature")
        return cls(SignerPublicKey.from_text(_text(doc["new_signer"], "new_signer")),
                   SignerPublicKey.from_text(_text(doc["by_signer"], "by_signer")),
                   _b64(doc["signature"], "an endorsement's signature", F.SIGNATURE_SIZE),
                   _text(doc["expires_at"], "expires_at"))


@dataclass(frozen=True)
class Header:
    format: int
    snapshot_version: int
    created_at: str
    expires_at: str
    signer: SignerPublicKey
    payload_nonce: bytes
    chunk_size: int
    compression: str
    recipients: dict[str, bytes]  # recipient id -> HPKE enc || ciphertext of the file key
    endorsements: tuple[Endorsement, ...] = field(default=())
    # A delta's header only: the version it applies to, and the content hashes before and after.
    base_version: int | None = None
    base_content: bytes | None = None
    content: bytes | None = None
    raw: bytes = b""  # the exact header bytes as they stand in the file

    def to_json(self) -> dict:
        doc = {
            "format": self.format,
            "snapshot_version": self.snapshot_version,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "signer": self.signer.to_text(),
            "payload_nonce": base64.b64encode(self.payload_nonce).decode(),
            "chunk_size": self.chunk_size,
            "compression": self.compression,
            "recipients": [{"id": rid, "wrapped": base64.b64encode(w).decode()}
                           for rid, w in sorted(self.recipients.items())],
        }
        if self.endorsements:
            doc["endorsements"] = [e.to_json() for e in self.endorsements]
        if self.base_version is not None:
            doc.update(base_version=self.base_version, base_content=self.base_content.hex(),
                       content=self.content.hex())
        return doc


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _payload_key(file_key: bytes, nonce: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce, info=F.PAYLOAD_KEY_INFO).derive(file_key)


def _stream_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(F.STREAM_NONCE_COUNTER_BYTES, "big") + bytes([F.LAST_CHUNK_FLAG if last else 0])


def encrypt_payload(file_key: bytes, nonce: bytes, header_prefix: bytes, plaintext: bytes,
                    chunk_size: int = F.CHUNK_SIZE) -> bytes:
    """STREAM-encrypt; deterministic for given inputs (the test vectors check this both ways)."""
    out = bytearray()
    _encrypt_into(out, file_key, nonce, header_prefix, b"", plaintext, chunk_size)
    return bytes(out)


def _encrypt_into(out: bytearray, file_key: bytes, nonce: bytes, header_prefix: bytes, head: bytes,
                  rest: bytes | bytearray | memoryview, chunk_size: int) -> None:
    """``encrypt_payload`` of ``head + rest``, appended to ``out``, without joining the two first (at a
    million listings each copy of the payload is 180 MB)."""
    aead = ChaCha20Poly1305(_payload_key(file_key, nonce))
    aad = hashlib.sha256(header_prefix).digest()
    view = memoryview(rest)
    total = len(head) + len(view)
    count = max(1, -(-total // chunk_size))
    for i in range(count):
        start, end = i * chunk_size, min((i + 1) * chunk_size, total)
        if start < len(head):
            chunk = head[start:end] + bytes(view[:max(0, end - len(head))])
        else:
            chunk = view[start - len(head):end - len(head)]
        out += aead.encrypt(_stream_nonce(i, i == count - 1), chunk, aad)


def _decrypt_payload(file_key: bytes, header: Header, header_prefix: bytes, payload: memoryview) -> bytearray:
    """The payload's plaintext, decrypted chunk by chunk into one buffer (no copies)."""
    aead = ChaCha20Poly1305(_payload_key(file_key, header.payload_nonce))
    aad = hashlib.sha256(header_prefix).digest()
    sealed_chunk = header.chunk_size + F.TAG_SIZE
    if len(payload) < F.TAG_SIZE:
        raise CorruptSnapshot("The snapshot is cut short (no payload); it was damaged in transit. "
                              "The previous snapshot stays in use.")
    # The plaintext is shorter by one tag per chunk: trimmed at the end. Not zero-filled first (that
    # held the GIL for the whole buffer, stalling the window while a snapshot installs in the background):
    # decryption writes every byte kept.
    out = unfilled(len(payload))
    view = memoryview(out)
    pos, counter, filled = 0, 0, 0
    while pos < len(payload):
        end = min(pos + sealed_chunk, len(payload))
        last = end == len(payload)
        try:
            if end - pos < F.TAG_SIZE:
                raise InvalidTag()
            filled += aead.decrypt_into(_stream_nonce(counter, last), payload[pos:end], aad,
                                        view[filled:filled + end - pos - F.TAG_SIZE])
        except InvalidTag:
            raise CorruptSnapshot(f"The snapshot's content is damaged (chunk {counter} does not "
                                  "authenticate); the previous snapshot stays in use.") from None
        if last and end - pos == F.TAG_SIZE and counter > 0:
            # An empty final chunk is only allowed when the whole payload is empty (STREAM rule).
            raise CorruptSnapshot("The snapshot ends with an empty chunk; it was not written by "
                                  "a valid exporter.")
        pos, counter = end, counter + 1
    view.release()
    del out[filled:]
    return out


@dataclass(frozen=True)
class Packed:
    """A database ready to be sealed (``pack``): its SHA-256 and its compressed bytes."""

    digest: bytes
    compressed: bytes
    format_version: int = F.FORMAT_VERSION


def pack(database: bytes | bytearray | memoryview, format_version: int = F.FORMAT_VERSION) -> Packed:
    """The payload's plaintext of ``database``, in its two parts. The exporter packs the database, drops
    it, then seals what it packed (``seal_packed``): at a million listings the 528 MB database is then not
    in memory while the 180 MB payload is encrypted and the file assembled."""
    return Packed(hashlib.sha256(database).digest(), compress(database, format_version), format_version)


def seal(database: bytes, *, snapshot_version: int, created_at: datetime, expires_at: datetime,
         recipients: Iterable[DesktopPublicKey], signer: SignerKey,
         endorsements: Sequence[Endorsement] = (), chunk_size: int = F.CHUNK_SIZE,
         _file_key: bytes | None = None, _nonce: bytes | None = None, kind: str = "snapshot",
         delta_of: tuple[int, bytes, bytes] | None = None, group_key: tuple[str, bytes] | None = None,
         format_version: int = F.FORMAT_VERSION) -> bytes:
    """Seal a finished SQLite database for every recipient and sign the whole file.

    ``format_version`` 1 (zlib) is written only for tests and test vectors: desktops read both.

    ``kind="delta"`` seals a delta's rows instead, with ``delta_of = (base version, base content hash,
    content hash)`` in the signed header (snapshot/deltafile.py is the caller). A delta may be sealed to
    ``group_key = (id, key)`` instead of to each recipient: one stanza instead of one per desktop.
    """
    return seal_packed(pack(database, format_version), snapshot_version=snapshot_version,
                       created_at=created_at, expires_at=expires_at, recipients=recipients, signer=signer,
                       endorsements=endorsements, chunk_size=chunk_size, _file_key=_file_key, _nonce=_nonce,
                       kind=kind, delta_of=delta_of, group_key=group_key)


def seal_packed(packed: Packed, *, snapshot_version: int, created_at: datetime, expires_at: datetime,
                recipients: Iterable[DesktopPublicKey], signer: SignerKey,
                endorsements: Sequence[Endorsement] = (), chunk_size: int = F.CHUNK_SIZE,
                _file_key: bytes | None = None, _nonce: bytes | None = None, kind: str = "snapshot",
                delta_of: tuple[int, bytes, bytes] | None = None,
                group_key: tuple[str, bytes] | None = None) -> bytes:
    """``seal`` of a database already packed (``pack``), which the caller need not hold any more."""
    format_version = packed.format_version
    magic = _KINDS[kind][0][format_version]
    if (kind == "delta") != (delta_of is not None):
        raise ValueError("a delta needs delta_of, and only a delta has it")
    if group_key is not None and kind != "delta":
        raise ValueError("only a delta is sealed to a group key")
    recipients = list(recipients)
    if not recipients and group_key is None:
        raise ValueError("a snapshot needs at least one recipient")
    file_key = _file_key or os.urandom(F.FILE_KEY_SIZE)
    nonce = _nonce or os.urandom(F.PAYLOAD_NONCE_SIZE)
    wrapped = {r.recipient_id: _SUITE.encrypt(file_key, r._x25519(), info=F.HPKE_INFO) for r in recipients}
    if group_key is not None:
        wrapped[F.GROUP_STANZA_PREFIX + group_key[0]] = _group_aead(group_key[1], nonce).encrypt(
            bytes(12), file_key, b"")

    def utc(moment: datetime) -> str:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    header = Header(format_version, snapshot_version, utc(created_at), utc(expires_at), signer.public,
                    nonce, chunk_size, F.COMPRESSION_OF_FORMAT[format_version], wrapped, tuple(endorsements),
                    *(delta_of or ()))
    header_bytes = _canonical(header.to_json())
    prefix = magic + struct.pack(">I", len(header_bytes)) + header_bytes
    # The file is assembled in one buffer: prefix, payload (the database's hash, then the database
    # compressed, encrypted), signature. One payload encryption, whatever the number of recipients.
    body = bytearray(prefix)
    _encrypt_into(body, file_key, nonce, prefix, packed.digest, packed.compressed, chunk_size)
    body += signer.sign(F.SIGNATURE_CONTEXT + hashlib.sha512(body).digest())
    return bytes(body)


def compress(database: bytes | bytearray | memoryview, format_version: int = F.FORMAT_VERSION) -> bytes:
    """The payload's compressed database: one Zstandard frame that states its size (format 2), or zlib."""
    if format_version == 1:
        return zlib.compress(database, 6)
    # Every core: the frame is the same for any number of workers, and it states its size.
    return zstandard.ZstdCompressor(level=F.ZSTD_LEVEL, threads=-1, write_content_size=True).compress(database)


_READ_PIECE = 1024 * 1024


def _over_size_cap(path: Path, cap: int) -> TooLarge:
    return TooLarge(f"{shown(path.name)} is larger than the {cap // (1024 * 1024)} MiB size cap and was not "
                    "read; if the directory really grew that much, IT can raise the cap.")


@contextlib.contextmanager
def _open_within_cap(path: Path, cap: int, within: str | os.PathLike | None) -> Iterator[io.FileIO]:
    """An unbuffered handle on a regular file no larger than ``cap`` (``read_capped``, ``read_head``);
    a missing file, a folder or anything that is not a plain file is refused in plain words."""
    try:
        # Unbuffered: a buffered reader rounds the last read up to its buffer size, past cap + 1.
        with open(path, "rb", buffering=0, opener=lambda name, _flags: open_plain(name, within=within)) as handle:
            if os.fstat(handle.fileno()).st_size > cap:
                raise _over_size_cap(path, cap)
            yield handle
    except FileNotFoundError:
        raise NotASnapshot(f"There is no file at {shown(path)}.") from None
    except IsADirectoryError:
        raise NotASnapshot(f"{shown(path)} is a folder, not a snapshot file.") from None
    except NotAPlainFile as exc:
        if exc.strerror == "a folder":
            raise NotASnapshot(f"{shown(path)} is a folder, not a snapshot file.") from None
        raise NotASnapshot(f"{shown(path.name)} is {exc.strerror}, not a snapshot file; it was not read. "
                           "Tell IT if it keeps appearing in the inbox.") from None


def read_capped(path: str | os.PathLike, cap: int = F.DEFAULT_SIZE_CAP, *,
                within: str | os.PathLike | None = None) -> bytes:
    """Read a file, but never more than cap + 1 bytes: a huge file is refused without reading it all.

    Only a regular file is read, and opening never blocks (fsutil.open_plain): a FIFO, a device such as
    /dev/zero or a folder is refused at once. ``within`` is the folder the file was found in (an inbox):
    a link out of it is refused instead of followed.
    """
    path = Path(path)
    with _open_within_cap(path, cap, within) as handle:
        # One read of the size the file has (a regular file gives it whole): joining pieces would
        # hold the file twice. A file that grows meanwhile is read on, up to cap + 1 bytes.
        first = handle.read(min(os.fstat(handle.fileno()).st_size, cap) + 1)
        parts, total = [first], len(first)
        while first and total <= cap:
            part = handle.read(min(_READ_PIECE, cap + 1 - total))
            if not part:
                break
            parts.append(part)
            total += len(part)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(data) > cap:
        raise _over_size_cap(path, cap)
    return data


def read_head(path: str | os.PathLike, cap: int = F.DEFAULT_SIZE_CAP, *,
              within: str | os.PathLike | None = None) -> bytes:
    """A snapshot file's magic line, header length and header only (what ``peek_prefix`` reads), with the
    checks ``read_capped`` makes before reading: a regular file, not through a link out of ``within``,
    within the size cap. Used to order an inbox's files without reading each one whole."""
    path = Path(path)
    with _open_within_cap(path, cap, within) as handle:
        head = handle.read(len(F.MAGIC) + F.HEADER_LENGTH_BYTES)
        _magic_format(head)
        if len(head) < len(F.MAGIC) + F.HEADER_LENGTH_BYTES:
            raise CorruptSnapshot("The snapshot is cut short; it was damaged in transit. "
                                  "The previous snapshot stays in use.")
        (header_len,) = struct.unpack(">I", head[len(F.MAGIC):])
        if header_len > F.MAX_HEADER_BYTES:
            raise CorruptSnapshot("The snapshot's header is damaged or cut short; "
                                  "the previous snapshot stays in use.")
        parts, total = [head], len(head)
        while total < len(head) + header_len:
            part = handle.read(min(_READ_PIECE, len(head) + header_len - total))
            if not part:
                raise CorruptSnapshot("The snapshot's header is damaged or cut short; "
                                      "the previous snapshot stays in use.")
            parts.append(part)
            total += len(part)
    return b"".join(parts)


def peek_prefix(prefix: bytes) -> Header:
    """The header of a snapshot from its prefix alone (``read_head``), WITHOUT any signature: only to
    order files, like ``peek_header``."""
    magic_format = _magic_format(prefix)
    start = len(F.MAGIC) + F.HEADER_LENGTH_BYTES
    if len(prefix) < start or struct.unpack(">I", prefix[len(F.MAGIC):start])[0] != len(prefix) - start:
        raise CorruptSnapshot("The snapshot's header is damaged or cut short; the previous snapshot stays in use.")
    return _parse_header(prefix[start:], "snapshot", magic_format)


def _magic_format(blob: bytes, kind: str = "snapshot") -> int:
    """The format version its magic line names, among those this program reads; or refuse the file."""
    magics, magic_prefix, _ = _KINDS[kind]
    for version, magic in magics.items():
        if blob.startswith(magic):
            return version
    if blob.startswith(magic_prefix):
        version = blob[len(magic_prefix):].split(b"\n", 1)[0][:10].decode("ascii", "replace")
        raise UnsupportedFormat(f"This {kind} uses format version {version}, which this program "
                                "cannot read; update Backup Operator on this desktop.")
    if kind == "delta":
        raise NotASnapshot("This file is not a Backup Operator delta (.bodelta).")
    raise NotASnapshot("This file is not a Backup Operator snapshot (.bosnap); check that the "
                       "right file was chosen.")


def _split(blob: bytes, kind: str = "snapshot") -> tuple[bytes, bytes, memoryview, bytes]:
    """(prefix = magic..header, header bytes, payload, signature) with only structural checks."""
    magic = _KINDS[kind][0][_magic_format(blob, kind)]
    start = len(magic) + F.HEADER_LENGTH_BYTES
    if len(blob) < start + F.SIGNATURE_SIZE:
        raise CorruptSnapshot("The snapshot is cut short; it was damaged in transit. "
                              "The previous snapshot stays in use.")
    (header_len,) = struct.unpack(">I", blob[len(magic):start])
    if header_len > F.MAX_HEADER_BYTES or start + header_len + F.SIGNATURE_SIZE > len(blob):
        raise CorruptSnapshot("The snapshot's header is damaged or cut short; "
                              "the previous snapshot stays in use.")
    prefix = blob[: start + header_len]
    view = memoryview(blob)
    return prefix, blob[start:start + header_len], view[start + header_len:-F.SIGNATURE_SIZE], \
        blob[-F.SIGNATURE_SIZE:]


_TIME = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_RECIPIENT_ID = re.compile(r"\A[0-9a-f]{16}\Z")
_GROUP_ID = re.compile(r"\A" + re.escape(F.GROUP_STANZA_PREFIX) + r"[0-9a-f]{16}\Z")
_REQUIRED_FIELDS = _HEADER_FIELDS - {"endorsements"}


def _int(value: object, name: str, low: int, high: int) -> int:
    """A JSON integer (not true/false, not 1.0) within [low, high]."""
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return value


def _text(value: object, name: str) -> str:
    if type(value) is not str:
        raise ValueError(f"{name} must be a string")
    return value


def _time(value: object, name: str) -> str:
    """A UTC time written YYYY-MM-DDTHH:MM:SSZ that names a real moment."""
    if type(value) is not str or not _TIME.match(value):
        raise ValueError(f"{name} must be a time written YYYY-MM-DDTHH:MM:SSZ")
    datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")  # 2026-02-30 fails here
    return value


def _b64(value: object, name: str, size: int | None = None) -> bytes:
    """Canonical padded base64 (re-encoding gives the same text), of ``size`` bytes when given."""
    if type(value) is not str:
        raise ValueError(f"{name} must be base64 text")
    raw = base64.b64decode(value, validate=True)
    if base64.b64encode(raw).decode() != value or (size is not None and len(raw) != size):
        raise ValueError(f"{name} must be canonical base64" + (f" of {size} bytes" if size else ""))
    return raw


def _recipients(value: object, kind: str) -> dict[str, bytes]:
    """Stanzas sorted by id, each id once: one byte form, and no stanza shadowing another."""
    if type(value) is not list or not value:
        raise ValueError("recipients must be a non-empty list")
    out: dict[str, bytes] = {}
    previous = ""
    for stanza in value:
        if type(stanza) is not dict or set(stanza) != {"id", "wrapped"}:
            raise ValueError("a recipient stanza has exactly id and wrapped")
        rid = _text(stanza["id"], "a recipient id")
        if _RECIPIENT_ID.match(rid):
            wrapped = _b64(stanza["wrapped"], "a wrapped file key", F.WRAPPED_KEY_SIZE)
        elif kind == "delta" and _GROUP_ID.match(rid):
            wrapped = _b64(stanza["wrapped"], "a group-wrapped file key", F.GROUP_WRAPPED_KEY_SIZE)
        else:
            raise ValueError("a recipient id must be 16 lowercase hex digits")
        if rid <= previous:
            raise ValueError("recipients must be sorted by id, each id once")
        out[rid] = wrapped
        previous = rid
    return out


def _parse_header(header_bytes: bytes, kind: str = "snapshot", magic_format: int = F.FORMAT_VERSION) -> Header:
    """The header of a file whose magic line names ``magic_format``, exactly as docs/FORMAT.md §5 defines
    it (its ``format`` must agree with the magic line); anything else is refused, never coerced."""
    extra_fields = _KINDS[kind][2]
    try:
        doc = json.loads(header_bytes)
        if type(doc) is not dict or _canonical(doc) != header_bytes:
            raise ValueError("header is not in canonical form")
        unknown = set(doc) - _HEADER_FIELDS - extra_fields
        if unknown:
            raise ValueError(f"unknown header fields {sorted(unknown)}")
        missing = (_REQUIRED_FIELDS | extra_fields) - set(doc)
        if missing:
            raise ValueError(f"missing header fields {sorted(missing)}")
        if type(doc["format"]) is int and doc["format"] not in F.COMPRESSION_OF_FORMAT:
            raise UnsupportedFormat(f"This snapshot's header says format {doc['format']}, which this "
                                    "program cannot read; update Backup Operator.")
        if type(doc["format"]) is not int or doc["format"] != magic_format:
            raise ValueError("the header's format is not the one its magic line names")
        if "endorsements" in doc and (type(doc["endorsements"]) is not list or not doc["endorsements"]):
            raise ValueError("endorsements, when present, must be a non-empty list")
        compression = _text(doc["compression"], "compression")
        if compression != F.COMPRESSION_OF_FORMAT[doc["format"]]:
            raise ValueError(f"compression must be {F.COMPRESSION_OF_FORMAT[doc['format']]!r} in format "
                             f"{doc['format']}")
        header = Header(
            format=doc["format"],
            snapshot_version=_int(doc["snapshot_version"], "snapshot_version", 1, F.MAX_VERSION),
            created_at=_time(doc["created_at"], "created_at"),
            expires_at=_time(doc["expires_at"], "expires_at"),
            signer=SignerPublicKey.from_text(_text(doc["signer"], "signer")),
            payload_nonce=_b64(doc["payload_nonce"], "payload_nonce", F.PAYLOAD_NONCE_SIZE),
            chunk_size=_int(doc["chunk_size"], "chunk_size", F.MIN_CHUNK_SIZE, F.MAX_CHUNK_SIZE),
            compression=compression,
            recipients=_recipients(doc["recipients"], kind),
            endorsements=tuple(Endorsement.from_json(e) for e in doc.get("endorsements", [])),
            raw=header_bytes,
        )
        if extra_fields:
            header = _delta_fields(header, doc)
    except UnsupportedFormat:
        raise
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError) else \
            type(exc).__name__
        raise CorruptSnapshot(f"The {kind}'s header is not in the form the format requires "
                              f"({shown(reason, limit=120)}); it was not made by a valid exporter, and "
                              "the previous snapshot stays in use.") from exc
    return header


def _delta_fields(header: Header, doc: dict) -> Header:
    """A delta header's own fields, all required: an integer base below the version, two SHA-256 hex."""
    base, before, after = (doc[name] for name in F.DELTA_HEADER_FIELDS)
    if type(base) is not int or not 1 <= base < header.snapshot_version:
        raise ValueError("base_version must be a whole number below snapshot_version")
    hashes = []
    for text in (before, after):
        if type(text) is not str or len(text) != 2 * F.CONTENT_HASH_SIZE or text != text.lower():
            raise ValueError("content hashes are 64 lowercase hex digits")
        hashes.append(bytes.fromhex(text))
    return replace(header, base_version=base, base_content=hashes[0], content=hashes[1])


def prefix_of(blob: bytes, *, kind: str = "snapshot") -> bytes:
    """The magic line, header length and header of a file (what the desktop's open copy keeps)."""
    return _split(blob, kind)[0]


def trusted_prefix(prefix: bytes, trusted: Iterable[SignerPublicKey], *, kind: str = "snapshot") -> Header:
    """The header of a file this desktop verified whole when it installed it, from its ``prefix`` as kept
    in the desktop's own authenticated open copy (snapshot/opencopy.py): parsed as strictly as ``verify``
    does, and its signer still trusted now (pinned, or endorsed by a pinned key), so that a key removed
    since is not trusted through an old copy. The signature itself was checked at install."""
    magic = _KINDS[kind][0][_magic_format(prefix, kind)]
    start = len(magic) + F.HEADER_LENGTH_BYTES
    if len(prefix) < start or struct.unpack(">I", prefix[len(magic):start])[0] != len(prefix) - start:
        raise CorruptSnapshot("The kept header is damaged; the snapshot is opened from its signed file.")
    header = _parse_header(prefix[start:], kind, _magic_format(prefix, kind))
    trusted = list(trusted)
    if header.signer not in trusted and not _endorsed(header.signer, header.endorsements, trusted):
        raise UntrustedSignature("This snapshot was not signed by a key this desktop trusts now; it is not "
                                 "opened. Tell IT.")
    return header


def peek_header(blob: bytes, *, kind: str = "snapshot") -> Header:
    """The header WITHOUT checking the signature: only to order files or explain a refusal, never to
    trust anything in it (and never to print it: see textsafe)."""
    _, header_bytes, _, _ = _split(blob, kind)
    return _parse_header(header_bytes, kind, _magic_format(blob, kind))


def _claimed_signer(header_bytes: bytes) -> tuple[SignerPublicKey, tuple[Endorsement, ...]]:
    """The two header fields needed to find the key of a file no pinned key signed (a rotation): the
    signer it names and the endorsements. Nothing else of the header is read before the signature."""
    try:
        doc = json.loads(header_bytes)
        signer = SignerPublicKey.from_text(_text(doc["signer"], "signer"))
        endorsements = doc.get("endorsements", [])
        if type(endorsements) is not list:
            raise ValueError("endorsements must be a list")
        return signer, tuple(Endorsement.from_json(e) for e in endorsements[:_MAX_ENDORSEMENTS])
    except Exception:
        raise UntrustedSignature("This snapshot's signature cannot be checked: its header is damaged or was "
                                 "altered; the previous snapshot stays in use.") from None


def verify(blob: bytes, trusted: Iterable[SignerPublicKey], *, kind: str = "snapshot",
           revoked: Iterable[SignerPublicKey] = (), now: datetime | None = None) -> Header:
    """Check magic, signature, then the header; return the header. Refuses anything a pinned key did
    not sign (docs/FORMAT.md §10.3: the signature before the header is parsed).

    The signature is checked against the pinned keys first, without reading the header. A signer that
    is not pinned is accepted only through a chain of unexpired endorsements that starts at a pinned key
    (planned rotation), found from the header's signer and endorsements alone; the caller then pins it.
    A ``revoked`` key (withdrawn by IT with ``backup-operator untrust`` or ``trust --only``) is refused as
    signer and as endorsed key, wherever it was pinned.
    """
    revoked = set(revoked)
    trusted = [key for key in trusted if key not in revoked]
    _, header_bytes, _, signature = _split(blob, kind)
    body_len = len(blob) - F.SIGNATURE_SIZE
    message = F.SIGNATURE_CONTEXT + hashlib.sha512(memoryview(blob)[:body_len]).digest()
    signed_by = next((key for key in trusted if key.verify(signature, message)), None)
    if signed_by is None:
        claimed, endorsements = _claimed_signer(header_bytes)
        if not claimed.verify(signature, message):
            raise UntrustedSignature("This snapshot's signature does not match its contents: it was altered or "
                                     "damaged; the previous snapshot stays in use.")
        if claimed in revoked:
            raise UntrustedSignature("This snapshot is signed by an exporter key that IT withdrew on this desktop "
                                     "(backup-operator untrust); it was not installed and the previous snapshot "
                                     "stays in use. Tell IT.")
        if not _endorsed(claimed, endorsements, trusted, revoked, now):
            raise UntrustedSignature("This snapshot was not signed by your hospital's exporter key; it was "
                                     "not installed and the previous snapshot stays in use. Tell IT.")
        signed_by = claimed
    header = _parse_header(header_bytes, kind, _magic_format(blob, kind))
    if header.signer != signed_by:
        raise CorruptSnapshot("The snapshot's header names the wrong signer; it was altered.")
    return header


def _endorsed(signer: SignerPublicKey, endorsements: Sequence[Endorsement], trusted: Iterable[SignerPublicKey],
              revoked: Iterable[SignerPublicKey] = (), now: datetime | None = None) -> bool:
    """Whether ``signer`` is reached from a trusted key through endorsements that are all unexpired,
    each made by a key already reached, none of them a key IT withdrew (``revoked``)."""
    revoked = set(revoked)
    vouched = {k for k in trusted if k not in revoked}
    changed = True
    while changed:
        changed = False
        for e in endorsements:
            if e.by_signer in vouched and e.new_signer not in vouched and e.new_signer not in revoked \
                    and e.is_valid(now):
                vouched.add(e.new_signer)
                changed = True
    return signer in vouched


def _group_aead(group_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    """The key that wraps a delta's file key for a group: unique per file (salted with its nonce)."""
    return ChaCha20Poly1305(HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce,
                                 info=F.DELTA_KEY_INFO).derive(group_key))


def decrypt(blob: bytes, header: Header, key: DesktopKey, max_database: int = F.MAX_DATABASE_BYTES, *,
            kind: str = "snapshot", group_key: tuple[str, bytes] | None = None) -> bytes:
    """Unwrap the file key with this desktop's key (or, for a delta, the group key) and return the
    database bytes (in memory)."""
    prefix, _, payload, _ = _split(blob, kind)
    group_stanza = header.recipients.get(F.GROUP_STANZA_PREFIX + group_key[0]) \
        if kind == "delta" and group_key is not None else None
    if group_stanza is not None:
        try:
            file_key = _group_aead(group_key[1], header.payload_nonce).decrypt(bytes(12), group_stanza, b"")
        except InvalidTag:
            raise NotARecipient("This delta's group key does not match the one this desktop holds; the full "
                                "snapshot is needed.") from None
        return _open_payload(file_key, header, prefix, payload, max_database)
    wrapped = header.recipients.get(key.public.recipient_id)
    if wrapped is None and kind == "delta":
        raise NotARecipient("This delta is sealed to a group key this desktop does not hold (it changed when "
                            "a desktop was removed); the full snapshot is needed.")
    if wrapped is None:
        raise NotARecipient("This snapshot was not sealed for this desktop's key: the desktop may have "
                            "been re-enrolled or removed. Ask IT to add it (backup-operator-export "
                            "recipients add).")
    try:
        file_key = _SUITE.decrypt(wrapped, key._x25519(), info=F.HPKE_INFO)
    except Exception:
        raise NotARecipient("This desktop's key cannot open this snapshot (the wrapped key does not "
                            "match); ask IT to check this desktop's enrolment.") from None
    return _open_payload(file_key, header, prefix, payload, max_database)


def decrypt_to(blob: bytes, header: Header, key: DesktopKey, write, max_database: int = F.MAX_DATABASE_BYTES) -> int:
    """Unwrap a snapshot's file key with this desktop's key, then decrypt, decompress and hash its
    database in one streaming pass, handing the database to ``write`` in pieces of at most
    ``F.DECOMPRESS_PIECE`` bytes (a format 1 file: as ``decrypt`` does, then in pieces). Returns the
    database's size.

    Neither the decrypted payload nor the database is ever held whole here: ``write`` decides where the
    pieces go (the desktop's RAM file). The hash is compared only at the end, so whatever ``write`` put
    somewhere is not to be used unless this returns: on any exception the caller drops it.
    """
    prefix, _, payload, _ = _split(blob, "snapshot")
    file_key = _unwrap(header, key)
    if header.format == 1:
        database = _open_payload(file_key, header, prefix, payload, max_database)
        view = memoryview(database)
        for start in range(0, len(view), F.DECOMPRESS_PIECE):
            write(view[start:start + F.DECOMPRESS_PIECE])
        return len(database)
    return _stream_zstd(_decrypted_ahead(file_key, header, prefix, payload), write, max_database)


def _decrypted_chunks(file_key: bytes, header: Header, header_prefix: bytes, payload: memoryview):
    """The payload's plaintext chunk by chunk (each authenticated before it is yielded), in one reused
    buffer: a consumer must be done with a chunk before it asks for the next."""
    aead = ChaCha20Poly1305(_payload_key(file_key, header.payload_nonce))
    aad = hashlib.sha256(header_prefix).digest()
    sealed_chunk = header.chunk_size + F.TAG_SIZE
    if len(payload) < F.TAG_SIZE:
        raise CorruptSnapshot("The snapshot is cut short (no payload); it was damaged in transit. "
                              "The previous snapshot stays in use.")
    plain = bytearray(header.chunk_size)
    view = memoryview(plain)
    pos, counter = 0, 0
    while pos < len(payload):
        end = min(pos + sealed_chunk, len(payload))
        last = end == len(payload)
        try:
            if end - pos < F.TAG_SIZE:
                raise InvalidTag()
            n = aead.decrypt_into(_stream_nonce(counter, last), payload[pos:end], aad,
                                  view[:end - pos - F.TAG_SIZE])
        except InvalidTag:
            raise CorruptSnapshot(f"The snapshot's content is damaged (chunk {counter} does not "
                                  "authenticate); the previous snapshot stays in use.") from None
        if last and end - pos == F.TAG_SIZE and counter > 0:
            raise CorruptSnapshot("The snapshot ends with an empty chunk; it was not written by "
                                  "a valid exporter.")
        yield view[:n]
        pos, counter = end, counter + 1


_AHEAD_RUNS = 3  # runs of decrypted chunks held at most (one being read, the others ready or being filled)
_RUN_BYTES = 2 * 1024 * 1024  # decrypted bytes handed over at once (chunks are 64 KiB: one hand-over each
                              # would cost more than it saves)


def _decrypted_ahead(file_key: bytes, header: Header, header_prefix: bytes, payload: memoryview):
    """``_decrypted_chunks``' chunks, in the same order with the same checks and errors, decrypted on a
    thread of their own a run ahead of the consumer: ChaCha20 lets go of the GIL, so it runs beside the
    unpacking instead of before each piece of it. A chunk is yielded only once it has authenticated;
    an error is raised where its chunk would have been yielded. The consumer must be done with a chunk
    before it asks for the next (as for ``_decrypted_chunks``); closing the generator stops the thread."""
    per_run = max(1, _RUN_BYTES // header.chunk_size)
    free: queue.Queue = queue.Queue()
    ready: queue.Queue = queue.Queue()
    for _ in range(_AHEAD_RUNS):
        free.put(bytearray(per_run * header.chunk_size))
    stopped = threading.Event()

    def produce() -> None:
        try:
            run, used, lengths = free.get(), 0, []
            for chunk in _decrypted_chunks(file_key, header, header_prefix, payload):
                if stopped.is_set() or run is None:
                    return
                run[used:used + len(chunk)] = chunk  # same length: the buffer is never resized
                used += len(chunk)
                lengths.append(len(chunk))
                if len(lengths) == per_run:
                    ready.put((run, lengths))
                    run, used, lengths = free.get(), 0, []
            if run is not None:
                ready.put((run, lengths))
            ready.put(None)
        except BaseException as exc:  # noqa: BLE001 - raised again on the consumer's thread
            ready.put(exc)

    thread = threading.Thread(target=produce, name="snapshot-decrypt", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            run, lengths = item
            view, at = memoryview(run), 0
            for length in lengths:
                yield view[at:at + length]
                at += length
            free.put(run)
    finally:
        stopped.set()
        free.put(None)  # wakes a producer waiting for a buffer
        thread.join()


# Compressed bytes per call: what one call can produce is at most 32768 times this (all RLE blocks), and
# never more than the size the frame states (zstd refuses to, with next to no memory).
_ZSTD_INPUT_PIECE = 16 * 1024
_WRITER_BATCH = 2 * 1024 * 1024  # unpacked bytes handed to the writer thread at once (fewer GIL hand-overs)
_WRITER_QUEUE = 8  # batches (each what one decrypted chunk unpacks to) waiting for the writer thread
_WRITER_WAIT_S = 120.0  # what a stalled writer thread (a RAM file that cannot be written) is given


class _HashingWriter:
    """Hashes the database's pieces and hands them to ``write`` on a second thread, so that hashing and
    writing (both let go of the GIL) run beside unpacking. At most ``_WRITER_QUEUE`` batches wait; every
    wait is bounded; an error on the writer's side is raised on the caller's at its next batch."""

    def __init__(self, write):
        self.hasher = hashlib.sha256()
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=_WRITER_QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="snapshot-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is not None:
                continue  # keep taking batches so that the caller never waits on a full queue
            try:
                for piece in batch:
                    self.hasher.update(piece)
                    self._write(piece)
            except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
                self._error = exc

    def _put(self, item) -> None:
        deadline = _WRITER_WAIT_S
        while True:
            if self._error is not None and item is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=1.0)
                return
            except queue.Full:
                deadline -= 1.0
                if deadline <= 0 or not self._thread.is_alive():
                    raise OSError("the snapshot could not be written into memory in time") from None

    def add(self, batch: list) -> None:
        if batch:
            self._put(batch)

    def finish(self) -> bytes:
        """Wait for every piece to be written; the database's SHA-256."""
        self._put(None)
        self._thread.join(_WRITER_WAIT_S)
        if self._thread.is_alive():
            raise OSError("the snapshot could not be written into memory in time")
        if self._error is not None:
            raise self._error
        return self.hasher.digest()

    def abort(self) -> None:
        """Stop the writer thread (after an error on the caller's side), without raising."""
        try:
            self._put(None)
            self._thread.join(_WRITER_WAIT_S)
        except OSError:
            pass


def _stream_zstd(chunks, write, max_database: int) -> int:
    """Format 2's ``inner`` (SHA-256 of the database, then one Zstandard frame), streamed: the frame must
    state its size, within the bound, before anything is unpacked; output goes to ``write`` (on a writer
    thread, hashed on the way) and is counted against the stated size (more or less is refused); nothing
    may follow the frame; the hash must match. Same rules as ``_inflate_zstd`` (FORMAT.md §7), without
    holding ``inner``."""
    head = bytearray()  # the hash and the frame header, gathered from the first chunks
    decompressor, size, produced, expected, writer = None, 0, 0, b"", None
    batch: list = []
    batched = 0
    try:
        for chunk in chunks:
            if decompressor is None:
                head += chunk
                if len(head) < F.PLAINTEXT_HASH_SIZE + 18:  # the longest frame header is 18 bytes
                    continue
                data = memoryview(bytes(head))
                head = bytearray()
                expected = bytes(data[:F.PLAINTEXT_HASH_SIZE])
                data = data[F.PLAINTEXT_HASH_SIZE:]
                size = _stated_size(data, max_database)
                decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=False)
                writer = _HashingWriter(write)
            else:
                data = chunk
            for start in range(0, len(data), _ZSTD_INPUT_PIECE):
                if decompressor.eof:
                    raise ValueError("data after the frame")
                piece = decompressor.decompress(data[start:start + _ZSTD_INPUT_PIECE])
                if piece:
                    produced += len(piece)
                    if produced > size:
                        raise ValueError("the frame holds more than it states")
                    batch.append(piece)
                    batched += len(piece)
            if batched >= _WRITER_BATCH:
                writer.add(batch)
                batch, batched = [], 0
        if decompressor is None:  # the whole of inner is shorter than a hash and a frame header
            data = memoryview(bytes(head))
            expected = bytes(data[:F.PLAINTEXT_HASH_SIZE])
            size = _stated_size(data[F.PLAINTEXT_HASH_SIZE:], max_database)
            decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=False)
            writer = _HashingWriter(write)
            piece = decompressor.decompress(data[F.PLAINTEXT_HASH_SIZE:])
            produced += len(piece)
            if produced > size:
                raise ValueError("the frame holds more than it states")
            batch.append(piece)
        writer.add(batch)
        if not decompressor.eof or decompressor.unused_data:
            raise ValueError("data after the frame, or the frame is cut short")
        if produced != size:
            raise ValueError("the frame holds less than it states")
        digest, writer = writer.finish(), None
    except CorruptSnapshot:
        raise
    except (ValueError, zstandard.ZstdError) as exc:
        raise CorruptSnapshot(f"The snapshot's compressed data is damaged ({exc}).") from None
    finally:
        if writer is not None:
            writer.abort()
    if digest != expected:
        raise CorruptSnapshot("The snapshot's database does not match its recorded hash.")
    return produced


def _stated_size(compressed: memoryview, max_database: int) -> int:
    """The size a Zstandard frame states, refused before anything is unpacked when missing or too large."""
    if bytes(compressed[:4]) != zstandard.FRAME_HEADER:
        raise ValueError("not a Zstandard frame")
    size = zstandard.get_frame_parameters(compressed).content_size
    if size == zstandard.CONTENTSIZE_UNKNOWN:
        raise ValueError("the frame does not state its size")
    if size > max_database:
        raise _too_large(max_database)
    return size


def _unwrap(header: Header, key: DesktopKey) -> bytes:
    """A snapshot's file key, unwrapped with this desktop's key."""
    wrapped = header.recipients.get(key.public.recipient_id)
    if wrapped is None:
        raise NotARecipient("This snapshot was not sealed for this desktop's key: the desktop may have "
                            "been re-enrolled or removed. Ask IT to add it (backup-operator-export "
                            "recipients add).")
    try:
        return _SUITE.decrypt(wrapped, key._x25519(), info=F.HPKE_INFO)
    except Exception:
        raise NotARecipient("This desktop's key cannot open this snapshot (the wrapped key does not "
                            "match); ask IT to check this desktop's enrolment.") from None


def _open_payload(file_key: bytes, header: Header, prefix: bytes, payload: memoryview, max_database: int) -> bytes:
    inner = _decrypt_payload(file_key, header, prefix, payload)
    expected = bytes(inner[: F.PLAINTEXT_HASH_SIZE])
    compressed = memoryview(inner)[F.PLAINTEXT_HASH_SIZE:]
    try:
        if header.format == 1:
            database = _inflate_zlib(compressed, max_database)
        else:
            database = _inflate_zstd(compressed, max_database)
    finally:
        compressed.release()
    del inner
    if hashlib.sha256(database).digest() != expected:
        raise CorruptSnapshot("The snapshot's database does not match its recorded hash.")
    return database


_TOO_LARGE = ("The snapshot's database is larger than this program accepts ({limit} MiB); it was refused "
              "before it was unpacked. Ask IT to check the exporter.")


def _too_large(limit: int) -> CorruptSnapshot:
    return CorruptSnapshot(_TOO_LARGE.format(limit=limit // (1024 * 1024)))


def _zstd_frame_length(data: memoryview) -> int:
    """The length of the Zstandard frame at the start of ``data`` (RFC 8878 §3.1.1), from its block
    headers alone, so that bytes after the frame are found without decompressing anything."""
    pos = zstandard.frame_header_size(data)
    has_checksum = data[4] & 0x04
    while True:
        if pos + 3 > len(data):
            raise ValueError("the frame is cut short")
        block = int.from_bytes(data[pos:pos + 3], "little")
        pos += 3
        kind, size = (block >> 1) & 3, block >> 3
        if kind == 3:
            raise ValueError("reserved block type")
        pos += 1 if kind == 1 else size  # an RLE block stores one byte
        if block & 1:
            break
    return pos + (4 if has_checksum else 0)


def _inflate_zstd(compressed: memoryview, max_database: int) -> bytearray:
    """One Zstandard frame that states its size, that size within the bound, nothing after it; produced
    a piece at a time and stopped at the stated size (the library refuses a frame that runs past it)."""
    try:
        size = _stated_size(compressed, max_database)
        if _zstd_frame_length(compressed) != len(compressed):
            raise ValueError("data after the frame, or the frame is cut short")
        # The stated size (within the bound) is the output's exact size: unpacked in place, a piece at a
        # time, never past it (growing a buffer piece by piece copied the database again and again). The
        # buffer is not zero-filled first (membuf.py: that held the GIL for 30-120 ms at 100k listings);
        # every byte is written below, or the frame is refused.
        out = unfilled(size)
        view, filled = memoryview(out), 0
        reader = zstandard.ZstdDecompressor().stream_reader(compressed, read_across_frames=False)
        with reader:
            while filled < size:
                got = reader.readinto(view[filled:filled + F.DECOMPRESS_PIECE])
                if not got:
                    raise ValueError("the frame holds less than it states")
                filled += got
            if reader.read(1):
                raise ValueError("the frame holds more than it states")
        view.release()
        return out
    except CorruptSnapshot:
        raise
    except (ValueError, zstandard.ZstdError) as exc:
        raise CorruptSnapshot(f"The snapshot's compressed data is damaged ({exc}).") from None


_ZLIB_INPUT_PIECE = 64 * 1024


def _zlib_pieces(compressed: memoryview, max_database: int):
    """Inflate a zlib stream one bounded piece at a time; refuse as soon as the bound is passed, and
    unless the stream ends exactly at the end of the input."""
    inflater = zlib.decompressobj()
    produced = 0
    try:
        for start in range(0, len(compressed), _ZLIB_INPUT_PIECE):
            data = compressed[start:start + _ZLIB_INPUT_PIECE]
            while data:
                if inflater.eof:
                    raise CorruptSnapshot("The snapshot has data after its compressed database; it was not "
                                          "written by a valid exporter.")
                piece = inflater.decompress(data, F.DECOMPRESS_PIECE)
                produced += len(piece)
                if produced > max_database:
                    raise _too_large(max_database)
                yield piece
                data = inflater.unconsumed_tail
        while not inflater.eof:  # output the input already held may still make
            piece = inflater.decompress(b"", F.DECOMPRESS_PIECE)
            if not piece:
                raise CorruptSnapshot("The snapshot's compressed data is incomplete.")
            produced += len(piece)
            if produced > max_database:
                raise _too_large(max_database)
            yield piece
        if inflater.unused_data:
            raise CorruptSnapshot("The snapshot has data after its compressed database; it was not written "
                                  "by a valid exporter.")
    except zlib.error as exc:
        raise CorruptSnapshot(f"The snapshot's compressed data is damaged ({exc}).") from None


def _inflate_zlib(compressed: memoryview, max_database: int) -> bytearray:
    """Format 1: zlib states no size, so the stream is first inflated keeping nothing but its length; only
    a stream within the bound is inflated again, for real (the caller checks its hash)."""
    for _ in _zlib_pieces(compressed, max_database):
        pass
    out = bytearray()
    for piece in _zlib_pieces(compressed, max_database):
        out += piece
    return out
