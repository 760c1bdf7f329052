"""Shared fixtures: one template directory, fixed keys, and throwaway desktop homes.

The template database is built once per session (per snapshot version, since the version is inside
the database) and every test seals and installs its own copies, the way Anki's tests copy a template
collection. Keys come from fixed seeds so that a failure can be reproduced byte for byte.

``desk`` is a whole desktop home in ``tmp_path``: enrolled with a passphrase-protected key file (cheap
scrypt cost, so tests stay fast), the signer pinned, one inbox, and ``BACKUP_OPERATOR_HOME`` pointing
at it. ``make_desk`` makes more of them (other desktops, revoked desktops).

Measured figures that the lead quotes (mutations refused, bytes read, ...) go through the ``figures``
fixture and are printed at the end of the run, under "Backup Operator figures".
"""

from __future__ import annotations

import os

# Qt tests never need a display; set before any test module can import PySide6.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import errno
import hashlib
import io
import json
import shutil
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

import pytest

from backup_operator import config as desktop_config
from backup_operator.config import Desktop
from backup_operator.core.model import build_database
from backup_operator.core.store import SnapshotStore
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot import envelope, keys
from backup_operator.snapshot import format as F

# Names nobody has: if one of them is found in a file on disk, plaintext leaked.
CANARIES = ("Zyxwquorth Canarysson", "Vexmilda Quorrathen", "Canarywing Xylotherapy")
PASSPHRASE = "kit passphrase for tests"
SNAPSHOT_CHUNK = 1024  # the smallest chunk the format allows, so a small snapshot has many chunks
CREATED = datetime(2026, 3, 7, 11, 0, tzinfo=timezone.utc)
KEYFILE_SCRYPT_N = 2**12  # the real default (2**17) costs ~0.3 s per key file


def fixed_bytes(label: str) -> bytes:
    """32 reproducible bytes for a fixed test key."""
    return hashlib.sha256(b"backup-operator tests: " + label.encode()).digest()


# --- the template directory -------------------------------------------------------------------


def template_records() -> dict:
    """A small directory: people (three of them canaries), a department, contacts, a schedule, shifts."""
    listings = [
        {"id": "p-canary-1", "kind": "person", "display_name": CANARIES[0], "given_name": "Zyxwquorth",
         "family_name": "Canarysson", "title": "Attending cardiologist", "department": "Cardiology",
         "site": "Main", "building": "A", "floor": "3", "room": "301"},
        {"id": "p-canary-2", "kind": "person", "display_name": CANARIES[1], "given_name": "Vexmilda",
         "family_name": "Quorrathen", "title": "Cardiology fellow", "department": "Cardiology",
         "aliases": ["Dr Q"]},
        {"id": "s-canary-3", "kind": "service", "display_name": CANARIES[2], "department": "Physiotherapy",
         "keywords": "rehab; physio", "notes": "Mornings only"},
        {"id": "p-hart", "kind": "person", "display_name": "Amelia Hart", "given_name": "Amelia",
         "family_name": "Hart", "title": "Attending cardiologist", "department": "Cardiology"},
        {"id": "d-cardio", "kind": "department", "display_name": "Cardiology", "department": "Cardiology",
         "site": "Main"},
        {"id": "l-er", "kind": "location", "display_name": "Emergency Department desk", "site": "Main"},
    ]
    contact_methods = [
        {"listing_id": "p-canary-1", "kind": "pager", "value": "4471", "label": "Pager", "rank": 1},
        {"listing_id": "p-canary-1", "kind": "mobile", "value": "608-555-0147", "rank": 2,
         "instructions": "Text only"},
        {"listing_id": "p-canary-2", "kind": "extension", "value": "4402", "rank": 1},
        {"listing_id": "s-canary-3", "kind": "phone", "value": "608-555-0199", "rank": 1},
        {"listing_id": "p-hart", "kind": "email", "value": "amelia.hart@example.org", "rank": 1},
        {"listing_id": "d-cardio", "kind": "extension", "value": "4400", "rank": 1},
        {"listing_id": "l-er", "kind": "overhead", "value": "Code ER", "rank": 1},
    ]
    schedules = [
        {"id": "cardio-attending", "name": "Cardiology — attending", "department": "Cardiology",
         "site": "Main", "timezone": "America/New_York", "escalation": "Page tier 1, then tier 2",
         "fallback_listing_id": "d-cardio"},
    ]
    shifts = [
        {"schedule_id": "cardio-attending", "tier": 1, "role": "Attending", "listing_id": "p-canary-1",
         "start_utc": "2026-03-07T11:00:00Z", "end_utc": "2026-03-07T23:00:00Z"},
        {"schedule_id": "cardio-attending", "tier": 2, "role": "Backup", "listing_id": "p-hart",
         "start_utc": "2026-03-07T11:00:00Z", "end_utc": "2026-03-08T11:00:00Z"},
        {"schedule_id": "cardio-attending", "tier": 1, "role": "Attending", "listing_id": "p-canary-2",
         "start_utc": "2026-03-07T23:00:00Z", "end_utc": "2026-03-08T11:00:00Z"},
    ]
    return {"listings": listings, "contact_methods": contact_methods, "schedules": schedules,
            "shifts": shifts}


def created_at(version: int) -> datetime:
    return CREATED + timedelta(hours=version % 100_000)


@cache
def database_for(version: int) -> bytes:
    """The template database as snapshot ``version`` (built once per version per session)."""
    return build_database(**template_records(), snapshot_version=version, created_at=created_at(version),
                          expires_at=created_at(version) + timedelta(days=3), expected_interval_s=4 * 3600,
                          source="Backup Operator test directory")


@pytest.fixture(scope="session")
def template_database() -> bytes:
    return database_for(1)


def split_snapshot(blob: bytes) -> tuple[dict, bytes, bytes]:
    """(header as a dict, payload, signature) of a well-formed sealed file."""
    magic_len = len(F.MAGIC) + F.HEADER_LENGTH_BYTES
    (header_len,) = struct.unpack(">I", blob[len(F.MAGIC):magic_len])
    header = json.loads(blob[magic_len:magic_len + header_len])
    return header, blob[magic_len + header_len:-F.SIGNATURE_SIZE], blob[-F.SIGNATURE_SIZE:]


def header_prefix(header: dict | bytes) -> bytes:
    """magic || length || header; the magic line of format 1 for a header that says format 1."""
    raw = header if isinstance(header, bytes) else json.dumps(
        header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    magic = F.MAGIC_V1 if isinstance(header, dict) and header.get("format") == 1 else F.MAGIC
    return magic + struct.pack(">I", len(raw)) + raw


def assemble_snapshot(header: dict | bytes, payload: bytes, *, sign_with: keys.SignerKey | None = None,
                      signature: bytes | None = None) -> bytes:
    """A sealed file from parts: re-signed by ``sign_with``, or carrying ``signature`` unchanged."""
    body = header_prefix(header) + payload
    if sign_with is not None:
        signature = sign_with.sign(F.SIGNATURE_CONTEXT + hashlib.sha512(body).digest())
    assert signature is not None
    return body + signature


# --- keys ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signer() -> keys.SignerKey:
    """The hospital's exporter key: every desktop pins its public half."""
    return keys.SignerKey.from_raw(fixed_bytes("signer"))


@pytest.fixture(scope="session")
def attacker() -> keys.SignerKey:
    return keys.SignerKey.from_raw(fixed_bytes("attacker signer"))


@pytest.fixture(scope="session")
def desktop_key() -> keys.DesktopKey:
    return keys.DesktopKey.from_raw(fixed_bytes("desktop A"))


@pytest.fixture(scope="session")
def other_desktop_keys() -> list[keys.DesktopKey]:
    return [keys.DesktopKey.from_raw(fixed_bytes(f"desktop {n}")) for n in "BCD"]


def seal_snapshot(version: int, *, signer: keys.SignerKey, recipients: Sequence[keys.DesktopPublicKey],
                  database: bytes | None = None, endorsements: Sequence[envelope.Endorsement] = (),
                  chunk_size: int = SNAPSHOT_CHUNK) -> bytes:
    return envelope.seal(database_for(version) if database is None else database,
                         snapshot_version=version, created_at=created_at(version),
                         expires_at=created_at(version) + timedelta(days=3), recipients=recipients,
                         signer=signer, endorsements=endorsements, chunk_size=chunk_size)


# --- desktop homes -----------------------------------------------------------------------------


@dataclass
class Desk:
    """One desktop's home in tmp_path, enrolled and trusting the exporter, with one inbox."""

    home: Path
    inbox: Path
    key: keys.DesktopKey
    signer: keys.SignerKey
    recipients: list[keys.DesktopPublicKey]
    stores: list[SnapshotStore] = field(default_factory=list)

    @property
    def desktop(self) -> Desktop:
        return Desktop(self.home)

    @property
    def snapshots(self) -> Path:
        return self.home / "snapshots"

    def store(self, *, size_cap: int | None = None, keep: int = 3,
              trusted: Sequence[keys.SignerPublicKey] | None = None) -> SnapshotStore:
        """A new SnapshotStore on this home's folder, as a fresh start of the program would make."""
        kwargs = {} if size_cap is None else {"size_cap": size_cap}
        store = SnapshotStore(self.snapshots, trusted=[self.signer.public] if trusted is None else trusted,
                              key=lambda: self.key, keep=keep, **kwargs)
        self.stores.append(store)
        return store

    def seal(self, version: int, *, signer: keys.SignerKey | None = None,
             recipients: Sequence[keys.DesktopPublicKey] | None = None, **kwargs) -> bytes:
        return seal_snapshot(version, signer=signer or self.signer,
                             recipients=self.recipients if recipients is None else recipients, **kwargs)

    def drop(self, version: int, name: str | None = None, **kwargs) -> Path:
        """Seal ``version`` and put it in the inbox, as the exporter would."""
        return self.put(self.seal(version, **kwargs), name or f"snapshot-{version:06d}.bosnap")

    def put(self, data: bytes, name: str) -> Path:
        path = self.inbox / name
        path.write_bytes(data)
        return path

    def clear_inbox(self) -> None:
        for path in self.inbox.glob("*.bosnap"):
            path.unlink()


def make_home(home: Path, key: keys.DesktopKey, signer_public: keys.SignerPublicKey, inbox: Path,
              name: str) -> None:
    """Enrol a home the way 'backup-operator enroll --key-file' would, only with a cheap scrypt cost."""
    home.mkdir(parents=True, exist_ok=True)
    inbox.mkdir(parents=True, exist_ok=True)
    atomic_write(home / desktop_config.KEY_FILE, keys.seal_key_file(key, PASSPHRASE, n=KEYFILE_SCRYPT_N))
    desktop = Desktop(home)
    desktop.config.name = name
    desktop.config.key_store = "file"
    desktop.config.public_key = key.public.to_text()
    desktop.config.trusted_signers = [signer_public.to_text()]
    desktop.config.inboxes = [str(inbox)]
    desktop.save()


@pytest.fixture
def make_desk(tmp_path, signer, desktop_key, other_desktop_keys) -> Callable[..., Desk]:
    """Factory: ``make_desk(name, key=...)`` makes another enrolled desktop home under tmp_path."""
    everyone = [desktop_key.public] + [k.public for k in other_desktop_keys]

    def make(name: str = "desk-a", *, key: keys.DesktopKey | None = None, inbox: Path | None = None) -> Desk:
        key = key or desktop_key
        home, inbox = tmp_path / name / "home", inbox or tmp_path / name / "inbox"
        make_home(home, key, signer.public, inbox, name)
        return Desk(home, inbox, key, signer, list(everyone))

    return make


@pytest.fixture
def desk(make_desk, monkeypatch) -> Desk:
    """This test's desktop: BACKUP_OPERATOR_HOME and the passphrase point at it."""
    made = make_desk("desk-a")
    monkeypatch.setenv("BACKUP_OPERATOR_HOME", str(made.home))
    monkeypatch.delenv("BACKUP_OPERATOR_SITE", raising=False)  # no installer settings from this machine
    monkeypatch.setenv(desktop_config.PASSPHRASE_ENV, PASSPHRASE)
    return made


@pytest.fixture
def count_reads(monkeypatch) -> Callable[[], dict[Path, int]]:
    """Make ``envelope.open`` count every byte the OS hands over for each file (read-ahead included).

    ``read_capped`` opens files with the builtin ``open``; a module global of the same name shadows it.
    """

    def start() -> dict[Path, int]:
        counts: dict[Path, int] = {}

        class CountingRaw(io.RawIOBase):
            def __init__(self, path, opener=None):
                self.path = Path(path)
                self.fd = opener(str(self.path), os.O_RDONLY) if opener else os.open(self.path, os.O_RDONLY)
                counts.setdefault(self.path, 0)

            def readable(self):
                return True

            def fileno(self):
                return self.fd

            def readinto(self, buffer):
                data = os.read(self.fd, len(buffer))
                counts[self.path] += len(data)
                buffer[: len(data)] = data
                return len(data)

            def close(self):
                if not self.closed:
                    os.close(self.fd)
                super().close()

        def counting_open(path, mode="r", buffering=-1, **kwargs):
            assert mode == "rb", mode
            if Path(path).is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
            raw = CountingRaw(path, kwargs.get("opener"))
            return raw if buffering == 0 else io.BufferedReader(raw)

        monkeypatch.setattr(envelope, "open", counting_open, raising=False)
        return counts

    return start


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    """A real, nearly empty file system (a 64 KiB tmpfs) for full-disk tests; needs root and mount(2)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a real full disk needs root to mount a tiny tmpfs; the injected ENOSPC tests still run")
    mountpoint = tmp_path / "tiny-disk"
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip()}); "
                    "the injected ENOSPC tests still run")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill_disk(folder: Path) -> Path:
    """Write a filler file until the file system under ``folder`` reports ENOSPC; return it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        piece = b"\0" * 512
        while True:
            try:
                if handle.write(piece) == 0:
                    break
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(piece) == 1:
                    break
                piece = piece[: len(piece) // 2]
    return filler


class Kit:
    """The helpers above, for test modules (they get them through the ``kit`` fixture, not by import)."""

    CANARIES = CANARIES
    PASSPHRASE = PASSPHRASE
    SNAPSHOT_CHUNK = SNAPSHOT_CHUNK
    KEYFILE_SCRYPT_N = KEYFILE_SCRYPT_N
    fixed_bytes = staticmethod(fixed_bytes)
    template_records = staticmethod(template_records)
    created_at = staticmethod(created_at)
    database_for = staticmethod(database_for)

    @staticmethod
    def seal_snapshot(*args, **kwargs) -> bytes:
        return seal_snapshot(*args, **kwargs)

    split_snapshot = staticmethod(split_snapshot)
    fill_disk = staticmethod(fill_disk)
    header_prefix = staticmethod(header_prefix)
    assemble_snapshot = staticmethod(assemble_snapshot)

    @staticmethod
    def make_home(*args, **kwargs) -> None:
        return make_home(*args, **kwargs)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


# --- figures for the closing note ----------------------------------------------------------------

_FIGURES: dict[str, object] = {}


@pytest.fixture
def figures() -> Callable[[str, object], None]:
    """Record a measured figure under a name; all of them are printed at the end of the run."""

    def record(name: str, value: object) -> None:
        _FIGURES[name] = value

    return record


OUTCOMES = ("refused", "accepted wrongly", "traceback")


class Adversary:
    """Tally of hostile cases per area (issue 10): each case ends refused (or shown, not obeyed), accepted
    wrongly, or in a traceback. Printed with the figures as ``adversarial: AREA``; shared by every module
    that tries to break something (tests/security/, the mutation fuzzer)."""

    def __init__(self, store: dict[str, object]):
        self._store = store

    def record(self, area: str, outcome: str, case: str = "") -> str:
        assert outcome in OUTCOMES, outcome
        key = f"adversarial: {area}"
        tally = self._store.setdefault(key, {"cases tried": 0, **{o: 0 for o in OUTCOMES}, "wrong": []})
        tally["cases tried"] += 1
        tally[outcome] += 1
        if outcome != "refused" and case:
            tally["wrong"].append(case)
        return outcome

    def wrong(self, area: str) -> list[str]:
        """The cases of ``area`` so far that were accepted wrongly or ended in a traceback."""
        return list(self._store.get(f"adversarial: {area}", {}).get("wrong", []))


@pytest.fixture
def adversary() -> Adversary:
    return Adversary(_FIGURES)


def pytest_terminal_summary(terminalreporter):
    if not _FIGURES:
        return
    terminalreporter.section("Backup Operator figures")
    for name, value in _FIGURES.items():
        if name.startswith("adversarial: "):
            value = ", ".join(f"{o} {value[o]}" for o in ("cases tried", *OUTCOMES)) + (
                f" ({'; '.join(value['wrong'][:5])})" if value["wrong"] else "")
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        terminalreporter.write_line(f"{name}: {text}")
