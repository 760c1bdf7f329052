"""The delta and manifest test vectors (docs/FORMAT.md §14), checked both ways: the committed files are
what the generator writes today, byte for byte, and each one is accepted or refused as it says."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from backup_operator import errors
from backup_operator.core import delta as rows
from backup_operator.core.store import SnapshotStore
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import envelope, keys
from backup_operator.snapshot.manifest import verify_manifest

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DOC = json.loads((VECTORS / "distribution.json").read_text(encoding="utf-8"))
KEYS = json.loads((VECTORS / "keys.json").read_text(encoding="utf-8"))


def key(name: str):
    raw = bytes.fromhex(KEYS[name]["private_hex"])
    return keys.SignerKey.from_raw(raw) if "signing" in KEYS[name]["kind"] else keys.DesktopKey.from_raw(raw)


def test_the_generator_writes_exactly_the_committed_files(tmp_path):
    spec = importlib.util.spec_from_file_location("generate_distribution", VECTORS / "generate_distribution.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate(tmp_path) == DOC
    for made in tmp_path.iterdir():
        assert made.read_bytes() == (VECTORS / made.name).read_bytes(), made.name


def test_content_hashes():
    for name, expected in DOC["content_hashes"].items():
        conn = sqlite3.connect(":memory:")
        conn.deserialize((VECTORS / name).read_bytes())
        assert rows.content_hash(conn).hex() == expected


def store_at(folder: Path, base: str, high_water: int) -> SnapshotStore:
    """A desktop store holding ``base`` as an installed full snapshot, with its high-water mark."""
    signer, desktop = key("signer"), key("desktop")
    database = (VECTORS / base).read_bytes()
    conn = sqlite3.connect(":memory:")
    conn.deserialize(database)
    version = int(conn.execute("SELECT value FROM meta WHERE key = 'snapshot_version'").fetchone()[0])
    conn.close()
    store = SnapshotStore(folder, trusted=[signer.public], key=lambda: desktop)
    sealed = envelope.seal(database, snapshot_version=version, created_at=datetime(2026, 3, 7, tzinfo=timezone.utc),
                           expires_at=datetime(2026, 3, 10, tzinfo=timezone.utc), recipients=[desktop.public],
                           signer=signer)
    atomic_write(store.path_of(version), sealed)
    atomic_write(folder / "high-water-mark", f"{high_water}\n".encode())
    return store


@pytest.mark.parametrize("vector", [v for v in DOC["vectors"] if v["kind"] == "delta"], ids=lambda v: v["file"])
def test_delta_vectors(vector, tmp_path):
    store = store_at(tmp_path / "store", vector["base"], vector["high_water"])
    blob = (VECTORS / vector["file"]).read_bytes()
    if vector["expected"] == "success":
        assert store.install_deltas([blob]) == 7
        snapshot = store.open_newest()
        assert rows.content_hash(snapshot.conn).hex() == DOC["content_hashes"][vector["result"]]
        snapshot.close()
        # A delta is never a snapshot, whatever its name.
        with pytest.raises(errors.NotASnapshot):
            envelope.verify(blob, [key("signer").public])
    else:
        with pytest.raises(getattr(errors, vector["expected"])):
            store.install_deltas([blob])
        assert not list((tmp_path / "store").glob("*.bodelta"))


@pytest.mark.parametrize("vector", [v for v in DOC["vectors"] if v["kind"] == "manifest"],
                         ids=lambda v: v["file"])
def test_manifest_vectors(vector):
    data = (VECTORS / vector["file"]).read_bytes()

    def read():
        manifest = verify_manifest(data, [key("signer").public])
        if manifest.snapshot_version < vector["high_water"]:
            raise errors.RollbackRefused("older than installed")  # core.pull's rule
        return manifest

    if vector["expected"] == "success":
        manifest = read()
        assert manifest.snapshot_version == vector["snapshot_version"]
        assert [d.path for d in manifest.chain(6)] == ["delta-000000000006-000000000007.bodelta"]
    else:
        with pytest.raises(getattr(errors, vector["expected"])):
            read()
