"""The committed test vectors (tests/vectors/, docs/FORMAT.md §11), checked both ways.

Reading: every vector gives its expected outcome ("success" or the named error) with the committed keys.
Writing: for the valid vectors, the known plaintext (format 1: zlib level 6 of the database; format 2:
the committed Zstandard frame), file key and payload nonce re-encrypt to exactly the payload bytes in the file, under the file's own header, and re-signing the body with the committed
signing key gives exactly the signature bytes (Ed25519 is deterministic).

The generator (tests/vectors/generate.py) is also run into a temporary folder, so that it cannot rot:
what it writes today must still meet the same manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
import struct
import zlib
from pathlib import Path

import pytest
import zstandard

from backup_operator import errors
from backup_operator.core.model import open_database, read_meta
from backup_operator.core.store import SnapshotStore
from backup_operator.snapshot import envelope, keys
from backup_operator.snapshot import format as F

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())["vectors"]


def _id(entry: dict) -> str:
    extra = [f"{k}={entry[k]}" for k in ("high_water", "size_cap") if entry.get(k)]
    extra += [f"{k}={entry[k]}" for k in ("signer", "desktop") if entry[k] not in ("signer", "desktop")]
    return " ".join([entry["file"], *extra])


def outcome_of(folder: Path, entry: dict, tmp_path: Path) -> tuple[str, object]:
    key_doc = json.loads((folder / "keys.json").read_text())
    trusted = [keys.SignerPublicKey.from_text(key_doc[entry["signer"]]["public"])]
    desktop = keys.DesktopKey.from_raw(bytes.fromhex(key_doc[entry["desktop"]]["private_hex"]))
    store = SnapshotStore(tmp_path / "store", trusted=trusted, key=lambda: desktop,
                          size_cap=entry.get("size_cap") or F.DEFAULT_SIZE_CAP)
    try:
        verified = store.check_file(folder / entry["file"], high_water=entry["high_water"])
    except errors.BackupOperatorError as exc:
        return type(exc).__name__, exc
    return "success", verified


def test_manifest_names_real_files_and_errors():
    names = set(errors.__all__)
    assert len(MANIFEST) >= 25
    for entry in MANIFEST:
        assert (VECTORS / entry["file"]).is_file(), entry["file"]
        assert entry["expected"] == "success" or entry["expected"] in names, entry
    formats = {(VECTORS / e["file"]).read_bytes()[:28] for e in MANIFEST if e["expected"] == "success"}
    assert formats == {F.MAGIC_V1, F.MAGIC}  # files of the old format still install beside the new
    outcomes = {e["expected"] for e in MANIFEST}
    assert outcomes >= {"success", "NotASnapshot", "UnsupportedFormat", "TooLarge", "UntrustedSignature",
                        "RollbackRefused", "NotARecipient", "CorruptSnapshot"}


def test_committed_keys_match_their_public_texts():
    key_doc = json.loads((VECTORS / "keys.json").read_text())
    for name, doc in key_doc.items():
        raw = bytes.fromhex(doc["private_hex"])
        if doc["kind"].startswith("ed25519"):
            assert keys.SignerKey.from_raw(raw).public.to_text() == doc["public"], name
        else:
            public = keys.DesktopKey.from_raw(raw).public
            assert public.to_text() == doc["public"] and public.recipient_id == doc["recipient_id"], name


@pytest.mark.parametrize("entry", MANIFEST, ids=_id)
def test_read(entry, tmp_path):
    outcome, result = outcome_of(VECTORS, entry, tmp_path)
    assert outcome == entry["expected"], (entry["description"], result)
    if outcome == "success":
        database = (VECTORS / entry["database"]).read_bytes()
        assert result.database == database
        assert result.version == entry["snapshot_version"] == read_meta(open_database(database)).snapshot_version
        if entry.get("signed_by"):
            signer = json.loads((VECTORS / "keys.json").read_text())[entry["signed_by"]]["public"]
            assert result.header.signer.to_text() == signer
    else:
        assert "\n" not in str(result) and str(result).strip()


WRITE_VECTORS = [e for e in MANIFEST if e.get("file_key")]


@pytest.mark.parametrize("entry", WRITE_VECTORS, ids=_id)
def test_write(entry):
    """Encrypting the known plaintext reproduces the payload; signing reproduces the signature."""
    blob = (VECTORS / entry["file"]).read_bytes()
    start = len(F.MAGIC) + F.HEADER_LENGTH_BYTES
    (header_len,) = struct.unpack(">I", blob[len(F.MAGIC):start])
    prefix = blob[: start + header_len]
    payload, signature = blob[start + header_len:-F.SIGNATURE_SIZE], blob[-F.SIGNATURE_SIZE:]
    header = json.loads(blob[start:start + header_len])
    file_key, nonce = bytes.fromhex(entry["file_key"]), bytes.fromhex(entry["payload_nonce"])
    assert header["payload_nonce"] == base64.b64encode(nonce).decode()
    assert header["chunk_size"] == entry["chunk_size"]

    database = (VECTORS / entry["database"]).read_bytes()
    if entry.get("compressed"):  # format 2: the committed Zstandard frame (any encoder's is valid)
        frame = (VECTORS / entry["compressed"]).read_bytes()
        assert blob.startswith(F.MAGIC) and zstandard.ZstdDecompressor().decompress(frame) == database
        inner = hashlib.sha256(database).digest() + frame
    else:  # format 1
        assert blob.startswith(F.MAGIC_V1)
        inner = hashlib.sha256(database).digest() + zlib.compress(database, 6)
    assert envelope.encrypt_payload(file_key, nonce, prefix, inner, entry["chunk_size"]) == payload
    key_doc = json.loads((VECTORS / "keys.json").read_text())
    signer = keys.SignerKey.from_raw(bytes.fromhex(key_doc[entry.get("signed_by", entry["signer"])]["private_hex"]))
    assert signer.sign(F.SIGNATURE_CONTEXT + hashlib.sha512(prefix + payload).digest()) == signature
    # The file key is the one wrapped for the desktop in this very header (HPKE, FORMAT.md §6).
    desktop = keys.DesktopKey.from_raw(bytes.fromhex(key_doc[entry["desktop"]]["private_hex"]))
    parsed = envelope.verify(blob, [keys.SignerPublicKey.from_text(key_doc["signer"]["public"])])
    assert envelope._SUITE.decrypt(parsed.recipients[desktop.public.recipient_id], desktop._x25519(),
                                   info=F.HPKE_INFO) == file_key
    # Control: one bit of plaintext changed gives other payload bytes, so equality above means something.
    assert envelope.encrypt_payload(file_key, nonce, prefix, inner[:-1] + bytes([inner[-1] ^ 1]),
                                    entry["chunk_size"]) != payload


def test_the_generator_still_meets_the_manifest(tmp_path):
    out = tmp_path / "vectors"
    generated = runpy.run_path(str(VECTORS / "generate.py"), run_name="vectors_generator")["generate"](out)
    assert generated == MANIFEST  # same files, keys, expectations, file keys and nonces
    assert json.loads((out / "keys.json").read_text()) == json.loads((VECTORS / "keys.json").read_text())
    for entry in generated:
        outcome, result = outcome_of(out, entry, tmp_path / entry["file"])
        assert outcome == entry["expected"], (entry["file"], result)
