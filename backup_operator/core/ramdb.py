"""A decrypted snapshot database assembled in RAM, piece by piece, and opened by SQLite without a copy.

Opening a snapshot used to hold its database twice at the peak: once as the decompressed bytes, once
as SQLite's own in-memory copy (``deserialize``). At a million listings that is a gigabyte. Here the
pieces coming out of decryption and decompression are written straight into the place SQLite reads
from, and nothing else keeps them:

* On Linux, an unnamed file on a RAM file system (``$XDG_RUNTIME_DIR`` or ``/dev/shm``, tmpfs): the
  file is created empty in a folder only this user may enter, SQLite opens it read-only, and its name
  is removed before the first byte of plaintext is written. SQLite then maps it (``mmap_size``), so
  the database is in memory exactly once. Nothing is ever on a disk, and nothing is left behind: the
  kernel frees the file when the connection closes or the process ends, however it ends.
* Elsewhere (Windows, macOS, or no RAM file system), a buffer handed to ``deserialize``, as before.

``RamImage.create()`` picks the first that works. This module must never write a byte of a database
to a disk-backed file, and never import Qt or cryptography.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import sys
from pathlib import Path

from backup_operator.membuf import unfilled

__all__ = ["RamImage", "RamFile", "AttachedImage", "ram_folder"]

_TMPFS_TYPES = {"tmpfs", "ramfs"}


def _mount_type(path: Path) -> str | None:
    """The file system type of the mount holding ``path`` (Linux /proc/self/mounts), or None."""
    try:
        real = os.path.realpath(path)
        best, kind = "", None
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, kind = point, fields[2]
        return kind
    except OSError:
        return None


def ram_folder() -> Path | None:
    """A folder on a RAM file system that only this user may enter, or None where there is none."""
    if not sys.platform.startswith("linux") or not hasattr(os, "getuid"):
        return None
    candidates = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(Path(runtime) / "backup-operator")
    candidates.append(Path("/dev/shm") / f"backup-operator-{os.getuid()}")
    for folder in candidates:
        if _mount_type(folder.parent) not in _TMPFS_TYPES:
            continue
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            info = os.lstat(folder)
        except OSError:
            continue
        # Ours, a real folder (not a link someone planted), and closed to everyone else.
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700:
            _clear_leftovers(folder)
            return folder
    return None


_LEFTOVER_AGE_S = 60.0


def _clear_leftovers(folder: Path) -> None:
    """Remove names a crashed process left (a file is named only for the instant SQLite opens it, before
    anything is written to it, so a leftover is empty; any name older than a minute is one)."""
    import time

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
            if entry.is_file(follow_symlinks=False) and age > _LEFTOVER_AGE_S:
                os.unlink(entry.path)
        except OSError:
            pass


def _slices(buffer: bytes | bytearray, piece: int):
    """``buffer`` in order, ``piece`` bytes at a time, as views (no copies)."""
    view = memoryview(buffer)
    for start in range(0, len(view), piece):
        yield view[start:start + piece]


def _pread_pieces(fd: int, size: int, piece: int):
    """The first ``size`` bytes of the file ``fd``, in order, ``piece`` bytes at a time."""
    offset = 0
    while offset < size:
        part = os.pread(fd, min(piece, size - offset), offset)
        if not part:
            raise OSError("the RAM file ended early")
        offset += len(part)
        yield part


class _SpilledWrites:
    """Bytes written in order into a RAM file (``_fd``), or into this process's own memory (``_buffer``)
    from the moment the RAM file system is full: what was already in the file is read back, the file is
    dropped (``_drop_file``) and writing goes on in the buffer."""

    size: int
    _in_file: int
    _fd: int | None
    _buffer: bytearray | None

    def write(self, piece: bytes | bytearray | memoryview) -> None:
        view = memoryview(piece)
        while view and self._buffer is None:
            try:
                written = os.write(self._fd, view)
            except OSError:  # the RAM file system is full: go on in this process's own memory
                self._to_buffer()
                break
            self._in_file += written
            view = view[written:]
        if self._buffer is not None:
            self._buffer += view
        self.size += len(piece)

    def _to_buffer(self) -> None:
        buffer = bytearray()
        while len(buffer) < self._in_file:
            part = os.pread(self._fd, min(1 << 20, self._in_file - len(buffer)), len(buffer))
            if not part:
                break
            buffer += part
        self._drop_file()
        self._buffer = buffer

    def _drop_file(self) -> None:
        raise NotImplementedError


class RamImage(_SpilledWrites):
    """Write the database's bytes in order with ``write``, then ``connect`` (once)."""

    def __init__(self) -> None:
        self.size = 0
        self._readers: list[sqlite3.Connection] = []
        self.head = b""  # the first bytes written (the SQLite header starts there)
        self.mapped = False  # True: SQLite reads the RAM file in place; False: deserialize a buffer
        self._in_file = 0
        self._fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._buffer: bytearray | None = None

    @classmethod
    def create(cls, *, writable: bool = False, readers: int = 0) -> "RamImage":
        """``writable``: the connection may change the database (a delta chain applied to it in place,
        core/chain.py); the caller then turns the rollback journal off before the first change (a journal
        would be a named file beside it) and reads the result back with ``database_pieces``.
        ``readers``: as many more read-only connections on the RAM file (``reader``), for another thread to
        read committed changes with (none where the image is a buffer)."""
        image = cls()
        folder = ram_folder()
        if folder is not None:
            try:
                image._open_ram_file(folder, writable, readers)
            except (OSError, sqlite3.Error):
                image.close()
                image = cls()
        if image._fd is None:
            image._buffer = bytearray()
        return image

    def _open_ram_file(self, folder: Path, writable: bool = False, readers: int = 0) -> None:
        path = folder / f"snapshot-{secrets.token_hex(16)}.sqlite3"
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) |
                           getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            # SQLite opens the empty file now and reads it only at the first query, after the writes.
            self._conn = sqlite3.connect(f"file:{path}?mode={'rw' if writable else 'ro'}", uri=True,
                                         check_same_thread=False)
            for _ in range(readers):
                self._readers.append(sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False))
        finally:
            os.unlink(path)  # from here on the file has no name: no other program can find it
        self.mapped = True

    def write(self, piece: bytes | bytearray | memoryview) -> None:
        if len(self.head) < 100:
            self.head += bytes(piece[: 100 - len(self.head)])
        super().write(piece)

    def _drop_file(self) -> None:
        self.close()
        self.mapped = False

    def reserve(self, size: int) -> None:
        """Make room for a database of ``size`` bytes, to be written with ``write_at`` instead of ``write``
        (in any order, from several threads). The RAM file's pages are allocated here, before a byte is
        written (the caller does this while it waits for something else, such as a key): writing into
        them later is a plain copy. Where the room cannot be had, the image is a buffer of this process."""
        if self.size or self._in_file:
            raise ValueError("reserve comes before anything is written")
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, size)
                if size:
                    os.posix_fallocate(self._fd, 0, size)
                self._in_file = size
            except (OSError, AttributeError):  # full, or no fallocate here: this process's memory
                self._drop_file()
        if self._fd is None:
            self._buffer = unfilled(size)
        self.size = size

    def write_at(self, offset: int, piece: bytes | bytearray | memoryview) -> None:
        """Write ``piece`` at ``offset`` of the ``reserve``d database (safe from several threads at once
        for ranges that do not overlap)."""
        view = memoryview(piece).cast("B")
        if offset < 0 or offset + len(view) > self.size:
            raise ValueError("outside the reserved database")
        if offset == 0:
            self.head = bytes(view[:100])
        if self._buffer is not None:
            self._buffer[offset:offset + len(view)] = view
            return
        while view:
            written = os.pwrite(self._fd, view, offset)
            if written <= 0:
                raise OSError("the RAM file took no more bytes")
            offset += written
            view = view[written:]

    def connect(self, *, keep_source: bool = False) -> sqlite3.Connection:
        """The read-only connection on the whole database; the image's memory now belongs to it.

        ``keep_source``: the bytes can still be read back in order with ``pieces`` (to seal the open copy
        from them) until ``release``. From the RAM file that costs nothing more; a buffer handed to
        ``deserialize`` is then kept until ``release`` (SQLite holds its own copy of it)."""
        if self._buffer is not None:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            try:
                conn.deserialize(self._buffer)
            except BaseException:
                conn.close()
                raise
            finally:
                if not keep_source:
                    self._buffer = None
            return conn
        conn, self._conn = self._conn, None
        if not keep_source:
            os.close(self._fd)  # SQLite keeps its own descriptor of the file
            self._fd = None
        # Map all of it: pages are read in place instead of copied into SQLite's page cache.
        conn.execute(f"PRAGMA mmap_size = {max(self.size, 1 << 20)}")
        return conn

    def pieces(self, piece: int = 4 << 20):
        """The database's bytes in order, ``piece`` bytes at a time (after ``connect(keep_source=True)``)."""
        if self._buffer is not None:
            yield from _slices(self._buffer, piece)
            return
        if self._fd is None:
            raise ValueError("the image's bytes were not kept")
        yield from _pread_pieces(self._fd, self.size, piece)

    def reader(self) -> sqlite3.Connection | None:
        """One of the read-only connections ``create(readers=...)`` opened (each handed out once; None when
        there is none left): it reads what the image's connection has committed, the file mapped (pages
        read in place). A page mapped by two connections counts twice in the process's resident memory:
        the caller reads through the image's connection unmapped (``PRAGMA mmap_size = 0``) meanwhile.
        The caller closes it, and must before the image's connection writes again."""
        if not self._readers:
            return None
        reader = self._readers.pop(0)
        reader.execute("PRAGMA temp_store = MEMORY")
        reader.execute(f"PRAGMA mmap_size = {max(self.size, 1 << 20)}")
        return reader

    def database_pieces(self, conn: sqlite3.Connection, piece: int = 4 << 20):
        """The database as ``conn`` (this image's connection, ``create(writable=True)``) has made it, its
        changes committed, in order, ``piece`` bytes at a time: read from the RAM file (after
        ``connect(keep_source=True)``) as SQLite wrote it, the bytes ``serialize`` would give but for the
        header's counters of writes (offsets 24 and 92) and SQLite version (96); where the image is a
        buffer, ``conn.serialize()``."""
        if not self.mapped:
            yield from _slices(conn.serialize(), piece)
            return
        if self._fd is None:
            raise ValueError("the image's bytes were not kept")
        size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
        yield from _pread_pieces(self._fd, size, piece)

    def release(self) -> None:
        """Stop keeping the bytes for ``pieces`` (the connection, if any, keeps what it needs)."""
        if self._fd is not None and self._conn is None:
            os.close(self._fd)
            self._fd = None
        if self._conn is None:
            self._buffer = None

    def close(self) -> None:
        """Drop the image without connecting (an error on the way): its memory is freed at once."""
        for reader in self._readers:
            reader.close()
        self._readers = []
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._buffer = None


class RamFile:
    """A database being written, in an unnamed file on the RAM file system (the exporter builds there).

    Built in SQLite's ``:memory:``, a snapshot could only leave by ``serialize``, which copies it twice
    (SQLite's copy, then Python's bytes): three times the database at the peak. From a RAM file it is
    read straight from the file, in pieces (``pieces``) or at once (``read``). ``create`` returns None
    where there is no RAM file system; the caller then uses ``:memory:``.
    """

    READERS = 1  # second connections for other threads (the search index's numbers)
    TAKE_PIECE = 64 << 20  # bytes read (and then cut from the file) at a time by ``take``

    def __init__(self, fd: int, conn: sqlite3.Connection, readers: list[sqlite3.Connection] = ()):
        self._fd = fd
        self.conn = conn
        self._readers = list(readers)
        self._lent: list[sqlite3.Connection] = []

    @classmethod
    def create(cls) -> "RamFile | None":
        folder = ram_folder()
        if folder is None:
            return None
        path = folder / f"build-{secrets.token_hex(16)}.sqlite3"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) |
                         getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            return None
        conn, readers = None, []
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False)
            # Read-only connections for reading in other threads (``reader``): they can only be opened
            # while the file has a name (SQLite resolves /proc/self/fd links to the lost name).
            for _ in range(cls.READERS):
                readers.append(sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False))
            # The file SQLite opened must be the one this descriptor reads (nothing replaced the name).
            for opened in (conn, *readers):
                opened.execute("PRAGMA user_version")
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except (sqlite3.Error, OSError):
            same = False
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
        if not same:
            for opened in (conn, *readers):
                if opened is not None:
                    opened.close()
            os.close(fd)
            return None
        return cls(fd, conn, readers)

    def reader(self) -> sqlite3.Connection | None:
        """Another connection on the committed database, read-only, that another thread can read with
        while ``conn`` reads too (SQLite releases the GIL: the search index build reads the numbers on
        one, on the second core). Each is handed out once (None when there is none left); ``conn``
        leaves exclusive locking mode for them, and may write again only once they have finished their
        statements. Closed with the file."""
        if not self._readers:
            return None
        reader = self._readers.pop(0)
        self._lent.append(reader)
        self.conn.commit()
        self.conn.execute("PRAGMA locking_mode = NORMAL")
        self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # gives up the exclusive lock
        # Nothing a query sorts may spill into a temporary file on a disk. Not mapped (mmap_size 0): a page
        # mapped by two connections counts twice in the process's resident memory, although it is in RAM
        # once; read through a small page cache instead.
        reader.execute("PRAGMA temp_store = MEMORY")
        reader.execute("PRAGMA mmap_size = 0")
        return reader

    @staticmethod
    def _as_in_memory(head: bytes) -> bytes:
        """The header as SQLite's in-memory database writes it: the same database gives the same bytes
        wherever it was built. (A file's header counts its write transactions, and names the SQLite
        version, in three fields an in-memory database leaves at zero; they only matter to other
        connections sharing the file.)"""
        head = bytearray(head)
        for offset in (24, 92, 96):  # file change counter, version-valid-for, SQLite version number
            head[offset:offset + 4] = bytes(4)
        return bytes(head)

    def size(self) -> int:
        pages, page = (self.conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "page_size"))
        return pages * page

    def pieces(self, piece: int = 1 << 20):
        """The committed database, in order, in pieces of ``piece`` bytes (each a fresh bytes object)."""
        size, offset = self.size(), 0
        while offset < size:
            part = os.pread(self._fd, min(piece, size - offset), offset)
            if not part:
                raise OSError("the database file ended early")
            if offset == 0:
                part = self._as_in_memory(part[:100]) + part[100:]
            offset += len(part)
            yield part

    def read(self) -> bytearray:
        """The committed database in one buffer (one copy)."""
        size = self.size()
        data = bytearray(size)
        view, offset = memoryview(data), 0
        while offset < size:
            got = os.preadv(self._fd, [view[offset:offset + (64 << 20)]], offset)
            if not got:
                raise OSError("the database file ended early")
            offset += got
        head = min(size, 100)
        data[:head] = self._as_in_memory(bytes(data[:head])) if head == 100 else data[:head]
        return data

    def take(self) -> bytearray:
        """The committed database in one buffer, and the file closed.

        The connections are closed first (their map of the file goes), and the file is read from its end
        and cut short behind each piece read: its RAM is freed as the buffer fills, so the database is
        in memory once, not twice, at the end of the export's build (at a million listings, 500 MB)."""
        size = self.size()
        for conn in self._readers + self._lent + [self.conn]:
            conn.close()
        self._readers, self._lent = [], []
        data = bytearray(size)
        view, step = memoryview(data), self.TAKE_PIECE
        for start in reversed(range(0, size, step)):
            end, offset = min(start + step, size), start
            while offset < end:
                got = os.preadv(self._fd, [view[offset:end]], offset)
                if not got:
                    raise OSError("the database file ended early")
                offset += got
            os.ftruncate(self._fd, start)
        head = min(size, 100)
        data[:head] = self._as_in_memory(bytes(data[:head])) if head == 100 else data[:head]
        self.close()
        return data

    def close(self) -> None:
        for reader in self._readers + self._lent:
            reader.close()
        self._readers, self._lent = [], []
        self.conn.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class AttachedImage(_SpilledWrites):
    """A database written piece by piece (``write``), then read as schema ``name`` of an open connection.

    The exporter compares the snapshot it builds with the last one it published (exporter.changes): the
    older one is decrypted straight into an unnamed RAM file that the builder's connection has ATTACHed,
    so at a million listings it is in memory once, instead of as decrypted bytes plus SQLite's copy of
    them (``deserialize``). As for ``RamImage``, the file is named only for the instant SQLite attaches
    it (empty, before any plaintext is written) and the name is gone before the first write; where
    there is no RAM file system it is a buffer deserialized into an in-memory schema, as before.
    ``finish`` makes the schema readable; ``detach`` (always, also after an error) frees it.
    """

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        if not name.isidentifier():
            raise ValueError(f"not a schema name: {name!r}")
        self.conn, self.name, self.size = conn, name, 0
        self._in_file = 0
        self._fd: int | None = None
        self._buffer: bytearray | None = None
        self._attached = False

    @classmethod
    def attach(cls, conn: sqlite3.Connection, name: str) -> "AttachedImage":
        image = cls(conn, name)
        folder = ram_folder()
        if folder is not None:
            try:
                image._attach_ram_file(folder)
            except (OSError, sqlite3.Error):
                image.detach()
                image = cls(conn, name)
        if image._fd is None:
            image._buffer = bytearray()
        return image

    def _attach_ram_file(self, folder: Path) -> None:
        path = folder / f"previous-{secrets.token_hex(16)}.sqlite3"
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) |
                           getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            # An empty file is an empty database: SQLite reads it again at the first query after the writes.
            # Attached in normal locking mode: in exclusive mode (the builder's) SQLite would keep the lock
            # it took on the empty file and trust what it read then, never looking at the file again.
            main_mode = self.conn.execute("PRAGMA main.locking_mode").fetchone()[0]
            self.conn.execute("PRAGMA locking_mode = NORMAL")
            try:
                self.conn.execute(f"ATTACH ? AS {self.name}", (str(path),))
                self._attached = True
            finally:
                self.conn.execute(f"PRAGMA main.locking_mode = {main_mode}")
            same = os.stat(path).st_ino == os.fstat(self._fd).st_ino
        finally:
            os.unlink(path)
        if not same:  # the name was replaced between our open and SQLite's: attach nothing of it
            raise OSError("the RAM file was replaced")

    def _drop_file(self) -> None:
        self.detach()

    def finish(self) -> None:
        """Everything is written: the schema can be queried."""
        if self._buffer is not None:
            self.conn.execute(f"ATTACH ':memory:' AS {self.name}")
            self._attached = True
            try:
                self.conn.deserialize(self._buffer, name=self.name)
            finally:
                self._buffer = None
            return
        os.close(self._fd)  # SQLite keeps its own descriptor of the file
        self._fd = None
        # Map all of it: pages are read in place instead of copied into SQLite's page cache.
        self.conn.execute(f"PRAGMA {self.name}.mmap_size = {max(self.size, 1 << 20)}")

    def detach(self) -> None:
        """Drop the schema and its memory (the kernel frees the RAM file with SQLite's descriptor)."""
        if self._attached:
            self._attached = False
            self.conn.commit()  # an open transaction would keep the schema from being detached
            self.conn.execute(f"DETACH {self.name}")
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._buffer = None
