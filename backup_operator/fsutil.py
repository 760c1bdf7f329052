"""Crash-safe file writes shared by the desktop store and the exporter's folder destinations.

A reader must only ever see no file or a whole file: write a temporary file in the same folder,
fsync it, rename it over the target, then fsync the folder so the rename itself survives power loss.
Temporary files start with ``.tmp-`` so a later start can find and delete what a crash left behind.

This module must never import anything outside the standard library.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from backup_operator.errors import StorageError

__all__ = ["TEMP_PREFIX", "atomic_write", "fsync_dir", "clean_temp_files"]

TEMP_PREFIX = ".tmp-"


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable. Windows cannot open folders; NTFS journals renames."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{path.name}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
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


def clean_temp_files(folder: Path) -> list[Path]:
    """Delete what an interrupted atomic_write left in ``folder``; return what was removed."""
    removed = []
    if folder.is_dir():
        for leftover in folder.glob(f"{TEMP_PREFIX}*"):
            try:
                leftover.unlink()
                removed.append(leftover)
            except OSError:
                pass
    return removed
