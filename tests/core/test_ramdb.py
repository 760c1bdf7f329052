"""Decrypted databases in RAM: written piece by piece, opened by SQLite in place, never named on a disk."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import sys

import pytest

from backup_operator.core import model, ramdb
from backup_operator.errors import CorruptSnapshot

linux_ram = pytest.mark.skipif(ramdb.ram_folder() is None, reason="no RAM file system for this user here")


def _open_files() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the descriptor listdir itself used
    return out


def _pieces(data: bytes, size: int = 4096):
    return [data[i:i + size] for i in range(0, len(data), size)]


@linux_ram
def test_a_ram_image_is_read_in_place_and_has_no_name(template_database):
    folder = ramdb.ram_folder()
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700 and os.lstat(folder).st_uid == os.getuid()
    before = set(os.listdir(folder))
    image = ramdb.RamImage.create()
    assert image.mapped
    assert set(os.listdir(folder)) == before  # named only while SQLite opened it, before any plaintext
    for piece in _pieces(template_database):
        image.write(piece)
    conn = model.open_database(image)
    try:
        assert model.read_meta(conn).snapshot_version == 1
        assert conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 6
        path = next(file for _, name, file in conn.execute("PRAGMA database_list") if name == "main")
        assert path and not os.path.exists(path) and path.startswith(str(folder))
        assert conn.execute("PRAGMA mmap_size").fetchone()[0] >= len(template_database)
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("DELETE FROM listings")
        # The descriptor SQLite reads through is a file on the RAM file system, not on a disk.
        fds = _open_files()
        assert any(link.startswith(str(folder)) and link.endswith("(deleted)") for link in fds)
    finally:
        conn.close()
    assert f"{path} (deleted)" not in _open_files()  # closed with the connection


def test_without_a_ram_file_system_the_database_is_deserialized(template_database, monkeypatch):
    monkeypatch.setattr(ramdb, "ram_folder", lambda: None)
    image = ramdb.RamImage.create()
    assert not image.mapped
    for piece in _pieces(template_database):
        image.write(piece)
    conn = model.open_database(image)
    try:
        assert conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 6
        for _, _, path in conn.execute("PRAGMA database_list"):
            assert not path or not os.path.exists(path)
    finally:
        conn.close()


@linux_ram
def test_a_full_ram_file_system_falls_back_to_memory(template_database, monkeypatch):
    real_open = os.open

    def full(path, *args, **kwargs):
        if str(path).startswith(str(ramdb.ram_folder())):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", full)
    image = ramdb.RamImage.create()
    assert not image.mapped
    image.write(template_database)
    conn = model.open_database(image)
    assert conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 6
    conn.close()


@pytest.mark.parametrize("planted", ["link to a shared folder", "folder others may enter"])
def test_a_planted_folder_is_not_used(planted, tmp_path, monkeypatch):
    """Whatever stands at the folder's name and is not our own closed folder is never written into."""
    if not hasattr(os, "getuid"):
        pytest.skip("POSIX only")
    monkeypatch.setattr(ramdb.sys, "platform", "linux")
    monkeypatch.setattr(ramdb, "_mount_type", lambda path: "tmpfs" if str(path) == str(tmp_path) else "ext4")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    target = tmp_path / "backup-operator"
    if planted.startswith("link"):
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o777)
        target.symlink_to(shared)
    else:
        target.mkdir()
        os.chmod(target, 0o755)
    assert ramdb.ram_folder() is None  # (/dev/shm is "ext4" here, so nothing else qualifies)
    image = ramdb.RamImage.create()
    assert not image.mapped
    image.close()


def test_an_image_that_is_not_a_database_is_refused_and_freed(monkeypatch):
    image = ramdb.RamImage.create()
    image.write(b"this is not SQLite" * 10)
    with pytest.raises(CorruptSnapshot, match="not a directory database"):
        model.open_database(image)
    assert image._fd is None and image._conn is None and image._buffer is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the RAM file system is Linux's")
def test_the_ram_folder_is_on_a_ram_file_system():
    folder = ramdb.ram_folder()
    if folder is None:
        pytest.skip("no RAM file system here")
    assert ramdb._mount_type(folder) in ("tmpfs", "ramfs")


def _filling_write(real_write):
    """``os.write`` on a RAM file system that fills up: two whole writes, a short one, then ENOSPC."""
    calls = []

    def filling(fd, data):
        calls.append(len(data))
        if len(calls) == 3:
            return real_write(fd, bytes(data)[:1000])  # a short write, then the file system is full
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    return filling


@linux_ram
def test_a_ram_file_system_that_fills_up_mid_way_loses_nothing(template_database, monkeypatch):
    real_write, filling = os.write, _filling_write(os.write)

    image = ramdb.RamImage.create()
    monkeypatch.setattr(os, "write", filling)
    for piece in _pieces(template_database):
        image.write(piece)
    monkeypatch.setattr(os, "write", real_write)
    assert not image.mapped and image.size == len(template_database)
    conn = model.open_database(image)
    assert conn.serialize() == template_database  # every byte, the short write's included
    assert conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 6
    conn.close()


@linux_ram
def test_the_exporter_builds_in_a_ram_file_and_reads_it_back_without_serialize(kit, monkeypatch):
    records = kit.template_records()
    built = model.SnapshotBuilder()
    assert built._file is not None
    path = next(file for _, name, file in built.conn.execute("PRAGMA database_list") if name == "main")
    assert path and not os.path.exists(path)
    for table in ("listings", "contact_methods", "schedules", "shifts"):
        built.add_records(table, records[table])
    built.finish(snapshot_version=1, created_at=kit.created_at(1), expires_at=kit.created_at(1),
                 expected_interval_s=60, source="t")
    pieces = b"".join(built._file.pieces(piece=1000))
    data = built.serialize()
    assert pieces == data
    monkeypatch.setattr(ramdb, "ram_folder", lambda: None)
    in_memory = model.SnapshotBuilder()
    assert in_memory._file is None
    for table in ("listings", "contact_methods", "schedules", "shifts"):
        in_memory.add_records(table, records[table])
    in_memory.finish(snapshot_version=1, created_at=kit.created_at(1), expires_at=kit.created_at(1),
                     expected_interval_s=60, source="t")
    # The same bytes wherever it was built (the test vectors are made on machines of both kinds).
    assert in_memory.serialize() == data


@linux_ram
def test_names_left_by_a_crash_are_cleared(monkeypatch):
    folder = ramdb.ram_folder()
    stale = folder / "snapshot-left-by-a-crash.sqlite3"
    stale.touch()
    os.utime(stale, (1, 1))
    fresh = folder / "snapshot-being-opened-right-now.sqlite3"
    fresh.touch()
    try:
        ramdb.ram_folder()
        assert not stale.exists() and fresh.exists()  # a name a minute old is a leftover; a new one is not
    finally:
        fresh.unlink(missing_ok=True)
        stale.unlink(missing_ok=True)


def _builder_conn() -> sqlite3.Connection:
    """A connection like the exporter's builder: its own database locked in exclusive mode."""
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("CREATE TABLE t (a)")
    return conn


@linux_ram
def test_an_attached_image_is_read_in_place_and_has_no_name(template_database):
    folder = ramdb.ram_folder()
    conn = _builder_conn()
    before = set(os.listdir(folder))
    image = ramdb.AttachedImage.attach(conn, "prev")
    assert set(os.listdir(folder)) == before  # named only while SQLite attached it, before any plaintext
    for piece in _pieces(template_database):
        image.write(piece)
    image.finish()
    assert conn.execute("SELECT count(*) FROM prev.listings").fetchone()[0] == 6
    assert conn.execute("PRAGMA main.locking_mode").fetchone()[0] == "exclusive"
    path = next(file for _, name, file in conn.execute("PRAGMA database_list") if name == "prev")
    assert path.startswith(str(folder)) and not os.path.exists(path)
    assert f"{path} (deleted)" in _open_files()
    assert conn.execute("PRAGMA prev.mmap_size").fetchone()[0] >= len(template_database)
    image.detach()
    assert [name for _, name, _ in conn.execute("PRAGMA database_list")] == ["main"]
    assert f"{path} (deleted)" not in _open_files()  # freed with the schema
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # the connection goes on


def test_without_a_ram_file_system_an_attached_image_is_deserialized(template_database, monkeypatch):
    monkeypatch.setattr(ramdb, "ram_folder", lambda: None)
    conn = _builder_conn()
    image = ramdb.AttachedImage.attach(conn, "prev")
    for piece in _pieces(template_database):
        image.write(piece)
    image.finish()
    assert conn.serialize(name="prev") == template_database
    image.detach()
    assert [name for _, name, _ in conn.execute("PRAGMA database_list")] == ["main"]


@linux_ram
def test_an_attached_image_whose_ram_file_system_fills_up_loses_nothing(template_database, monkeypatch):
    real_write, filling = os.write, _filling_write(os.write)

    conn = _builder_conn()
    image = ramdb.AttachedImage.attach(conn, "prev")
    monkeypatch.setattr(os, "write", filling)
    for piece in _pieces(template_database):
        image.write(piece)
    monkeypatch.setattr(os, "write", real_write)
    image.finish()
    assert image.size == len(template_database)
    assert conn.serialize(name="prev") == template_database  # every byte, the short write's included
    image.detach()


def test_an_attached_image_dropped_before_it_was_finished_leaves_nothing(template_database):
    conn = _builder_conn()
    image = ramdb.AttachedImage.attach(conn, "prev")
    image.write(template_database[:5000])  # decryption failed half way
    image.detach()
    assert [name for _, name, _ in conn.execute("PRAGMA database_list")] == ["main"]
    assert not any("previous-" in link for link in _open_files())
    with pytest.raises(ValueError):
        ramdb.AttachedImage.attach(conn, "prev; DROP TABLE t")


@linux_ram
def test_the_search_index_reads_numbers_on_the_build_files_second_connection_and_comes_out_the_same():
    from backup_operator.core.search.index import SearchIndex

    built = model.SnapshotBuilder()
    try:
        n = 26_000  # more than 50,000 contact methods: the numbers are read in a thread
        built.add_rows("listings", ["id", "kind", "display_name"],
                       [(f"L{i:06d}", "person", f"Person {i}") for i in range(n)])
        built.add_rows("contact_methods", ["listing_id", "kind", "value"],
                       [(f"L{i % n:06d}", "phone", f"+1 555 {i:07d}") for i in range(2 * n + 100)])
        built.finish(snapshot_version=1, created_at=model.parse_utc("2026-01-01T00:00:00Z"),
                     expires_at=model.parse_utc("2026-01-08T00:00:00Z"), expected_interval_s=3600, source="t")
        alone = SearchIndex.build(built.conn).to_bytes()
        reader = built.reader()
        seen: list[str] = []
        reader.set_trace_callback(seen.append)
        together = SearchIndex.build(built.conn, reader=reader).to_bytes()
        assert any("group_concat" in statement for statement in seen)  # the numbers came through the reader
        assert together == alone
        with pytest.raises(sqlite3.OperationalError):
            reader.execute("DELETE FROM listings")  # read-only
        built.conn.execute("DELETE FROM meta WHERE key = 'source'")  # the builder may write again after
        built.conn.commit()
    finally:
        built.close()
    assert built._file._readers == [] and built._file._lent == []


@linux_ram
def test_each_reader_of_the_build_file_is_lent_once_and_does_not_map_the_file():
    built = model.SnapshotBuilder()
    try:
        built.add_rows("listings", ["id", "kind", "display_name"], [("a", "person", "A")])
        readers = [built.reader() for _ in range(ramdb.RamFile.READERS)]
        assert len({id(r) for r in readers}) == len(readers) >= 1 and built.reader() is None
        for reader in readers:
            # A page mapped by two connections would count twice in the resident memory measured.
            assert reader.execute("PRAGMA mmap_size").fetchone()[0] == 0
            assert reader.execute("SELECT display_name FROM listings").fetchall() == [("A",)]
    finally:
        built.close()


@linux_ram
def test_taking_the_finished_database_frees_the_file_as_it_reads(kit, monkeypatch):
    records = kit.template_records()
    built = model.SnapshotBuilder()
    for table in ("listings", "contact_methods", "schedules", "shifts"):
        built.add_records(table, records[table])
    built.finish(snapshot_version=1, created_at=kit.created_at(1), expires_at=kit.created_at(1),
                 expected_interval_s=60, source="t")
    whole = b"".join(built._file.pieces(piece=1000))
    monkeypatch.setattr(ramdb.RamFile, "TAKE_PIECE", 4096)
    sizes, real_truncate = [], os.ftruncate

    def truncate(fd, length):  # the real call, its lengths noted
        sizes.append(length)
        real_truncate(fd, length)

    monkeypatch.setattr(os, "ftruncate", truncate)
    file = built._file
    data = built.serialize()
    assert data == whole
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 0 and len(sizes) == -(-len(whole) // 4096)
    assert file._fd is None and not file._readers and not file._lent


def _changed_in_place(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("UPDATE listings SET title = 'Moved' WHERE rowid % 2 = 0")
    conn.execute("DELETE FROM listings WHERE rowid = 1")
    conn.execute("CREATE TABLE grown (x BLOB)")
    conn.execute("INSERT INTO grown VALUES (zeroblob(300000))")  # the file grows beyond what was written
    conn.commit()


@pytest.mark.parametrize("in_ram", [True, False])
def test_a_writable_image_gives_back_what_serialize_would(template_database, in_ram, monkeypatch):
    """A delta chain is applied to the full snapshot in its RAM file (core/chain.py): what is read back
    for the open copy is byte for byte what the same changes give in SQLite's memory, and no journal or
    other named file appears beside it."""
    if not in_ram:
        monkeypatch.setattr(ramdb, "ram_folder", lambda: None)
    elif ramdb.ram_folder() is None:
        pytest.skip("no RAM file system for this user here")
    folder = ramdb.ram_folder()
    before = set(os.listdir(folder)) if folder else set()
    image = ramdb.RamImage.create(writable=True)
    assert image.mapped == in_ram
    for piece in _pieces(template_database):
        image.write(piece)
    conn = image.connect(keep_source=image.mapped)
    try:
        _changed_in_place(conn)
        if folder:
            assert set(os.listdir(folder)) == before
        got = b"".join(bytes(p) for p in image.database_pieces(conn, piece=5000))
    finally:
        conn.close()
        image.close()
    reference = sqlite3.connect(":memory:")
    reference.deserialize(template_database)
    _changed_in_place(reference)
    want = reference.serialize()
    reference.close()
    assert len(got) == len(want)
    # the same pages; in the header, only the counters of writes and the SQLite version may differ
    # (a file's, an in-memory database's), and they agree with each other
    unmasked = [i for i in range(len(want)) if not (24 <= i < 28 or 92 <= i < 100)]
    assert bytes(got[i] for i in unmasked[:200]) == bytes(want[i] for i in unmasked[:200])
    assert got[100:] == want[100:] and got[24:28] == got[92:96]
    reopened = model.open_database(got)
    assert reopened.execute("SELECT count(*) FROM grown").fetchone()[0] == 1
    reopened.close()


def _write_reserved(image: ramdb.RamImage, data: bytes, piece: int = 4096) -> None:
    """Every piece of ``data`` written with ``write_at``, the odd ones from a second thread, backwards."""
    import threading

    image.reserve(len(data))
    offsets = list(range(0, len(data), piece))
    other = threading.Thread(target=lambda: [image.write_at(offset, data[offset:offset + piece])
                                             for offset in reversed(offsets[1::2])])
    other.start()
    for offset in offsets[0::2]:
        image.write_at(offset, memoryview(data)[offset:offset + piece])
    other.join()


@pytest.mark.parametrize("in_ram", [True, False], ids=["RAM file", "buffer"])
def test_a_reserved_image_written_out_of_order_from_two_threads_holds_every_byte(template_database, in_ram,
                                                                                  monkeypatch):
    if not in_ram:
        monkeypatch.setattr(ramdb, "ram_folder", lambda: None)
    elif ramdb.ram_folder() is None:
        pytest.skip("no RAM file system for this user here")
    image = ramdb.RamImage.create()
    _write_reserved(image, template_database)
    assert image.mapped is in_ram and image.size == len(template_database)
    conn = model.open_database(image)
    try:
        assert conn.serialize() == template_database
        assert conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 6
    finally:
        conn.close()


def test_a_reserved_image_takes_nothing_outside_it(template_database):
    image = ramdb.RamImage.create()
    image.reserve(8192)
    for offset, length in ((-1, 10), (8190, 3), (8192, 1)):
        with pytest.raises(ValueError):
            image.write_at(offset, b"x" * length)
    image.close()
    written = ramdb.RamImage.create()
    written.write(b"x")
    with pytest.raises(ValueError):
        written.reserve(8192)  # a reservation comes first, or the bytes written would be overwritten
    written.close()


@linux_ram
def test_no_room_for_a_reservation_falls_back_to_memory_and_leaves_nothing(template_database, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    folder = ramdb.ram_folder()
    before = set(os.listdir(folder))
    open_before = {link for link in _open_files() if link.startswith(str(folder))}
    monkeypatch.setattr(os, "posix_fallocate", full)
    image = ramdb.RamImage.create()
    assert image.mapped
    _write_reserved(image, template_database)
    assert not image.mapped  # never a mapped write where the RAM file system may have no page for it
    assert {link for link in _open_files() if link.startswith(str(folder))} == open_before  # its file closed
    conn = model.open_database(image)
    assert conn.serialize() == template_database
    conn.close()
    assert set(os.listdir(folder)) == before
