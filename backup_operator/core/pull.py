"""Pulling from an http(s) inbox: read the signed manifest, fetch the deltas or the full snapshot, install.

One sync of an http(s) inbox (a folder published by the exporter on a web server, docs/DESIGN.md §9):

1. ``GET manifest.bomanifest`` with ``If-None-Match``/``If-Modified-Since``: an unchanged interval costs
   one small request and a 304. The manifest's signature is checked before anything in it is used, and
   its version against the high-water mark (an older one is refused as an older snapshot would be).
2. If the manifest offers deltas from the installed version to its own, and they weigh less than half
   the full snapshot (counting the deltas already installed since the last full one), they are fetched
   and installed (``core/chain.py``): each file must match the size and SHA-256 the manifest gives,
   then verify as a delta, then rebuild exactly the content its signed header names.
3. Otherwise — or when any delta fails — the full snapshot is fetched and installed as from a folder.
4. Optionally, a receipt is PUT to the inbox's receipts URL (WebDAV, as nginx's dav module or IIS do).

Partial downloads are kept under the desktop home's ``downloads/`` (ciphertext only) and resumed.

This module must never install anything the store has not verified, and never import Qt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from backup_operator.core.fetch import FetchSettings, HttpClient, cache_folder, join
from backup_operator.core.store import SnapshotStore, SyncReport, receipt_bytes, receipt_name
from backup_operator.errors import BackupOperatorError, DownloadFailed, RollbackRefused, SnapshotError, TooLarge
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import envelope
from backup_operator.snapshot import format as F
from backup_operator.snapshot.manifest import Manifest, verify_manifest

__all__ = ["HttpInbox", "PullReport", "pull", "DELTA_SHARE_LIMIT", "MAX_CHAIN"]

DELTA_SHARE_LIMIT = 0.5  # deltas (installed since the last full + to fetch) must weigh under this share of a full
MAX_CHAIN = 2000  # delta files after one full snapshot, at most (each open applies them all)
_STATE = "state.json"


@dataclass(frozen=True)
class HttpInbox:
    """An http(s) inbox as configured: its address, where receipts go (if anywhere), the CA to trust."""

    url: str
    receipts_url: str | None = None
    ca_file: str | None = None


@dataclass
class PullReport(SyncReport):
    via: str = ""  # "unchanged", "up to date", "deltas", "full"
    requests: int = 0
    bytes_downloaded: int = 0
    unreachable: str = ""  # why the inbox could not be read (an outage is not an error)
    receipt_problem: str = ""


def _load_state(folder: Path) -> dict:
    try:
        return json.loads((folder / _STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _manifest(client: HttpClient, inbox: HttpInbox, folder: Path, store: SnapshotStore,
              report: PullReport) -> tuple[Manifest, bytes, dict]:
    state = _load_state(folder)
    cached = folder / F.MANIFEST_NAME
    have_cached = cached.is_file()
    response = client.get(join(inbox.url, F.MANIFEST_NAME), cap=F.MAX_MANIFEST_BYTES,
                          etag=state.get("etag") if have_cached else None,
                          last_modified=state.get("last_modified") if have_cached else None)
    if response.status == 304:
        report.via = "unchanged"
        data = envelope.read_capped(cached, F.MAX_MANIFEST_BYTES, within=folder)
    else:
        data = response.body or b""
        state = {"etag": response.etag, "last_modified": response.last_modified}
    return verify_manifest(data, store.trusted), data, state


def pull(store: SnapshotStore, inbox: HttpInbox, *, cache_root: Path, desktop: str = "", public_key: str = "",
         settings: FetchSettings | None = None, client: HttpClient | None = None) -> PullReport:
    """Bring the store up to the inbox's manifest. Never raises for a refused file or an outage: the
    report says what happened (``problem``, ``refused``, ``unreachable``)."""
    settings = settings or FetchSettings(ca_file=inbox.ca_file)
    client = client or HttpClient(settings)
    report = PullReport()
    folder = cache_folder(cache_root, inbox.url)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    label = inbox.url
    mark = store.high_water()
    report.current = mark
    try:
        manifest, manifest_bytes, state = _manifest(client, inbox, folder, store, report)
        if manifest.snapshot_version < mark:
            raise RollbackRefused(f"The inbox's manifest offers version {manifest.snapshot_version}, older than "
                                  f"version {mark} already installed; an older snapshot is never installed over "
                                  "a newer one. Tell IT: the web server may serve an old copy.")
        if manifest.signer not in store.trusted:
            report.new_signers.append(manifest.signer)
        current = store.current_version()
        if manifest.snapshot_version <= max(mark, current):
            report.via = report.via or "up to date"
        else:
            _bring_up(store, client, inbox, folder, manifest, current, report)
        # Only a manifest that verified is remembered for the next conditional GET.
        if not (folder / F.MANIFEST_NAME).is_file() or report.via != "unchanged":
            atomic_write(folder / F.MANIFEST_NAME, manifest_bytes, mode=0o600)
            atomic_write(folder / _STATE, json.dumps(state).encode(), mode=0o600)
    except DownloadFailed as exc:
        if getattr(exc, "outage", False):
            report.unreachable = str(exc)  # an outage: keep what is installed, say so, try next time
        else:  # a wrong address, a refused request, an untrusted certificate: IT must act
            report.refused.insert(0, (label, exc))
            report.problem = report.problem or exc
    except SnapshotError as exc:
        report.refused.insert(0, (label, exc))
        report.problem = report.problem or exc
    report.current = max(report.current, store.high_water() if report.installed else 0)
    if report.installed:
        report.problem = None
    report.requests, report.bytes_downloaded = client.requests, client.bytes_received
    if inbox.receipts_url and report.current and desktop:
        _put_receipt(client, inbox, store, report, desktop, public_key)
    return report


def _bring_up(store: SnapshotStore, client: HttpClient, inbox: HttpInbox, folder: Path, manifest: Manifest,
              current: int, report: PullReport) -> None:
    if manifest.snapshot.size > store.size_cap:
        raise TooLarge(f"The inbox offers a snapshot of {manifest.snapshot.size:,} bytes, over this desktop's size "
                       "cap; it was not downloaded. If the directory really grew that much, IT can raise the cap.")
    steps = manifest.chain(current) if current else None
    if steps and any(step.size > store.size_cap for step in steps):
        steps = None
    if steps:
        installed_chain = _installed_chain_bytes(store)
        wanted = sum(step.size for step in steps)
        if installed_chain[1] + len(steps) > MAX_CHAIN or \
                installed_chain[0] + wanted > DELTA_SHARE_LIMIT * manifest.snapshot.size:
            steps = None  # time to end the chain: the full snapshot costs less to open, and not much more
    if steps:
        try:
            blobs = [client.download(join(inbox.url, step.path), size=step.size, sha256=step.sha256,
                                     part=folder / (step.path + ".part")) for step in steps]
            report.installed.append(store.install_deltas(blobs))
            report.via = "deltas"
            return
        except SnapshotError as exc:
            # A broken chain, a damaged or refused delta: the full snapshot is the fallback.
            report.refused.append((join(inbox.url, steps[-1].path), exc))
    full = manifest.snapshot
    blob = client.download(join(inbox.url, full.path), size=full.size, sha256=full.sha256,
                           part=folder / (full.path + ".part"))
    verified = store.install_bytes(blob)
    report.installed.append(verified.version)
    report.via = "full"


def _installed_chain_bytes(store: SnapshotStore) -> tuple[int, int]:
    """(bytes, files) of the deltas installed after the newest full snapshot."""
    from backup_operator.core.chain import delta_path, installed_deltas

    fulls = store.installed_versions()
    newest = fulls[0] if fulls else 0
    sizes = [delta_path(store, v).stat().st_size for v in installed_deltas(store) if v > newest]
    return sum(sizes), len(sizes)


def _put_receipt(client: HttpClient, inbox: HttpInbox, store: SnapshotStore, report: PullReport,
                 desktop: str, public_key: str) -> None:
    at: datetime | None = None
    try:
        at = store.installed_at(report.current)
    except OSError:
        pass
    url = join(inbox.receipts_url if inbox.receipts_url.endswith("/") else inbox.receipts_url + "/",
               receipt_name(desktop))
    try:
        client.put(url, receipt_bytes(desktop=desktop, public_key=public_key, version=report.current,
                                      installed_at=at))
    except BackupOperatorError as exc:
        report.receipt_problem = f"the receipt could not be sent to {url} ({exc})"

