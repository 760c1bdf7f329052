"""The desktop store: nothing bad is ever installed, and the last good snapshot always opens.

Each claim of issue 2 has a test here that measures it and records the figure (printed at the end of
the run under "Backup Operator figures"):

- 1,000 random mutations of a valid snapshot: 0 accepted, each refused with a SnapshotError;
- replaying every older snapshot: 0 installed, also with the high-water mark deleted or overwritten;
- other signers (also a legitimate recipient re-sealing): refused; endorsed rotation: accepted;
- a revoked desktop installs nothing sealed after its removal;
- an install interrupted at every os call (crash and ENOSPC): the newest good snapshot opens;
- a real full disk (a tiny tmpfs);
- a file ten times the size cap: refused after reading at most cap + 1 bytes.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import json
import os
import random
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import zstandard

from backup_operator.core import ramdb
from backup_operator.core.store import HIGH_WATER_FILE, SnapshotStore, write_receipt
from backup_operator.errors import (
    CorruptSnapshot,
    NoSnapshot,
    NotARecipient,
    RollbackRefused,
    SnapshotError,
    StorageError,
    TooLarge,
    UntrustedSignature,
)
from backup_operator.fsutil import TEMP_PREFIX
from backup_operator.snapshot import envelope, keys
from backup_operator.snapshot import format as F


def installed_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.endswith(F.FILE_SUFFIX)}


# --- the plain path -------------------------------------------------------------------------------


def test_install_then_open_newest(desk, kit):
    store = desk.store()
    with pytest.raises(NoSnapshot):
        store.open_newest()
    path = desk.drop(3)
    verified = store.install(path)
    assert verified.version == 3 and verified.meta.snapshot_version == 3
    opened = store.open_newest()
    try:
        assert opened.version == 3 and not opened.skipped
        names = [r[0] for r in opened.conn.execute("SELECT display_name FROM listings ORDER BY id")]
        assert kit.CANARIES[0] in names
    finally:
        opened.close()
    # What is installed is the sealed file exactly as received: ciphertext only.
    assert store.path_of(3).read_bytes() == path.read_bytes()
    assert (desk.snapshots / HIGH_WATER_FILE).read_text().strip() == "3"
    assert store.high_water() == 3


def test_keeps_the_last_three(desk):
    store = desk.store()
    for version in range(1, 7):
        store.install(desk.drop(version))
    assert store.installed_versions() == [6, 5, 4]
    assert store.high_water() == 6
    kept_one = desk.store(keep=1)
    kept_one.install(desk.drop(7))
    assert kept_one.installed_versions() == [7]


def test_open_newest_falls_back_past_a_damaged_newer_file(desk):
    store = desk.store()
    store.install(desk.drop(3))
    store.install(desk.drop(4))
    damaged = bytearray(store.path_of(4).read_bytes())
    damaged[len(damaged) // 2] ^= 1
    store.path_of(4).write_bytes(bytes(damaged))
    # What version 4 holds was verified whole when it was installed, and this desktop's own open copy
    # keeps it: damage to the signed file at rest (same size, same signature bytes) does not reach it.
    opened = desk.store().open_newest()
    assert opened.version == 4 and not opened.skipped
    opened.close()
    # Without the open copy, the signed file is verified again, refused, and version 3 opens.
    store.open_copy_path(4).unlink()
    opened = desk.store().open_newest()
    assert opened.version == 3
    assert [p.name for p, _ in opened.skipped] == [store.path_of(4).name]
    assert isinstance(opened.skipped[0][1], SnapshotError)
    opened.close()
    # A file whose name claims another version than its signed header is not opened either.
    shutil.copy(store.path_of(3), store.path_of(9))
    opened = desk.store().open_newest()
    assert opened.version == 3 and store.path_of(9) in [p for p, _ in opened.skipped]
    opened.close()


def test_every_installed_file_damaged_raises_not_nosnapshot(desk):
    store = desk.store()
    store.install(desk.drop(3))
    store.path_of(3).write_bytes(b"garbage")
    with pytest.raises(SnapshotError):
        desk.store().open_newest()


def test_receipt(desk, tmp_path):
    path = write_receipt(desk.inbox, desktop="switchboard 1/east", public_key=desk.key.public.to_text(),
                         version=12)
    assert path.parent == desk.inbox / "receipts" and path.name == "switchboard_1_east.json"
    doc = json.loads(path.read_text())
    assert doc["desktop"] == "switchboard 1/east" and doc["snapshot_version"] == 12
    assert doc["public_key"] == desk.key.public.to_text()
    assert not list((desk.inbox / "receipts").glob(TEMP_PREFIX + "*"))


# --- 1. a thousand mutations ----------------------------------------------------------------------

MUTATION_SEED = 20260307
MUTATIONS = 1000


class Mutator:
    """Random damage and forgery of one valid sealed snapshot, reproducible from a seed."""

    def __init__(self, rng: random.Random, good: bytes, kit, signer, attacker, desktop_key, donor: bytes):
        self.rng, self.good, self.kit = rng, good, kit
        self.signer, self.attacker, self.desktop_key = signer, attacker, desktop_key
        self.header, self.payload, self.signature = kit.split_snapshot(good)
        self.prefix_len = len(good) - len(self.payload) - F.SIGNATURE_SIZE
        self.donor_payload = kit.split_snapshot(donor)[1]
        self.random_signer = keys.SignerKey.from_raw(rng.randbytes(32))

    def one(self) -> tuple[str, bytes]:
        kinds = [self.truncate, self.flip_anywhere, self.flip_header, self.flip_payload, self.flip_signature,
                 self.append, self.insert, self.delete_range, self.edit_header, self.edit_header,
                 self.edit_header, self.splice_payload, self.shuffle_chunks, self.truncate_and_resign,
                 self.header_length]
        while True:
            name, blob = self.rng.choice(kinds)()
            if blob != self.good:
                return name, blob

    # damage
    def truncate(self):
        return "truncate", self.good[: self.rng.randrange(len(self.good))]

    def _flip(self, lo: int, hi: int, what: str):
        blob = bytearray(self.good)
        for _ in range(self.rng.choice((1, 1, 1, 2, 3, 8))):
            blob[self.rng.randrange(lo, hi)] ^= 1 << self.rng.randrange(8)
        return f"bit flip in {what}", bytes(blob)

    def flip_anywhere(self):
        return self._flip(0, len(self.good), "any byte")

    def flip_header(self):
        return self._flip(0, self.prefix_len, "magic or header")

    def flip_payload(self):
        return self._flip(self.prefix_len, len(self.good) - F.SIGNATURE_SIZE, "payload")

    def flip_signature(self):
        return self._flip(len(self.good) - F.SIGNATURE_SIZE, len(self.good), "signature")

    def append(self):
        return "append bytes", self.good + self.rng.randbytes(self.rng.choice((1, 16, 64, 65, 200, 5000)))

    def insert(self):
        at = self.rng.randrange(len(self.good))
        return "insert bytes", self.good[:at] + self.rng.randbytes(self.rng.randint(1, 64)) + self.good[at:]

    def delete_range(self):
        at = self.rng.randrange(len(self.good))
        return "delete bytes", self.good[:at] + self.good[at + self.rng.randint(1, 64):]

    def header_length(self):
        blob = bytearray(self.good)
        length = int.from_bytes(blob[len(F.MAGIC):len(F.MAGIC) + 4], "big")
        new = self.rng.choice((0, 1, length - 1, length + 1, length + 64, 2**32 - 1, F.MAX_HEADER_BYTES + 1))
        blob[len(F.MAGIC):len(F.MAGIC) + 4] = new.to_bytes(4, "big")
        return "header length field", bytes(blob)

    # forgery: re-serialised headers and payloads, re-signed by nobody, the attacker, or the real key
    def _resign(self, header, payload, what: str):
        how = self.rng.choice(("old signature", "attacker", "random key", "pinned key"))
        sign_with = {"attacker": self.attacker, "random key": self.random_signer,
                     "pinned key": self.signer}.get(how)
        blob = self.kit.assemble_snapshot(header, payload, sign_with=sign_with,
                                          signature=None if sign_with else self.signature)
        return f"{what}, {how}", blob

    def edit_header(self):
        header = json.loads(json.dumps(self.header))
        rng = self.rng
        edits = {
            "version bumped": lambda h: h.update(snapshot_version=h["snapshot_version"] + rng.choice((1, 1000))),
            "version lowered": lambda h: h.update(snapshot_version=h["snapshot_version"] - rng.choice((1, 2))),
            "version zero or negative": lambda h: h.update(snapshot_version=rng.choice((0, -1))),
            "recipients removed": lambda h: h.update(recipients=h["recipients"][: rng.randrange(
                len(h["recipients"]))]),
            "our recipient removed": lambda h: h.update(recipients=[
                r for r in h["recipients"] if r["id"] != self.desktop_key.public.recipient_id]),
            "wrapped keys swapped": lambda h: h.update(recipients=[
                {"id": r["id"], "wrapped": w["wrapped"]}
                for r, w in zip(h["recipients"], h["recipients"][1:] + h["recipients"][:1])]),
            "signer swapped": lambda h: h.update(signer=rng.choice(
                (self.attacker, self.random_signer)).public.to_text()),
            "chunk_size changed": lambda h: h.update(chunk_size=rng.choice(
                (2048, 4096, 65536, 1023, 16 * 1024 * 1024 + 1, 0, -1024))),
            "payload nonce changed": lambda h: h.update(payload_nonce=__import__("base64").b64encode(
                rng.randbytes(F.PAYLOAD_NONCE_SIZE)).decode()),
            "created_at changed": lambda h: h.update(created_at="2030-01-01T00:00:00Z"),
            "expires_at extended": lambda h: h.update(expires_at="2099-01-01T00:00:00Z"),
            "compression changed": lambda h: h.update(compression=rng.choice(("none", "zstd", ""))),
            "format changed": lambda h: h.update(format=rng.choice((2, 0, "1"))),
            "endorsement added": lambda h: h.update(endorsements=[envelope.Endorsement.make(
                rng.choice((self.attacker, self.signer)), self.attacker.public).to_json()]),
            "unknown field added": lambda h: h.update(note="hello"),
            "field removed": lambda h: h.pop(rng.choice(sorted(h))),
        }
        name = rng.choice(sorted(edits))
        edits[name](header)
        if header == self.header:
            return "no-op", self.good
        return self._resign(header, self.payload, f"header: {name}")

    def splice_payload(self):
        return self._resign(self.header, self.donor_payload, "payload of another snapshot")

    def shuffle_chunks(self):
        size = self.header["chunk_size"] + F.TAG_SIZE
        chunks = [self.payload[i:i + size] for i in range(0, len(self.payload), size)]
        self.rng.shuffle(chunks)
        if self.rng.random() < 0.5:
            chunks.insert(self.rng.randrange(len(chunks) + 1), self.rng.choice(chunks))
        return self._resign(self.header, b"".join(chunks), "chunks reordered or repeated")

    def truncate_and_resign(self):
        cut = self.rng.randrange(len(self.payload))
        return self._resign(self.header, self.payload[:cut], "payload truncated")


def test_a_thousand_mutations_are_all_refused(desk, kit, signer, attacker, desktop_key, figures, adversary):
    good_old = desk.seal(5)
    good = desk.seal(6)
    donor = desk.seal(7)
    cap = max(len(good_old), len(good)) + 64  # so that some appended files exceed the cap
    store = desk.store(size_cap=cap)
    store.install(desk.put(good_old, "good-5.bosnap"))
    desk.clear_inbox()

    mutator = Mutator(random.Random(MUTATION_SEED), good, kit, signer, attacker, desktop_key, donor)
    target = desk.inbox / "mutated.bosnap"
    accepted, unexpected, multi_line = [], [], []
    by_error: collections.Counter = collections.Counter()
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    sync_outcomes: collections.Counter = collections.Counter()
    started = time.perf_counter()
    for n in range(MUTATIONS):
        kind, blob = mutator.one()
        target.write_bytes(blob)
        try:
            store.install(target)
        except SnapshotError as exc:
            by_error[type(exc).__name__] += 1
            by_kind[kind.split(",")[0]][type(exc).__name__] += 1
            if "\n" in str(exc) or not str(exc).strip():
                multi_line.append((n, kind, str(exc)))
        except BaseException as exc:  # noqa: BLE001 - any other type is the failure being measured
            unexpected.append((n, kind, repr(exc)))
        else:
            accepted.append((n, kind))
        try:
            report = store.sync([desk.inbox])
        except BaseException as exc:  # noqa: BLE001
            unexpected.append((n, f"sync: {kind}", repr(exc)))
            continue
        if report.installed:
            accepted.append((n, f"sync: {kind}"))
        elif report.refused:
            assert [p for p, _ in report.refused] == [target]
            assert all(isinstance(e, SnapshotError) for _, e in report.refused)
            sync_outcomes["refused: " + type(report.refused[0][1]).__name__] += 1
        else:
            assert report.ignored_older == 1  # a lowered version: not newer, so not even tried
            sync_outcomes["ignored as not newer"] += 1
    elapsed = time.perf_counter() - started

    area = "envelope mutations (install, then sync)"
    for _ in range(sum(by_error.values()) + sum(sync_outcomes.values())):
        adversary.record(area, "refused")
    for _n, kind in accepted:
        adversary.record(area, "accepted wrongly", kind)
    for _n, kind, _exc in unexpected:
        adversary.record(area, "traceback", kind)
    figures("mutations: tried / accepted / other exception types", f"{MUTATIONS} / {len(accepted)} / "
            f"{len(unexpected)} (seed {MUTATION_SEED}, {elapsed:.1f} s for install + sync of each)")
    figures("mutations: refusals by error (install)", dict(by_error))
    figures("mutations: sync outcomes", dict(sync_outcomes))
    figures("mutations: kinds", {k: sum(v.values()) for k, v in sorted(by_kind.items())})
    assert accepted == [], accepted[:10]
    assert unexpected == [], unexpected[:10]
    assert multi_line == [], multi_line[:3]  # every refusal is one line for the operator
    assert len(by_error) >= 5, by_error  # the mutations reach many different checks, not just one
    assert sum(by_error.values()) == MUTATIONS

    # The last good snapshot still opens, from this store and from a fresh start.
    for opener in (store, desk.store(size_cap=cap)):
        opened = opener.open_newest()
        assert opened.version == 5 and not opened.skipped
        opened.close()
    assert store.installed_versions() == [5] and store.high_water() == 5
    assert sorted(p.name for p in desk.snapshots.iterdir()) == [store.path_of(5).name, store.open_copy_path(5).name,
                                                                HIGH_WATER_FILE]
    # Control: the unmutated file is accepted by the same store, so the test could have failed.
    assert store.install(desk.put(good, "good-6.bosnap")).version == 6


# --- 2. replaying older snapshots ---------------------------------------------------------------------


@pytest.mark.parametrize("mark", ["intact", "deleted", "zero", "garbage", "negative", "empty", "binary"])
def test_replaying_every_older_snapshot_installs_nothing(mark, desk, make_desk, figures):
    newest = 8
    sealed = {v: desk.seal(v) for v in range(1, newest + 1)}
    store = desk.store()
    for version in range(1, newest + 1):
        store.install(desk.put(sealed[version], f"v{version}.bosnap"))
    desk.clear_inbox()
    mark_file = desk.snapshots / HIGH_WATER_FILE
    {"intact": lambda: None, "deleted": mark_file.unlink, "zero": lambda: mark_file.write_text("0\n"),
     "garbage": lambda: mark_file.write_text("not a number\n"), "negative": lambda: mark_file.write_text("-5"),
     "empty": lambda: mark_file.write_bytes(b""), "binary": lambda: mark_file.write_bytes(os.urandom(64))}[mark]()

    installed = 0
    for version in range(1, newest + 1):
        replay = desk.put(sealed[version], f"replay-{version}.bosnap")
        for restart in (False, True):
            current = desk.store() if restart else store
            with pytest.raises(RollbackRefused):
                current.install(replay)
            report = current.sync([desk.inbox])
            installed += len(report.installed)
            if version < newest:
                assert [type(e) for _, e in report.refused] == [RollbackRefused]
            else:
                assert report.refused == [] and report.current == newest  # equal: simply up to date
        replay.unlink()
    figures(f"replay of versions 1..{newest - 1} and {newest} after {newest} (mark {mark}): installed", installed)
    assert installed == 0
    assert store.installed_versions() == [8, 7, 6]
    assert store.high_water() == newest
    assert mark_file.read_text().strip() == str(newest)  # the mark is re-derived and written back
    # Control: each replayed file is a good snapshot for a desktop that never saw a newer one.
    fresh = make_desk("fresh-desk")
    assert fresh.store().install(fresh.put(sealed[1], "v1.bosnap")).version == 1


def test_the_mark_survives_a_store_emptied_of_all_but_the_newest(desk):
    store = desk.store()
    for version in (1, 2, 3):
        store.install(desk.drop(version))
    (desk.snapshots / HIGH_WATER_FILE).unlink()
    for version in (1, 2):
        store.path_of(version).unlink()
    with pytest.raises(RollbackRefused):
        desk.store().install(desk.drop(2, name="again.bosnap"))


def test_a_mark_above_every_file_is_kept(desk):
    """A mark higher than what is installed (files pruned or lost) still refuses everything below it."""
    store = desk.store()
    store.install(desk.drop(3))
    (desk.snapshots / HIGH_WATER_FILE).write_text("10\n")
    with pytest.raises(RollbackRefused):
        desk.store().install(desk.drop(7))
    assert desk.store().install(desk.drop(11)).version == 11


def test_newest_good_candidate_wins_and_a_bad_newer_one_is_reported(desk, attacker):
    store = desk.store()
    desk.drop(3)
    desk.drop(4)
    desk.drop(9, signer=attacker, name="forged.bosnap")
    report = store.sync([desk.inbox])
    assert report.installed == [4] and report.current == 4
    assert [(p.name, type(e)) for p, e in report.refused] == [("forged.bosnap", UntrustedSignature)]
    assert store.installed_versions() == [4]


# --- 3. other signers, rotation --------------------------------------------------------------------------


def test_other_signer_and_re_sealing_recipient_are_refused(desk, make_desk, kit, attacker, other_desktop_keys,
                                                           figures):
    store = desk.store()
    store.install(desk.drop(5))
    # A legitimate recipient (desktop B) opens the real v6 with its own key, then forges from it.
    insider = make_desk("desk-b", key=other_desktop_keys[0], inbox=desk.inbox)
    real6 = desk.seal(6)
    header6 = envelope.verify(real6, [desk.signer.public])
    database = envelope.decrypt(real6, header6, insider.key)
    forgeries = {
        "sealed by another key": desk.seal(6, signer=attacker),
        "re-encrypted for everyone by a recipient": desk.seal(6, signer=attacker, database=database),
    }
    # The recipient keeps the real v6's header (and its wrapped file key), swaps in its own payload
    # (the same rows, compressed differently: any payload the recipient chooses).
    doc, _, old_signature = kit.split_snapshot(real6)
    file_key = envelope._SUITE.decrypt(header6.recipients[insider.key.public.recipient_id],
                                       insider.key._x25519(), info=F.HPKE_INFO)
    payload = envelope.encrypt_payload(file_key, header6.payload_nonce, kit.header_prefix(doc),
                                       hashlib.sha256(database).digest()
                                       + zstandard.ZstdCompressor(level=1).compress(database), 1024)
    forgeries["real header, new payload, re-signed"] = kit.assemble_snapshot(doc, payload, sign_with=attacker)
    forgeries["real header, new payload, old signature"] = kit.assemble_snapshot(doc, payload,
                                                                                 signature=old_signature)
    named = dict(doc, signer=attacker.public.to_text())
    named_payload = envelope.encrypt_payload(file_key, header6.payload_nonce, kit.header_prefix(named),
                                             hashlib.sha256(database).digest()
                                             + zstandard.ZstdCompressor(level=2).compress(database), 1024)
    forgeries["real wrapped keys, header names the attacker"] = kit.assemble_snapshot(
        named, named_payload, sign_with=attacker)
    refused = collections.Counter()
    for name, blob in forgeries.items():
        path = desk.put(blob, "forged.bosnap")
        with pytest.raises(UntrustedSignature):
            store.install(path)
        report = store.sync([desk.inbox])
        assert report.installed == [] and [type(e) for _, e in report.refused] == [UntrustedSignature], name
        refused[name] += 1
    figures("forged snapshots (other signer, re-sealing recipient) refused with UntrustedSignature",
            f"{sum(refused.values())} of {len(forgeries)}")
    opened = store.open_newest()
    assert opened.version == 5
    opened.close()
    # Control: the forgery is well made; a desktop that pinned the attacker's key would take it.
    fooled = desk.store(trusted=[attacker.public])
    for name in ("re-encrypted for everyone by a recipient", "real header, new payload, re-signed"):
        if name.startswith("real header"):
            with pytest.raises(CorruptSnapshot):  # names the pinned signer but the attacker signed
                fooled.check_bytes(forgeries[name], high_water=5)
        else:
            assert fooled.check_bytes(forgeries[name], high_water=5).version == 6
    assert fooled.check_bytes(forgeries["real wrapped keys, header names the attacker"],
                              high_water=5).version == 6


def test_rotation_endorsed_by_the_pinned_key_is_accepted_and_reported(desk, kit, signer):
    new = keys.SignerKey.from_raw(kit.fixed_bytes("rotated exporter key"))
    store = desk.store()
    store.install(desk.drop(5))
    desk.clear_inbox()
    desk.drop(6, signer=new, endorsements=[envelope.Endorsement.make(signer, new.public)])
    report = store.sync([desk.inbox])
    assert report.installed == [6] and report.new_signers == [new.public]
    # Without the endorsement, the new key is not trusted until the desktop pins it (the CLI does that).
    desk.drop(7, signer=new)
    assert [type(e) for _, e in store.sync([desk.inbox]).refused] == [UntrustedSignature]
    pinned = desk.store(trusted=[signer.public, new.public])
    report = pinned.sync([desk.inbox])
    assert report.installed == [7] and report.new_signers == []
    # The store still opens v6 and v7 after a restart with the pinned old key only: v6 carries its proof.
    opened = desk.store(trusted=[signer.public]).open_newest()
    assert opened.version == 6 and len(opened.skipped) == 1
    opened.close()


def test_endorsement_not_made_by_a_pinned_key_is_refused(desk, kit, signer, attacker):
    new = keys.SignerKey.from_raw(kit.fixed_bytes("attacker's rotated key"))
    store = desk.store()
    store.install(desk.drop(5))
    until = "2099-01-01T00:00:00Z"
    forged = envelope.Endorsement(new.public, signer.public, attacker.sign(envelope.Endorsement.message(new.public, until)),
                                  until)
    for endorsements in ([envelope.Endorsement.make(attacker, new.public)], [forged]):
        path = desk.drop(6, signer=new, endorsements=endorsements, name="rotated.bosnap")
        with pytest.raises(UntrustedSignature):
            store.install(path)
        report = store.sync([desk.inbox])
        assert report.installed == [] and report.new_signers == []
    assert store.installed_versions() == [5]


# --- 4. revocation ---------------------------------------------------------------------------------------


def test_revoked_desktop_installs_nothing_sealed_after_its_removal(make_desk, desktop_key, other_desktop_keys,
                                                                   figures):
    a = make_desk("desk-a")
    b = make_desk("desk-b", key=other_desktop_keys[0], inbox=a.inbox)
    c = make_desk("desk-c", key=other_desktop_keys[1], inbox=a.inbox)
    stores = {d.home.parent.name: d.store() for d in (a, b, c)}
    a.drop(1, recipients=[desktop_key.public, b.key.public, c.key.public])
    for store in stores.values():
        assert store.sync([a.inbox]).installed == [1]
    refused = 0
    for version in range(2, 6):  # B is removed from the recipients from version 2 on
        a.clear_inbox()
        path = a.drop(version, recipients=[desktop_key.public, c.key.public])
        with pytest.raises(NotARecipient):
            stores["desk-b"].install(path)
        report = stores["desk-b"].sync([a.inbox])
        assert report.installed == [] and [type(e) for _, e in report.refused] == [NotARecipient]
        refused += 1
        for name in ("desk-a", "desk-c"):
            assert stores[name].sync([a.inbox]).installed == [version]
    figures("revoked desktop: snapshots after removal installed / refused", f"0 / {refused}")
    opened = stores["desk-b"].open_newest()
    assert opened.version == 1  # what it had before removal still opens
    opened.close()


# --- 5. interrupted installs ------------------------------------------------------------------------------


class InjectedCrash(BaseException):
    """The process dies here (a BaseException: nothing in the code under test may catch it)."""


FAULT_FUNCTIONS = ("open", "write", "fsync", "close", "replace", "rename", "unlink", "ftruncate")


@contextmanager
def os_faults(fail_at: int | None, make_error):
    """Count calls of the os functions the store writes with; raise ``make_error(name)`` at call k."""
    calls: list[str] = []
    originals = {name: getattr(os, name) for name in FAULT_FUNCTIONS}

    def wrap(name, original):
        def wrapper(*args, **kwargs):
            if name == "open" and not (args[1] if len(args) > 1 else kwargs.get("flags", 0)) & (
                    os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                return original(*args, **kwargs)  # reading (fsutil.open_plain) is not a write step
            calls.append(name)
            if len(calls) == fail_at:
                raise make_error(name)
            return original(*args, **kwargs)

        return wrapper

    for name, original in originals.items():
        setattr(os, name, wrap(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(os, name, original)


def _enospc(name):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _check_store(desk, folder: Path, sealed: dict[int, bytes], allowed: set[int]) -> int:
    """A fresh start on ``folder``: no leftovers, only whole files, the newest good one opens."""
    restarted = SnapshotStore(folder, trusted=[desk.signer.public], key=lambda: desk.key, keep=3)
    assert not [p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)], "leftovers not cleaned"
    for name, data in installed_files(folder).items():
        version = int(name.split(".")[0])
        assert data == sealed[version], f"{name} is not the whole snapshot it names"
    opened = restarted.open_newest()
    try:
        assert opened.version in allowed and not opened.skipped
        assert restarted.high_water() == opened.version
    finally:
        opened.close()
    return opened.version


@pytest.mark.parametrize("entry", ["install", "sync"])
def test_install_interrupted_at_every_step(entry, desk, tmp_path, figures, monkeypatch):
    # The store's own writes, one by one. (Decrypted databases go to RAM files, whose failures fall back
    # to a buffer: test_ramdb.py.)
    monkeypatch.setattr(ramdb, "ram_folder", lambda: None)
    sealed = {v: desk.seal(v) for v in range(1, 5)}
    baseline = desk.store()
    for version in (1, 2, 3):
        baseline.install(desk.put(sealed[version], f"v{version}.bosnap"))
    desk.clear_inbox()
    new = desk.put(sealed[4], "v4.bosnap")

    def run(store):
        return store.install(new) if entry == "install" else store.sync([desk.inbox])

    dry = tmp_path / "dry"
    shutil.copytree(desk.snapshots, dry)
    with os_faults(None, None) as calls:
        run(SnapshotStore(dry, trusted=[desk.signer.public], key=lambda: desk.key, keep=3))
    steps = list(calls)
    # The snapshot, the high-water mark, then the open copy (a speed-up only: its failure is logged).
    assert steps.count("replace") == 3 and steps.count("fsync") >= 4 and "unlink" in steps
    replaces = [i for i, step in enumerate(steps, 1) if step == "replace"]
    open_copy_steps = range(replaces[1] + 1, replaces[2] + 1)
    outcomes: collections.Counter = collections.Counter()
    for mode in ("crash", "enospc"):
        for k in range(1, len(steps) + 1):
            folder = tmp_path / f"{mode}-{k}"
            shutil.copytree(desk.snapshots, folder)
            store = SnapshotStore(folder, trusted=[desk.signer.public], key=lambda: desk.key, keep=3)
            failed_call = steps[k - 1]
            with os_faults(k, InjectedCrash if mode == "crash" else _enospc):
                try:
                    run(store)
                except InjectedCrash:
                    assert mode == "crash"
                    outcome = "crashed"
                except StorageError as exc:
                    assert mode == "enospc"
                    assert "full" in str(exc) and "\n" not in str(exc), str(exc)
                    outcome = "StorageError (full)"
                else:
                    # Only a failed clean-up (pruning an old file), the open copy, or a failed write of the mark
                    # may pass: the new version is then installed and in use, and the mark is written again
                    # after pruning (or worked out from the installed file), as _check_store checks below.
                    assert mode == "enospc", (mode, k, failed_call)
                    outcome = "installed (no open copy)" if k in open_copy_steps else \
                        "installed (prune skipped)" if failed_call == "unlink" else \
                        "installed (mark written after pruning)"
            if mode == "enospc":
                # No restart needed: the failed write removed its own temporary file, and the same
                # store keeps opening the newest good snapshot.
                assert not [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]
                opened = store.open_newest()
                assert opened.version in (3, 4)
                opened.close()
            version = _check_store(desk, folder, sealed, {3, 4})
            outcomes[f"{mode}: {outcome}, then opens v{version}"] += 1
            # And the desktop recovers: the next sync (or install) ends with v4 installed.
            recovered = SnapshotStore(folder, trusted=[desk.signer.public], key=lambda: desk.key, keep=3)
            if version == 3:
                assert recovered.install(new).version == 4
            else:
                with pytest.raises(RollbackRefused):
                    recovered.install(new)
            assert _check_store(desk, folder, sealed, {4}) == 4
    figures(f"interrupted {entry}: fault points x modes", f"{len(steps)} os calls ({' '.join(steps)}) x 2")
    figures(f"interrupted {entry}: outcomes", dict(outcomes))
    assert sum(outcomes.values()) == 2 * len(steps)
    assert any("opens v3" in k for k in outcomes) and any("opens v4" in k for k in outcomes)


def test_leftover_temp_files_are_cleaned_at_start_and_never_opened(desk):
    store = desk.store()
    store.install(desk.drop(3))
    newer = desk.seal(4)
    # What a crash mid-write leaves: a partial copy of a newer snapshot under a temporary name.
    leftover = desk.snapshots / f"{TEMP_PREFIX}abcdef-{store.path_of(4).name}"
    leftover.write_bytes(newer[: len(newer) // 2])
    (desk.snapshots / f"{TEMP_PREFIX}123456-{HIGH_WATER_FILE}").write_text("4\n")
    assert store.open_newest().version == 3  # the running store does not look at it
    restarted = desk.store()
    assert not [p for p in desk.snapshots.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert restarted.installed_versions() == [3] and restarted.high_water() == 3


def test_a_real_full_disk(desk, tiny_disk, kit, figures):
    folder = tiny_disk / "snapshots"
    store = SnapshotStore(folder, trusted=[desk.signer.public], key=lambda: desk.key)
    store.install(desk.drop(1))
    filler = kit.fill_disk(tiny_disk)
    with pytest.raises(StorageError, match="full") as info:
        store.install(desk.drop(2))
    figures("real full disk (64 KiB tmpfs): message", str(info.value))
    assert not [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]
    for opener in (store, SnapshotStore(folder, trusted=[desk.signer.public], key=lambda: desk.key)):
        opened = opener.open_newest()
        assert opened.version == 1
        opened.close()
    assert store.high_water() == 1
    filler.unlink()
    assert store.install(desk.drop(2, name="again.bosnap")).version == 2


# --- 7. the size cap ----------------------------------------------------------------------------------


def test_a_file_ten_times_the_cap_is_refused_after_reading_cap_plus_one(desk, count_reads, figures):
    cap = 1024 * 1024
    store = desk.store(size_cap=cap)
    store.install(desk.drop(3))
    huge = desk.inbox / "huge.bosnap"
    good = desk.seal(4)
    with open(huge, "wb") as handle:
        handle.write(good)
        handle.truncate(10 * cap)
    read = count_reads()
    with pytest.raises(TooLarge):
        store.install(huge)
    assert read[huge] <= cap + 1
    via_install = read[huge]
    read.clear()
    report = store.sync([desk.inbox])
    assert report.installed == [] and [type(e) for _, e in report.refused] == [TooLarge]
    assert read[huge] <= cap + 1
    figures("size cap: file of 10x cap, bytes read by install / by sync (cap)",
            f"{via_install:,} / {read[huge]:,} ({cap:,})")
    opened = store.open_newest()
    assert opened.version == 3
    opened.close()


# --- nothing but ciphertext in the store ----------------------------------------------------------------


def test_store_holds_no_plaintext(desk, kit):
    store = desk.store()
    for version in (1, 2):
        store.install(desk.drop(version))
    opened = store.open_newest()
    opened.conn.execute("SELECT * FROM listings ORDER BY display_name DESC").fetchall()
    opened.close()
    for path in desk.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"SQLite format 3" not in data, path
            for canary in kit.CANARIES:
                assert canary.encode() not in data, path


def test_versions_of_any_size_are_installed_and_opened(desk):
    """Versions are only bounded by the format (an integer), not by the 12-digit file names."""
    store = desk.store()
    store.install(desk.drop(7))
    big = 10**12 + 5  # e.g. an exporter numbering by YYYYMMDDhhmm
    store.install(desk.drop(big))
    opened = desk.store().open_newest()
    assert opened.version == big and not opened.skipped
    opened.close()
    assert store.installed_versions() == [big, 7] and store.high_water() == big
    with pytest.raises(RollbackRefused):
        store.install(desk.drop(10**12, name="older-big.bosnap"))


# --- what an install checks and reads, now that it streams ----------------------------------------------


def _damaged_databases(kit) -> dict[str, bytes]:
    """Databases the exporter could only have built with a broken SQLite: sealed and signed correctly, and
    matching their hash, so only the structural check at install stands between them and the store."""
    import sqlite3

    good = kit.database_for(4)
    page_size = int.from_bytes(good[16:18], "big")
    conn = sqlite3.connect(":memory:")
    conn.deserialize(good)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'listings'").fetchone()[0]
    conn.close()
    junk_root = bytearray(good)
    junk_root[(root - 1) * page_size:root * page_size] = b"\xff" * page_size
    return {"a page missing at the end": good[:-page_size], "a table's root page overwritten": bytes(junk_root)}


def test_a_signed_database_damaged_before_sealing_is_refused_by_the_structural_check(desk, kit):
    store = desk.store()
    store.install(desk.drop(3))
    for case, database in _damaged_databases(kit).items():
        path = desk.put(desk.seal(4, database=database), "snapshot-000004.bosnap")
        with pytest.raises(CorruptSnapshot):
            store.install(path)
        report = store.sync([desk.inbox])
        assert report.installed == [] and isinstance(report.problem, CorruptSnapshot), case
        assert store.installed_versions() == [3] and store.high_water() == 3, case
        # The open copy sealed while it was decrypted was dropped, not given a name, nor left behind.
        assert sorted(p.name for p in store.folder.iterdir() if p.name.endswith(".open") or
                      p.name.startswith(TEMP_PREFIX)) == [store.open_copy_path(3).name], case
        opened = store.open_newest()
        assert opened.version == 3, case
        opened.close()


def test_sync_reads_the_installed_file_once_and_the_others_only_to_their_header(desk, count_reads):
    store = desk.store()
    older, newer = desk.drop(3), desk.drop(4)
    read = count_reads()
    report = store.sync([desk.inbox])
    assert report.installed == [4]
    head = len(envelope.prefix_of(newer.read_bytes()))
    assert read[newer] == head + newer.stat().st_size  # its header to order it, then once whole
    assert read[older] == len(envelope.prefix_of(older.read_bytes()))  # never read whole


def test_an_installed_snapshot_gives_back_the_database_it_verified(desk, kit):
    store = desk.store()
    verified = store.check_file(desk.drop(3))
    try:
        assert verified.database == kit.database_for(3)
        assert b"".join(verified.image.pieces(4096)) == kit.database_for(3)
    finally:
        verified.close()


def test_without_a_ram_file_system_install_and_open_copy_still_work(desk, kit, monkeypatch):
    monkeypatch.setattr(ramdb, "ram_folder", lambda: None)  # Windows, macOS: a deserialized buffer
    store = desk.store()
    verified = store.check_file(desk.drop(3))
    try:
        assert not verified.image.mapped and verified.database == kit.database_for(3)
        assert b"".join(verified.image.pieces(1000)) == kit.database_for(3)
    finally:
        verified.close()
    store.install(desk.drop(4))
    assert store.open_copy_path(4).exists()
    opened = desk.store().open_newest()
    try:
        assert opened.version == 4 and bytes(opened.conn.serialize()) == kit.database_for(4)
    finally:
        opened.close()


def test_the_mark_reads_installed_files_only_when_they_could_raise_it(desk, count_reads):
    store = desk.store()
    store.install(desk.drop(3))
    installed = store.path_of(3)
    read = count_reads()
    assert store.high_water() == 3 and read.get(installed, 0) == 0  # an up-to-date sync reads nothing whole
    (desk.snapshots / HIGH_WATER_FILE).unlink()
    assert store.high_water() == 3 and read[installed] == installed.stat().st_size  # worked out again
    (desk.snapshots / HIGH_WATER_FILE).write_text("1\n")  # lowered: the installed file is read again
    read.clear()
    assert store.high_water() == 3 and read[installed] == installed.stat().st_size
    assert (desk.snapshots / HIGH_WATER_FILE).read_text().strip() == "3"


def test_the_open_copy_sealed_while_decrypting_opens_to_the_database_installed(desk, kit):
    store = desk.store()
    verified = store.check_bytes(desk.drop(3).read_bytes(), open_copy=True)
    verified.close()  # checked, not installed: its copy is dropped
    assert not [p for p in store.folder.iterdir() if p.name != "high-water-mark"]
    store.install(desk.drop(3))
    opened = store._open_from_copy()
    try:
        assert opened is not None and bytes(opened.conn.serialize()) == kit.database_for(3)
    finally:
        opened.close()
