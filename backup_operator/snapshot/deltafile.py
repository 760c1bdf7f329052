"""Sealed delta files (.bodelta): a delta's rows, sealed and signed like a snapshot (docs/FORMAT.md §12).

A delta file is the snapshot envelope under its own magic line, whose signed header adds
``base_version`` (the version it applies to), ``base_content`` and ``content`` (the content hashes of
``backup_operator.core.delta`` before and after). Sealing, chunking, compression and the signature are
the envelope's own, so a change there (a new compression) reaches deltas with no code here.

This module must never decide whether a delta fits what is installed: the store does, by applying it
and comparing the content hash of the result with ``content``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from backup_operator.snapshot import envelope
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopKey, DesktopPublicKey, SignerKey, SignerPublicKey

__all__ = ["seal_delta", "verify_delta", "decrypt_delta", "peek_delta", "delta_filename", "parse_group_key",
           "format_group_key"]


def delta_filename(base_version: int, version: int) -> str:
    """``delta-<base:012d>-<version:012d>.bodelta``: names sort by version like snapshots'."""
    return f"delta-{base_version:012d}-{version:012d}{F.DELTA_SUFFIX}"


def seal_delta(rows: bytes, *, base_version: int, base_content: bytes, content: bytes, snapshot_version: int,
               created_at: datetime, expires_at: datetime, recipients: Iterable[DesktopPublicKey],
               signer: SignerKey, endorsements: Sequence[envelope.Endorsement] = (),
               chunk_size: int = F.CHUNK_SIZE, _file_key: bytes | None = None,
               _nonce: bytes | None = None, group_key: tuple[str, bytes] | None = None,
               format_version: int = F.FORMAT_VERSION) -> bytes:
    """Seal a delta's rows (``core.delta.encode_delta``) from ``base_version`` to ``snapshot_version``,
    to ``group_key`` (one stanza; the exporter's way) and/or to each recipient. ``format_version`` 1
    (zlib) is written only for test vectors; desktops read both."""
    if not 1 <= base_version < snapshot_version:
        raise ValueError("a delta goes from an older version to a newer one")
    if len(base_content) != F.CONTENT_HASH_SIZE or len(content) != F.CONTENT_HASH_SIZE:
        raise ValueError("content hashes are SHA-256")
    return envelope.seal(rows, snapshot_version=snapshot_version, created_at=created_at, expires_at=expires_at,
                         recipients=recipients, signer=signer, endorsements=endorsements,
                         chunk_size=chunk_size, _file_key=_file_key, _nonce=_nonce, kind="delta",
                         delta_of=(base_version, base_content, content), group_key=group_key,
                         format_version=format_version)


def verify_delta(blob: bytes, trusted: Iterable[SignerPublicKey]) -> envelope.Header:
    """Magic, signature and header of a delta, exactly as ``envelope.verify`` checks a snapshot."""
    return envelope.verify(blob, trusted, kind="delta")


def peek_delta(blob: bytes) -> envelope.Header:
    """The header WITHOUT checking the signature: only for explaining a refused file, never to trust it."""
    return envelope.peek_header(blob, kind="delta")


def decrypt_delta(blob: bytes, header: envelope.Header, key: DesktopKey,
                  max_rows_bytes: int = F.MAX_DATABASE_BYTES, *, group_key: tuple[str, bytes] | None = None) -> bytes:
    """The delta's rows (in memory), after the same unwrap, decryption, bounded inflate and hash."""
    return envelope.decrypt(blob, header, key, max_rows_bytes, kind="delta", group_key=group_key)


def parse_group_key(text: str | None) -> tuple[str, bytes] | None:
    """A full snapshot's meta ``delta_key`` value, ``<16 hex id>:<64 hex key>``, or None if absent or bad."""
    if not text or text.count(":") != 1:
        return None
    ident, key = text.split(":")
    try:
        raw = bytes.fromhex(key)
        bytes.fromhex(ident)
    except ValueError:
        return None
    if len(ident) != 2 * F.DELTA_KEY_ID_BYTES or len(raw) != 32:
        return None
    return ident, raw


def format_group_key(ident: str, key: bytes) -> str:
    return f"{ident}:{key.hex()}"
