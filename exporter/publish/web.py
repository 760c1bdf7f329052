"""A web folder destination: the folder a web server (IIS, nginx, a CDN origin) serves to http(s) inboxes.

Written once per export, whatever the number of desktops (docs/DESIGN.md §9)::

    snapshot-<version>.bosnap                     the full snapshot (the last K are kept)
    delta-<base>-<version>.bodelta                one delta per export, a chain of the last ``deltas``
    manifest.bomanifest                           signed: the current snapshot and the chain; written LAST
    receipts/<desktop>.json                       PUT by desktops (WebDAV), read back like a folder's

Order matters: every file the manifest names is in place (atomically: temp, fsync, rename) before the
manifest that names it, and nothing the current manifest names is ever deleted, so a desktop reading
at any moment finds a consistent set. A delta chain that does not reach the new version is left out of
the manifest (desktops then take the full snapshot).

This module must never write a manifest that names a file which is not completely written.
"""

from __future__ import annotations

import os
import re

from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import format as F
from backup_operator.snapshot.manifest import describe_delta, describe_file, manifest_for

from exporter.config import DestinationConfig
from exporter.publish.folder import FolderDestination

__all__ = ["WebDestination"]

_DELTA_RE = re.compile(r"^delta-(\d{12})-(\d{12})" + re.escape(F.DELTA_SUFFIX) + "$")


class WebDestination(FolderDestination):
    def __init__(self, dest: DestinationConfig, publication):
        super().__init__(dest)
        self.publication = publication  # None when only reading (versions, receipts)
        self.keep_deltas = dest.keep_deltas if dest.keep_deltas is not None else \
            (publication.keep_deltas if publication is not None else 96)

    def _deltas(self) -> dict[int, tuple[int, str]]:
        """Deltas in the folder: version -> (base version, file name)."""
        found = {}
        for entry in os.scandir(self.folder):
            match = _DELTA_RE.match(entry.name)
            if match and entry.is_file(follow_symlinks=False):
                found[int(match.group(2))] = (int(match.group(1)), entry.name)
        return found

    def write_snapshot(self, filename: str, data: bytes) -> None:
        publication = self.publication
        if publication is None:
            from backup_operator.errors import ConfigError
            raise ConfigError(f"{self.label}: a web folder is written by an export run (it signs the manifest).")
        super().write_snapshot(filename, data)
        for made in publication.deltas:
            atomic_write(self.folder / made.filename, made.data, mode=0o644)
        # The chain that ends at this version, newest first, at most keep_deltas long.
        deltas = self._deltas()
        chain, at = [], publication.version
        while at in deltas and len(chain) < self.keep_deltas:
            base, name = deltas[at]
            chain.append((name, base, at))
            at = base
        described = []
        for name, base, version in chain:
            described.append(describe_delta(name, (self.folder / name).read_bytes(), base, version))
        manifest = manifest_for(describe_file(filename, data), publication.version, publication.created_at,
                                publication.signer, described, publication.endorsements)
        atomic_write(self.folder / F.MANIFEST_NAME, manifest, mode=0o644)
        # Deltas the manifest no longer names are of no use to anyone.
        kept = {name for name, _, _ in chain}
        for version, (_, name) in deltas.items():
            if name not in kept:
                try:
                    os.unlink(self.folder / name)
                except FileNotFoundError:
                    pass

    def prune(self, keep: int, protect: str) -> list[str]:
        # The folder's rule, but the snapshot the manifest names is never removed.
        return super().prune(max(1, keep), protect=protect)

