"""Write the .bosnap test vectors (docs/FORMAT.md §11): fixed keys, a known database, and files that
every implementation must accept or refuse with the named error.

    python tests/vectors/generate.py [OUTPUT_FOLDER]     (default: this folder)

Fixed seeds give the private keys, the file key, the payload nonce and the times. HPKE's ephemeral keys
are random by design, so the recipient stanzas (and so the headers, payloads and signatures) change on
every run: the committed files are the vectors, and ``tests/snapshot/test_vectors.py`` checks them both
ways — reading (each file gives its expected outcome) and writing (the known plaintext, file key and
nonce reproduce the payload bytes under the file's own header; re-signing reproduces the signature).

Layout of the output folder:

    keys.json              private keys (hex) and public key texts, by name
    database.sqlite3       the plaintext SQLite database inside the valid vectors (snapshot version 7)
    database.sqlite3.zst   the exact Zstandard frame inside the valid format 2 vectors
    manifest.json          one entry per check: file, expected ("success" or an error class name), how
    *.bosnap               the vectors: format 1 (zlib; still read, no longer written) under their first
                           names, format 2 (Zstandard) as ``v2-*.bosnap``
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib

import zstandard
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # tests may use it directly

from backup_operator.core.model import build_database
from backup_operator.snapshot import envelope, keys
from backup_operator.snapshot import format as F

VERSION = 7
CREATED = datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc)
EXPIRES = CREATED + timedelta(days=3)
SMALL_CHUNK = 1024  # the smallest the format allows: the small database spans several chunks


def seed(label: str) -> bytes:
    return hashlib.sha256(b"backup-operator test vectors v1: " + label.encode()).digest()


FILE_KEY = seed("file key")
PAYLOAD_NONCE = seed("payload nonce")[: F.PAYLOAD_NONCE_SIZE]
FILE_KEY_2 = seed("file key, default chunk")
PAYLOAD_NONCE_2 = seed("payload nonce, default chunk")[: F.PAYLOAD_NONCE_SIZE]

SIGNERS = {name: keys.SignerKey.from_raw(seed(name)) for name in ("signer", "rotated signer", "attacker")}
DESKTOPS = {name: keys.DesktopKey.from_raw(seed(name)) for name in ("desktop", "other desktop")}


def records() -> dict:
    return {
        "listings": [
            {"id": "p-1", "kind": "person", "display_name": "Ada Vector", "given_name": "Ada",
             "family_name": "Vector", "title": "Attending", "department": "Cardiology"},
            {"id": "d-1", "kind": "department", "display_name": "Cardiology", "department": "Cardiology"},
        ],
        "contact_methods": [
            {"listing_id": "p-1", "kind": "pager", "value": "4471", "rank": 1},
            {"listing_id": "d-1", "kind": "extension", "value": "4400", "rank": 1},
        ],
        "schedules": [{"id": "cardio", "name": "Cardiology attending", "timezone": "America/New_York",
                       "fallback_listing_id": "d-1"}],
        "shifts": [{"schedule_id": "cardio", "tier": 1, "listing_id": "p-1",
                    "start_utc": "2026-03-07T11:00:00Z", "end_utc": "2026-03-08T11:00:00Z"}],
    }


def database(version: int = VERSION) -> bytes:
    return build_database(**records(), snapshot_version=version, created_at=CREATED, expires_at=EXPIRES,
                          expected_interval_s=4 * 3600, source="Backup Operator test vectors")


# --- building blocks for files that are signed but broken inside -------------------------------------


def canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def prefix_of(header: bytes, magic: bytes | None = None) -> bytes:
    if magic is None:
        magic = F.MAGIC_V1 if json.loads(header).get("format") == 1 else F.MAGIC
    return magic + struct.pack(">I", len(header)) + header


def split(blob: bytes) -> tuple[dict, bytes, bytes]:
    start = len(F.MAGIC) + F.HEADER_LENGTH_BYTES
    (length,) = struct.unpack(">I", blob[len(F.MAGIC):start])
    return json.loads(blob[start:start + length]), blob[start + length:-F.SIGNATURE_SIZE], blob[-F.SIGNATURE_SIZE:]


def signed(body: bytes, signer: keys.SignerKey) -> bytes:
    return body + signer.sign(F.SIGNATURE_CONTEXT + hashlib.sha512(body).digest())


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def seal(db: bytes, *, version: int = VERSION, signer: str = "signer", recipients=("desktop",),
         chunk_size: int = SMALL_CHUNK, file_key: bytes = FILE_KEY, nonce: bytes = PAYLOAD_NONCE,
         endorsements=(), format_version: int = 1) -> bytes:
    return envelope.seal(db, snapshot_version=version, created_at=CREATED, expires_at=EXPIRES,
                         recipients=[DESKTOPS[r].public for r in recipients], signer=SIGNERS[signer],
                         endorsements=endorsements, chunk_size=chunk_size, _file_key=file_key, _nonce=nonce,
                         format_version=format_version)


def inner_of(db: bytes, format_version: int = 1) -> bytes:
    return hashlib.sha256(db).digest() + envelope.compress(db, format_version)


def rle_frame(size: int, stated: int) -> bytes:
    """A Zstandard frame of ``size`` zero bytes in 128 KiB RLE blocks (4 bytes each), stating ``stated``."""
    block = 128 * 1024
    head = zstandard.FRAME_HEADER + bytes([0xC0, 7 << 3]) + stated.to_bytes(8, "little")
    rle = ((block << 3) | (1 << 1)).to_bytes(3, "little") + b"\0"
    last = ((block << 3) | (1 << 1) | 1).to_bytes(3, "little") + b"\0"
    return head + rle * (size // block - 1) + last


def stream(prefix: bytes, inner: bytes, *, mark_last: bool = True, empty_tail: bool = False) -> bytes:
    """STREAM by hand, to break its rules on purpose (no chunk marked last, an empty last chunk)."""
    aead = ChaCha20Poly1305(envelope._payload_key(FILE_KEY, PAYLOAD_NONCE))
    aad = hashlib.sha256(prefix).digest()
    pieces = [inner[i:i + SMALL_CHUNK] for i in range(0, len(inner), SMALL_CHUNK)] + ([b""] if empty_tail else [])
    return b"".join(aead.encrypt(envelope._stream_nonce(n, mark_last and n == len(pieces) - 1), piece, aad)
                    for n, piece in enumerate(pieces))


def reseal(good: bytes, *, header_edit=None, header_bytes=None, inner: bytes | None = None,
           payload=None, signer: str = "signer", magic: bytes | None = None) -> bytes:
    """The valid file with its header and/or inner plaintext changed, encrypted and signed again (under
    the magic line of the header's format unless ``magic`` says otherwise)."""
    doc, _, _ = split(good)
    if header_edit:
        header_edit(doc)
    header = header_bytes(canonical(doc)) if header_bytes else canonical(doc)
    prefix = prefix_of(header, magic)
    body = prefix + (payload(prefix) if payload else
                     envelope.encrypt_payload(FILE_KEY, PAYLOAD_NONCE, prefix, inner, SMALL_CHUNK))
    return signed(body, SIGNERS[signer])


# --- the vectors ------------------------------------------------------------------------------------------


def generate(out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    db = database()
    (out / "database.sqlite3").write_bytes(db)
    frame = envelope.compress(db)
    (out / "database.sqlite3.zst").write_bytes(frame)
    good = seal(db)
    good_default_chunk = seal(db, chunk_size=F.CHUNK_SIZE, file_key=FILE_KEY_2, nonce=PAYLOAD_NONCE_2)
    endorse = envelope.Endorsement.make(SIGNERS["signer"], SIGNERS["rotated signer"].public)
    rotated = seal(db, signer="rotated signer", endorsements=[endorse])
    two = seal(db, recipients=("desktop", "other desktop"))
    doc, payload, signature = split(good)
    sealed_chunk = SMALL_CHUNK + F.TAG_SIZE

    files: dict[str, bytes] = {
        "valid.bosnap": good,
        "valid-default-chunk.bosnap": good_default_chunk,
        "valid-rotated-signer.bosnap": rotated,
        "not-for-this-desktop.bosnap": seal(db, recipients=("other desktop",)),
        "format-v3.bosnap": b"backup-operator.snapshot/v3\n" + good[len(F.MAGIC):],
        "truncated.bosnap": good[: len(good) // 2],
        "truncated-at-chunk-boundary-resigned.bosnap": signed(prefix_of(canonical(doc)) + payload[:sealed_chunk],
                                                              SIGNERS["signer"]),
        "payload-bit-flipped.bosnap": good[:-F.SIGNATURE_SIZE - 200] + bytes([good[-F.SIGNATURE_SIZE - 200] ^ 1])
        + good[-F.SIGNATURE_SIZE - 199:],
        "signature-bit-flipped.bosnap": good[:-1] + bytes([good[-1] ^ 0x80]),
        "signed-by-another-key.bosnap": seal(db, signer="attacker"),
        "endorsed-by-another-key.bosnap": seal(db, signer="attacker", endorsements=[
            envelope.Endorsement.make(SIGNERS["rotated signer"], SIGNERS["attacker"].public)]),
        "header-names-another-signer.bosnap": reseal(good, header_edit=lambda d: d.update(
            signer=SIGNERS["attacker"].public.to_text()), inner=inner_of(db)),
        "header-not-canonical.bosnap": reseal(good, header_bytes=lambda h: h.replace(b'","', b'", "', 1),
                                              inner=inner_of(db)),
        "header-unknown-field.bosnap": reseal(good, header_edit=lambda d: d.update(comment="not in format 1"),
                                              inner=inner_of(db)),
        "header-length-too-large.bosnap": good[: len(F.MAGIC)] + struct.pack(">I", F.MAX_HEADER_BYTES + 1)
        + good[len(F.MAGIC) + 4:],
        "hash-mismatch.bosnap": reseal(good, inner=hashlib.sha256(db + b"!").digest() + zlib.compress(db, 6)),
        "data-after-compressed-database.bosnap": reseal(good, inner=inner_of(db) + b"\x00"),
        "not-zlib.bosnap": reseal(good, inner=hashlib.sha256(db).digest() + db),
        "not-sqlite.bosnap": reseal(good, inner=inner_of(b"plain text, not a database\n" * 50)),
        "no-chunk-marked-last.bosnap": reseal(good, payload=lambda p: stream(p, inner_of(db), mark_last=False)),
        "empty-last-chunk.bosnap": reseal(good, payload=lambda p: stream(p, inner_of(db), empty_tail=True)),
        "chunks-swapped.bosnap": signed(prefix_of(canonical(doc)) + payload[sealed_chunk:2 * sealed_chunk]
                                        + payload[:sealed_chunk] + payload[2 * sealed_chunk:], SIGNERS["signer"]),
        "meta-version-mismatch.bosnap": seal(database(VERSION - 1)),
        # Strict parsing (§5): each of these is signed by the pinned key, so only the header's form refuses it.
        "header-format-true.bosnap": reseal(good, header_edit=lambda d: d.update(format=True), inner=inner_of(db)),
        "header-format-float.bosnap": reseal(good, header_bytes=lambda h: h.replace(b'"format":1,', b'"format":1.0,'),
                                             inner=inner_of(db)),
        "header-version-fraction.bosnap": reseal(good, header_edit=lambda d: d.update(snapshot_version=VERSION + 0.5),
                                                 inner=inner_of(db)),
        "header-version-above-2-53.bosnap": reseal(good, header_edit=lambda d: d.update(snapshot_version=2**53 + 1),
                                                   inner=inner_of(db)),
        "header-duplicate-recipient.bosnap": reseal(good, header_edit=lambda d: d.update(
            recipients=d["recipients"] * 2), inner=inner_of(db)),
        "header-recipients-unsorted.bosnap": reseal(two, header_edit=lambda d: d["recipients"].reverse(),
                                                    inner=inner_of(db)),
        "header-time-not-a-time.bosnap": reseal(good, header_edit=lambda d: d.update(created_at="yesterday"),
                                                inner=inner_of(db)),
        "header-time-null.bosnap": reseal(good, header_edit=lambda d: d.update(expires_at=None), inner=inner_of(db)),
        "header-time-impossible-date.bosnap": reseal(good, header_edit=lambda d: d.update(
            created_at="2026-02-30T12:00:00Z"), inner=inner_of(db)),
        "header-missing-field.bosnap": reseal(good, header_edit=lambda d: d.pop("compression"), inner=inner_of(db)),
        "header-empty-endorsements.bosnap": reseal(good, header_edit=lambda d: d.update(endorsements=[]),
                                                   inner=inner_of(db)),
        "header-nonce-not-canonical-base64.bosnap": reseal(good, header_edit=lambda d: d.update(
            payload_nonce=d["payload_nonce"][:-3] + B64[B64.index(d["payload_nonce"][-3]) ^ 1] + "=="),
            inner=inner_of(db)),
        # The signature comes before the header is read: a header that is not even JSON, not signed again.
        "header-not-json-not-resigned.bosnap": good[:len(F.MAGIC) + 4] + b"[" + good[len(F.MAGIC) + 5:],
    }
    # Format 2: the payload is one Zstandard frame that states its size.
    good2 = seal(db, format_version=2)
    doc2, _, _ = split(good2)
    digest = hashlib.sha256(db).digest()
    files.update({
        "v2-valid.bosnap": good2,
        "v2-valid-default-chunk.bosnap": seal(db, chunk_size=F.CHUNK_SIZE, file_key=FILE_KEY_2, nonce=PAYLOAD_NONCE_2,
                                              format_version=2),
        "v2-header-says-format-3.bosnap": reseal(good2, header_edit=lambda d: d.update(format=3), inner=frame),
        "v2-header-says-format-1.bosnap": reseal(good2, header_edit=lambda d: d.update(format=1, compression="zlib"),
                                                 header_bytes=lambda h: h, inner=inner_of(db), magic=F.MAGIC),
        "v1-header-says-format-2.bosnap": reseal(good2, inner=digest + frame, magic=F.MAGIC_V1),
        "v2-header-says-zlib.bosnap": reseal(good2, header_edit=lambda d: d.update(compression="zlib"),
                                             inner=inner_of(db)),
        "v2-hash-mismatch.bosnap": reseal(good2, inner=hashlib.sha256(db + b"!").digest() + frame),
        "v2-data-after-frame.bosnap": reseal(good2, inner=digest + frame + b"\x00"),
        "v2-not-compressed.bosnap": reseal(good2, inner=digest + db),
        "v2-zlib-inside.bosnap": reseal(good2, inner=inner_of(db)),
        "v2-frame-without-size.bosnap": reseal(good2, inner=digest + zstandard.ZstdCompressor(
            write_content_size=False).compress(db)),
        "v2-frame-states-8-gib.bosnap": reseal(good2, inner=digest + rle_frame(1 << 20, 8 << 30)),
        "v2-frame-holds-more-than-it-states.bosnap": reseal(good2, inner=digest + rle_frame(64 << 20, 1 << 20)),
    })
    for name, data in files.items():
        (out / name).write_bytes(data)

    def entry(file: str, expected: str, description: str, **how) -> dict:
        return {"file": file, "expected": expected, "description": description, "signer": "signer",
                "desktop": "desktop", "high_water": 0, **how}

    manifest = [
        entry("valid.bosnap", "success", "a valid snapshot in several 1 KiB chunks",
              file_key=FILE_KEY.hex(), payload_nonce=PAYLOAD_NONCE.hex(), chunk_size=SMALL_CHUNK,
              database="database.sqlite3", snapshot_version=VERSION),
        entry("valid-default-chunk.bosnap", "success", "a valid snapshot in one 64 KiB chunk",
              file_key=FILE_KEY_2.hex(), payload_nonce=PAYLOAD_NONCE_2.hex(), chunk_size=F.CHUNK_SIZE,
              database="database.sqlite3", snapshot_version=VERSION),
        entry("valid-rotated-signer.bosnap", "success", "signed by a new key that the pinned key endorsed",
              file_key=FILE_KEY.hex(), payload_nonce=PAYLOAD_NONCE.hex(), chunk_size=SMALL_CHUNK,
              database="database.sqlite3", snapshot_version=VERSION, signed_by="rotated signer"),
        entry("valid.bosnap", "RollbackRefused", "valid, but not newer than the installed version 7",
              high_water=VERSION),
        entry("valid.bosnap", "TooLarge", "valid, but one byte over the size cap", size_cap=len(good) - 1),
        entry("valid.bosnap", "NotARecipient", "valid, opened with a key it was not sealed for",
              desktop="other desktop"),
        entry("valid.bosnap", "UntrustedSignature", "valid, but the desktop pins another exporter key",
              signer="attacker"),
        entry("not-for-this-desktop.bosnap", "NotARecipient", "sealed only for another desktop"),
        entry("database.sqlite3", "NotASnapshot", "the plaintext database itself, not a sealed file"),
        entry("format-v3.bosnap", "UnsupportedFormat", "magic line of format version 3"),
        entry("truncated.bosnap", "UntrustedSignature", "cut in half: the last 64 bytes are not its signature"),
        entry("truncated-at-chunk-boundary-resigned.bosnap", "CorruptSnapshot",
              "only the first chunk, signed again: STREAM sees no last chunk"),
        entry("payload-bit-flipped.bosnap", "UntrustedSignature", "one payload bit flipped"),
        entry("signature-bit-flipped.bosnap", "UntrustedSignature", "one signature bit flipped"),
        entry("signed-by-another-key.bosnap", "UntrustedSignature", "a well-made file by another signer"),
        entry("endorsed-by-another-key.bosnap", "UntrustedSignature",
              "another signer, endorsed by a key the desktop does not pin"),
        entry("header-names-another-signer.bosnap", "CorruptSnapshot",
              "signed by the pinned key, but the header names another signer"),
        entry("header-not-canonical.bosnap", "CorruptSnapshot", "signed, header JSON not in canonical form"),
        entry("header-unknown-field.bosnap", "CorruptSnapshot", "signed, header has a field format 1 lacks"),
        entry("header-length-too-large.bosnap", "CorruptSnapshot", "header length above the 4 MiB limit"),
        entry("hash-mismatch.bosnap", "CorruptSnapshot", "signed, the inner SHA-256 does not match"),
        entry("data-after-compressed-database.bosnap", "CorruptSnapshot",
              "signed, a byte after the end of the zlib stream"),
        entry("not-zlib.bosnap", "CorruptSnapshot", "signed, the database is stored uncompressed"),
        entry("not-sqlite.bosnap", "CorruptSnapshot", "signed, the inner plaintext is not SQLite"),
        entry("no-chunk-marked-last.bosnap", "CorruptSnapshot", "signed, no STREAM chunk carries the last flag"),
        entry("empty-last-chunk.bosnap", "CorruptSnapshot", "signed, STREAM ends with an empty chunk"),
        entry("chunks-swapped.bosnap", "CorruptSnapshot", "signed, chunks 0 and 1 swapped"),
        entry("meta-version-mismatch.bosnap", "CorruptSnapshot", "header version 7, meta table says 6"),
        entry("header-format-true.bosnap", "CorruptSnapshot", "signed, format is true, not the integer 1"),
        entry("header-format-float.bosnap", "CorruptSnapshot", "signed, format is 1.0, not the integer 1"),
        entry("header-version-fraction.bosnap", "CorruptSnapshot", "signed, snapshot_version is 7.5"),
        entry("header-version-above-2-53.bosnap", "CorruptSnapshot", "signed, snapshot_version is 2^53 + 1"),
        entry("header-duplicate-recipient.bosnap", "CorruptSnapshot", "signed, the same recipient stanza twice"),
        entry("header-recipients-unsorted.bosnap", "CorruptSnapshot", "signed, recipient stanzas not sorted by id"),
        entry("header-time-not-a-time.bosnap", "CorruptSnapshot", "signed, created_at is not a time"),
        entry("header-time-null.bosnap", "CorruptSnapshot", "signed, expires_at is null"),
        entry("header-time-impossible-date.bosnap", "CorruptSnapshot", "signed, created_at is February 30"),
        entry("header-missing-field.bosnap", "CorruptSnapshot", "signed, the compression field is missing"),
        entry("header-empty-endorsements.bosnap", "CorruptSnapshot",
              "signed, an empty endorsements list (absent and empty would be two byte forms)"),
        entry("header-nonce-not-canonical-base64.bosnap", "CorruptSnapshot",
              "signed, payload_nonce in base64 whose unused bits are not zero"),
        entry("header-not-json-not-resigned.bosnap", "UntrustedSignature",
              "the header's first byte changed and not signed again: refused by the signature, before parsing"),
        # Format 2 (Zstandard).
        entry("v2-valid.bosnap", "success", "format 2: a valid snapshot in several 1 KiB chunks",
              file_key=FILE_KEY.hex(), payload_nonce=PAYLOAD_NONCE.hex(), chunk_size=SMALL_CHUNK,
              database="database.sqlite3", compressed="database.sqlite3.zst", snapshot_version=VERSION),
        entry("v2-valid-default-chunk.bosnap", "success", "format 2: a valid snapshot in one 64 KiB chunk",
              file_key=FILE_KEY_2.hex(), payload_nonce=PAYLOAD_NONCE_2.hex(), chunk_size=F.CHUNK_SIZE,
              database="database.sqlite3", compressed="database.sqlite3.zst", snapshot_version=VERSION),
        entry("v2-valid.bosnap", "RollbackRefused", "format 2, valid, but not newer than the installed version 7",
              high_water=VERSION),
        entry("v2-header-says-format-3.bosnap", "UnsupportedFormat", "format 2 magic, header says format 3"),
        entry("v2-header-says-format-1.bosnap", "CorruptSnapshot",
              "signed, format 2 magic line over a format 1 header (zlib inside)"),
        entry("v1-header-says-format-2.bosnap", "CorruptSnapshot",
              "signed, format 1 magic line over a format 2 header (Zstandard inside)"),
        entry("v2-header-says-zlib.bosnap", "CorruptSnapshot", "signed, format 2 header naming zlib compression"),
        entry("v2-hash-mismatch.bosnap", "CorruptSnapshot", "format 2, signed, the inner SHA-256 does not match"),
        entry("v2-data-after-frame.bosnap", "CorruptSnapshot", "format 2, signed, a byte after the Zstandard frame"),
        entry("v2-not-compressed.bosnap", "CorruptSnapshot", "format 2, signed, the database stored uncompressed"),
        entry("v2-zlib-inside.bosnap", "CorruptSnapshot", "format 2, signed, a zlib stream instead of Zstandard"),
        entry("v2-frame-without-size.bosnap", "CorruptSnapshot",
              "format 2, signed, a Zstandard frame that does not state its size"),
        entry("v2-frame-states-8-gib.bosnap", "CorruptSnapshot",
              "format 2, signed, a frame stating 8 GiB (over the 4 GiB bound): refused before unpacking"),
        entry("v2-frame-holds-more-than-it-states.bosnap", "CorruptSnapshot",
              "format 2, signed, a frame stating 1 MiB that holds 64 MiB: unpacking stops at 1 MiB"),
    ]
    key_doc = {
        **{name: {"kind": "ed25519 signing key", "private_hex": seed(name).hex(), "public": key.public.to_text()}
           for name, key in SIGNERS.items()},
        **{name: {"kind": "x25519 desktop key", "private_hex": key.raw().hex(), "public": key.public.to_text(),
                  "recipient_id": key.public.recipient_id} for name, key in DESKTOPS.items()},
    }
    (out / "keys.json").write_text(json.dumps(key_doc, indent=2) + "\n")
    (out / "manifest.json").write_text(json.dumps({"format": "backup-operator.snapshot/v1 test vectors",
                                                   "vectors": manifest}, indent=2) + "\n")
    return manifest


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    made = generate(target)
    print(f"Wrote {len(made)} vectors to {target}")
