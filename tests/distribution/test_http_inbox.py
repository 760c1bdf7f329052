"""A desktop with only an http(s) inbox, kept current from a real nginx: deltas, a conditional GET per
quiet interval, an interrupted download that resumes, a broken chain that falls back to the full file,
and manifests or deltas from another signer or an older version refused exactly as full files are."""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from backup_operator import cli as desktop_cli
from backup_operator.core import delta as rows
from backup_operator.core.fetch import FetchSettings
from backup_operator.core.pull import HttpInbox, pull
from backup_operator.errors import BrokenChain, DownloadFailed, RollbackRefused, UntrustedSignature
from backup_operator.snapshot import deltafile
from backup_operator.snapshot import format as F
from backup_operator.snapshot.keys import DesktopKey, SignerKey

from exporter.config import DestinationConfig
from exporter.delta import WebPublication, make_delta, with_group_key
from exporter.publish import snapshot_filename
from exporter.publish.web import WebDestination

from directory_changes import START, build, change, directory


@dataclass
class Publisher:
    """The exporter's web publishing (exporter/delta.py and publish/web.py) into nginx's folder."""

    www: object
    signer: SignerKey
    recipients: list
    records: dict = field(default_factory=lambda: directory(42, 300))
    version: int = 0
    last: bytes | None = None
    databases: dict = field(default_factory=dict)
    group_key: tuple = field(default_factory=lambda: (os.urandom(8).hex(), os.urandom(32)))

    def publish(self, *, changes: int = 3, seed: int | None = None, base: bytes | None = None,
                signer: SignerKey | None = None) -> int:
        signer = signer or self.signer
        if self.version:
            self.records = change(self.records, seed if seed is not None else self.version, changes)
        self.version += 1
        database = with_group_key(build(self.records, self.version), self.group_key)
        created = START + timedelta(minutes=15 * self.version)
        sealed = deltafile.envelope.seal(database, snapshot_version=self.version, created_at=created,
                                         expires_at=created + timedelta(days=3), recipients=self.recipients,
                                         signer=signer)
        publication = WebPublication(self.version, created, signer)
        old = base if base is not None else self.last
        if old is not None:
            made = make_delta(old, self.version - 1, database, self.version, created_at=created,
                              expires_at=created + timedelta(days=3), recipients=self.recipients, signer=signer,
                              endorsements=[], full_size=len(sealed), group_key=self.group_key)
            if made is not None:
                publication.deltas.append(made)
        target = WebDestination(DestinationConfig(name="web", kind="web", path=str(self.www)), publication)
        target.write_snapshot(snapshot_filename(self.version), sealed)
        target.prune(3, protect=snapshot_filename(self.version))
        self.last = database
        self.databases[self.version] = database
        return self.version


def content_of(database: bytes) -> bytes:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(database)
    return rows.content_hash(conn)


@pytest.fixture
def publisher(nginx, desk) -> Publisher:
    return Publisher(nginx.www, desk.signer, desk.recipients)


@pytest.fixture
def web_desk(desk, nginx):
    """The test's desktop with its folder inbox replaced by nginx's https address (trusting the test CA)."""
    desktop = desk.desktop
    desktop.config.inboxes = []
    desktop.save()
    desktop.add_inbox(nginx.https, ca_file=str(nginx.ca_file), receipts=nginx.https + "receipts/")
    return desk


def sync(capsys) -> tuple[int, str, str]:
    code = desktop_cli.main(["sync"])
    out, err = capsys.readouterr()
    return code, out, err


def opened_content(desk) -> tuple[int, bytes]:
    snapshot = desk.store().open_newest()
    try:
        return snapshot.version, rows.content_hash(snapshot.conn)
    finally:
        snapshot.close()


def test_a_desktop_with_only_an_https_inbox_stays_current_through_deltas(web_desk, publisher, nginx, capsys,
                                                                         figures):
    publisher.publish()
    code, out, err = sync(capsys)
    assert code == 0, err
    assert "Fetched version 1" in out and "full snapshot" in out
    for _ in range(3):
        publisher.publish(changes=4)
    mark = nginx.mark()
    code, out, err = sync(capsys)
    assert code == 0, err
    assert "Fetched version 4" in out and "as deltas" in out
    fetched = [line.split()[2] for line in nginx.log_since(mark, at_least=5) if " GET " in line]
    assert fetched == ["/manifest.bomanifest"] + [f"/{deltafile.delta_filename(v, v + 1)}" for v in (1, 2, 3)]
    # Exactly the full export's content, and the store holds sealed deltas, never plaintext.
    assert opened_content(web_desk) == (4, content_of(publisher.databases[4]))
    assert sorted(p.suffix for p in web_desk.snapshots.iterdir() if p.suffix.startswith(".bo")) == \
        [".bodelta"] * 3 + [".bosnap"]
    # A quiet interval costs one conditional GET answered 304.
    mark = nginx.mark()
    code, out, err = sync(capsys)
    assert code == 0 and "Up to date: version 4" in out
    (line,) = [x for x in nginx.log_since(mark, at_least=2) if " GET " in x]  # and the receipt's PUT
    assert " 304 0 " in line
    # The receipt went to the dav folder, where the exporter's web destination reads it back.
    receipts = WebDestination(DestinationConfig(name="web", kind="web", path=str(nginx.www)), None).read_receipts()
    assert [(r.desktop, r.snapshot_version) for r in receipts] == [("desk-a", 4)]
    sizes = {v: (nginx.www / deltafile.delta_filename(v - 1, v)).stat().st_size for v in (2, 3, 4)}
    figures("http inbox: delta bytes per 4-change interval at 300 listings vs full",
            f"{sorted(sizes.values())} vs {(nginx.www / snapshot_filename(4)).stat().st_size}")


def test_a_broken_chain_falls_back_to_the_full_snapshot(web_desk, publisher, capsys):
    publisher.publish()
    publisher.publish()
    assert sync(capsys)[0] == 0
    # The exporter was restored from an old backup: its "previous" database is not what desktops have.
    stray = build(change(publisher.records, 999, 25), 2)
    publisher.publish(base=stray)
    code, out, err = sync(capsys)
    assert code == 0, err
    assert "full snapshot" in out and "Refused" in err and deltafile.delta_filename(2, 3) in err
    assert re.search("does not (give the content its signed header names|have)", err)
    assert opened_content(web_desk) == (3, content_of(publisher.databases[3]))
    assert not list(web_desk.snapshots.glob("*.bodelta"))  # the full snapshot ended the chain


def test_a_new_group_key_means_one_full_snapshot_then_deltas_again(web_desk, publisher, capsys):
    publisher.publish()
    publisher.publish()
    assert sync(capsys)[0] == 0
    publisher.group_key = (os.urandom(8).hex(), os.urandom(32))  # a desktop was removed: a new group key
    publisher.publish()
    code, out, err = sync(capsys)
    assert code == 0 and "as a full snapshot" in out and "group key" in err
    publisher.publish()
    code, out, err = sync(capsys)
    assert code == 0 and "Fetched version 4" in out and "as deltas" in out, err
    assert opened_content(web_desk) == (4, content_of(publisher.databases[4]))


def test_deltas_carry_one_group_stanza_not_one_per_desktop(publisher, nginx):
    publisher.recipients = publisher.recipients + [DesktopKey.generate().public for _ in range(200)]
    publisher.publish()
    publisher.publish()
    full = deltafile.envelope.peek_header((nginx.www / snapshot_filename(2)).read_bytes())
    delta = deltafile.peek_delta((nginx.www / deltafile.delta_filename(1, 2)).read_bytes())
    assert len(full.recipients) == 204 and list(delta.recipients) == [F.GROUP_STANZA_PREFIX + publisher.group_key[0]]


def test_an_interrupted_download_resumes_on_the_next_sync(desk, publisher, nginx):
    publisher.records = directory(43, 900)  # about 100 KB sealed: several seconds at /slow/'s 32 KiB/s
    publisher.publish()
    store = desk.store()
    inbox = HttpInbox(nginx.http + "slow/")
    size = (nginx.www / snapshot_filename(1)).stat().st_size
    cache = desk.home / "downloads"
    # This desktop's floor is twice the file per second: the download is cut after about a second.
    first = pull(store, inbox, cache_root=cache,
                 settings=FetchSettings(timeout_s=0.5, min_rate=2 * size, retries=0))
    assert first.unreachable and not first.installed
    (part,) = cache.glob("*/*.part")
    kept = part.stat().st_size
    assert 0 < kept < size
    mark = nginx.mark()
    second = pull(store, inbox, cache_root=cache, settings=FetchSettings(timeout_s=5, min_rate=1024, retries=0))
    assert second.installed == [1] and second.via == "full"
    # (nginx logs the cut-off first request when it notices, possibly after the mark: look for the 206.)
    resumed = [line for line in nginx.log_since(mark) if snapshot_filename(1) in line and " 206 " in line]
    assert len(resumed) == 1 and f"range=[bytes={kept}-]" in resumed[0]
    assert int(resumed[0].split(" 206 ")[1].split()[0]) == size - kept
    assert second.bytes_downloaded < size  # only the rest, plus the small manifest


def test_manifests_and_deltas_from_another_signer_or_an_older_version_are_refused(web_desk, publisher, nginx,
                                                                                  capsys, attacker):
    publisher.publish()
    publisher.publish()
    assert sync(capsys)[0] == 0
    good_manifest = (nginx.www / F.MANIFEST_NAME).read_bytes()
    # Another signer publishes version 3 (manifest, snapshot and delta all signed by it).
    forged = Publisher(nginx.www, attacker, publisher.recipients, publisher.records, publisher.version,
                       publisher.last)
    forged.publish()
    code, out, err = sync(capsys)
    assert code == UntrustedSignature.exit_code, (out, err)
    assert "not signed by your hospital's exporter key" in err
    assert opened_content(web_desk)[0] == 2
    # An old manifest replayed after a newer one was installed: refused as an older snapshot is.
    publisher.version = 2
    publisher.publish()
    publisher.publish()
    assert sync(capsys)[0] == 0 and opened_content(web_desk)[0] == 4
    (nginx.www / F.MANIFEST_NAME).write_bytes(good_manifest)
    code, out, err = sync(capsys)
    assert code == RollbackRefused.exit_code and "older than version 4" in err
    # A delta file by itself, straight into the store: the same refusals as a full file.
    store = web_desk.store()
    mine = (nginx.www / deltafile.delta_filename(3, 4)).read_bytes()
    with pytest.raises(RollbackRefused):
        store.install_deltas([mine])
    theirs = make_delta(publisher.databases[4], 4, build(change(publisher.records, 5, 2), 5), 5,
                        created_at=START, expires_at=START + timedelta(days=1), recipients=publisher.recipients,
                        signer=attacker, endorsements=[], full_size=10**9)
    with pytest.raises(UntrustedSignature):
        store.install_deltas([theirs.data])
    skipping = make_delta(publisher.databases[2], 4, build(change(publisher.records, 6, 2), 5), 5,
                          created_at=START, expires_at=START + timedelta(days=1), recipients=publisher.recipients,
                          signer=web_desk.signer, endorsements=[], full_size=10**9)
    with pytest.raises(BrokenChain):  # signed, newer, but built on other rows than version 4's
        store.install_deltas([skipping.data])
    assert opened_content(web_desk) == (4, content_of(publisher.databases[4]))


def test_a_plain_http_inbox_on_a_trusted_lan(desk, publisher, nginx, capsys):
    desktop = desk.desktop
    desktop.config.inboxes = []
    desktop.save()
    assert desktop_cli.main(["inbox", "add", nginx.http.rstrip("/")]) == 0
    assert "Plain http" in capsys.readouterr().out
    publisher.publish()
    publisher.publish()
    code, out, err = sync(capsys)
    assert code == 0 and "Fetched version 2" in out, err
    assert desktop_cli.main(["inbox", "list"]) == 0
    assert capsys.readouterr().out.strip() == nginx.http


def test_an_unreachable_web_server_is_an_outage_not_an_error(web_desk, publisher, nginx, capsys):
    publisher.publish()
    assert sync(capsys)[0] == 0
    web_desk.desktop.remove_inbox(nginx.https)
    web_desk.desktop.add_inbox("https://127.0.0.1:9/")  # nothing listens on the discard port
    code, out, err = sync(capsys)
    assert code == 0 and "cannot be reached right now" in err and "Up to date: version 1" in out


def test_a_wrong_address_is_an_error_for_it_not_an_outage(web_desk, publisher, nginx, capsys):
    publisher.publish()
    assert sync(capsys)[0] == 0
    web_desk.desktop.remove_inbox(nginx.https)
    web_desk.desktop.add_inbox(nginx.https + "no-such-folder/", ca_file=str(nginx.ca_file))
    code, out, err = sync(capsys)
    assert code == DownloadFailed.exit_code and "404" in err and "Up to date: version 1" in out
