"""Files that travel from a desktop back to the exporter, and the journal's sealed frames on the desktop.

Three things, all built from the primitives the snapshot envelope already uses (HPKE X25519 /
HKDF-SHA256 / ChaCha20-Poly1305, Ed25519); docs/FORMAT.md "Files from desktops" is the normative text:

* **Journal frames** (the outage journal at rest): each saved entry is sealed with HPKE to the desktop's
  own X25519 public key, with the journal id and the entry's sequence number in the HPKE ``info``, so a
  frame cannot be moved to another journal or position unnoticed. Saving needs only the public key
  (an operator is never asked for a passphrase to write down a call); reading needs the private key.
* **Sealed files** (``.bojournal``): a magic line, a canonical JSON header, one HPKE ciphertext sealed to
  the exporter's receiving key with ``info`` bound to the header, then an Ed25519 signature by the
  desktop over everything before it. The exporter checks the size cap, the signature against the key it
  pinned for that desktop, then decrypts.
* **Signed documents** (drill receipts): canonical JSON signed by the desktop, readable by anyone.

The exporter's receiving key is an X25519 key pair in the exporter home; its public half travels inside
every signed snapshot (``meta.exporter_recipient``), so desktops learn it without a setup step.

Only this package calls ``cryptography``. This module must never write to disk or log key material.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from backup_operator.errors import BadKeyText, CorruptSealedFile, WrongPassphrase
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopKey, DesktopPublicKey, _decode, _encode

__all__ = [
    "ExporterKey",
    "ExporterPublicKey",
    "Frame",
    "SealedFile",
    "seal_frame",
    "open_frame",
    "frame_bytes",
    "scan_frames",
    "seal_file",
    "read_sealed_file",
    "open_sealed_file",
    "sign_document",
    "document_parts",
    "canonical_json",
]

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# --- the exporter's receiving key ------------------------------------------------------------------


@dataclass(frozen=True)
class ExporterPublicKey:
    """The public half of the exporter's receiving key: desktops seal journals to it."""

    raw: bytes

    @classmethod
    def from_text(cls, text: str) -> "ExporterPublicKey":
        return cls(_decode(F.EXPORTER_PUBLIC_PREFIX, text, "exporter receiving key"))

    def to_text(self) -> str:
        return _encode(F.EXPORTER_PUBLIC_PREFIX, self.raw)

    def __str__(self) -> str:
        return self.to_text()


class ExporterKey:
    """The exporter's X25519 receiving key (kept in the exporter home as PKCS#8 PEM, like its signing key)."""

    def __init__(self, private: X25519PrivateKey):
        self._private = private

    @classmethod
    def generate(cls) -> "ExporterKey":
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> "ExporterKey":
        return cls(X25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None = None) -> "ExporterKey":
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except (TypeError, ValueError) as exc:
            raise WrongPassphrase("The exporter's receiving key file cannot be opened: wrong passphrase or "
                                  "not a key file.") from exc
        if not isinstance(key, X25519PrivateKey):
            raise BadKeyText("The exporter's receiving key file does not hold an X25519 key.")
        return cls(key)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        return self._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           encryption)

    @property
    def public(self) -> ExporterPublicKey:
        return ExporterPublicKey(self._private.public_key().public_bytes_raw())

    def as_recipient(self) -> DesktopPublicKey:
        """The same X25519 public key as a snapshot recipient (the exporter keeps its own history copy)."""
        return DesktopPublicKey(self.public.raw)

    def as_desktop_key(self) -> DesktopKey:
        """The same private key in the type ``envelope.decrypt`` takes."""
        return DesktopKey(self._private)


# --- journal frames --------------------------------------------------------------------------------


def _frame_info(journal_id: str, seq: int) -> bytes:
    return F.JOURNAL_ENTRY_INFO + journal_id.encode("ascii") + b"\n" + seq.to_bytes(8, "big")


def seal_frame(public: DesktopPublicKey, journal_id: str, seq: int, plaintext: bytes) -> bytes:
    """One journal entry sealed to the desktop's own key (HPKE enc || ciphertext)."""
    if len(plaintext) > F.MAX_JOURNAL_ENTRY_BYTES:
        raise ValueError("a journal entry is limited to 256 KiB")
    return _SUITE.encrypt(plaintext, X25519PublicKey.from_public_bytes(public.raw),
                          info=_frame_info(journal_id, seq))


def open_frame(key: DesktopKey, journal_id: str, seq: int, sealed: bytes) -> bytes | None:
    """The plaintext of a frame, or None when it does not authenticate (damaged, moved, other key)."""
    try:
        return _SUITE.decrypt(sealed, key._x25519(), info=_frame_info(journal_id, seq))
    except Exception:
        return None


def frame_bytes(seq: int, sealed: bytes) -> bytes:
    return F.JOURNAL_FRAME_MAGIC + struct.pack(">QI", seq, len(sealed)) + sealed


@dataclass(frozen=True)
class Frame:
    offset: int  # where the frame starts in the log
    end: int     # where it ends (the next frame's offset)
    seq: int
    sealed: bytes


def scan_frames(data: bytes, start: int) -> Iterator[Frame | tuple[int, int]]:
    """Walk the frames of a journal log from ``start``.

    Yields a ``Frame`` per structurally whole frame, and ``(offset, end)`` for bytes that are not one
    (a torn tail after a power cut, or damage); after damage the walk resumes at the next frame magic.
    """
    pos, size = start, len(data)
    head = F.JOURNAL_FRAME_HEADER
    while pos < size:
        if data.startswith(F.JOURNAL_FRAME_MAGIC, pos) and pos + head <= size:
            seq, length = struct.unpack(">QI", data[pos + 4:pos + head])
            end = pos + head + length
            if 0 < length <= F.MAX_JOURNAL_ENTRY_BYTES + 64 and end <= size:
                yield Frame(pos, end, seq, data[pos + head:end])
                pos = end
                continue
        resume = data.find(F.JOURNAL_FRAME_MAGIC, pos + 1)
        bad_end = size if resume < 0 else resume
        yield (pos, bad_end)
        pos = bad_end


# --- sealed files (desktop -> exporter) ----------------------------------------------------------------
#
# The desktop signs with its enrolment Ed25519 key through ``sign`` (``DesktopKey.sign`` with the purpose
# "journal" or "drill"); the exporter checks the signature with the key IT enrolled for the desktop the
# header names, never with a key the file itself supplies.


@dataclass(frozen=True)
class SealedFile:
    """A sealed file split into its parts; nothing in it is trusted until ``signed`` verifies."""

    magic: bytes
    header: dict
    prefix: bytes
    sealed: bytes
    signed: bytes      # the message the desktop signed: SHA-512 of everything before the signature
    signature: bytes


def seal_file(magic: bytes, header: dict, payload: bytes, recipient: ExporterPublicKey,
              sign: Callable[[bytes], bytes], desktop: DesktopPublicKey) -> bytes:
    """magic | u32 header length | header | u32 length | HPKE(payload) | Ed25519 signature."""
    header = {**header, "desktop_key": desktop.to_text(), "recipient": recipient.to_text()}
    header_bytes = canonical_json(header)
    prefix = magic + struct.pack(">I", len(header_bytes)) + header_bytes
    sealed = _SUITE.encrypt(payload, X25519PublicKey.from_public_bytes(recipient.raw),
                            info=F.SEALED_FILE_INFO + hashlib.sha256(prefix).digest())
    body = prefix + struct.pack(">I", len(sealed)) + sealed
    return body + sign(hashlib.sha512(body).digest())


def read_sealed_file(blob: bytes, magic: bytes) -> SealedFile:
    """Structure only. The caller finds the enrolled desktop the header names and checks ``signature``."""
    if not blob.startswith(magic):
        if blob.startswith(F.SEALED_FILE_MAGIC_PREFIX):
            raise CorruptSealedFile("This file is a different kind or version of Backup Operator file; "
                                    "update the exporter, or check that the right file was chosen.")
        raise CorruptSealedFile("This is not a file sealed by a Backup Operator desktop.")
    pos = len(magic)
    try:
        (header_len,) = struct.unpack(">I", blob[pos:pos + 4])
        if header_len > 64 * 1024:
            raise ValueError("header too long")
        header_bytes = blob[pos + 4:pos + 4 + header_len]
        prefix = blob[:pos + 4 + header_len]
        (sealed_len,) = struct.unpack(">I", blob[len(prefix):len(prefix) + 4])
        body_end = len(prefix) + 4 + sealed_len
        if body_end + F.SIGNATURE_SIZE != len(blob):
            raise ValueError("lengths do not add up")
        header = json.loads(header_bytes)
        if not isinstance(header, dict) or canonical_json(header) != header_bytes:
            raise ValueError("header is not canonical JSON")
        if not isinstance(header.get("desktop_key"), str):
            raise ValueError("the header names no desktop")
    except (struct.error, ValueError, TypeError) as exc:
        raise CorruptSealedFile(f"The file is damaged or cut short ({type(exc).__name__}: {exc}).") from None
    return SealedFile(magic, header, prefix, blob[len(prefix) + 4:body_end],
                      hashlib.sha512(blob[:body_end]).digest(), blob[body_end:])


def open_sealed_file(sealed_file: SealedFile, key: ExporterKey, max_bytes: int = F.MAX_SEALED_FILE_BYTES) -> bytes:
    """Decrypt a sealed file whose signature the caller has verified."""
    try:
        payload = _SUITE.decrypt(sealed_file.sealed, key._private,
                                 info=F.SEALED_FILE_INFO + hashlib.sha256(sealed_file.prefix).digest())
    except Exception:
        raise CorruptSealedFile("The file was not sealed to this exporter's receiving key (or is damaged); "
                                "it may come from a desktop of another exporter.") from None
    if len(payload) > max_bytes:
        raise CorruptSealedFile("The file's content is larger than the exporter accepts.")
    return payload


# --- signed documents (drill receipts) --------------------------------------------------------------------


def sign_document(doc: dict, sign: Callable[[bytes], bytes], desktop: DesktopPublicKey) -> dict:
    """``doc`` with the desktop's public key and its signature over the canonical JSON of the rest."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    body["desktop_key"] = desktop.to_text()
    return {**body, "signature": base64.b64encode(sign(canonical_json(body))).decode()}


def document_parts(doc: Any) -> tuple[str, bytes, bytes] | None:
    """(desktop key text, signed message, signature) of a signed document, or None if it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("desktop_key"), str):
        return None
    try:
        signature = base64.b64decode(str(doc["signature"]), validate=True)
    except (KeyError, ValueError, TypeError):
        return None
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        return doc["desktop_key"], canonical_json(body), signature
    except (TypeError, ValueError):
        return None
