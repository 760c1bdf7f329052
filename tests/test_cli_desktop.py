"""The desktop command line, run in-process (like sqlite-utils' tests) and, where the claim is about the
real program, as ``python -m backup_operator`` in a subprocess.

Claims checked here: every command has a working ``--help``; bad input gives one line, a distinct exit
code and leaves the last good snapshot in use; sync and search leave no plaintext on disk.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from backup_operator import __version__, cli
from backup_operator.config import KEY_FILE, PASSPHRASE_ENV, Desktop
from backup_operator.errors import (
    CorruptSnapshot,
    KeyStoreUnavailable,
    NoDesktopKey,
    NotARecipient,
    NotASnapshot,
    NotTrusted,
    RollbackRefused,
    StorageError,
    TooLarge,
    UnsupportedFormat,
    UntrustedSignature,
    WrongPassphrase,
)
from backup_operator.snapshot import envelope, keys


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- --help of every command ------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(cli.build_parser())


def test_the_desktop_commands_are_all_there():
    top = {c[0] for c in COMMANDS}
    assert {"enroll", "trust", "inbox", "sync", "verify", "search", "status"} <= top
    assert {("inbox", "add"), ("inbox", "remove"), ("inbox", "list")} <= set(COMMANDS)


@pytest.mark.parametrize("command", [()] + COMMANDS, ids=lambda c: " ".join(c) or "(none)")
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: backup-operator") and (not command or command[-1] in out)
    if not command:
        for name in {c[0] for c in COMMANDS}:
            assert name in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and __version__ in capsys.readouterr().out


# --- the plain path -------------------------------------------------------------------------------


def test_enroll_with_a_key_file(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("BACKUP_OPERATOR_HOME", str(home))
    monkeypatch.setenv(PASSPHRASE_ENV, "a kit passphrase")
    monkeypatch.delenv("BACKUP_OPERATOR_SITE", raising=False)
    code, out, _ = run(capsys, "enroll", "--name", "switchboard-7", "--key-file")
    assert code == 0
    key_line = out.strip().splitlines()[-1]
    public = keys.DesktopPublicKey.from_text(key_line)
    desktop = Desktop(home)
    assert desktop.config.key_store == "file" and desktop.config.public_key == key_line
    assert desktop.key().public == public
    key_file = (home / KEY_FILE).read_bytes()
    assert desktop.key().raw() not in key_file and desktop.key().raw().hex().encode() not in key_file
    assert oct((home / KEY_FILE).stat().st_mode & 0o777) == "0o600"
    # Enrolling twice needs --replace (IT must then swap the key), and says so in one line.
    code, _, err = run(capsys, "enroll", "--key-file")
    assert code == 2 and "--replace" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "enroll", "--key-file", "--replace")
    assert code == 0 and out.strip().splitlines()[-1] != key_line


def test_trust_inbox_sync_verify_search_status(desk, kit, capsys, tmp_path):
    # A fresh home that has only a key: trust and inbox through the command line.
    desktop = Desktop(desk.home)
    desktop.config.trusted_signers, desktop.config.inboxes = [], []
    desktop.save()
    key_file = tmp_path / "exporter-key.txt"
    key_file.write_text(f"# from backup-operator-export init\n{desk.signer.public.to_text()}\n")
    code, out, _ = run(capsys, "trust", str(key_file))
    assert code == 0 and desk.signer.public.to_text() in out
    assert run(capsys, "trust", desk.signer.public.to_text())[0] == 0
    assert Desktop(desk.home).config.trusted_signers == [desk.signer.public.to_text()]
    code, out, _ = run(capsys, "inbox", "add", str(desk.inbox))
    assert code == 0 and run(capsys, "inbox", "list")[1].strip() == str(desk.inbox)
    code, out, _ = run(capsys, "inbox", "add", str(tmp_path / "later"))
    assert code == 0 and "does not exist yet" in out
    assert run(capsys, "inbox", "remove", str(tmp_path / "later"))[0] == 0
    code, _, err = run(capsys, "inbox", "remove", str(tmp_path / "never"))
    assert code == 2 and err.count("\n") == 1

    path = desk.drop(3)
    code, out, err = run(capsys, "sync")
    assert (code, out.strip(), err) == (0, "Installed snapshot version 3.", "")
    receipt = json.loads((desk.inbox / "receipts" / "desk-a.json").read_text())
    assert receipt["snapshot_version"] == 3 and receipt["public_key"] == desk.key.public.to_text()
    code, out, _ = run(capsys, "sync")
    assert code == 0 and out.strip() == "Up to date: version 3 is installed."

    code, out, _ = run(capsys, "verify", str(path))
    assert code == 0 and out.strip().endswith("This snapshot is good.") and "FAILED" not in out
    code, out, _ = run(capsys, "verify", str(desk.drop(4)))
    assert code == 0 and "4 is newer than the installed 3" in out

    code, out, _ = run(capsys, "search", "zyxwquorth")
    assert code == 0 and kit.CANARIES[0] in out and "pager 4471" in out and "version 3" in out
    code, out, _ = run(capsys, "search", "canarysson zyxwquorth", "--json")
    doc = json.loads(out)
    assert doc["snapshot_version"] == 3 and [r["id"] for r in doc["results"]] == ["p-canary-1"]
    code, out, _ = run(capsys, "search", "555-0199", "--json")
    assert [r["id"] for r in json.loads(out)["results"]] == ["s-canary-3"]
    code, out, _ = run(capsys, "search", "qqqq zzzz xxxx")
    assert code == 1 and "nothing found" in out  # like grep: a script can tell "found nothing" apart

    code, out, _ = run(capsys, "status")
    assert code == 0 and "version 3" in out and "6 listings" in out and str(desk.inbox) in out


def test_sync_pins_an_endorsed_new_signing_key(desk, kit, capsys):
    new = keys.SignerKey.from_raw(kit.fixed_bytes("cli rotated key"))
    desk.drop(3)
    assert run(capsys, "sync")[0] == 0
    desk.clear_inbox()
    desk.drop(4, signer=new, endorsements=[envelope.Endorsement.make(desk.signer, new.public)])
    code, out, _ = run(capsys, "sync")
    assert code == 0 and f"Now also trusting the exporter's new signing key {new.public.to_text()}" in out
    assert new.public.to_text() in Desktop(desk.home).config.trusted_signers
    desk.clear_inbox()
    desk.drop(5, signer=new)  # no endorsement needed any more
    code, out, _ = run(capsys, "sync")
    assert code == 0 and "Installed snapshot version 5." in out


def test_nothing_to_open_yet(desk, capsys):
    code, _, err = run(capsys, "search", "anything")
    assert code == 30 and err.count("\n") == 1 and "sync" in err
    desktop = Desktop(desk.home)
    desktop.config.inboxes = []
    desktop.save()
    code, _, err = run(capsys, "sync")
    assert code == 2 and "inbox add" in err


# --- 8. bad input: one line, a distinct exit code, the last good snapshot still opens ------------------


def _prepare_case(case: str, d, kit, attacker, other_desktop_keys, monkeypatch) -> Path | None:
    """Break desktop ``d`` (with v3 installed) as ``case`` says; return the file to verify and sync."""
    desktop = Desktop(d.home)
    if case == "not a snapshot":
        return d.put(b"%PDF-1.7 this is a printout, not a snapshot\n" * 10, "printout.bosnap")
    if case == "unknown format version":
        return d.put(b"backup-operator.snapshot/v3\n" + os.urandom(3000), "from-the-future.bosnap")
    if case == "too large":
        desktop.config.size_cap_mb = 1
        desktop.save()
        path = d.put(d.seal(4), "huge.bosnap")
        with open(path, "r+b") as handle:
            handle.truncate(10 * 1024 * 1024)
        return path
    if case == "signed by someone else":
        return d.drop(4, signer=attacker)
    if case == "older version":
        return d.drop(2)
    if case == "not sealed for this desktop":
        return d.drop(4, recipients=[k.public for k in other_desktop_keys])
    if case == "damaged but signed":
        header, payload, _ = kit.split_snapshot(d.seal(4))
        return d.put(kit.assemble_snapshot(header, payload[:-100], sign_with=d.signer), "damaged.bosnap")
    if case == "key file missing":
        (d.home / KEY_FILE).unlink()
        return d.drop(4)
    if case == "wrong passphrase":
        monkeypatch.setenv(PASSPHRASE_ENV, "not the passphrase")
        return d.drop(4)
    if case == "key store unavailable":
        desktop.config.key_store = "keyring"
        desktop.save()
        import keyring

        def unreachable(*args, **kwargs):
            raise RuntimeError("no D-Bus session")

        monkeypatch.setattr(keyring, "get_password", unreachable)
        return d.drop(4)
    if case == "no exporter key pinned":
        desktop.config.trusted_signers = []
        desktop.save()
        return d.drop(4)
    if case == "full disk":
        real_write = os.write

        def full(fd, data):
            if fd > 2:  # leave stdout and stderr alone
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", full)
        return d.drop(4)
    raise AssertionError(case)


BAD_INPUT = {
    # case: (error for verify or None when verify does not apply, error for sync)
    "not a snapshot": (NotASnapshot, NotASnapshot),
    "unknown format version": (UnsupportedFormat, UnsupportedFormat),
    "too large": (TooLarge, TooLarge),
    "signed by someone else": (UntrustedSignature, UntrustedSignature),
    "older version": (RollbackRefused, RollbackRefused),
    "not sealed for this desktop": (NotARecipient, NotARecipient),
    "damaged but signed": (CorruptSnapshot, CorruptSnapshot),
    "key file missing": (NoDesktopKey, NoDesktopKey),
    "wrong passphrase": (WrongPassphrase, WrongPassphrase),
    "key store unavailable": (KeyStoreUnavailable, KeyStoreUnavailable),
    "no exporter key pinned": (NotTrusted, NotTrusted),
    "full disk": (None, StorageError),  # verify writes nothing
}


def test_bad_input_gives_one_line_and_a_distinct_exit_code(make_desk, kit, attacker, other_desktop_keys,
                                                            capsys, monkeypatch, figures):
    seen: dict[str, dict[str, tuple[int, str]]] = {"verify": {}, "sync": {}}
    for case, (verify_error, sync_error) in BAD_INPUT.items():
        d = make_desk(case.replace(" ", "-"))
        with monkeypatch.context() as m:
            m.setenv("BACKUP_OPERATOR_HOME", str(d.home))
            m.setenv(PASSPHRASE_ENV, kit.PASSPHRASE)
            m.delenv("BACKUP_OPERATOR_SITE", raising=False)
            d.drop(3)
            assert run(capsys, "sync")[0] == 0
            d.clear_inbox()
            path = _prepare_case(case, d, kit, attacker, other_desktop_keys, m)

            if verify_error is not None:
                code, out, err = run(capsys, "verify", str(path))
                failed = [line for line in out.splitlines() if line.startswith("  FAILED  ")]
                assert code == verify_error.exit_code, (case, out, err)
                assert len(failed) == 1 and failed[0] == out.rstrip("\n").splitlines()[-1], (case, out)
                assert err == "" and "Traceback" not in out
                seen["verify"][case] = (code, failed[0][len("  FAILED  "):])

            code, out, err = run(capsys, "sync")
            assert code == sync_error.exit_code, (case, code, out, err)
            assert "Traceback" not in out + err
            lines = err.splitlines()
            assert len(lines) == 1 and err.endswith("\n"), (case, err)  # one line on stderr, nothing else
            seen["sync"][case] = (code, lines[0])
        # With everything restored (passphrase, disk), the last good snapshot still opens.
        opened = d.store().open_newest()
        assert opened.version == 3 and not opened.skipped, case
        opened.close()

    for command, results in seen.items():
        codes = [code for code, _ in results.values()]
        assert len(set(codes)) == len(codes), (command, results)  # distinct per kind of problem
        for case, (_, message) in results.items():
            assert message.rstrip().endswith((".", ")")), (command, case, message)
    figures("bad input: exit codes (verify)", {c: v[0] for c, v in seen["verify"].items()})
    figures("bad input: exit codes (sync)", {c: v[0] for c, v in seen["sync"].items()})
    figures("bad input: sync messages", {c: v[1] for c, v in seen["sync"].items()})


def test_a_real_full_disk_through_the_command_line(tiny_disk, kit, signer, desktop_key, tmp_path, monkeypatch,
                                                   capsys):
    home, inbox = tiny_disk / "home", tmp_path / "inbox"
    kit.make_home(home, desktop_key, signer.public, inbox, "kit-laptop")
    monkeypatch.setenv("BACKUP_OPERATOR_HOME", str(home))
    monkeypatch.setenv(PASSPHRASE_ENV, kit.PASSPHRASE)
    monkeypatch.delenv("BACKUP_OPERATOR_SITE", raising=False)
    (inbox / "v1.bosnap").write_bytes(kit.seal_snapshot(1, signer=signer, recipients=[desktop_key.public]))
    assert run(capsys, "sync")[0] == 0
    kit.fill_disk(tiny_disk)
    (inbox / "v2.bosnap").write_bytes(kit.seal_snapshot(2, signer=signer, recipients=[desktop_key.public]))
    code, out, err = run(capsys, "sync")
    assert code == StorageError.exit_code and "full" in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "search", "zyxwquorth")
    assert code == 0 and "version 1" in out and kit.CANARIES[0] in out


# --- 6. no plaintext on disk ------------------------------------------------------------------------------


def _files_under(*roots: Path, since: float | None = None):
    for root in roots:
        if not root.exists():
            continue
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = Path(dirpath) / name
                try:
                    if path.is_symlink() or not path.is_file():
                        continue
                    if since is not None and path.stat().st_mtime < since:
                        continue
                    if path.stat().st_size > 64 * 1024 * 1024:
                        continue
                    yield path, path.read_bytes()
                except OSError:
                    continue


def _plaintext_found(kit, roots, since=None, *, sqlite_header=True, skip=()) -> tuple[list[str], int]:
    needles = []
    for canary in kit.CANARIES:
        for word in canary.split():
            needles += [word.encode(), word.lower().encode(), word.encode("utf-16-le")]
    if sqlite_header:
        needles.append(b"SQLite format 3")
    found, scanned = [], 0
    for path, data in _files_under(*roots, since=since):
        if any(path.is_relative_to(s) for s in skip):
            continue
        scanned += 1
        found += [f"{path}: {needle!r}" for needle in needles if needle in data]
    return found, scanned


def test_no_plaintext_on_disk_after_sync_and_search(desk, kit, tmp_path, tmp_path_factory, monkeypatch, capsys,
                                                    figures):
    started = time.time() - 1
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    desk.drop(3)

    # In-process.
    assert run(capsys, "sync")[0] == 0
    for query in ("zyxwquorth", "Quorrathen", "xylotherapy", "4471"):
        code, out, _ = run(capsys, "search", query)
        assert code == 0 and any(c in out for c in kit.CANARIES), (query, out)  # it did decrypt
    assert run(capsys, "search", "canary", "--json", "--limit", "50")[0] == 0
    assert run(capsys, "status")[0] == 0
    assert run(capsys, "verify", str(desk.inbox / "snapshot-000003.bosnap"))[0] == 0

    # The real program, as a separate process, with its own temp, home and config folders.
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(user_home), "TMPDIR": str(temp),
           "XDG_CONFIG_HOME": str(user_home / ".config"), "XDG_DATA_HOME": str(user_home / ".local/share"),
           "XDG_CACHE_HOME": str(user_home / ".cache"), "BACKUP_OPERATOR_HOME": str(desk.home),
           PASSPHRASE_ENV: kit.PASSPHRASE, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    desk.drop(4)
    outputs = []
    for argv in (["sync"], ["search", "zyxwquorth"], ["search", "vexmilda", "--json"], ["status"]):
        done = subprocess.run([sys.executable, "-m", "backup_operator", *argv], env=env, capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout)
    assert "Installed snapshot version 4." in outputs[0]
    assert kit.CANARIES[0] in outputs[1] and kit.CANARIES[1] in outputs[2]

    found, scanned = _plaintext_found(kit, [tmp_path])
    # The machine's own temp folders, for files that appeared during the test. Other programs (and other
    # test runs, whose pytest folders are skipped) write there too, so only the canary names count:
    # they exist nowhere but in this test's snapshots.
    system_temp = [Path(p) for p in sorted({"/tmp", "/var/tmp", "/dev/shm", tempfile.gettempdir()})
                   if Path(p).is_dir()]
    found_elsewhere, scanned_elsewhere = _plaintext_found(
        kit, system_temp, since=started, sqlite_header=False,
        skip=[tmp_path_factory.getbasetemp().parent, tmp_path])
    figures("no plaintext on disk: files scanned (test folders / new files in system temp) and hits",
            f"{scanned} / {scanned_elsewhere}, hits {len(found) + len(found_elsewhere)}")
    assert scanned >= 8  # the home, key file, config, two sealed files, receipts, ...
    assert found == [] and found_elsewhere == []
    # Control: the same scan does find the names when they are on disk.
    (temp / "leak.txt").write_text(f"{kit.CANARIES[2]}\n")
    assert _plaintext_found(kit, [tmp_path])[0]


def test_sync_with_the_inbox_offline(desk, capsys, tmp_path):
    """During an outage the share is gone: sync says so; with data installed that is not a failure."""
    offline = tmp_path / "offline-share"
    d = desk.desktop
    d.config.inboxes = [str(offline)]
    d.save()
    code, out, err = run(capsys, "sync")
    assert code == 30 and "cannot be reached" in err and "No snapshot is installed yet" in out

    d.config.inboxes = [str(desk.inbox)]
    d.save()
    desk.drop(2)
    assert run(capsys, "sync")[0] == 0
    d.config.inboxes = [str(offline)]
    d.save()
    code, out, err = run(capsys, "sync")
    assert code == 0 and "cannot be reached" in err and "Up to date: version 2" in out


# --- hostile key files (issue 10, item 5) -------------------------------------------------------------

_PEAK_RSS = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
             "print('peak-rss-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
             "sys.exit(done.returncode)")
HOSTILE_KDF = [{"n": 2**40}, {"n": -1}, {"n": 2**24}, {"p": 2**20}, {"r": 2**31}, {"r": 2**62}, {"n": "big"},
               {"n": 1.5}, {"p": None}, {"r": False}, {"name": ["scrypt"]}, {"salt": {"x": 1}}]


def test_hostile_key_files_give_one_sentence_fast_with_little_memory(desk, tmp_path, figures):
    """Each damaged or hostile key file: exit code of NoDesktopKey, one line, no traceback, fast, small RSS."""
    snapshot = desk.drop(3)
    good = json.loads((desk.home / KEY_FILE).read_text())
    env = {**os.environ, "BACKUP_OPERATOR_HOME": str(desk.home), PASSPHRASE_ENV: "kit passphrase for tests",
           "LANG": "C.UTF-8"}
    env.pop("BACKUP_OPERATOR_SITE", None)
    cases = [{**good, "kdf": {**good["kdf"], **change}} for change in HOSTILE_KDF]
    cases += [{**good, "nonce": 7}, {**good, "public": None}, [good], "key", {**good, "sealed": "@@"}]
    seen = {"tried": 0, "refused": 0, "accepted wrongly": 0, "tracebacks": 0}
    worst_rss_mb = worst_seconds = 0.0
    for doc in cases:
        (desk.home / KEY_FILE).write_text(json.dumps(doc))
        started = time.monotonic()
        # A small parent reports its one child's peak RSS (RUSAGE_CHILDREN holds only that child).
        done = subprocess.run([sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "backup_operator", "verify",
                               str(snapshot)], env=env, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
        err, rss_line = done.stderr.rsplit("peak-rss-kib ", 1)
        seen["tried"] += 1
        seen["tracebacks"] += "Traceback" in err
        failed = [line for line in done.stdout.splitlines() if "FAILED" in line]
        if done.returncode == NoDesktopKey.exit_code and len(failed) == 1 and failed[0].rstrip().endswith("."):
            seen["refused"] += 1
        elif done.returncode == 0:
            seen["accepted wrongly"] += 1
        worst_seconds = max(worst_seconds, seconds)
        worst_rss_mb = max(worst_rss_mb, int(rss_line) / 1024)
    figures("hostile key files (verify): cases", seen)
    figures("hostile key files: slowest refusal (s), largest peak RSS (MB)",
            f"{worst_seconds:.2f} s, {worst_rss_mb:.0f} MB")
    assert seen == {"tried": len(cases), "refused": len(cases), "accepted wrongly": 0, "tracebacks": 0}
    assert worst_seconds < 20  # a refusal before scrypt runs: the start of Python dominates
    assert worst_rss_mb < 400  # scrypt at the default cost alone is 128 MiB; 2^24 would be 16 GiB



def test_a_desktop_enrolled_without_a_signing_key_gets_one_with_enroll_upgrade(make_desk, monkeypatch, capsys):
    legacy = keys.DesktopKey.from_raw(b"\x07" * 32)  # a key made by the release before issue 10
    old = make_desk("legacy-desk", key=legacy)
    monkeypatch.setenv("BACKUP_OPERATOR_HOME", str(old.home))
    monkeypatch.setenv(PASSPHRASE_ENV, "kit passphrase for tests")
    monkeypatch.delenv("BACKUP_OPERATOR_SITE", raising=False)
    old.drop(2, recipients=[legacy.public])
    assert run(capsys, "sync")[0] == 0  # it keeps working as it is
    assert not Desktop(old.home).can_sign
    code, out, err = run(capsys, "enroll", "--upgrade")
    assert code == 0, err
    line = out.strip().splitlines()[-1]
    public = keys.DesktopPublicKey.from_text(line)
    assert public.can_sign and public.raw == legacy.public.raw and "--replace" in out
    opened = Desktop(old.home).key()
    assert opened.can_sign and opened.public == public and Desktop(old.home).config.public_key == line
    old.drop(3, recipients=[legacy.public])  # sealed to the same X25519 key as before: it still opens
    code, out, _ = run(capsys, "sync")
    assert code == 0 and "Installed snapshot version 3" in out
    code, out, _ = run(capsys, "enroll", "--upgrade")  # twice: nothing changes
    assert code == 0 and "already has a signing key" in out and out.strip().splitlines()[-1] == line


def test_enrol_makes_a_signing_key_in_the_same_key_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BACKUP_OPERATOR_HOME", str(tmp_path / "new-desk"))
    monkeypatch.setenv(PASSPHRASE_ENV, "pw for the new desk")
    monkeypatch.delenv("BACKUP_OPERATOR_SITE", raising=False)
    code, out, err = run(capsys, "enroll", "--name", "new-desk", "--key-file")
    assert code == 0, err
    public = keys.DesktopPublicKey.from_text(out.strip().splitlines()[-1])
    assert public.can_sign
    key = keys.open_key_file((tmp_path / "new-desk" / KEY_FILE).read_bytes(), "pw for the new desk")
    assert key.can_sign and key.public == public
    assert public.verify("receipt", key.sign("receipt", b"m"), b"m")
