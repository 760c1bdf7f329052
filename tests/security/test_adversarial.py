"""Trying to break the desktop and the exporter around the envelope (issue 10), one area at a time.

Each case is something an attacker (or bad luck) can put where the programs read: an inbox, a snapshot
header, directory data, a file name. Every case ends in one of three outcomes, tallied per area by the
``adversary`` fixture and printed with the figures as ``adversarial: AREA``: refused (or, for text,
shown and not obeyed), accepted wrongly, or a traceback. Each test asserts that the last two are zero.
The envelope's own mutation fuzzer stays in tests/core/test_store.py and reports there.

The commands run as processes (``python -m backup_operator``), as an operator or a scheduled task runs
them, with a timeout on every wait.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import unicodedata
from datetime import timedelta
from pathlib import Path

import pytest

from backup_operator.core.model import build_database
from backup_operator.snapshot import envelope
from backup_operator.snapshot import format as F
from backup_operator.textsafe import shown

# The command in a process that reports its peak resident memory (VmHWM: this program's own address space;
# getrusage's ru_maxrss would carry over the parent's, pytest's, across fork and exec).
RSS_PROBE = ("import re, sys\n"
             "from backup_operator.cli import main\n"
             "code = main(sys.argv[1:])\n"
             "peak = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)\n"
             "sys.stderr.write(f'\\nMAXRSS_KB {peak}\\n')\n"
             "sys.exit(code)\n")


def bo(*args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backup_operator", *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout, encoding="utf-8", errors="surrogateescape")


def hostile_chars(text: str) -> list[str]:
    """Characters that would steer a terminal: controls other than the line break, format characters
    (bidi overrides), line and paragraph separators."""
    return sorted({f"U+{ord(ch):04X}" for ch in text
                   if (unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\n")})


def outcome_of(done: subprocess.CompletedProcess, accepted_wrongly: bool) -> str:
    if "Traceback (most recent call last)" in done.stderr:
        return "traceback"
    return "accepted wrongly" if accepted_wrongly else "refused"


# --- 3. inbox files: only regular files, never blocking, no link out of the inbox ---------------------


def _with_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _with_socket(path: Path) -> Path:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


INBOX_CASES = {
    # name in the inbox -> how to make it (inbox, outside) ; all sort above the valid version 3
    "FIFO named like a newer snapshot": lambda inbox, out: _with_fifo(inbox / "snapshot-000009.bosnap"),
    "/dev/zero behind a link": lambda inbox, out: os.symlink("/dev/zero", inbox / "snapshot-000008.bosnap"),
    "folder named .bosnap": lambda inbox, out: (inbox / "snapshot-000007.bosnap").mkdir(),
    "socket named .bosnap": lambda inbox, out: _with_socket(inbox / "snapshot-000006.bosnap"),
    "link to a valid snapshot outside the inbox": lambda inbox, out: os.symlink(
        out / "outside.bosnap", inbox / "snapshot-000005.bosnap"),
    "dangling link": lambda inbox, out: os.symlink(out / "nothing-here.bosnap", inbox / "snapshot-000004.bosnap"),
}


@pytest.mark.parametrize("case", sorted(INBOX_CASES))
def test_inbox_holds_only_regular_files_for_sync(case, desk, kit, tmp_path, adversary):
    """Each hostile entry sits beside a valid newer snapshot (version 3): sync installs version 3 promptly,
    refuses the entry in one line, and never follows a link out of the inbox."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "outside.bosnap").write_bytes(desk.seal(10))  # valid, newest, but not in the inbox
    desk.drop(3)
    INBOX_CASES[case](desk.inbox, outside)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", RSS_PROBE, "sync"], capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - started
    rss_mb = int(done.stderr.rsplit("MAXRSS_KB ", 1)[1]) / 1024
    wrong = (done.returncode != 0 or "Installed snapshot version 3." not in done.stdout
             or desk.store().high_water() != 3 or rss_mb > 300)
    adversary.record("inbox files (sync)", outcome_of(done, wrong), f"{case}: exit {done.returncode}")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0 and "Installed snapshot version 3." in done.stdout, done.stdout + done.stderr
    assert desk.store().high_water() == 3  # the newer one outside the inbox was not taken through the link
    assert rss_mb < 300, f"{case}: {rss_mb:.0f} MB"
    assert seconds < 50
    refusals = [line for line in done.stderr.splitlines() if line.startswith("Refused")]
    assert all("snapshot-00000" in line for line in refusals)


def test_dev_zero_link_costs_no_memory(desk, figures):
    """The issue measured ~1.1 GB RSS per sync for a /dev/zero link under the default 512 MiB cap."""
    desk.drop(2)
    os.symlink("/dev/zero", desk.inbox / "snapshot-000099.bosnap")
    done = subprocess.run([sys.executable, "-c", RSS_PROBE, "sync"], capture_output=True, text=True, timeout=120)
    rss_mb = int(done.stderr.rsplit("MAXRSS_KB ", 1)[1]) / 1024
    figures("inbox: sync with a /dev/zero link beside a valid snapshot: exit, peak RSS (MB)",
            f"{done.returncode}, {rss_mb:.0f}")
    assert done.returncode == 0 and "link that leads out of its folder" in done.stderr
    assert rss_mb < 300


def test_link_inside_the_inbox_is_still_read(desk):
    """A link that stays inside the inbox (a "latest" name IT may keep) is followed: it is not hostile."""
    real = desk.drop(4, "snapshot-000004.bosnap.keep")
    os.symlink(real.name, desk.inbox / "latest.bosnap")
    assert desk.store().sync([desk.inbox]).installed == [4]


def test_a_fifo_given_to_verify_is_refused_at_once(desk, tmp_path, adversary):
    fifo = _with_fifo(tmp_path / "pipe.bosnap")
    done = bo("verify", str(fifo), timeout=60)
    adversary.record("inbox files (sync)", outcome_of(done, done.returncode == 0), "verify FIFO")
    assert done.returncode != 0 and "pipe (FIFO)" in done.stdout


def test_exporter_reads_only_regular_files_from_desktop_folders(tmp_path, adversary):
    """Journals and drill receipts come back through the inbox; the exporter's reader never blocks."""
    from backup_operator.errors import NotASnapshot
    from backup_operator.snapshot import format as F

    journals = tmp_path / "inbox" / "journals"
    journals.mkdir(parents=True)
    fifo = _with_fifo(journals / "desk.bojournal")
    os.symlink("/dev/zero", journals / "zero.bojournal")
    from exporter.journal import journal_files_in

    assert journal_files_in([tmp_path / "inbox"]) == []
    for path in (fifo, journals / "zero.bojournal"):
        try:
            envelope.read_capped(path, F.MAX_SEALED_FILE_BYTES, within=journals)
            outcome = "accepted wrongly"
        except NotASnapshot:
            outcome = "refused"
        adversary.record("inbox files (exporter)", outcome, path.name)
        assert outcome == "refused"


# --- 4. nothing from data or file names steers the terminal --------------------------------------

HOSTILE = "Evil\x1b]0;pwned\x07\x1b[2J\x1b[31mName\u202eoof\x00\r\nThis snapshot is good.\u2028x"


def _records_with_hostile_text(kit) -> dict:
    records = kit.template_records()
    records["listings"][0]["display_name"] = "Canary " + HOSTILE
    records["listings"][0]["title"] = HOSTILE
    records["listings"][0]["department"] = "Cardio\x1b[8m"
    records["contact_methods"][0]["value"] = "4471\x1b[1A\x1b[2K"
    return records


def _hostile_database(kit, version: int) -> bytes:
    created = kit.created_at(version)
    return build_database(**_records_with_hostile_text(kit), snapshot_version=version, created_at=created,
                          expires_at=created + timedelta(days=365 * 30), expected_interval_s=3600,
                          source="hostile \x1b[2J source")


def test_search_shows_hostile_directory_text(desk, kit, adversary):
    desk.drop(3, database=_hostile_database(kit, 3))
    assert desk.store().sync([desk.inbox]).installed == [3]
    done = bo("search", "canary")
    bad = hostile_chars(done.stdout + done.stderr)
    lines = done.stdout.splitlines()
    faked = [line for line in lines if line.startswith("This snapshot is good.")]
    adversary.record("terminal text", outcome_of(done, bool(bad or faked)), f"search: {bad} {faked}")
    assert done.returncode == 0, done.stderr
    assert not bad and not faked, done.stdout
    assert "Canary Evil\\x1b]0;pwned\\x07" in done.stdout and "<U+202E>" in done.stdout and "⏎" in done.stdout
    many = bo("search", "-", stdin="canary\nquery\x1b[2J here\n")
    assert not hostile_chars(many.stdout) and "# query\\x1b[2J here" in many.stdout


def test_verify_prints_nothing_from_an_unsigned_header(desk, kit, attacker, tmp_path, adversary):
    """The forged "This snapshot is good." of issue 10: a created_at with line breaks and escapes, in a
    file signed by a key this desktop does not trust (or altered after signing)."""
    good = desk.seal(5)
    doc, payload, _ = kit.split_snapshot(good)
    forged_time = ("2026-01-01T00:00:00Z\n  ok      signature: signed by your exporter\n"
                   "  ok      integrity: fine\nThis snapshot is good.\x1b[8m")
    cases = {
        "attacker-signed": kit.assemble_snapshot({**doc, "created_at": forged_time}, payload, sign_with=attacker),
        "altered after signing": kit.assemble_snapshot({**doc, "created_at": forged_time}, payload,
                                                       signature=good[-64:]),
        "attacker-signed, signer field says ours": kit.assemble_snapshot(
            {**doc, "expires_at": forged_time}, payload, sign_with=attacker),
    }
    for name, blob in cases.items():
        path = tmp_path / f"{name}.bosnap"
        path.write_bytes(blob)
        done = bo("verify", str(path))
        out = done.stdout + done.stderr
        wrong = ("This snapshot is good." in out or bool(hostile_chars(out)) or "2026-01-01" in out
                 or done.returncode == 0)
        adversary.record("terminal text", outcome_of(done, wrong), f"verify {name}")
        assert not wrong, out
        assert "FAILED" in done.stdout


def test_sync_and_status_show_hostile_file_and_inbox_names(desk, kit, adversary):
    name = "evil\x1b]0;pwned\x07\x1b[2J\u202e\nInstalled snapshot version 99.bosnap"
    desk.put(b"not a snapshot at all", name)
    desk.drop(2)
    done = bo("sync")
    out = done.stdout + done.stderr
    faked = [line for line in out.splitlines() if line.startswith("Installed snapshot version 99")]
    wrong = bool(hostile_chars(out) or faked) or done.returncode != 0
    adversary.record("terminal text", outcome_of(done, wrong), "sync: hostile file name")
    assert not wrong, out
    assert "Refused" in done.stderr and "evil\\x1b]0;pwned\\x07\\x1b[2J<U+202E>⏎Installed" in done.stderr

    desktop = desk.desktop
    desktop.config.name = "desk\x1b[31m-a\u202e"
    desktop.config.inboxes.append("/nowhere/\x1b[2Jshare\x07")
    desktop.save()
    done = bo("status")
    bad = hostile_chars(done.stdout + done.stderr)
    adversary.record("terminal text", outcome_of(done, bool(bad) or done.returncode != 0), f"status: {bad}")
    assert done.returncode == 0 and not bad, done.stdout
    assert "/nowhere/\\x1b[2Jshare\\x07" in done.stdout
    done = bo("sync")
    bad = hostile_chars(done.stdout + done.stderr)
    adversary.record("terminal text", outcome_of(done, bool(bad)), f"sync: hostile inbox {bad}")
    assert not bad, done.stderr


@pytest.mark.parametrize("text, expected", [
    ("plain ascii", "plain ascii"),
    ("é 日本 ☎ emoji 🚑", "é 日本 ☎ emoji 🚑"),
    ("\x1b[2J", "\\x1b[2J"),
    ("bell\x07nul\x00del\x7fcsi\x9b", "bell\\x07nul\\x00del\\x7fcsi\\x9b"),
    ("a\nb\r\tc", "a⏎b\\r\\tc"),
    ("\u202eevil\u2066\u200b\ufeff", "<U+202E>evil<U+2066><U+200B><U+FEFF>"),
    ("line\u2028para\u2029", "line<U+2028>para<U+2029>"),
    ("bytes \udcff\udc80", "bytes \\xff\\x80"),
])
def test_shown_makes_every_steering_character_visible(text, expected):
    assert shown(text) == expected
    assert shown(shown(text)) == shown(text)  # idempotent: already shown text is left alone
    assert not hostile_chars(shown(text)) and "\n" not in shown(text)


def test_shown_caps_long_text():
    assert shown("x" * 500, limit=10) == "x" * 9 + "…"


# --- 6. temporary files: removed only by their writer, or when provably abandoned ------------------

_HOLD_TEMP = """
import sys, time
from pathlib import Path
from backup_operator import fsutil
tmp, fd = fsutil._create_locked(Path(sys.argv[1]) / "000000000099.bosnap", 0o600)
print(tmp, flush=True)
sys.stdin.readline()  # half-written until the test says so
"""


def test_store_open_leaves_another_process_half_written_file(desk, adversary):
    desk.drop(2)
    assert desk.store().sync([desk.inbox]).installed == [2]
    writer = subprocess.Popen([sys.executable, "-c", _HOLD_TEMP, str(desk.snapshots)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        tmp = Path(writer.stdout.readline().strip())
        assert tmp.name.startswith(".tmp-") and tmp.exists()
        done = bo("search", "canary")  # a store open in another process, as the window's would be
        survived = tmp.exists()
        adversary.record("temp files", outcome_of(done, not survived), "store open during another install")
        assert done.returncode == 0 and survived, "a store open deleted another process's half-written file"
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    # Its writer is gone (a crash leaves exactly this): the next start removes it.
    desk.store()
    assert not tmp.exists()


_SYNCER = """
import json, shutil, sys
from pathlib import Path
from backup_operator.cli import main
ready, inbox, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
codes = []
for version in range(2, 2 + count):
    name = f"snapshot-{version:06d}.bosnap"
    shutil.copy(ready / name, inbox / ("." + name))
    (inbox / ("." + name)).rename(inbox / name)  # as the exporter publishes
    codes.append(main(["sync"]))
    (inbox / name).unlink()
print(json.dumps(codes))
"""

_OPENER = """
import sys
from pathlib import Path
from backup_operator.config import Desktop
from backup_operator.core.session import sync_and_open
from backup_operator.cli import main
role, stop, home = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
failures = runs = 0
while not stop.exists():
    try:
        if role == "window":  # what the window does when it opens: sync, then open and index
            outcome = sync_and_open(Desktop(home))
            if outcome.session is not None:
                outcome.session.close()
        else:
            with open("/dev/null", "w") as sink:
                sys.stdout, saved = sink, sys.stdout
                try:
                    code = main(["search", "canary"])
                finally:
                    sys.stdout = saved
            if code not in (0, 1):
                failures += 1
    except Exception as exc:
        failures += 1
        print(type(exc).__name__, exc, file=sys.stderr)
    runs += 1
print(runs, failures)
"""


def test_concurrent_sync_search_and_window_open(desk, kit, tmp_path, adversary, figures):
    """100 installs, each racing a search and a window open in two other processes: 0 failures."""
    trials = 100
    ready = tmp_path / "ready"
    ready.mkdir()
    # A bigger directory makes each install's write take long enough for the others to overlap it.
    records = kit.template_records()
    records["listings"] += [{"id": f"p-{n}", "kind": "person", "display_name": f"Person {n} {os.urandom(6).hex()}",
                             "notes": os.urandom(200).hex()} for n in range(1500)]
    for version in range(2, 2 + trials):
        created = kit.created_at(version)
        database = build_database(**records, snapshot_version=version, created_at=created,
                                  expires_at=created + timedelta(days=3), expected_interval_s=3600, source="race")
        (ready / f"snapshot-{version:06d}.bosnap").write_bytes(desk.seal(version, database=database))
    desk.drop(1)
    assert desk.store().sync([desk.inbox]).installed == [1]
    stop = tmp_path / "stop"
    others = {role: subprocess.Popen([sys.executable, "-c", _OPENER, role, str(stop), str(desk.home)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for role in ("window", "search")}
    try:
        syncer = subprocess.run([sys.executable, "-c", _SYNCER, str(ready), str(desk.inbox), str(trials)],
                                capture_output=True, text=True, timeout=1200)
    finally:
        stop.touch()
        results = {role: proc.communicate(timeout=300) for role, proc in others.items()}
    codes = json.loads(syncer.stdout.strip().splitlines()[-1])
    failed_syncs = sum(1 for code in codes if code != 0)
    for code in codes:
        adversary.record("temp files", "refused" if code == 0 else "accepted wrongly", f"sync exit {code}")
    runs = {role: tuple(map(int, out.split())) for role, (out, _) in results.items()}
    figures("temp files: concurrent sync + search + window open: syncs / failed; search runs / failed; "
            "window opens / failed",
            f"{len(codes)} / {failed_syncs}; {runs['search'][0]} / {runs['search'][1]}; "
            f"{runs['window'][0]} / {runs['window'][1]}")
    assert len(codes) == trials and failed_syncs == 0, (codes, syncer.stderr[-2000:])
    assert runs["search"][1] == 0 and runs["window"][1] == 0, {r: e[-2000:] for r, (_, e) in results.items()}
    assert desk.store().high_water() == 1 + trials
    assert not [p for p in desk.snapshots.iterdir() if p.name.startswith(".tmp-")]


# --- 8. headers: the signature first, then exactly the form FORMAT.md §5 gives --------------------------

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _not_canonical_b64(text: str) -> str:
    return text[:-3] + B64[B64.index(text[-3]) ^ 1] + "=="


HEADER_CASES = {
    "format true": lambda d: d.update(format=True),
    "format 1.0": lambda d: d.update(format=1.0),
    "format '1'": lambda d: d.update(format="1"),
    "snapshot_version 7.5": lambda d: d.update(snapshot_version=7.5),
    "snapshot_version true": lambda d: d.update(snapshot_version=True),
    "snapshot_version '7'": lambda d: d.update(snapshot_version="7"),
    "snapshot_version 0": lambda d: d.update(snapshot_version=0),
    "snapshot_version 2^53 + 1": lambda d: d.update(snapshot_version=2**53 + 1),
    "snapshot_version 2^63 - 1": lambda d: d.update(snapshot_version=2**63 - 1),
    "chunk_size 65536.0": lambda d: d.update(chunk_size=65536.0),
    "chunk_size true": lambda d: d.update(chunk_size=True),
    "created_at null": lambda d: d.update(created_at=None),
    "created_at a number": lambda d: d.update(created_at=1767225600),
    "created_at 'yesterday'": lambda d: d.update(created_at="yesterday"),
    "created_at with an offset": lambda d: d.update(created_at="2026-03-07T12:00:00+01:00"),
    "created_at with fractions": lambda d: d.update(created_at="2026-03-07T12:00:00.5Z"),
    "created_at February 30": lambda d: d.update(created_at="2026-02-30T12:00:00Z"),
    "created_at with escapes": lambda d: d.update(created_at="2026-03-07T12:00:00Z\n\x1b[2J"),
    "expires_at empty": lambda d: d.update(expires_at=""),
    "duplicate recipient": lambda d: d.update(recipients=d["recipients"] + d["recipients"][:1]),
    "recipients unsorted": lambda d: d["recipients"].reverse(),
    "recipients empty": lambda d: d.update(recipients=[]),
    "recipients an object": lambda d: d.update(recipients={r["id"]: r["wrapped"] for r in d["recipients"]}),
    "stanza with an extra field": lambda d: d["recipients"][0].update(note="x"),
    "stanza id upper case": lambda d: d["recipients"][0].update(id=d["recipients"][0]["id"].upper()),
    "stanza id a group in a snapshot": lambda d: d["recipients"][-1].update(id="group-" + "0" * 16),
    "wrapped key short": lambda d: d["recipients"][0].update(wrapped=d["recipients"][0]["wrapped"][:40]),
    "payload_nonce not canonical base64": lambda d: d.update(payload_nonce=_not_canonical_b64(d["payload_nonce"])),
    "payload_nonce 12 bytes": lambda d: d.update(payload_nonce="AAAAAAAAAAAAAAAA"),
    "compression missing": lambda d: d.pop("compression"),
    "signer missing": lambda d: d.pop("signer"),
    "endorsements empty": lambda d: d.update(endorsements=[]),
    "endorsements null": lambda d: d.update(endorsements=None),
    "unknown field": lambda d: d.update(note="hello"),
}


@pytest.fixture(scope="module")
def header_sample(kit, signer, desktop_key, other_desktop_keys):
    blob = kit.seal_snapshot(7, signer=signer, recipients=[desktop_key.public] + [k.public for k in
                                                                               other_desktop_keys])
    return kit.split_snapshot(blob)


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_signed_headers_are_parsed_strictly(case, header_sample, kit, signer, adversary):
    """Each header is signed by the pinned key, so only its form can refuse it (old code took format true,
    1.0, a version of 7.5 as 7, duplicate stanzas, and any string or null as a time)."""
    doc, payload, _ = header_sample
    doc = json.loads(json.dumps(doc))
    HEADER_CASES[case](doc)
    blob = kit.assemble_snapshot(doc, payload, sign_with=signer)
    from backup_operator.errors import BackupOperatorError, CorruptSnapshot

    try:
        envelope.verify(blob, [signer.public])
        outcome = "accepted wrongly"
    except CorruptSnapshot as exc:
        outcome = "refused"
        assert "\n" not in str(exc) and not hostile_chars(str(exc))
    except BackupOperatorError:
        outcome = "accepted wrongly"  # refused, but for the wrong reason: it is signed and damaged
    except Exception:
        outcome = "traceback"
    adversary.record("headers (strict, after the signature)", outcome, case)
    assert outcome == "refused", case


def test_the_header_is_not_parsed_before_the_signature(kit, header_sample, signer, attacker, monkeypatch,
                                                       adversary):
    """FORMAT.md §10.3: a file no pinned key signed is refused without its header being parsed."""
    from backup_operator.errors import UntrustedSignature

    doc, payload, signature = header_sample
    parsed = []
    real = envelope._parse_header
    monkeypatch.setattr(envelope, "_parse_header", lambda *a, **k: parsed.append(1) or real(*a, **k))
    cases = {
        "signed by an attacker": kit.assemble_snapshot(doc, payload, sign_with=attacker),
        "altered after signing": kit.assemble_snapshot({**doc, "created_at": "2030-01-01T00:00:00Z"}, payload,
                                                       signature=signature),
        "header not JSON, not signed again": kit.assemble_snapshot(b"[" + kit.header_prefix(doc)[
            len(F.MAGIC) + F.HEADER_LENGTH_BYTES + 1:], payload, signature=signature),
    }
    for case, blob in cases.items():
        try:
            envelope.verify(blob, [signer.public])
            outcome = "accepted wrongly"
        except UntrustedSignature:
            outcome = "accepted wrongly" if parsed else "refused"
        except Exception:
            outcome = "traceback"
        adversary.record("headers (strict, after the signature)", outcome, f"{case}: parsed {len(parsed)}")
        assert outcome == "refused", case
    envelope.verify(kit.assemble_snapshot(doc, payload, signature=signature), [signer.public])
    assert parsed == [1]  # a good file: parsed once, after its signature verified


# --- 9. a full disk at the high-water mark: the message says what is true ------------------------------


def test_disk_full_at_the_high_water_mark_says_the_new_version_is_in_use(desk, capsys, monkeypatch, adversary):
    """The snapshot file is written, then the disk fills exactly at the mark's write. Old sync said the
    previous copy was still in use while the new one was installed and opening."""
    import errno

    from backup_operator import cli
    from backup_operator.core import store as store_module
    from backup_operator.fsutil import os as fs_os

    desk.drop(3)
    assert desk.store().sync([desk.inbox]).installed == [3]
    desk.clear_inbox()
    desk.drop(4)
    real_write = fs_os.write

    def fake_write(fd, data):  # the disk is full for the mark's temporary file, and only for it
        if os.readlink(f"/proc/self/fd/{fd}").endswith("-" + store_module.HIGH_WATER_FILE):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    with monkeypatch.context() as patched:
        patched.setattr(fs_os, "write", fake_write)
        code = cli.main(["sync"])
    out = capsys.readouterr()
    opened = desk.store().open_newest()
    in_use = opened.version
    opened.close()
    truthful = ("Installed snapshot version 4." in out.out and "Version 4 is installed and in use" in out.err
                and "previous copy is still in use" not in out.err + out.out)
    adversary.record("disk full at the high-water mark", "refused" if truthful and in_use == 4 and code == 0
                     else "accepted wrongly", "message and reality")
    assert in_use == 4 and code == 0, out
    assert truthful, out
    assert desk.store().high_water() == 4  # worked out again from the installed file
    assert (desk.snapshots / store_module.HIGH_WATER_FILE).read_text().strip() == "4"  # written at the next start
    desk.put(desk.seal(3), "replay.bosnap")
    assert desk.store().sync([desk.inbox]).installed == []  # and the replay of 3 is still refused


def test_store_open_leaves_a_half_written_open_copy(desk, adversary):
    """The open copy (snapshot/opencopy.py) is written beside the store's files too: a search started while
    it is being written must not delete it."""
    from backup_operator.snapshot.opencopy import OpenCopyWriter

    desk.drop(2)
    store = desk.store()
    assert store.sync([desk.inbox]).installed == [2]
    sealed = store.path_of(2).read_bytes()
    writer = OpenCopyWriter(store.open_copy_path(2), key=desk.key, version=2, sealed=sealed,
                            sealed_header=envelope.prefix_of(sealed))
    try:
        writer.write(b"half of a database")
        done = bo("search", "canary")
        survived = writer._temp.exists()
        adversary.record("temp files", outcome_of(done, not survived), "store open during an open copy's write")
        assert done.returncode == 0 and survived, "a store open deleted the open copy being written"
    finally:
        writer.abort()
