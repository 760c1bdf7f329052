"""Kit self-check: is this desktop (an evacuation laptop, a USB kit) ready to be grabbed and used offline?

Each check says what it found and, when it fails, what to do while there is still time to fix it.
The command line (``backup-operator kit-check``) and the Help menu show the same list.
The PDF check is handed in by the caller because writing a PDF needs Qt, which core must never import;
it writes a test page with no directory data, so the check leaves no plaintext behind even for a moment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backup_operator.config import Desktop
from backup_operator.core.freshness import CLOCK, freshness
from backup_operator.core.chain import installed_deltas, open_chain
from backup_operator.core.store import OpenSnapshot
from backup_operator.errors import (
    BackupOperatorError,
    BrokenChain,
    ClockBehind,
    NoSnapshot,
    StaleSnapshot,
)
from backup_operator.snapshot import envelope
from backup_operator.snapshot.keys import DesktopKey

__all__ = ["KitCheck", "run_kit_checks", "DEFAULT_MAX_AGE"]

DEFAULT_MAX_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class KitCheck:
    name: str
    ok: bool
    detail: str
    error: BackupOperatorError | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else (self.error.exit_code if self.error else 1)


def _age_words(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"{int(delta.total_seconds() // 60)} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def run_kit_checks(
    desktop: Desktop,
    *,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    write_pdf: Callable[[Path], None] | None = None,
) -> list[KitCheck]:
    now = now or datetime.now(timezone.utc)
    results: list[KitCheck] = []

    def fail(name: str, error: BackupOperatorError) -> None:
        results.append(KitCheck(name, False, str(error), error))

    key: DesktopKey | None = None
    try:
        key = desktop.key()
        where = "OS key store" if desktop.config.key_store == "keyring" else "passphrase-protected key file"
        results.append(KitCheck("key store", True, f"this kit's key opens from its {where}"))
    except BackupOperatorError as exc:
        fail("key store", exc)

    try:
        trusted = desktop.trusted()
        results.append(KitCheck("exporter key", True, f"{len(trusted)} exporter key(s) pinned"))
    except BackupOperatorError as exc:
        fail("exporter key", exc)
        trusted = []

    store = desktop.store(trusted=trusted)
    versions = store.installed_versions()
    if not versions:
        fail("snapshot present", NoSnapshot(
            "No snapshot is installed on this kit; connect it to the network and run 'backup-operator "
            "sync', or ask IT whether the kit is enrolled."))
        return results
    newest = versions[0]
    # What this kit would open is the newest full snapshot's delta chain tip; the check names that version
    # (the one the window, `status` and the receipts show), and the full snapshot it grows from.
    deltas = [v for v in installed_deltas(store) if v > newest]
    tip = max(deltas, default=newest)
    present = f"version {tip}"
    if deltas:
        present += f" (full snapshot {newest} and {len(deltas)} update(s) after it)"
    older = len(versions) - 1
    results.append(KitCheck("snapshot present", True, f"{present}; {older} older full snapshot(s)"))

    path = store.path_of(newest)
    opened: OpenSnapshot | None = None
    try:
        sealed = envelope.read_capped(path, store.size_cap)
        header = envelope.verify(sealed, store.trusted, revoked=store.revoked)
        results.append(KitCheck("signature", True, f"version {newest} is signed by the pinned exporter key"))
    except BackupOperatorError as exc:
        fail("signature", exc)
        header = None
    if header is not None and key is not None:
        try:
            # The chain is applied as opening does; a link that fails ends it there, and the check says so.
            version, conn, meta, tip_header, tip_path, broken = open_chain(store, newest, sealed, header)
            opened = OpenSnapshot(version, tip_path, conn, meta, tip_header, broken)
            results.append(KitCheck("decrypts", True, f"this kit's key opens version {version}"))
            if broken:
                bad, exc = broken[0]
                fail("updates", BrokenChain(
                    f"An installed update does not apply ({bad.name}: {exc}), so this kit shows version "
                    f"{version}, not {tip}; connect it to the network and run 'backup-operator sync'."))
        except BackupOperatorError as exc:
            fail("decrypts", exc)
    elif header is not None:
        results.append(KitCheck("decrypts", False, "cannot be tried without this kit's key (see 'key store')"))

    if opened is not None:
        meta = opened.meta
        age = now - meta.created_at
        if freshness(meta, opened.version, now).level == CLOCK:
            # Every "on call now" on this kit would be worked out from a wrong clock: not ready.
            fail("clock", ClockBehind(
                f"This computer's clock ({now:%Y-%m-%d %H:%M} UTC) is behind the time the newest data was made "
                f"({meta.created_at:%Y-%m-%d %H:%M} UTC), so on-call answers would be wrong; set the clock "
                "(or turn on automatic time) and run the kit check again."))
        else:
            results.append(KitCheck("clock", True, "this computer's clock is not behind the data's time"))
        if now > meta.expires_at:
            fail("data age", StaleSnapshot(
                f"The data expired at {meta.expires_at:%Y-%m-%d %H:%M} UTC ({_age_words(age)} old); connect "
                "the kit to the network and run 'backup-operator sync'."))
        elif age > max_age:
            fail("data age", StaleSnapshot(
                f"The data is {_age_words(age)} old, more than the {_age_words(max_age)} a kit may be; connect "
                "the kit to the network and run 'backup-operator sync'."))
        else:
            results.append(KitCheck("data age", True, f"{_age_words(age)} old (limit {_age_words(max_age)})"))

        if write_pdf is None:
            results.append(KitCheck("PDF", False, "the window is not installed here (a command-line-only install), "
                                    "so no crash sheet can be printed; install it with pip install "
                                    "'backup-operator[gui]', or use the full installer"))
        else:
            target = desktop.home / ".kit-check.pdf"
            try:
                write_pdf(target)
                size = target.stat().st_size
                if size < 100:
                    raise OSError("the PDF came out empty")
                results.append(KitCheck("PDF", True, f"a PDF can be written here ({size:,} bytes)"))
            except (OSError, BackupOperatorError, RuntimeError) as exc:
                results.append(KitCheck("PDF", False, f"no PDF could be written ({exc}); check free "
                                        "space in the kit's folder"))
            finally:
                try:
                    os.unlink(target)
                except OSError:
                    pass
        opened.close()
    return results
