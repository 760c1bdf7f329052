"""The store with a delta chain: install link by link, open through the chain, fall back when a link is
damaged or missing, and count delta versions in the high-water mark."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from backup_operator.core import delta as rows
from backup_operator.core import ramdb
from backup_operator.core.search import SearchIndex, store_index
from backup_operator.errors import BrokenChain, RollbackRefused
from backup_operator.snapshot import envelope

from exporter.delta import make_delta, with_group_key

from directory_changes import START, build, change, directory

GROUP = ("00112233aabbccdd", bytes(range(32)))


@pytest.fixture
def history(desk):
    """Versions 1..4 of a directory: databases, the sealed full snapshots, and deltas 1→2, 2→3, 3→4."""
    records, databases, fulls, deltas = directory(77, 150), {}, {}, {}
    for version in range(1, 5):
        if version > 1:
            records = change(records, version, 5)
        # with its search index stored, as the exporter's full snapshots carry it (a delta updates it)
        databases[version] = store_index(with_group_key(build(records, version), GROUP))
        created = START + timedelta(minutes=15 * version)
        fulls[version] = envelope.seal(databases[version], snapshot_version=version, created_at=created,
                                       expires_at=created + timedelta(days=3), recipients=desk.recipients,
                                       signer=desk.signer)
        if version > 1:
            deltas[version] = make_delta(databases[version - 1], version - 1, databases[version], version,
                                         created_at=created, expires_at=created + timedelta(days=3),
                                         recipients=[], signer=desk.signer, endorsements=[], full_size=10**9,
                                         group_key=GROUP).data
    return databases, fulls, deltas


def content(database: bytes) -> bytes:
    import sqlite3
    conn = sqlite3.connect(":memory:")
    conn.deserialize(database)
    return rows.content_hash(conn)


def opened(store):
    snapshot = store.open_newest()
    try:
        return snapshot.version, rows.content_hash(snapshot.conn), [p.name for p, _ in snapshot.skipped]
    finally:
        snapshot.close()


@pytest.mark.parametrize("ram", ["ram file", "no ram file system"])
def test_a_chain_installed_link_by_link_opens_at_its_tip(desk, history, ram, monkeypatch):
    if ram != "ram file":  # the chain is applied in SQLite's memory instead (ramdb.RamImage's buffer)
        monkeypatch.setattr(ramdb, "ram_folder", lambda: None)
    databases, fulls, deltas = history
    store = desk.store()
    store.install_bytes(fulls[1])
    folder = ramdb.ram_folder()
    before = set(os.listdir(folder)) if folder else set()
    for version in (2, 3, 4):
        assert store.install_deltas([deltas[version]]) == version
        # applied in a RAM file of its own, which leaves no name (nor a journal) behind
        assert (set(os.listdir(folder)) if folder else set()) == before
    assert opened(store) == (4, content(databases[4]), [])
    # the open copy holds the database the chain made, with its search index: it opens with the index
    # loaded (no build), and answers as an index built from its rows would
    snapshot = store.open_newest()
    try:
        stored = SearchIndex.open(snapshot.conn)
        assert snapshot.conn.execute("SELECT count(*) FROM search_index").fetchone()[0] == 1
        built = SearchIndex.build(snapshot.conn)
        for query in ("cardiology", "hart", "608", "amelia okafor", "attending north"):
            assert [(h.id, round(h.score, 6)) for h in stored.search(query, limit=500)] == \
                [(h.id, round(h.score, 6)) for h in built.search(query, limit=500)]
    finally:
        snapshot.close()
    assert store.high_water() == 4
    # The mark counts delta versions even when its file is gone: an older full snapshot is refused.
    (store.folder / "high-water-mark").unlink()
    assert desk.store().high_water() == 4
    with pytest.raises(RollbackRefused):
        desk.store().install_bytes(fulls[3])
    # A newer full snapshot ends the chain.
    more = change(directory(77, 150), 99, 3)
    v5 = envelope.seal(with_group_key(build(more, 5), GROUP), snapshot_version=5, created_at=START,
                       expires_at=START + timedelta(days=3), recipients=desk.recipients, signer=desk.signer)
    store.install_bytes(v5)
    assert not list(store.folder.glob("*.bodelta")) and opened(store)[0] == 5


def test_a_damaged_or_missing_link_ends_the_chain_before_it(desk, history):
    databases, fulls, deltas = history
    store = desk.store()
    store.install_bytes(fulls[1])
    assert store.install_deltas([deltas[2], deltas[3], deltas[4]]) == 4
    tip = store.folder / "000000000004.bodelta"
    damaged = bytearray(tip.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    tip.write_bytes(bytes(damaged))
    # The verified result of the chain is kept in the open copy: damage to the delta at rest does not
    # reach it. Without the copy, the chain is applied again and ends before the damaged link.
    assert opened(store)[:2] == (4, content(databases[4]))
    store.open_copy_path(4).unlink()
    assert opened(store) == (3, content(databases[3]), ["000000000004.bodelta"])
    (store.folder / "000000000003.bodelta").unlink()
    version, digest, skipped = opened(store)
    assert (version, digest) == (2, content(databases[2])) and "000000000004.bodelta" in skipped


def test_deltas_must_continue_what_is_installed(desk, history):
    databases, fulls, deltas = history
    store = desk.store()
    store.install_bytes(fulls[2])
    with pytest.raises(BrokenChain, match="this desktop has version 2"):
        store.install_deltas([deltas[4]])  # skips version 3
    with pytest.raises(RollbackRefused):
        store.install_deltas([deltas[2]])  # leads to version 2, already installed
    assert store.install_deltas([deltas[3], deltas[4]]) == 4
    assert opened(store) == (4, content(databases[4]), [])


def test_kit_check_reports_the_chain_tip_it_would_open(desk, history):
    """kit-check names the version the kit would show (the chain's tip), not the full snapshot under it,
    and a link that no longer applies fails its own check with the version the kit falls back to."""
    from backup_operator.core.kit import run_kit_checks
    from backup_operator.errors import BrokenChain

    databases, fulls, deltas = history
    store = desk.store()
    store.install_bytes(fulls[1])
    assert store.install_deltas([deltas[2], deltas[3], deltas[4]]) == 4

    def checks():
        found = run_kit_checks(desk.desktop, now=START + timedelta(hours=1),
                               write_pdf=lambda path: path.write_bytes(b"%PDF" + bytes(200)))
        return {check.name: check for check in found}

    ready = checks()
    assert all(check.ok for check in ready.values()), [(c.name, c.detail) for c in ready.values() if not c.ok]
    assert ready["snapshot present"].detail.startswith("version 4 (full snapshot 1 and 3 update(s) after it)")
    assert ready["decrypts"].detail == "this kit's key opens version 4"
    assert ready["data age"].detail.startswith("0 min old")  # version 4 was made at START + 60 min

    tip = store.folder / "000000000004.bodelta"
    damaged = bytearray(tip.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    tip.write_bytes(bytes(damaged))
    broken = checks()
    assert broken["decrypts"].ok and broken["decrypts"].detail == "this kit's key opens version 3"
    assert not broken["updates"].ok and isinstance(broken["updates"].error, BrokenChain)
    assert "shows version 3, not 4" in broken["updates"].detail


def _retitled(database: bytes, listing_id: str) -> bytes:
    import sqlite3
    conn = sqlite3.connect(":memory:")
    conn.deserialize(database)
    conn.execute("UPDATE listings SET title = 'Retitled' WHERE id = ?", (listing_id,))
    conn.commit()
    try:
        return conn.serialize()
    finally:
        conn.close()


def test_a_delta_whose_result_is_not_its_signed_content_is_refused(desk, history):
    """Rows made from another base than the installed one apply, but give another content: refused (the
    hash is worked out beside the index update), and the installed version stays."""
    import sqlite3
    databases, fulls, deltas = history
    store = desk.store()
    store.install_bytes(fulls[1])
    both = []
    for version in (1, 2):
        conn = sqlite3.connect(":memory:")
        conn.deserialize(databases[version])
        both.append({r[0] for r in conn.execute("SELECT id FROM listings")})
        conn.close()
    listing = sorted(both[0] & both[1])[0]
    created = START + timedelta(minutes=30)
    bad = make_delta(_retitled(databases[1], listing), 1, _retitled(databases[2], listing), 2, created_at=created,
                     expires_at=created + timedelta(days=3), recipients=[], signer=desk.signer, endorsements=[],
                     full_size=10**9, group_key=GROUP).data
    with pytest.raises(BrokenChain, match="signed header names"):
        store.install_deltas([bad])
    assert opened(store) == (1, content(databases[1]), [])
    assert store.install_deltas([deltas[2]]) == 2
    assert opened(store) == (2, content(databases[2]), [])
