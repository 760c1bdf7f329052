"""The signed manifest of a published folder: which full snapshot is current, and which deltas lead to it.

An http(s) inbox is a folder on a web server (docs/FORMAT.md §13). A desktop reads ``manifest.bomanifest``
first — a few hundred bytes, fetched with a conditional GET — and then only the files it needs. The
manifest is three lines of text::

    backup-operator.manifest/v1
    {canonical JSON body}
    base64(Ed25519 signature over MANIFEST_SIGNATURE_CONTEXT || SHA-512(magic line || body line))

It is not encrypted (it names files, sizes, hashes and versions, all visible on the server anyway) but
signed by the exporter key, so it cannot steer a desktop: each file it names is checked against the
SHA-256 it gives before it is even parsed, and then verified as a snapshot or delta in its own right.

This module must never act on a manifest whose signature has not verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from backup_operator.errors import CorruptSnapshot, NotASnapshot, TooLarge, UnsupportedFormat, UntrustedSignature
from backup_operator.snapshot import envelope
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import SignerKey, SignerPublicKey

__all__ = ["Manifest", "PublishedFile", "PublishedDelta", "sign_manifest", "verify_manifest", "manifest_for",
           "describe_file", "describe_delta"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # a plain file name beside the manifest
_FIELDS = {"format", "snapshot_version", "created_at", "signer", "snapshot", "deltas", "endorsements"}
_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_MAX_VERSION = 2**53  # versions stay exact in every JSON reader


def _canonical(doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class PublishedFile:
    """A file beside the manifest: its name, exact size and SHA-256."""

    path: str
    size: int
    sha256: bytes

    def to_json(self) -> dict:
        return {"path": self.path, "size": self.size, "sha256": self.sha256.hex()}

    @classmethod
    def from_json(cls, doc: dict) -> "PublishedFile":
        return cls(*_file_fields(doc))

    def matches(self, data: bytes) -> bool:
        return len(data) == self.size and hashlib.sha256(data).digest() == self.sha256


@dataclass(frozen=True)
class PublishedDelta(PublishedFile):
    """A delta file: it turns ``base_version`` into ``snapshot_version``."""

    base_version: int = 0
    snapshot_version: int = 0

    def to_json(self) -> dict:
        return {**super().to_json(), "base_version": self.base_version, "snapshot_version": self.snapshot_version}

    @classmethod
    def from_json(cls, doc: dict) -> "PublishedDelta":
        base, version = doc["base_version"], doc["snapshot_version"]
        if set(doc) != {"path", "size", "sha256", "base_version", "snapshot_version"} or \
                type(base) is not int or type(version) is not int or not 1 <= base < version <= _MAX_VERSION:
            raise ValueError("a delta entry needs base_version < snapshot_version")
        return cls(*_file_fields(doc, extra={"base_version", "snapshot_version"}), base, version)


def _file_fields(doc: dict, extra: set[str] = frozenset()) -> tuple[str, int, bytes]:
    if set(doc) != {"path", "size", "sha256"} | extra:
        raise ValueError(f"unexpected file entry fields {sorted(doc)}")
    path, size, digest = doc["path"], doc["size"], doc["sha256"]
    if type(path) is not str or not _NAME_RE.match(path) or ".." in path:
        raise ValueError("a file entry must name a plain file beside the manifest")
    if type(size) is not int or not 0 < size <= 2**40:
        raise ValueError("a file entry's size is out of range")
    if type(digest) is not str or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError("a file entry's sha256 is not 64 lowercase hex digits")
    return path, size, bytes.fromhex(digest)


@dataclass(frozen=True)
class Manifest:
    snapshot_version: int
    created_at: str
    signer: SignerPublicKey
    snapshot: PublishedFile
    deltas: tuple[PublishedDelta, ...] = ()
    endorsements: tuple[envelope.Endorsement, ...] = field(default=())

    def to_json(self) -> dict:
        doc = {"format": F.MANIFEST_FORMAT_VERSION, "snapshot_version": self.snapshot_version,
               "created_at": self.created_at, "signer": self.signer.to_text(),
               "snapshot": self.snapshot.to_json(),
               "deltas": [d.to_json() for d in sorted(self.deltas, key=lambda d: (d.snapshot_version,
                                                                                  d.base_version))]}
        if self.endorsements:
            doc["endorsements"] = [e.to_json() for e in self.endorsements]
        return doc

    def chain(self, installed: int) -> list[PublishedDelta] | None:
        """The deltas that lead from ``installed`` to this manifest's version, in order, or None."""
        by_base = {}
        for d in self.deltas:
            # Of several deltas from one base, the one that goes furthest.
            if d.base_version not in by_base or d.snapshot_version > by_base[d.base_version].snapshot_version:
                by_base[d.base_version] = d
        out, at = [], installed
        while at < self.snapshot_version:
            step = by_base.get(at)
            if step is None or step.snapshot_version > self.snapshot_version:
                return None
            out.append(step)
            at = step.snapshot_version
        return out


def sign_manifest(manifest: Manifest, signer: SignerKey) -> bytes:
    if manifest.signer != signer.public:
        raise ValueError("the manifest must name the key that signs it")
    body = _canonical(manifest.to_json())
    signature = signer.sign(F.MANIFEST_SIGNATURE_CONTEXT + hashlib.sha512(F.MANIFEST_MAGIC + body).digest())
    return F.MANIFEST_MAGIC + body + b"\n" + base64.b64encode(signature) + b"\n"


def _parse(body: bytes) -> Manifest:
    try:
        doc = json.loads(body)
        if type(doc) is not dict or _canonical(doc) != body:
            raise ValueError("the body is not canonical JSON")
        if set(doc) - _FIELDS or not {"format", "snapshot_version", "created_at", "signer", "snapshot",
                                      "deltas"} <= set(doc):
            raise ValueError(f"unexpected fields {sorted(set(doc) ^ _FIELDS)}")
        if doc["format"] != F.MANIFEST_FORMAT_VERSION or type(doc["format"]) is not int:
            raise UnsupportedFormat(f"This manifest says format {doc['format']!r}, which this program cannot "
                                    "read; update Backup Operator.")
        version, created = doc["snapshot_version"], doc["created_at"]
        if type(version) is not int or not 1 <= version <= _MAX_VERSION:
            raise ValueError("snapshot_version is out of range")
        if type(created) is not str or not _UTC_RE.match(created):
            raise ValueError("created_at is not a UTC time")
        if type(doc["deltas"]) is not list or len(doc["deltas"]) > 10_000:
            raise ValueError("deltas is not a list of at most 10,000 entries")
        deltas = tuple(PublishedDelta.from_json(d) for d in doc["deltas"])
        if any(d.snapshot_version > version for d in deltas):
            raise ValueError("a delta goes past the manifest's version")
        endorsements = doc.get("endorsements", [])
        if type(endorsements) is not list or len(endorsements) > 16:
            raise ValueError("endorsements is not a short list")
        return Manifest(version, created, SignerPublicKey.from_text(doc["signer"]),
                        PublishedFile.from_json(doc["snapshot"]), deltas,
                        tuple(envelope.Endorsement.from_json(e) for e in endorsements))
    except UnsupportedFormat:
        raise
    except Exception as exc:
        raise CorruptSnapshot(f"The inbox's manifest cannot be read ({type(exc).__name__}: {exc}); the "
                              "installed snapshot stays in use.") from exc


def verify_manifest(data: bytes, trusted: Iterable[SignerPublicKey]) -> Manifest:
    """Check a manifest's size, magic and signature by a pinned (or endorsed) key; return it parsed.

    Refused exactly as a snapshot would be: another signer gives ``UntrustedSignature``, damage
    ``CorruptSnapshot``; the anti-rollback check against the store's high-water mark is the caller's.
    """
    trusted = list(trusted)
    if len(data) > F.MAX_MANIFEST_BYTES:
        raise TooLarge(f"The inbox's manifest is larger than {F.MAX_MANIFEST_BYTES // 1024} KiB; it was refused.")
    if not data.startswith(F.MANIFEST_MAGIC):
        if data.startswith(F.MANIFEST_MAGIC_PREFIX):
            raise UnsupportedFormat("The inbox's manifest uses a newer format; update Backup Operator.")
        raise NotASnapshot("The inbox's manifest.bomanifest is not a Backup Operator manifest; check the "
                           "inbox address.")
    lines = data[len(F.MANIFEST_MAGIC):].split(b"\n")
    if len(lines) != 3 or lines[2] != b"":
        raise CorruptSnapshot("The inbox's manifest is damaged or cut short; the installed snapshot stays in use.")
    body, signature_text = lines[0], lines[1]
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != F.SIGNATURE_SIZE:
        raise CorruptSnapshot("The inbox's manifest has no valid signature line; it was refused.")
    message = F.MANIFEST_SIGNATURE_CONTEXT + hashlib.sha512(F.MANIFEST_MAGIC + body).digest()
    # The signature is checked with the pinned keys before the body is trusted for anything.
    if not any(key.verify(signature, message) for key in trusted):
        manifest = _parse(body)  # perhaps a rotated key, endorsed inside the manifest
        if not manifest.signer.verify(signature, message):
            raise UntrustedSignature("The inbox's manifest does not match its signature: it was altered or "
                                     "damaged; the installed snapshot stays in use.")
        if not envelope._endorsed(manifest.signer, manifest.endorsements, trusted):
            raise UntrustedSignature("The inbox's manifest was not signed by your hospital's exporter key; "
                                     "nothing was installed from it. Tell IT.")
        return manifest
    manifest = _parse(body)
    if not manifest.signer.verify(signature, message):
        raise CorruptSnapshot("The inbox's manifest names the wrong signer; it was altered.")
    return manifest


def manifest_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_file(name: str, data: bytes) -> PublishedFile:
    return PublishedFile(name, len(data), hashlib.sha256(data).digest())


def describe_delta(name: str, data: bytes, base_version: int, version: int) -> PublishedDelta:
    return PublishedDelta(name, len(data), hashlib.sha256(data).digest(), base_version, version)


def manifest_for(snapshot: PublishedFile, version: int, created_at: datetime, signer: SignerKey,
                 deltas: Sequence[PublishedDelta] = (),
                 endorsements: Sequence[envelope.Endorsement] = ()) -> bytes:
    """The signed manifest of a published folder: its current snapshot and the deltas kept beside it."""
    return sign_manifest(Manifest(version, manifest_time(created_at), signer.public, snapshot, tuple(deltas),
                                  tuple(endorsements)), signer)
