"""Write the delta and manifest test vectors (docs/FORMAT.md §12-§14): content hashes, .bodelta and
.bomanifest files that every implementation must accept or refuse with the named error.

    python tests/vectors/generate_distribution.py [OUTPUT_FOLDER]     (default: this folder)

Everything here is deterministic (deltas are sealed to a group key, not with HPKE; Ed25519, zlib level 6
and Zstandard at one level and library version are deterministic; constraints.txt pins the library), so ``tests/distribution/test_distribution_vectors.py`` regenerates the
files and compares them byte for byte, and reads each one for its expected outcome.

Files (keys are generate.py's ``keys.json``):

    delta-base.sqlite3, delta-target.sqlite3   versions 6 and 7 of a small directory; content hashes in
                                               distribution.json
    delta-*.bodelta                            deltas from 6 to 7 (one valid, the others refused)
    manifest-*.bomanifest                      manifests (one valid, the others refused)
    distribution.json                          one entry per file: expected outcome, how to check it
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backup_operator.core import delta as rows
from backup_operator.core.model import build_database
from backup_operator.snapshot import deltafile, keys
from backup_operator.snapshot import format as F
from backup_operator.snapshot.manifest import PublishedDelta, PublishedFile, manifest_for

CREATED = datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc)
EXPIRES = CREATED + timedelta(days=3)


def seed(label: str) -> bytes:
    """generate.py's seeds: the same key names give the same keys."""
    return hashlib.sha256(b"backup-operator test vectors v1: " + label.encode()).digest()


SIGNER = keys.SignerKey.from_raw(seed("signer"))
ATTACKER = keys.SignerKey.from_raw(seed("attacker"))
GROUP_KEY = (seed("group key id")[:8].hex(), seed("group key"))
OTHER_GROUP_KEY = (seed("other group key id")[:8].hex(), seed("other group key"))
FILE_KEY = seed("delta file key")
NONCE = seed("delta payload nonce")[: F.PAYLOAD_NONCE_SIZE]
CHUNK = 1024


def records(version: int) -> dict:
    people = [("p-1", "Ada Vector", "Attending", "4471"), ("p-2", "Bo Lindqvist", "Fellow", "4402"),
              ("p-3", "Chen Wu", "Nurse", "4410")]
    if version >= 7:  # one person leaves, one joins, a number and a title change
        people = [("p-1", "Ada Vector", "Chief of Cardiology", "4471"), ("p-3", "Chen Wu", "Nurse", "4419"),
                  ("p-4", "Dara Ní Bhriain", "Fellow", "4404")]
    listings = [{"id": i, "kind": "person", "display_name": n, "title": t, "department": "Cardiology"}
                for i, n, t, _ in people]
    listings.append({"id": "d-1", "kind": "department", "display_name": "Cardiology", "department": "Cardiology"})
    contacts = [{"listing_id": i, "kind": "pager", "value": v, "rank": 1} for i, _, _, v in people]
    contacts.append({"listing_id": "d-1", "kind": "extension", "value": "4400", "rank": 1})
    return {"listings": listings, "contact_methods": contacts,
            "schedules": [{"id": "cardio", "name": "Cardiology attending", "timezone": "America/New_York",
                           "fallback_listing_id": "d-1"}],
            "shifts": [{"schedule_id": "cardio", "tier": 1, "listing_id": "p-1",
                        "start_utc": "2026-03-07T11:00:00Z", "end_utc": "2026-03-08T11:00:00Z"}]}


def database(version: int, *, extra: bool = False) -> bytes:
    records_now = records(version)
    if extra:  # another history: someone the desktops' version 6 never had
        records_now["listings"].append({"id": "p-9", "kind": "person", "display_name": "Eve Elsewhere"})
    built = build_database(**records_now, snapshot_version=version, created_at=CREATED + timedelta(hours=version),
                           expires_at=EXPIRES, expected_interval_s=900, source="Backup Operator delta vectors")
    conn = sqlite3.connect(":memory:")
    conn.deserialize(built)
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                 (F.META_DELTA_KEY, deltafile.format_group_key(*GROUP_KEY)))
    conn.commit()
    data = conn.serialize()
    conn.close()
    return data


def content(data: bytes) -> bytes:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(data)
    try:
        return rows.content_hash(conn)
    finally:
        conn.close()


def seal(payload: bytes, *, base: int = 6, version: int = 7, base_content: bytes, result: bytes,
         signer: keys.SignerKey = SIGNER, group_key=GROUP_KEY, format_version: int = F.FORMAT_VERSION) -> bytes:
    return deltafile.seal_delta(payload, base_version=base, base_content=base_content, content=result,
                                snapshot_version=version, created_at=CREATED + timedelta(hours=version),
                                expires_at=EXPIRES, recipients=[], signer=signer, chunk_size=CHUNK,
                                _file_key=FILE_KEY, _nonce=NONCE, group_key=group_key,
                                format_version=format_version)


def generate(out: Path) -> dict:
    base, target = database(6), database(7)
    base_hash, target_hash = content(base), content(target)
    payload = rows.encode_delta(rows.compute_delta(base, target))
    files: dict[str, bytes] = {"delta-base.sqlite3": base, "delta-target.sqlite3": target}
    vectors = []

    def add(name: str, data: bytes, expected: str, description: str, **extra) -> None:
        files[name] = data
        vectors.append({"file": name, "expected": expected, "description": description, **extra})

    add("delta-valid.bodelta", seal(payload, base_content=base_hash, result=target_hash), "success",
        "the delta from version 6 to 7, sealed to the group key in delta-base.sqlite3's meta",
        kind="delta", base="delta-base.sqlite3", result="delta-target.sqlite3", high_water=6,
        file_key=FILE_KEY.hex(), payload_nonce=NONCE.hex(), chunk_size=CHUNK)
    add("delta-valid-v1.bodelta", seal(payload, base_content=base_hash, result=target_hash, format_version=1),
        "success", "the same delta in format 1 (zlib), as exporters wrote it before format 2: still installs",
        kind="delta", base="delta-base.sqlite3", result="delta-target.sqlite3", high_water=6,
        file_key=FILE_KEY.hex(), payload_nonce=NONCE.hex(), chunk_size=CHUNK)
    add("delta-signed-by-attacker.bodelta", seal(payload, base_content=base_hash, result=target_hash,
                                                 signer=ATTACKER),
        "UntrustedSignature", "a well-formed delta signed by a key the desktop does not pin",
        kind="delta", base="delta-base.sqlite3", high_water=6)
    add("delta-older-version.bodelta", seal(payload, base_content=base_hash, result=target_hash),
        "RollbackRefused", "the valid delta, offered to a desktop that already has version 7",
        kind="delta", base="delta-base.sqlite3", high_water=7)
    add("delta-wrong-content-hash.bodelta", seal(payload, base_content=base_hash, result=bytes(32)),
        "BrokenChain", "the rows apply, but the result is not the content the signed header names",
        kind="delta", base="delta-base.sqlite3", high_water=6)
    add("delta-for-another-base.bodelta", seal(rows.encode_delta(rows.compute_delta(database(6, extra=True), target)),
                                               base_content=base_hash, result=target_hash),
        "BrokenChain", "rows computed from another version 6 than the desktop's: they do not fit",
        kind="delta", base="delta-base.sqlite3", high_water=6)
    add("delta-other-group-key.bodelta", seal(payload, base_content=base_hash, result=target_hash,
                                              group_key=OTHER_GROUP_KEY),
        "NotARecipient", "sealed to a group key the base snapshot does not carry (a desktop was removed)",
        kind="delta", base="delta-base.sqlite3", high_water=6)

    valid_delta = files["delta-valid.bodelta"]
    snapshot = PublishedFile("snapshot-000000000007.bosnap", 123456, hashlib.sha256(b"snapshot 7").digest())
    chain = [PublishedDelta("delta-000000000006-000000000007.bodelta", len(valid_delta),
                            hashlib.sha256(valid_delta).digest(), 6, 7)]
    good = manifest_for(snapshot, 7, CREATED + timedelta(hours=7), SIGNER, chain)
    add("manifest-valid.bomanifest", good, "success", "version 7: its snapshot and the delta from 6",
        kind="manifest", high_water=6, snapshot_version=7)
    add("manifest-signed-by-attacker.bomanifest", manifest_for(snapshot, 8, CREATED, ATTACKER, chain),
        "UntrustedSignature", "a manifest signed by a key the desktop does not pin", kind="manifest", high_water=6)
    add("manifest-body-altered.bomanifest", good.replace(b'"snapshot_version":7', b'"snapshot_version":9'),
        "UntrustedSignature", "the valid manifest with its version raised after signing", kind="manifest",
        high_water=6)
    add("manifest-older-version.bomanifest", good, "RollbackRefused",
        "the valid manifest, read by a desktop that already has version 8", kind="manifest", high_water=8)
    add("manifest-truncated.bomanifest", good[:-30], "CorruptSnapshot", "cut short inside its signature line",
        kind="manifest", high_water=6)

    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    doc = {"format": "backup-operator delta and manifest test vectors v1",
           "group_key": deltafile.format_group_key(*GROUP_KEY),
           "content_hashes": {"delta-base.sqlite3": base_hash.hex(), "delta-target.sqlite3": target_hash.hex()},
           "vectors": vectors}
    (out / "distribution.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return doc


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
