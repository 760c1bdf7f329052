"""The store's open copy (snapshot/opencopy.py, core/store.py): made at install, used at every start, and
never trusted further than the installed file it was made from and the keys trusted now."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from backup_operator.core import delta as rows
from backup_operator.errors import UntrustedSignature
from backup_operator.snapshot import envelope, keys

from exporter.delta import make_delta, with_group_key

from directory_changes import START, build, change, directory

GROUP = ("00112233aabbccdd", bytes(range(32)))


def _opens_from_copy(store) -> bool:
    """Whether the store opens its newest version from the open copy (and not the signed file)."""
    snapshot = store._open_from_copy()
    if snapshot is None:
        return False
    snapshot.close()
    return True


def _stored_indexes(conn) -> int:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'search_index'").fetchone():
        return 0
    return conn.execute("SELECT count(*) FROM search_index").fetchone()[0]


def test_install_makes_the_copy_and_a_start_uses_it(desk):
    store = desk.store()
    store.install(desk.drop(3))
    assert store.open_copy_path(3).is_file() and _opens_from_copy(store)
    opened = desk.store().open_newest()
    assert opened.version == 3 and opened.meta.snapshot_version == 3
    assert opened.header == envelope.verify(store.path_of(3).read_bytes(), [desk.signer.public])
    opened.close()
    # A newer install replaces it: one copy, of the newest version.
    store.install(desk.drop(4))
    assert sorted(p.name for p in store.folder.glob("*.open")) == [store.open_copy_path(4).name]
    # The copy holds no plaintext: nothing of the database's text is in it.
    assert b"SQLite format 3" not in store.open_copy_path(4).read_bytes()


def test_a_copy_is_not_used_for_a_signer_no_longer_trusted(desk, attacker):
    store = desk.store()
    store.install(desk.drop(3))
    distrustful = desk.store(trusted=[attacker.public])
    assert not _opens_from_copy(distrustful)
    with pytest.raises(UntrustedSignature):
        distrustful.open_newest()


def test_a_copy_of_another_version_or_another_key_is_not_used(desk, tmp_path):
    store = desk.store()
    store.install(desk.drop(3))
    old_copy = tmp_path / "3.open"
    shutil.copy(store.open_copy_path(3), old_copy)
    store.install(desk.drop(4))
    # Version 3's copy under version 4's name: made from another installed file.
    shutil.copy(old_copy, store.open_copy_path(4))
    assert not _opens_from_copy(store)
    opened = store.open_newest()  # the signed file, the full way
    assert opened.version == 4
    opened.close()
    # A copy made by another desktop's key does not open here either.
    other = desk.store()
    other._key = lambda: keys.DesktopKey.generate()
    other.write_open_copy(4, store.path_of(4).read_bytes(), b"SQLite format 3\x00" + bytes(100))
    assert not _opens_from_copy(store)
    # Damage anywhere in the copy: not used.
    store.install(desk.drop(5))
    damaged = bytearray(store.open_copy_path(5).read_bytes())
    damaged[-100] ^= 1
    store.open_copy_path(5).write_bytes(bytes(damaged))
    assert not _opens_from_copy(store)
    assert store.open_newest().version == 5


def test_a_delta_chain_keeps_its_search_index_in_the_copy(desk):
    """Applying a delta empties the derived search index; it is built once at install and kept in the
    open copy, so a start loads it instead of building it again (seconds at a million listings)."""
    records, databases = directory(77, 150), {}
    for version in (1, 2):
        if version > 1:
            records = change(records, version, 5)
        databases[version] = with_group_key(build(records, version), GROUP)
    created = START + timedelta(minutes=30)
    full = envelope.seal(databases[1], snapshot_version=1, created_at=START, expires_at=START + timedelta(days=3),
                         recipients=desk.recipients, signer=desk.signer)
    delta = make_delta(databases[1], 1, databases[2], 2, created_at=created, expires_at=created + timedelta(days=3),
                       recipients=[], signer=desk.signer, endorsements=[], full_size=10**9, group_key=GROUP).data
    store = desk.store()
    store.install_bytes(full)
    assert store.install_deltas([delta]) == 2
    assert _opens_from_copy(store)
    opened = store.open_newest()
    try:
        assert opened.version == 2 and opened.path.name.endswith(".bodelta")
        assert _stored_indexes(opened.conn) == 1
        assert rows.content_hash(opened.conn) == envelope.verify(opened.path.read_bytes(), [desk.signer.public],
                                                                 kind="delta").content
    finally:
        opened.close()
    # Control: the chain applied again from the signed files has no stored index.
    store.open_copy_path(2).unlink()
    opened = store.open_newest()
    try:
        assert opened.version == 2
        assert _stored_indexes(opened.conn) == 0
    finally:
        opened.close()
