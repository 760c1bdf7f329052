"""Delta chains in the desktop's store: install verified deltas, and open a full snapshot plus its chain.

The store keeps the last full snapshot and, after it, the delta files that lead to the newest version
(``<version:012d>.bodelta``), each still sealed and signed exactly as received: the desktop cannot sign,
so it never writes a combined file. Opening decrypts the full snapshot and the deltas into memory and
applies the chain there (``core.delta``). A new full snapshot ends the chain (the store prunes deltas
at or below it).

A delta is accepted only when, applied to what is installed, it gives exactly the content its signed
header names (``content``, the content hash); otherwise it is refused as a broken chain and the caller
falls back to the full snapshot. The same refusals as for a full file apply first: size cap,
signature by a pinned key, a version above the high-water mark.

This module must never write plaintext, never install a delta whose result it has not hashed, and
never import Qt.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backup_operator.core import delta as rows
from backup_operator.core.model import open_database, read_meta
from backup_operator.core.ramdb import RamImage
from backup_operator.errors import BrokenChain, CorruptSnapshot, RollbackRefused, SnapshotError
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import deltafile, envelope
from backup_operator.snapshot import format as F

__all__ = ["installed_deltas", "delta_path", "Link", "read_link", "chain_after", "materialise",
           "install_deltas", "prune_deltas"]

log = logging.getLogger(__name__)

_DELTA_RE = re.compile(r"^(\d{12,})" + re.escape(F.DELTA_SUFFIX) + "$")


def delta_path(store, version: int) -> Path:
    return store.folder / f"{version:012d}{F.DELTA_SUFFIX}"


def installed_deltas(store) -> list[int]:
    """Versions of the installed delta files, oldest first (by name; each is verified when read)."""
    found = []
    for path in store.folder.iterdir():
        match = _DELTA_RE.match(path.name)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


@dataclass(frozen=True)
class Link:
    """One verified delta: its header (signature checked) and sealed bytes."""

    path: Path | None
    header: envelope.Header
    sealed: bytes

    @property
    def version(self) -> int:
        return self.header.snapshot_version


def read_link(store, sealed: bytes, path: Path | None = None) -> Link:
    header = deltafile.verify_delta(sealed, store.trusted, store.revoked)
    if path is not None and header.snapshot_version != int(path.name.split(".")[0]):
        raise CorruptSnapshot(f"{path.name} holds version {header.snapshot_version}, not what its name says.")
    return Link(path, header, sealed)


def chain_after(store, full_version: int) -> tuple[list[Link], list[tuple[Path, SnapshotError]]]:
    """The installed deltas that continue ``full_version`` one after another, and any that failed."""
    links: list[Link] = []
    problems: list[tuple[Path, SnapshotError]] = []
    at = full_version
    for version in installed_deltas(store):
        if version <= at:
            continue
        path = delta_path(store, version)
        try:
            link = read_link(store, envelope.read_capped(path, store.size_cap), path)
        except SnapshotError as exc:
            problems.append((path, exc))
            break
        if link.header.base_version != at:
            problems.append((path, BrokenChain(f"{path.name} applies to version {link.header.base_version}, "
                                               f"not to the installed version {at}.")))
            break
        links.append(link)
        at = link.version
    return links, problems


def _decoded(store, link: Link, group_key: tuple[str, bytes] | None) -> rows.RowDelta:
    return rows.decode_delta(deltafile.decrypt_delta(link.sealed, link.header, store._key(), group_key=group_key))


def materialise(store, database: bytes | Callable[[], bytes], links: list[Link], *, check_content: bool = True,
                with_index: bool = False) -> bytes:
    """The database ``links`` make of ``database``, checked against the last link's content hash.

    The deltas are opened with the group key the full snapshot ``database`` carries (meta ``delta_key``).
    ``check_content=False`` is for opening a chain whose every link was hashed when it was installed
    (re-hashing a million listings at every open would cost seconds; the signatures are checked again).
    ``with_index`` stores the rebuilt search index in the result (applying a delta empties it), so that
    what is kept in the open copy opens without building the index again.

    ``database`` may be a callable that returns it: then its bytes are dropped as soon as SQLite holds its
    own copy, instead of being kept by the caller while the index is built and the result serialised (at
    a million listings, 553 MB less at the peak).
    """
    if not links:
        return database() if callable(database) else database
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("PRAGMA temp_store = MEMORY")  # renumbering must not spill rows to a temp file
        conn.deserialize(database() if callable(database) else database)
        database = None  # noqa: F841 - SQLite holds its own copy now
        _apply_links(store, conn, links, check_content=check_content, with_index=with_index)
        return conn.serialize()
    except sqlite3.Error as exc:
        raise BrokenChain(f"The deltas up to version {links[-1].version} cannot be applied ({exc}).") from exc
    finally:
        conn.close()


def _apply_links(store, conn: sqlite3.Connection, links: list[Link], *, check_content: bool,
                 with_index: bool, reader: Callable[[], sqlite3.Connection | None] | None = None) -> None:
    """Apply ``links`` to the full snapshot open (writable) on ``conn``, check the result's content hash
    against the last link's signed one, and store its search index (``materialise`` says more).

    ``reader``: gives a second, read-only connection on the same database (or None): the content hash
    is then worked out on it, in a thread, while the index is updated on ``conn`` (SQLite and hashlib
    release the GIL: the two overlap on two cores). Nothing is written until the hash has matched."""
    found = conn.execute("SELECT value FROM meta WHERE key = ?", (F.META_DELTA_KEY,)).fetchone()
    group_key = deltafile.parse_group_key(found[0] if found else None)
    decoded = [_decoded(store, link, group_key) for link in links]
    update = None
    if with_index:
        from backup_operator.core.search.update import IndexUpdate  # numpy: only when it is needed

        try:
            update = IndexUpdate.prepare(conn, decoded)
        except Exception:  # as in _updated_index: build instead
            log.exception("reading the stored search index to update it failed; it will be built")
    rows.apply_chain(conn, decoded, renumbered=update.renumbered if update is not None else None)
    second = reader() if (reader is not None and check_content and update is not None) else None
    hashing = _HashInThread(second) if second is not None else None
    index = None
    try:
        if with_index and update is not None:
            index = _updated_index(conn, update)
    finally:
        digest = hashing.result() if hashing is not None else None  # waits for it (raises what it raised)
    if check_content:
        if digest is None:
            digest = rows.content_hash(conn)
        if digest != links[-1].header.content:
            raise BrokenChain(f"Applying the deltas up to version {links[-1].version} does not give the content "
                              "its signed header names; the full snapshot will be used instead.")
    if with_index:
        from backup_operator.core.search.index import store_index_in, write_index_in

        if index is None:
            store_index_in(conn)
        else:
            write_index_in(conn, index)


class _HashInThread:
    """``content_hash`` of the database open on ``reader``, worked out in a thread of its own; ``result``
    waits for it (at most ``TIMEOUT_S``), closes ``reader``, and returns the hash or raises its error."""

    TIMEOUT_S = 3600.0  # far beyond any directory (3 s at a million listings): a hung thread, not a slow one

    def __init__(self, reader: sqlite3.Connection):
        self._reader = reader
        self._box: dict[str, object] = {}
        self._thread = threading.Thread(target=self._run, name="delta-content-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._box["digest"] = rows.content_hash(self._reader)
        except BaseException as exc:  # re-raised by result(), in the installing thread
            self._box["error"] = exc

    def result(self) -> bytes:
        self._thread.join(self.TIMEOUT_S)
        if self._thread.is_alive():
            raise BrokenChain("Checking the content of the deltas' result did not finish; the full snapshot "
                              "will be used instead.")
        self._reader.close()  # before the index is written: a reader's open statement would block it
        if "error" in self._box:
            raise self._box["error"]  # type: ignore[misc]
        return self._box["digest"]  # type: ignore[return-value]


def _updated_index(conn: sqlite3.Connection, update):
    """The base's stored index updated for the rows the chain touched (search/update.py; a fraction of a
    full build at a million listings), or None: then it is built."""
    try:
        return update.finish(conn)
    except Exception:  # a fault in the update must not refuse a delta whose rows checked out: build
        log.exception("updating the stored search index failed; building it")
        return None
    finally:
        update.old = None  # the base's index (150 MB at a million listings) goes before the new one is written


def open_chain(store, full_version: int, full_sealed: bytes, full_header: envelope.Header):
    """(version, connection, meta, header, path, skipped) for a full snapshot and the longest good chain.

    A delta that fails (damaged at rest, refused) ends the chain where it stands: the version before
    it opens, and the failure is reported in ``skipped``.
    """
    database = envelope.decrypt(full_sealed, full_header, store._key())
    links, skipped = chain_after(store, full_version)
    whole = True
    while links:
        try:
            # The whole chain's result was hashed when its newest delta was installed; a shorter chain
            # (after a failure) is hashed now, since its tip may never have been checked on its own.
            merged = materialise(store, database, links, check_content=not whole)
            conn = open_database(merged)
            meta = read_meta(conn)
            if meta.snapshot_version != links[-1].version:
                conn.close()
                raise BrokenChain(f"The deltas up to version {links[-1].version} give a database that says "
                                  f"version {meta.snapshot_version}.")
            return links[-1].version, conn, meta, links[-1].header, links[-1].path, skipped
        except SnapshotError as exc:
            skipped.insert(0, (links[-1].path, exc))
            links, whole = links[:-1], False
    conn = open_database(database)
    return full_version, conn, read_meta(conn), full_header, store.path_of(full_version), skipped


def install_deltas(store, sealed_deltas: list[bytes]) -> int:
    """Verify deltas that continue what is installed, apply them in memory, check, then install them.

    Returns the new version. Raises (and installs nothing) when any check fails: size cap, signature,
    a version not above the high-water mark, a base that is not the installed version, or a result
    whose content hash is not the signed one.
    """
    if not sealed_deltas:
        raise ValueError("no deltas")
    for sealed in sealed_deltas:
        if len(sealed) > store.size_cap:
            from backup_operator.errors import TooLarge
            raise TooLarge("A delta is larger than this desktop's size cap; it was not installed.")
    new_links = [read_link(store, sealed) for sealed in sealed_deltas]
    mark = store.high_water()
    tip = new_links[-1].version
    if tip <= mark:
        raise RollbackRefused(f"This delta leads to version {tip}, not newer than version {mark} already "
                              "installed; an older snapshot is never installed over a newer one.")
    full_version, full_sealed, full_header, links = store.newest_full_and_chain()
    at = links[-1].version if links else full_version
    for link in new_links:
        if link.header.base_version != at:
            raise BrokenChain(f"The delta to version {link.version} applies to version {link.header.base_version}, "
                              f"but this desktop has version {at}; the full snapshot is needed.")
        at = link.version
    # The full snapshot is decrypted straight into a RAM file (core/ramdb) and the chain applied there,
    # in place: the database is never held as bytes besides SQLite's copy, and the open copy is sealed
    # from the file's pages (at a million listings, two copies of 550 MB fewer than deserialize and
    # serialize made).
    image = RamImage.create(writable=True, readers=1)
    conn = None
    try:
        envelope.decrypt_to(full_sealed, full_header, store._key(), image.write)
        full_sealed = None  # noqa: F841 - the sealed full snapshot is not needed again (185 MB at a million)
        conn = image.connect(keep_source=image.mapped)
        try:
            # No rollback journal (it would be a file of its own): a chain that fails leaves this copy
            # half changed, and it is dropped. Nothing may spill into a temp file either.
            conn.execute("PRAGMA journal_mode = OFF")
            # The content hash reads every page on a second connection, which maps the file (ramdb
            # RamImage.reader); this one reads the few it needs through its page cache, so that no page
            # is mapped twice.
            conn.execute("PRAGMA mmap_size = 0")
            conn.execute("PRAGMA temp_store = MEMORY")
            _apply_links(store, conn, links + new_links, check_content=True, with_index=True, reader=image.reader)
            # quick_check and meta, as open_database checks a database this desktop assembled itself
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise BrokenChain(f"The deltas to version {tip} give a database that fails its integrity check "
                                  f"({' '.join(verdict.split())[:160]}); the full snapshot is needed.")
            if read_meta(conn).snapshot_version != tip:
                raise BrokenChain(f"The deltas to version {tip} give a database that says another version.")
        except sqlite3.Error as exc:
            raise BrokenChain(f"The deltas up to version {tip} cannot be applied ({exc}).") from exc
        for link in new_links:
            atomic_write(delta_path(store, link.version), link.sealed, mode=0o600)
        # The deltas are in use now: a full disk at the mark is a note, not a failure (store.record_high_water).
        # The search index was made once, here: the open copy keeps it, so a start loads it instead.
        store.record_high_water(tip, meanwhile=lambda: store.write_open_copy(
            tip, new_links[-1].sealed, image.database_pieces(conn), kind="delta"))
    finally:
        if conn is not None:
            conn.close()
        image.close()
    return tip


def prune_deltas(store, newest_full: int) -> None:
    """A full snapshot ends the chain: deltas at or below it are no longer needed."""
    for version in installed_deltas(store):
        if version <= newest_full:
            try:
                delta_path(store, version).unlink()
            except OSError:
                pass
