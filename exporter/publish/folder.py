"""A folder destination: a local path, a mounted share or a Windows UNC path (\\\\server\\share\\inbox).

Snapshots are written with ``backup_operator.fsutil.atomic_write`` (temp file, fsync, rename, fsync
folder), so a desktop reading the inbox sees the old file or the new one, never a part. Receipts are
read from the inbox's ``receipts/`` folder, where each desktop writes ``<desktop name>.json``.

This module must never create the inbox folder itself: a missing folder usually means an unmounted
share, and writing into an empty mount point would hide that from IT.
"""

from __future__ import annotations

import os
from pathlib import Path

from backup_operator.fsutil import atomic_write, clean_temp_files

from exporter.config import DestinationConfig
from backup_operator.errors import PublishFailed
from exporter.publish import MAX_RECEIPT_BYTES, Receipt, parse_receipt, prunable, read_plain_file, version_of

__all__ = ["FolderDestination"]


class FolderDestination:
    def __init__(self, dest: DestinationConfig):
        self.label = dest.label
        self.folder = Path(dest.path)
        if not self.folder.is_dir():
            raise PublishFailed(f"The inbox folder {self.folder} does not exist or is not reachable "
                                "(is the share mounted?); nothing was written there.")

    def write_snapshot(self, filename: str, data: bytes) -> None:
        clean_temp_files(self.folder)
        # 0644: desktops often read the inbox as another account; the file is sealed anyway.
        atomic_write(self.folder / filename, data, mode=0o644)

    def snapshot_versions(self) -> list[int]:
        return sorted(v for v in (version_of(p.name) for p in self.folder.iterdir()) if v is not None)

    def read_snapshot(self, version: int, cap: int) -> bytes | None:
        """A plain file named for ``version`` (any width), at most ``cap`` bytes, never through a link."""
        for path in self.folder.iterdir():
            if version_of(path.name) == version:
                data = read_plain_file(path, cap)
                if data is not None:
                    return data
        return None

    def prune(self, keep: int, protect: str) -> list[str]:
        removed = []
        for name in prunable([p.name for p in self.folder.iterdir()], keep, protect):
            try:
                os.unlink(self.folder / name)
                removed.append(name)
            except FileNotFoundError:
                pass
        return removed

    def read_receipts(self) -> list[Receipt]:
        """Every receipt in ``receipts/``: plain files only, never through a link, each one bounded."""
        folder = self.folder / "receipts"
        if folder.is_symlink() or not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json"))[:100_000]:
            data = read_plain_file(path, MAX_RECEIPT_BYTES)
            receipt = parse_receipt(data, self.label) if data is not None else None
            if receipt is not None:
                out.append(receipt)
        return out

    def close(self) -> None:
        pass
