"""The envelope: sealed for the right desktops, signed by the pinned exporter, and tamper-evident.

These tests call ``snapshot.envelope`` directly; the store-level versions (install, sync, rollback,
interrupted installs) are in tests/core/test_store.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import threading
import zlib
from datetime import datetime, timezone

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_operator.core.model import open_database, read_meta
from backup_operator.errors import (
    CorruptSnapshot,
    NotARecipient,
    NotASnapshot,
    SnapshotError,
    TooLarge,
    UnsupportedFormat,
    UntrustedSignature,
)
from backup_operator.snapshot import envelope, keys
from backup_operator.snapshot import format as F


@pytest.fixture
def everyone(desktop_key, other_desktop_keys) -> list[keys.DesktopKey]:
    return [desktop_key, *other_desktop_keys]


@pytest.fixture
def sealed(kit, signer, everyone) -> bytes:
    return kit.seal_snapshot(5, signer=signer, recipients=[k.public for k in everyone])


def open_fully(blob: bytes, trusted, key) -> bytes:
    header = envelope.verify(blob, trusted)
    return envelope.decrypt(blob, header, key)


def open_streamed(blob: bytes, trusted, key, max_database: int = F.MAX_DATABASE_BYTES) -> bytes:
    """What a desktop's install does (``decrypt_to``: decrypt, unpack and hash in one streaming pass)."""
    header = envelope.verify(blob, trusted)
    pieces: list[bytes] = []
    size = envelope.decrypt_to(blob, header, key, lambda piece: pieces.append(bytes(piece)), max_database)
    database = b"".join(pieces)
    assert size == len(database) and all(len(p) <= F.DECOMPRESS_PIECE for p in pieces)
    return database


CREATED = datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc)
FILE_KEY = bytes(range(32))
NONCE = bytes(range(100, 116))


@pytest.fixture
def known_key(kit, signer, desktop_key):
    """A snapshot sealed with a known file key: lets a test build signed-but-broken payloads."""

    def make(inner: bytes | None = None, *, version: int = 5, chunks_last_flag: bool = True,
             empty_tail: bool = False, database: bytes | None = None, format_version: int = F.FORMAT_VERSION) -> bytes:
        database = kit.database_for(version) if database is None else database
        blob = envelope.seal(database, snapshot_version=version, created_at=kit.created_at(version),
                             expires_at=kit.created_at(version + 72), recipients=[desktop_key.public],
                             signer=signer, chunk_size=kit.SNAPSHOT_CHUNK, _file_key=FILE_KEY, _nonce=NONCE,
                             format_version=format_version)
        if inner is None and chunks_last_flag and not empty_tail:
            return blob
        header, _, _ = kit.split_snapshot(blob)
        prefix = kit.header_prefix(header)
        if inner is None:
            inner = hashlib.sha256(database).digest() + envelope.compress(database, format_version)
        payload = envelope.encrypt_payload(FILE_KEY, NONCE, prefix, inner, kit.SNAPSHOT_CHUNK)
        if not chunks_last_flag or empty_tail:
            payload = _restream(prefix, inner, kit.SNAPSHOT_CHUNK, last_flag=chunks_last_flag,
                                empty_tail=empty_tail)
        return kit.assemble_snapshot(header, payload, sign_with=signer)

    return make


def _restream(prefix: bytes, inner: bytes, chunk: int, *, last_flag: bool, empty_tail: bool) -> bytes:
    """STREAM with a broken rule: no chunk marked last, or an extra empty last chunk."""
    pieces = [inner[i:i + chunk] for i in range(0, len(inner), chunk)]
    if empty_tail:
        pieces.append(b"")
    out = b""
    for n, piece in enumerate(pieces):
        last = last_flag and n == len(pieces) - 1
        # encrypt_payload of exactly one chunk at counter 0 cannot give counter n, so encrypt by hand
        # through the module's own primitives (the same ones the reader uses).
        out += _encrypt_chunk(prefix, n, last, piece)
    return out


def _encrypt_chunk(prefix: bytes, counter: int, last: bool, piece: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # tests may import it

    aead = ChaCha20Poly1305(envelope._payload_key(FILE_KEY, NONCE))
    return aead.encrypt(envelope._stream_nonce(counter, last), piece, hashlib.sha256(prefix).digest())


# --- the happy path ------------------------------------------------------------------------------


def test_every_recipient_opens_the_same_database(kit, sealed, signer, everyone):
    for key in everyone:
        assert open_fully(sealed, [signer.public], key) == kit.database_for(5)
    conn = open_database(open_fully(sealed, [signer.public], everyone[0]))
    assert read_meta(conn).snapshot_version == 5
    assert conn.execute("SELECT display_name FROM listings WHERE id = 'p-canary-1'").fetchone()[0] == \
        kit.CANARIES[0]


def test_no_plaintext_and_no_key_in_the_sealed_file(kit, sealed, everyone):
    for canary in kit.CANARIES:
        for word in canary.split():
            assert word.encode() not in sealed
    assert b"SQLite format 3" not in sealed
    for key in everyone:
        assert key.raw() not in sealed


def test_each_snapshot_has_a_fresh_file_key_and_nonce(kit, signer, desktop_key):
    one, two = (kit.seal_snapshot(5, signer=signer, recipients=[desktop_key.public]) for _ in range(2))
    h1, p1, _ = kit.split_snapshot(one)
    h2, p2, _ = kit.split_snapshot(two)
    assert h1["payload_nonce"] != h2["payload_nonce"]
    assert h1["recipients"][0]["wrapped"] != h2["recipients"][0]["wrapped"]
    assert p1 != p2


def test_header_fields(kit, sealed, signer, everyone):
    header = envelope.peek_header(sealed)
    assert header.format == F.FORMAT_VERSION and header.snapshot_version == 5
    assert header.signer == signer.public and header.chunk_size == kit.SNAPSHOT_CHUNK
    assert set(header.recipients) == {k.public.recipient_id for k in everyone}
    assert sealed.startswith(F.MAGIC)
    doc, payload, _ = kit.split_snapshot(sealed)
    assert [r["id"] for r in doc["recipients"]] == sorted(r["id"] for r in doc["recipients"])
    assert len(payload) > 2 * (kit.SNAPSHOT_CHUNK + F.TAG_SIZE), "the fixture should have several chunks"


def test_seal_needs_a_recipient(kit, signer):
    with pytest.raises(ValueError):
        kit.seal_snapshot(5, signer=signer, recipients=[])


# --- who may open it --------------------------------------------------------------------------------


def test_revoked_desktop_decrypts_nothing_sealed_after_its_removal(kit, signer, desktop_key,
                                                                    other_desktop_keys, figures):
    revoked, *kept = other_desktop_keys
    before = kit.seal_snapshot(4, signer=signer, recipients=[desktop_key.public, revoked.public])
    assert open_fully(before, [signer.public], revoked) == kit.database_for(4)
    refused = 0
    for version in range(5, 10):
        after = kit.seal_snapshot(version, signer=signer, recipients=[desktop_key.public] + [k.public for k in kept])
        header = envelope.verify(after, [signer.public])
        with pytest.raises(NotARecipient):
            envelope.decrypt(after, header, revoked)
        refused += 1
        # Not even by claiming another desktop's stanza as its own: HPKE binds it to that desktop's key.
        for wrapped in header.recipients.values():
            forged = dataclasses.replace(header, recipients={revoked.public.recipient_id: wrapped})
            with pytest.raises(NotARecipient):
                envelope.decrypt(after, forged, revoked)
            refused += 1
        for key in [desktop_key, *kept]:
            assert envelope.decrypt(after, header, key) == kit.database_for(version)
    figures("revoked desktop: decrypt attempts refused", refused)


# --- who may sign it --------------------------------------------------------------------------------


def test_snapshot_sealed_by_another_signer_is_untrusted(kit, attacker, signer, desktop_key):
    forged = kit.seal_snapshot(6, signer=attacker, recipients=[desktop_key.public])
    with pytest.raises(UntrustedSignature, match="not signed by your hospital's exporter"):
        envelope.verify(forged, [signer.public])
    # Nothing is pinned but the attacker's key itself: the same file is fine by that key.
    assert envelope.verify(forged, [attacker.public]).snapshot_version == 6


def test_recipient_re_encrypting_for_everyone_is_untrusted(kit, sealed, signer, attacker, everyone):
    """A legitimate recipient knows the file key: it can decrypt, edit and re-seal, but not sign."""
    insider = everyone[1]
    database = open_fully(sealed, [signer.public], insider)
    # 1. Re-sealed for every desktop with the insider's own signing key.
    forged = kit.seal_snapshot(6, signer=attacker, recipients=[k.public for k in everyone], database=database)
    with pytest.raises(UntrustedSignature):
        envelope.verify(forged, [signer.public])
    # 2. Same, but the header names the pinned signer: the signature does not match that key.
    doc, payload, _ = kit.split_snapshot(forged)
    doc["signer"] = signer.public.to_text()
    with pytest.raises(UntrustedSignature):
        envelope.verify(kit.assemble_snapshot(doc, payload, sign_with=attacker), [signer.public])
    # 3. Re-using the real header (and its wrapped file key) with a new payload, re-signed.
    header = envelope.verify(sealed, [signer.public])
    real_doc, _, _ = kit.split_snapshot(sealed)
    file_key = envelope._SUITE.decrypt(header.recipients[insider.public.recipient_id], insider._x25519(),
                                       info=F.HPKE_INFO)
    inner = hashlib.sha256(database).digest() + _zstd(database, level=1)  # another level: other bytes
    payload = envelope.encrypt_payload(file_key, header.payload_nonce, kit.header_prefix(real_doc), inner,
                                       header.chunk_size)
    assert payload != kit.split_snapshot(sealed)[1]
    for sign_with in (attacker, None):
        blob = kit.assemble_snapshot(real_doc, payload, sign_with=sign_with,
                                     signature=None if sign_with else sealed[-F.SIGNATURE_SIZE:])
        with pytest.raises(UntrustedSignature):
            envelope.verify(blob, [signer.public])
    # The attack is otherwise sound (the payload really decrypts for everyone): only the signature stops it.
    unsigned = kit.assemble_snapshot(real_doc, payload, sign_with=signer)
    for key in everyone:
        assert envelope.decrypt(unsigned, envelope.verify(unsigned, [signer.public]), key) == database


def test_signature_is_over_every_byte(kit, sealed, signer):
    for position in (0, len(F.MAGIC) + 5, len(sealed) // 2, len(sealed) - F.SIGNATURE_SIZE - 1,
                     len(sealed) - 1):
        damaged = bytearray(sealed)
        damaged[position] ^= 0x20
        with pytest.raises(SnapshotError):
            envelope.verify(bytes(damaged), [signer.public])


def test_header_naming_the_wrong_signer_is_refused(kit, sealed, signer, attacker):
    doc, payload, _ = kit.split_snapshot(sealed)
    doc["signer"] = attacker.public.to_text()
    with pytest.raises(SnapshotError):
        envelope.verify(kit.assemble_snapshot(doc, payload, sign_with=signer), [signer.public])


# --- rotation -------------------------------------------------------------------------------------


def test_rotation_endorsed_by_the_pinned_key_is_accepted(kit, signer, desktop_key):
    new = keys.SignerKey.from_raw(kit.fixed_bytes("rotated signer"))
    newer = keys.SignerKey.from_raw(kit.fixed_bytes("rotated again"))
    one = [envelope.Endorsement.make(signer, new.public)]
    blob = kit.seal_snapshot(6, signer=new, recipients=[desktop_key.public], endorsements=one)
    header = envelope.verify(blob, [signer.public])
    assert header.signer == new.public and header.endorsements[0].is_valid()
    chain = one + [envelope.Endorsement.make(new, newer.public)]
    blob = kit.seal_snapshot(7, signer=newer, recipients=[desktop_key.public], endorsements=chain[::-1])
    assert envelope.verify(blob, [signer.public]).signer == newer.public
    assert envelope.decrypt(blob, envelope.verify(blob, [signer.public]), desktop_key) == kit.database_for(7)


def test_endorsement_not_made_by_a_pinned_key_is_refused(kit, signer, attacker, desktop_key):
    new = keys.SignerKey.from_raw(kit.fixed_bytes("attacker's second key"))
    # The attacker endorses its own second key.
    by_attacker = [envelope.Endorsement.make(attacker, new.public)]
    # The attacker claims the pinned key endorsed it, with a signature of its own.
    until = "2099-01-01T00:00:00Z"
    claimed = [envelope.Endorsement(new.public, signer.public,
                                    attacker.sign(envelope.Endorsement.message(new.public, until)), until)]
    # A real endorsement by the pinned key, but of some other key, replayed next to the attacker's.
    other = keys.SignerKey.from_raw(kit.fixed_bytes("legit rotated"))
    replayed = [envelope.Endorsement.make(signer, other.public),
                envelope.Endorsement(new.public, other.public,
                                     attacker.sign(envelope.Endorsement.message(new.public, until)), until)]
    for endorsements in (by_attacker, claimed, replayed, []):
        blob = kit.seal_snapshot(6, signer=new, recipients=[desktop_key.public], endorsements=endorsements)
        with pytest.raises(UntrustedSignature):
            envelope.verify(blob, [signer.public])
        assert envelope.verify(blob, [new.public]).signer == new.public  # control: the file is well made


# --- tampering that the signature cannot see: signed by the real key, broken inside ---------------


def test_known_key_fixture_makes_a_valid_snapshot(known_key, signer, desktop_key, kit):
    blob = known_key()
    assert open_fully(blob, [signer.public], desktop_key) == kit.database_for(5)
    # Any level, and a single-threaded frame, open too.
    assert open_fully(known_key(hashlib.sha256(kit.database_for(5)).digest()
                                + zstandard.ZstdCompressor(level=1).compress(kit.database_for(5))),
                      [signer.public], desktop_key) == kit.database_for(5)
    # Format 1 (zlib) files are still read, at any level.
    assert open_fully(known_key(format_version=1), [signer.public], desktop_key) == kit.database_for(5)
    assert open_fully(known_key(hashlib.sha256(kit.database_for(5)).digest() + zlib.compress(kit.database_for(5), 1),
                                format_version=1), [signer.public], desktop_key) == kit.database_for(5)


def _zstd(data: bytes, **options) -> bytes:
    return zstandard.ZstdCompressor(**options).compress(data)


def _frame_stating(data: bytes, stated: int) -> bytes:
    """A frame of ``data`` whose header states ``stated`` bytes instead (a 4-byte size field)."""
    frame = bytearray(_zstd(data, level=3))
    flag, single = frame[4] >> 6, frame[4] & 0x20
    assert frame[4] & 3 == 0 and flag in (1, 2)  # no dictionary id; a 2- or 4-byte size (RFC 8878 3.1.1.1)
    start = 5 if single else 6
    if flag == 1:
        frame[start:start + 2] = (stated - 256).to_bytes(2, "little")
    else:
        frame[start:start + 4] = stated.to_bytes(4, "little")
    assert zstandard.frame_content_size(bytes(frame)) == stated
    return bytes(frame)


@pytest.mark.parametrize("case", ["no chunk marked last", "empty last chunk", "hash mismatch",
                                  "trailing data after the compressed database", "not compressed",
                                  "not a database", "empty inner", "a second frame", "frame cut short",
                                  "frame without its size", "frame states less", "frame states more",
                                  "skippable frame first", "zlib in format 2", "zstd in format 1",
                                  "zlib cut short"])
def test_signed_but_broken_payload_is_corrupt(case, known_key, kit, signer, desktop_key):
    db = kit.database_for(5)
    digest = hashlib.sha256(db).digest()
    frame = envelope.compress(db)
    format_version = 1 if case in ("zstd in format 1", "zlib cut short") else 2
    inner = {
        "hash mismatch": hashlib.sha256(db + b"x").digest() + frame,
        "trailing data after the compressed database": digest + frame + b"xx",
        "not compressed": digest + db,
        "not a database": hashlib.sha256(b"hello").digest() + envelope.compress(b"hello"),
        "empty inner": b"",
        "a second frame": digest + frame + _zstd(b""),
        "frame cut short": digest + frame[:-3],
        "frame without its size": digest + _zstd(db, write_content_size=False),
        "frame states less": digest + _frame_stating(db, len(db) - 1),
        "frame states more": digest + _frame_stating(db, len(db) + 1),
        "skippable frame first": digest + b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"skip" + frame,
        "zlib in format 2": digest + zlib.compress(db),
        "zstd in format 1": digest + frame,
        "zlib cut short": digest + zlib.compress(db)[:-5],
    }.get(case)
    blob = known_key(inner, chunks_last_flag=case != "no chunk marked last", empty_tail=case == "empty last chunk",
                     format_version=format_version)
    with pytest.raises(CorruptSnapshot):
        open_database(open_fully(blob, [signer.public], desktop_key))
    with pytest.raises(CorruptSnapshot):  # the streaming reader an install uses refuses the same files
        open_database(open_streamed(blob, [signer.public], desktop_key))


@pytest.mark.parametrize("format_version", [1, 2])
def test_trailing_data_after_the_stream_is_refused_in_either_format(format_version, known_key, kit, signer,
                                                                    desktop_key):
    db = kit.database_for(5)
    for tail in (b"\x00", b"x" * 100_000):
        inner = hashlib.sha256(db).digest() + envelope.compress(db, format_version) + tail
        for reader in (open_fully, open_streamed):
            with pytest.raises(CorruptSnapshot, match="after|damaged"):
                reader(known_key(inner, format_version=format_version), [signer.public], desktop_key)


def test_truncation_at_every_chunk_boundary_is_detected_even_when_re_signed(kit, known_key, signer, desktop_key):
    blob = known_key()
    doc, payload, _ = kit.split_snapshot(blob)
    sealed_chunk = kit.SNAPSHOT_CHUNK + F.TAG_SIZE
    cuts = list(range(sealed_chunk, len(payload), sealed_chunk)) + [0, F.TAG_SIZE - 1, len(payload) - 1]
    for cut in cuts:
        truncated = kit.assemble_snapshot(doc, payload[:cut], sign_with=signer)
        with pytest.raises(CorruptSnapshot):
            open_fully(truncated, [signer.public], desktop_key)
    chunks = [payload[i:i + sealed_chunk] for i in range(0, len(payload), sealed_chunk)]
    assert len(chunks) >= 3
    for reordered in ([chunks[1], chunks[0], *chunks[2:]], [chunks[0], chunks[0], *chunks[1:]],
                      [*chunks, chunks[-1]]):
        with pytest.raises(CorruptSnapshot):
            open_fully(kit.assemble_snapshot(doc, b"".join(reordered), sign_with=signer), [signer.public],
                       desktop_key)


def test_header_is_bound_to_the_payload(kit, known_key, signer, desktop_key):
    """Editing the header and re-signing (a buggy or hostile signer) still fails: the AEAD binds it."""
    blob = known_key()
    doc, payload, _ = kit.split_snapshot(blob)
    for edit in ({"snapshot_version": 6}, {"created_at": "2030-01-01T00:00:00Z"},
                 {"expires_at": "2099-01-01T00:00:00Z"}, {"chunk_size": 2048}):
        edited = kit.assemble_snapshot({**doc, **edit}, payload, sign_with=signer)
        with pytest.raises(CorruptSnapshot):
            open_fully(edited, [signer.public], desktop_key)


def test_decompression_stops_at_the_bound(known_key, signer, desktop_key, kit):
    blob = known_key()
    header = envelope.verify(blob, [signer.public])
    with pytest.raises(CorruptSnapshot, match="larger than this program accepts"):
        envelope.decrypt(blob, header, desktop_key, max_database=len(kit.database_for(5)) - 1)
    assert envelope.decrypt(blob, header, desktop_key, max_database=len(kit.database_for(5)))
    written = []
    with pytest.raises(CorruptSnapshot, match="larger than this program accepts"):
        envelope.decrypt_to(blob, header, desktop_key, written.append, max_database=len(kit.database_for(5)) - 1)
    assert written == []  # refused from the size the frame states, before anything was unpacked
    assert open_streamed(blob, [signer.public], desktop_key, len(kit.database_for(5))) == kit.database_for(5)


def _decrypting_threads() -> list:
    return [thread for thread in threading.enumerate() if thread.name == "snapshot-decrypt"]


def test_chunks_decrypted_ahead_come_in_order_and_any_failure_ends_the_decrypting_thread(known_key, signer,
                                                                                           desktop_key, kit,
                                                                                           monkeypatch):
    monkeypatch.setattr(envelope, "_RUN_BYTES", 2 * kit.SNAPSHOT_CHUNK)  # many runs: it waits for buffers
    database = os.urandom(20 * kit.SNAPSHOT_CHUNK)  # does not compress: twenty chunks and more
    blob = known_key(database=database)
    assert open_streamed(blob, [signer.public], desktop_key) == database
    doc, payload, _ = kit.split_snapshot(blob)
    sealed_chunk = kit.SNAPSHOT_CHUNK + F.TAG_SIZE
    last = (len(payload) - 1) // sealed_chunk
    assert last >= 20
    for chunk in (1, 6, last):  # in the first run, a later one, the last
        damaged = bytearray(payload)
        damaged[chunk * sealed_chunk + 3] ^= 1
        with pytest.raises(CorruptSnapshot, match=f"chunk {chunk} does not authenticate"):
            open_streamed(kit.assemble_snapshot(doc, bytes(damaged), sign_with=signer), [signer.public],
                          desktop_key)
        assert _decrypting_threads() == []
    # The unpacking side failing part-way (here a write that fails) stops the decrypting thread too.
    header = envelope.verify(blob, [signer.public])

    def failing(piece):
        raise OSError("the RAM file is gone")

    with pytest.raises(OSError):
        envelope.decrypt_to(blob, header, desktop_key, failing)
    assert _decrypting_threads() == []


@pytest.mark.parametrize("format_version", [1, 2])
def test_streamed_and_whole_readers_give_the_same_database(format_version, known_key, kit, signer, desktop_key):
    blob = known_key(format_version=format_version)
    assert open_streamed(blob, [signer.public], desktop_key) == open_fully(blob, [signer.public], desktop_key) \
        == kit.database_for(5)


def test_read_head_reads_only_the_header(tmp_path, sealed, signer):
    path = tmp_path / "s.bosnap"
    path.write_bytes(sealed)
    head = envelope.read_head(path)
    assert head == envelope.prefix_of(sealed) and len(head) < len(sealed)
    assert envelope.peek_prefix(head) == envelope.verify(sealed, [signer.public])
    for broken, error in ((b"", NotASnapshot), (F.MAGIC + struct.pack(">I", 10**6) + b"{}", CorruptSnapshot),
                          (F.MAGIC + struct.pack(">I", 2**31), CorruptSnapshot), (b"backup-operator.snapshot/v9\n",
                                                                                 UnsupportedFormat)):
        path.write_bytes(broken)
        with pytest.raises(error):
            envelope.peek_prefix(envelope.read_head(path))
    path.write_bytes(sealed)
    with pytest.raises(TooLarge):
        envelope.read_head(path, cap=len(sealed) - 1)


# --- not a snapshot, or not this format -------------------------------------------------------------


@pytest.mark.parametrize("blob, error", [
    (b"", NotASnapshot),
    (b"hello world\n", NotASnapshot),
    (b"SQLite format 3\x00" + bytes(100), NotASnapshot),
    (b"backup-operator.snapshot/v3\n" + bytes(200), UnsupportedFormat),
    (b"backup-operator.snapshot/v10\n" + bytes(200), UnsupportedFormat),
    (F.MAGIC, CorruptSnapshot),
    (F.MAGIC + struct.pack(">I", 2**31) + bytes(200), CorruptSnapshot),
    (F.MAGIC + struct.pack(">I", 3) + b"{}x" + bytes(64), CorruptSnapshot),
])
def test_not_a_snapshot_or_unknown_format(blob, error, signer):
    # A header that is not JSON under a signature that does not verify: the signature refuses it first
    # (FORMAT.md §10.3); peeking (never trusted) calls it damaged.
    structural = len(blob) < len(F.MAGIC) + F.HEADER_LENGTH_BYTES + 3 + F.SIGNATURE_SIZE or error is not CorruptSnapshot \
        or struct.unpack(">I", blob[len(F.MAGIC):len(F.MAGIC) + 4])[0] > F.MAX_HEADER_BYTES
    with pytest.raises(error if structural else UntrustedSignature):
        envelope.verify(blob, [signer.public])
    with pytest.raises(error):
        envelope.peek_header(blob)


def test_header_saying_format_3_is_unsupported(kit, sealed, signer):
    doc, payload, _ = kit.split_snapshot(sealed)
    with pytest.raises(UnsupportedFormat):
        envelope.verify(kit.assemble_snapshot({**doc, "format": 3}, payload, sign_with=signer), [signer.public])


def test_magic_line_and_header_format_must_agree(kit, sealed, signer):
    """A format 2 header under the format 1 magic line (or the reverse) is refused, signed or not."""
    doc, payload, _ = kit.split_snapshot(sealed)
    assert doc["format"] == 2 and sealed.startswith(F.MAGIC)
    for header, magic in (({**doc, "format": 1}, F.MAGIC), (doc, F.MAGIC_V1),
                          ({**doc, "format": 1, "compression": "zlib"}, F.MAGIC),
                          ({**doc, "format": True}, F.MAGIC_V1)):
        raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        body = magic + struct.pack(">I", len(raw)) + raw + payload
        blob = body + signer.sign(F.SIGNATURE_CONTEXT + hashlib.sha512(body).digest())
        with pytest.raises(CorruptSnapshot):
            envelope.verify(blob, [signer.public])


@pytest.mark.parametrize("edit", [
    lambda raw: raw.replace(b'","', b'", "', 1),  # not canonical
    lambda raw: raw[:-1] + b',"comment":"hi"}',  # an extra field, and out of order: not canonical
    # A field format 1 does not define, in canonical order (FORMAT.md §5: MUST be rejected).
    lambda raw: json.dumps({**json.loads(raw), "comment": "hi"}, sort_keys=True, separators=(",", ":")).encode(),
    lambda raw: json.dumps({**json.loads(raw), "zz_later": 1}, sort_keys=True, separators=(",", ":")).encode(),
    lambda raw: raw.replace(b'"compression":"zstd"', b'"compression":"zlib"'),
    lambda raw: raw.replace(b'"compression":"zstd"', b'"compression":"none"'),
    lambda raw: raw.replace(b'"chunk_size":1024', b'"chunk_size":16'),
    lambda raw: raw.replace(b'"payload_nonce":"', b'"payload_nonce":"AAAA'),
    lambda raw: raw.replace(b'"signer":"bo-signer-', b'"signer":"bo-desktop-'),
])
def test_header_values_this_program_refuses_even_when_signed(edit, kit, sealed, signer):
    start = len(F.MAGIC) + F.HEADER_LENGTH_BYTES
    (length,) = struct.unpack(">I", sealed[len(F.MAGIC):start])
    raw = sealed[start:start + length]
    edited = edit(raw)
    assert edited != raw
    payload = sealed[start + length:-F.SIGNATURE_SIZE]
    with pytest.raises(CorruptSnapshot):
        envelope.verify(kit.assemble_snapshot(edited, payload, sign_with=signer), [signer.public])


def test_header_json_keys_are_exactly_what_seal_writes(kit, sealed):
    doc, _, _ = kit.split_snapshot(sealed)
    assert set(doc) == {"format", "snapshot_version", "created_at", "expires_at", "signer", "payload_nonce",
                        "chunk_size", "compression", "recipients"}
    assert json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() in sealed


# --- the size cap -----------------------------------------------------------------------------------


def test_read_capped_reads_at_most_cap_plus_one_bytes(tmp_path, count_reads, figures):
    cap = 256 * 1024
    big = tmp_path / "big.bosnap"
    with open(big, "wb") as handle:
        handle.write(F.MAGIC)
        handle.truncate(10 * cap)
    # 1. What the kernel says this process read (the real open, no wrapper).
    before, own = _rchar()
    with pytest.raises(TooLarge, match="size cap"):
        envelope.read_capped(big, cap)
    by_kernel = _rchar()[0] - before - own
    # 2. Every byte handed over by the OS for this very file.
    read = count_reads()
    with pytest.raises(TooLarge, match="size cap"):
        envelope.read_capped(big, cap)
    assert read[big] <= cap + 1  # 0: a regular file's size is known before reading (fstat)
    assert by_kernel <= cap + 1
    figures("read_capped, file 10x the cap: bytes read (counted / kernel rchar) vs cap",
            f"{read[big]:,} / {by_kernel:,} vs {cap:,}")
    exact = tmp_path / "exact.bosnap"
    exact.write_bytes(b"x" * cap)
    assert envelope.read_capped(exact, cap) == b"x" * cap
    with pytest.raises(NotASnapshot):
        envelope.read_capped(tmp_path / "missing.bosnap", cap)
    with pytest.raises(NotASnapshot):
        envelope.read_capped(tmp_path, cap)



def _rchar() -> tuple[int, int]:
    """(bytes this process has read through read(2) and friends, bytes this call itself read).

    The value comes from /proc/self/io (Linux); it does not yet count the read that fetched it, so a
    difference of two calls includes the first call's own read, which the caller takes off.
    """
    if not os.path.exists("/proc/self/io"):
        pytest.skip("needs /proc/self/io (Linux) to count bytes read")
    with open("/proc/self/io", "rb", buffering=0) as handle:
        text = handle.read(4096)
    return int(text.split(b"rchar:")[1].split()[0]), len(text)


# --- properties over arbitrary contents -------------------------------------------------------------



@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=6000), chunk_size=st.sampled_from([1024, 1500, 4096, F.CHUNK_SIZE]),
       cut=st.integers(min_value=1, max_value=10_000))
def test_any_content_round_trips_and_any_truncation_is_refused(content, chunk_size, cut, signer, desktop_key):
    blob = envelope.seal(content, snapshot_version=3, created_at=CREATED, expires_at=CREATED,
                         recipients=[desktop_key.public], signer=signer, chunk_size=chunk_size)
    header = envelope.verify(blob, [signer.public])
    assert envelope.decrypt(blob, header, desktop_key) == content
    assert open_streamed(blob, [signer.public], desktop_key) == content
    truncated = blob[: max(0, len(blob) - cut)]
    with pytest.raises(SnapshotError):
        open_fully(truncated, [signer.public], desktop_key)


@pytest.mark.parametrize("chunk_size", [1024, 1025, 4096, 1 << 20])
def test_seal_is_prefix_then_the_stream_of_hash_and_compressed_database_then_the_signature(
        kit, signer, desktop_key, chunk_size):
    """seal assembles the file in one buffer without joining hash and compressed database first: the bytes
    are exactly those of the plain construction, whatever the chunk size (many chunks, or one)."""
    database = kit.database_for(3)
    blob = envelope.seal(database, snapshot_version=3, created_at=kit.created_at(3),
                         expires_at=kit.created_at(75), recipients=[desktop_key.public], signer=signer,
                         chunk_size=chunk_size, _file_key=FILE_KEY, _nonce=NONCE)
    header, payload, signature = kit.split_snapshot(blob)
    prefix = kit.header_prefix(header)
    inner = hashlib.sha256(database).digest() + envelope.compress(database)
    assert payload == envelope.encrypt_payload(FILE_KEY, NONCE, prefix, inner, chunk_size)
    assert blob == prefix + payload + signer.sign(F.SIGNATURE_CONTEXT + hashlib.sha512(prefix + payload).digest())
    assert envelope.decrypt(blob, envelope.verify(blob, [signer.public]), desktop_key) == database


@pytest.mark.parametrize("chunk_size", [1, 16, 31, 32, 33, 100])
def test_the_payload_stream_of_a_head_and_the_rest_is_that_of_their_join(chunk_size):
    head, rest = bytes(range(32)), os.urandom(250)
    out = bytearray(b"prefix")
    envelope._encrypt_into(out, FILE_KEY, NONCE, b"header", head, rest, chunk_size)
    assert bytes(out) == b"prefix" + envelope.encrypt_payload(FILE_KEY, NONCE, b"header", head + rest, chunk_size)


def test_a_packed_database_seals_to_the_same_file(kit, signer, desktop_key):
    database = kit.database_for(4)
    common = dict(snapshot_version=4, created_at=kit.created_at(4), expires_at=kit.created_at(76),
                  recipients=[desktop_key.public], signer=signer, _file_key=FILE_KEY, _nonce=NONCE)
    for format_version in (F.FORMAT_VERSION, 1):
        packed = envelope.pack(database, format_version)
        assert packed.digest == hashlib.sha256(database).digest()
        blob = envelope.seal_packed(packed, **common)
        header, payload, _ = kit.split_snapshot(blob)
        # What seal(database) encrypts: the hash, then the database compressed in the header's format.
        inner = hashlib.sha256(database).digest() + envelope.compress(database, format_version)
        assert header["format"] == format_version and packed.compressed == inner[32:]
        assert payload == envelope.encrypt_payload(FILE_KEY, NONCE, kit.header_prefix(header), inner,
                                                   header["chunk_size"])
        assert envelope.decrypt(blob, envelope.verify(blob, [signer.public]), desktop_key) == database
