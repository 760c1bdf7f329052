"""Crash-safe file writes shared by the desktop store and the exporter's folder destinations.

A reader must only ever see no file or a whole file: write a temporary file in the same folder,
fsync it, rename it over the target, then fsync the folder so the rename itself survives power loss.
Temporary files start with ``.tmp-`` so a later start can find and delete what a crash left behind —
but only what is provably abandoned: the writer holds an exclusive lock on its temporary file until it
has its final name, and a cleaner removes a temporary file only while holding that lock itself (on a
system without locks: only when it is older than ``ABANDONED_AFTER``). Another process's half-written
file (an install running while the window or a search opens the store) is never deleted.

Reading files that someone else put in a folder (an inbox) goes through ``open_plain``: regular files
only, opened without blocking (a FIFO would hang a reader), links not followed out of the folder.

This module must never import anything outside the standard library.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import time
from pathlib import Path

try:  # advisory locks: POSIX only; Windows refuses to delete a file another process holds open anyway
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from backup_operator.errors import StorageError

__all__ = ["TEMP_PREFIX", "ABANDONED_AFTER", "atomic_write", "fsync_dir", "clean_temp_files", "NotAPlainFile",
           "open_plain", "create_temp", "RENAME_WHILE_OPEN"]

TEMP_PREFIX = ".tmp-"
# Where there are no locks (Windows, some shares), a temporary file this old was left by a crash: its
# writer's every write refreshes its time, so only a writer stalled this long could lose its file.
ABANDONED_AFTER = 15 * 60


class NotAPlainFile(OSError):
    """The path is a FIFO, a device, a folder, a socket, or a link that leads out of its folder."""


def open_plain(path: str | os.PathLike, *, within: str | os.PathLike | None = None) -> int:
    """Open ``path`` for reading and return the descriptor, only if it is a regular file.

    Never blocks (O_NONBLOCK: opening a FIFO with no writer would wait forever) and refuses anything but
    a regular file after ``fstat`` — so a FIFO, ``/dev/zero`` or a folder is never read. With ``within``
    (the folder the path was found in, e.g. an inbox), a symbolic link is followed only when it leads to
    a file inside that folder; the final open does not follow links, so one swapped in meanwhile fails.
    Raises ``NotAPlainFile`` (an OSError) with a plain reason, or the OSError of the open itself.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    target = path
    if within is not None:
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            folder = Path(os.path.realpath(within))
            if folder not in target.parents:
                raise NotAPlainFile(errno.EPERM, "a link that leads out of its folder", str(path))
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link made after the check above
            raise NotAPlainFile(errno.ELOOP, "a link that leads out of its folder", str(path)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = ("a folder" if stat.S_ISDIR(mode) else "a pipe (FIFO)" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise NotAPlainFile(errno.EINVAL, what, str(path))
    return fd


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable. Windows cannot open folders; NTFS journals renames."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# POSIX renames a file that is open (so a writer keeps its lock until the file has its final name);
# Windows cannot, and has no flock: there the age rule protects a temporary file instead.
RENAME_WHILE_OPEN = fcntl is not None


def create_temp(path: str | os.PathLike, mode: int = 0o600) -> tuple[Path, int]:
    """A new temporary file beside ``path``, open for writing and locked as being written (so that no
    store open removes it); rename it over ``path`` before closing it where ``RENAME_WHILE_OPEN``."""
    return _create_locked(Path(path), mode)


def _create_locked(path: Path, mode: int) -> tuple[Path, int]:
    """Create a new temporary file beside ``path`` and lock it; return its name and descriptor.

    The lock is what tells a cleaner the file is being written. A cleaner may have removed the file in
    the instant between its creation and the lock (it then looked abandoned): its link count is then 0,
    and a fresh name is taken.
    """
    for _ in range(8):
        tmp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{path.name}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) |
                     getattr(os, "O_CLOEXEC", 0), mode)
        if fcntl is None:
            return tmp, fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a cleaner holds it for an instant at most
        except OSError:
            return tmp, fd  # a file system without locks: the age rule alone protects the file
        if os.fstat(fd).st_nlink > 0:
            return tmp, fd
        os.close(fd)
    raise OSError(errno.EAGAIN, "temporary files keep disappearing", str(path.parent))


def atomic_write(path: str | os.PathLike, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The temporary file stays locked until it has its final name (POSIX), so a store opened meanwhile by
    another process (the window, a search) leaves it alone.
    """
    path = Path(path)
    tmp = path.with_name(f"{TEMP_PREFIX}-{path.name}")
    try:
        tmp, fd = _create_locked(path, mode)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            if fcntl is not None:
                os.replace(tmp, path)  # still locked: there is no moment when the name is unlocked
        finally:
            os.close(fd)
        if fcntl is None:
            os.replace(tmp, path)  # Windows cannot rename a file that is open
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(f"The disk holding {path.parent} is full; {path.name} was not written and "
                               "the previous copy is still in use. Free some space.") from exc
        raise StorageError(f"Could not write {path} ({exc.strerror or exc}); the previous copy is still in "
                           "use. Check the folder's permissions and free space.") from exc
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        # The new file is already in place; only its survival of a power cut is in doubt.
        why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        raise StorageError(f"{path.name} was written in {path.parent}, but the disk did not confirm it ({why}); "
                           "it may be lost if the power fails now. Free some space or check the disk.") from exc


def _remove_if_abandoned(path: Path, now: float, older_than: float) -> bool:
    """Remove ``path`` if no writer holds its lock (POSIX) or, where there are no locks, if it is old.

    The check and the removal happen while this process holds the lock itself, so a writer can never
    take it in between; a writer that created the file just before and finds it gone takes a new one.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) |
                     getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        if fcntl is None:
            if now - info.st_mtime < older_than:
                return False
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return False  # its writer is still at work
                if now - info.st_mtime < older_than:
                    return False  # no locks on this file system: only age proves it abandoned
            current = os.stat(path, follow_symlinks=False)
            if (current.st_dev, current.st_ino) != (info.st_dev, info.st_ino):
                return False  # renamed or replaced meanwhile: not ours to judge
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def clean_temp_files(folder: Path, *, older_than: float = ABANDONED_AFTER) -> list[Path]:
    """Delete what an interrupted atomic_write left in ``folder``; return what was removed.

    Only provably abandoned files go: on POSIX, those no writer holds locked (a writer keeps its lock
    until the rename); without locks (Windows, some shares), those older than ``older_than`` seconds.
    A file another process is writing right now is left alone.
    """
    removed = []
    now = time.time()
    if folder.is_dir():
        for leftover in folder.glob(f"{TEMP_PREFIX}*"):
            if _remove_if_abandoned(leftover, now, older_than):
                removed.append(leftover)
    return removed
