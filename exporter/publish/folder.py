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
from exporter.publish import Receipt, parse_receipt, snapshot_filename, version_of

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

    def prune(self, keep: int, protect: str) -> list[str]:
        versions = self.snapshot_versions()
        doomed = [snapshot_filename(v) for v in versions[:-keep]] if len(versions) > keep else []
        removed = []
        for name in doomed:
            if name == protect:
                continue
            try:
                os.unlink(self.folder / name)
                removed.append(name)
            except FileNotFoundError:
                pass
        return removed

    def read_receipts(self) -> list[Receipt]:
        folder = self.folder / "receipts"
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                receipt = parse_receipt(path.read_bytes()[:65536], self.label)
            except OSError:
                continue
            if receipt is not None:
                out.append(receipt)
        return out

    def close(self) -> None:
        pass
