"""The desktop command line: ``backup-operator COMMAND``. A thin layer over config, core and snapshot.

Every failure prints one sentence (what is wrong, what to do) to stderr and exits with the error's
code from ``errors``; an operator or a scheduled task never sees a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Only what every command needs is imported here: a command that opens a passphrase key file starts its
# scrypt (Desktop.unlock_in_background) first, and imports the rest (the store, the search, Qt) beside it.
from backup_operator import __version__
from backup_operator.config import Desktop, is_url
from backup_operator.core.wording import describe_age, describe_counts
from backup_operator.errors import BackupOperatorError, NoSnapshot, RollbackRefused
from backup_operator.paths import desktop_home
from backup_operator.textsafe import shown

__all__ = ["main", "build_parser"]

_STARTED = time.perf_counter()  # as early as this program can know: the self-test's cold-start clock


# --- commands --------------------------------------------------------------------------------


def cmd_enroll(desktop: Desktop, args: argparse.Namespace) -> int:
    if args.upgrade:
        public, changed = desktop.upgrade_key()
        if changed:
            print(f"Desktop {desktop.name!r} now has a signing key beside its key (same store); snapshots "
                  "open as before.")
        else:
            print(f"Desktop {desktop.name!r} already has a signing key; nothing was changed.")
        print("Give IT this line; they run: backup-operator-export recipients add "
              f"{desktop.name} <the key below> --replace")
        print(public.to_text())
        return 0
    use_file = True if args.key_file else (False if args.keyring else None)
    public = desktop.enroll(args.name, use_key_file=use_file, replace=args.replace,
                            announce=lambda text: print(text, file=sys.stderr))
    where = "the OS key store" if desktop.config.key_store == "keyring" else "a passphrase-protected key file"
    print(f"Enrolled desktop {desktop.name!r}; its private key is kept in {where}.")
    print("Give IT this line; they run: backup-operator-export recipients add "
          f"{desktop.name} <the key below>")
    print(public.to_text())
    return 0


def cmd_trust(desktop: Desktop, args: argparse.Namespace) -> int:
    text = args.key
    if not text.startswith("bo-signer-") and Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8").strip().splitlines()[-1]
    key = desktop.trust(text, only=args.only)
    if args.only:
        withdrawn = len(desktop.config.untrusted_signers)
        print(f"This desktop now trusts snapshots signed by {key.to_text()} only; every other exporter key "
              f"({withdrawn} withdrawn in all) is refused from now on, even when endorsed.")
    else:
        print(f"This desktop now trusts snapshots signed by {key.to_text()}.")
    return 0


def cmd_untrust(desktop: Desktop, args: argparse.Namespace) -> int:
    text = args.key
    if not text.startswith("bo-signer-") and Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8").strip().splitlines()[-1]
    key = desktop.untrust(text)
    print(f"This desktop no longer trusts {key.to_text()}: snapshots it signs or endorses are refused, and "
          "no sync pins it again.")
    try:
        left = desktop.trusted()
    except BackupOperatorError:
        left = []
    if not left:
        print("No exporter key is trusted now: nothing new installs until IT runs "
              "'backup-operator trust bo-signer-…' with the exporter's current key.", file=sys.stderr)
    return 0


def cmd_inbox(desktop: Desktop, args: argparse.Namespace) -> int:
    from backup_operator.core.fetch import check_inbox_url

    if args.inbox_command == "add" and is_url(args.path):
        desktop.add_inbox(args.path, receipts=args.receipts, ca_file=args.ca_file and
                          str(Path(args.ca_file).expanduser().resolve()))
        print(f"Added http(s) inbox {check_inbox_url(args.path)}; 'backup-operator sync' reads its manifest.")
        if args.path.lower().startswith("http://"):
            print("Plain http: fine on a trusted LAN (every file is signed and sealed), but use https "
                  "across the internet so that nobody can tell which version a desktop fetched.")
    elif args.inbox_command == "add":
        path = str(Path(args.path).expanduser())
        desktop.add_inbox(path, receipts=args.receipts, ca_file=args.ca_file)
        if not Path(path).is_dir():
            print(f"Added {path}; it does not exist yet (it will be read once it does).")
        else:
            print(f"Added inbox {path}.")
    elif args.inbox_command == "remove":
        desktop.remove_inbox(args.path if is_url(args.path) else str(Path(args.path).expanduser()))
        print(f"Removed inbox {args.path}.")
    else:
        for path in desktop.inbox_texts():
            print(path)
    return 0


def cmd_sync(desktop: Desktop, args: argparse.Namespace) -> int:
    if desktop.inbox_texts():
        desktop.unlock_in_background()  # scrypt beside imports, reading and checking the signature
    from backup_operator.core.pull import pull
    from backup_operator.core.store import write_receipt

    store = desktop.store()
    inboxes = desktop.inboxes()
    web_inboxes = desktop.http_inboxes()
    if not inboxes and not web_inboxes:
        print("This desktop has no inbox; IT adds one with 'backup-operator inbox add PATH'.", file=sys.stderr)
        return 2
    for inbox in inboxes:
        if not inbox.is_dir():
            # Normal during an outage (the share is offline): say so, keep what is installed, exit 0.
            print(f"The inbox {shown(inbox)} cannot be reached right now (is the share offline?).", file=sys.stderr)
    report = store.sync(inboxes)
    for web in web_inboxes:
        pulled = pull(store, web, cache_root=desktop.home / "downloads", desktop=desktop.name,
                      public_key=desktop.config.public_key, key=desktop.key_without_asking)
        if pulled.unreachable:
            print(f"The inbox {shown(web.url)} cannot be reached right now ({shown(pulled.unreachable)}).",
                  file=sys.stderr)
        elif pulled.via in ("deltas", "full"):
            print(f"Fetched version {pulled.installed[-1]} from {shown(web.url)} as "
                  f"{'deltas' if pulled.via == 'deltas' else 'a full snapshot'} "
                  f"({pulled.bytes_downloaded:,} bytes in {pulled.requests} requests).")
        if pulled.receipt_problem:
            print(f"Note: {shown(pulled.receipt_problem)}", file=sys.stderr)
        report.installed += pulled.installed
        report.refused += pulled.refused
        report.new_signers += [s for s in pulled.new_signers if s not in report.new_signers]
        report.current = max(report.current, pulled.current)
        if pulled.installed:
            report.problem = None
        elif report.problem is None and pulled.problem is not None and not report.installed:
            report.problem = pulled.problem
    for signer in report.new_signers:
        # A rotation: endorsed by a key this desktop trusts, unexpired; a withdrawn key is never pinned.
        if desktop.pin_endorsed(signer):
            print(f"Now also trusting the exporter's new signing key {signer.to_text()}.")
    for path, exc in report.refused:
        print(f"Refused {shown(path)}: {shown(exc)}", file=sys.stderr)
    if report.installed:
        print(f"Installed snapshot version {report.installed[0]}.")
        for note in store.notes:
            print(f"Note: {shown(note)}", file=sys.stderr)
    elif report.current:
        print(f"Up to date: version {report.current} is installed.")
    else:
        print("No snapshot is installed yet and the inbox has none that this desktop can open.")
    if report.current:
        at = store.installed_at(report.current) if report.current in store.installed_versions() else None
        for inbox in inboxes:
            if inbox.is_dir():
                try:
                    write_receipt(inbox, desktop=desktop.name, public_key=desktop.config.public_key,
                                  version=report.current, installed_at=at, key=desktop.key_without_asking(),
                                  keep_in=store.folder)
                except BackupOperatorError as exc:
                    print(f"Could not leave a receipt in {shown(inbox)}: {shown(exc)}", file=sys.stderr)
    from backup_operator.cli_outage import drop_journals_after_sync
    drop_journals_after_sync(desktop)  # what was written during the outage leaves once an inbox answers
    if report.problem:
        return report.problem.exit_code
    # A desktop with nothing installed cannot answer a single call: let a scheduled task or IT notice.
    return 0 if report.current else NoSnapshot.exit_code


def cmd_verify(desktop: Desktop, args: argparse.Namespace) -> int:
    """Explain, check by check, whether this desktop would install FILE, and why not."""
    from backup_operator.snapshot import envelope

    path = Path(args.file)
    cap = desktop.config.size_cap_mb * 1024 * 1024

    def step(name: str, detail: str) -> None:
        print(f"  ok      {name}: {detail}")

    print(f"Checking {shown(path)}")
    try:
        sealed = envelope.read_capped(path, cap)
        step("size", f"{len(sealed):,} bytes (cap {desktop.config.size_cap_mb} MiB)")
        store = desktop.store()
        # Nothing from the header is printed before the signature verifies: an unsigned header could
        # hold any text, including a forged "This snapshot is good." (issue 10, item 4).
        header = envelope.verify(sealed, store.trusted, revoked=store.revoked)
        step("signature", f"signed by {header.signer.to_text()}")
        step("format", f"version {header.format}, snapshot version {header.snapshot_version}, "
             f"created {shown(header.created_at)}, expires {shown(header.expires_at)}")
        mark = store.high_water()
        if header.snapshot_version <= mark:
            if header.snapshot_version in store.installed_versions():
                step("version", f"{header.snapshot_version} is already installed here")
                mark = header.snapshot_version - 1
            else:
                raise RollbackRefused(
                    f"This snapshot is version {header.snapshot_version}, older than version {mark} "
                    "already installed; it would be refused.")
        else:
            step("version", f"{header.snapshot_version} is newer than the installed {mark or 'nothing'}")
        verified = store.check_bytes(sealed, high_water=mark)
        verified.close()
        step("decrypt", f"sealed for this desktop ({len(header.recipients)} recipients)")
        step("integrity", f"hash and structure check pass; {describe_counts(verified.meta.counts)}")
    except BackupOperatorError as exc:
        print(f"  FAILED  {shown(' '.join(str(exc).split()))}")
        return exc.exit_code
    print("This snapshot is good.")
    return 0


def _open(desktop: Desktop):
    snapshot = desktop.store().open_newest()
    for path, exc in snapshot.skipped:
        print(f"Note: {shown(path.name)} could not be opened ({shown(exc)}); using version {snapshot.version}.",
              file=sys.stderr)
    return snapshot


class _StampedJsonLines(io.TextIOBase):
    """Adds fields to each JSON line as it is written, so a roster read from stdin streams its answers."""

    def __init__(self, out, extra: dict):
        self.out, self.extra, self.pending = out, extra, ""

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self.out.write(json.dumps({**json.loads(line), **self.extra}, ensure_ascii=False) + "\n")
            self.out.flush()
        return len(text)


def cmd_search(desktop: Desktop, args: argparse.Namespace) -> int:
    """Ranked matches; ``-`` reads one query per line (a roster checked in one run); --json for scripts.

    Exits 0 when every query found something, 1 when one found nothing (like grep).
    """
    desktop.unlock_in_background()  # scrypt beside importing the search
    import numpy.ma  # noqa: F401 - numpy.unique imports it at its first call: now, beside scrypt, not after it

    from backup_operator.core.search import run_search_cli

    snapshot = _open(desktop)
    try:
        if not args.json:
            # The age of the data is part of every answer an operator reads.
            print(f"Data as of {snapshot.meta.created_at:%Y-%m-%d %H:%M} UTC "
                  f"({describe_age(snapshot.meta.created_at)}), version {snapshot.version}")
            sys.stdout.flush()
            return run_search_cli(snapshot.conn, args.query, limit=args.limit, as_json=False, out=sys.stdout)
        stamp = {"snapshot_version": snapshot.version,
                 "data_as_of": snapshot.meta.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return run_search_cli(snapshot.conn, args.query, limit=args.limit, as_json=True,
                              out=_StampedJsonLines(sys.stdout, stamp))
    finally:
        snapshot.close()


def cmd_status(desktop: Desktop, args: argparse.Namespace) -> int:
    from backup_operator.core.freshness import freshness

    print(f"Desktop {shown(repr(desktop.name))}, home {shown(desktop.home)}")
    if not desktop.config.public_key:
        print("Not enrolled: run 'backup-operator enroll'.")
        return 0
    print(f"Key kept in: {'the OS key store' if desktop.config.key_store == 'keyring' else 'a key file'}")
    if not desktop.can_sign:
        print("Note: this desktop's key has no signing key yet, so IT cannot verify its receipts or journals; "
              "run 'backup-operator enroll --upgrade' and give IT the line it prints.")
    if desktop.config.untrusted_signers:
        print(f"Exporter keys withdrawn here (never trusted again): {len(desktop.config.untrusted_signers)}")
    print(f"Inboxes: {', '.join(shown(text) for text in desktop.inbox_texts()) or 'none'}")
    snapshot = _open(desktop)
    try:
        meta = snapshot.meta
        print(f"Data as of {meta.created_at:%Y-%m-%d %H:%M} UTC ({describe_age(meta.created_at)}), "
              f"version {snapshot.version}; valid until {meta.expires_at:%Y-%m-%d %H:%M} UTC")
        print(f"Holds {describe_counts(meta.counts)}")
        verdict = freshness(meta, snapshot.version, datetime.now(timezone.utc))
        if not verdict.fresh:
            print(f"Warning: {shown(verdict.summary)}")
    finally:
        snapshot.close()
    return 0


def cmd_oncall(desktop: Desktop, args: argparse.Namespace) -> int:
    """Who is on call for the schedule QUERY names, now or at --at, with every number and the ladder.

    Exits 0 with an answer (also when nobody is on call: the answer is the department line), 1 when no
    schedule matches QUERY (like search).
    """
    from backup_operator.core.freshness import freshness
    from backup_operator.core.oncall_answer import answer, as_json, as_text, find_schedules, parse_at, printable
    from backup_operator.core.session import Session

    snapshot = _open(desktop)
    session = Session(snapshot)
    try:
        now = datetime.now(timezone.utc)
        found = find_schedules(session, args.query)
        if not found:
            names = ", ".join(f"{s.name} ({s.id})" for s in session.schedules()[:8])
            print(printable(f"No on-call schedule matches {args.query!r}. Schedules include: {names}."),
                  file=sys.stderr)
            return 1
        schedule = found[0]
        at = parse_at(args.at, schedule, now)
        result = answer(session, schedule, at, asked_now=args.at is None or args.at.strip().lower() == "now",
                        others=tuple(found[1:]))
        verdict = freshness(snapshot.meta, snapshot.version, now)
        if args.json:
            print(json.dumps({**as_json(result), "snapshot_version": snapshot.version,
                              "data_as_of": snapshot.meta.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "data_warning": verdict.summary}, ensure_ascii=False, indent=2))
            return 0
        print(f"Data as of {snapshot.meta.created_at:%Y-%m-%d %H:%M} UTC "
              f"({describe_age(snapshot.meta.created_at, now)}), version {snapshot.version}")
        if not verdict.fresh:
            print(f"Warning: {verdict.summary}")
        print(as_text(result))
        return 0
    finally:
        session.close()


def _pdf_probe():
    """The PDF writer, or None when the window's Qt libraries are not installed (a command-line-only install).

    pdfprobe imports Qt only when called, so Qt itself is looked for here: otherwise the probe would fail
    later with a ModuleNotFoundError traceback instead of saying what is missing.
    """
    try:
        import PySide6.QtGui  # noqa: F401  (the probe paints with it)

        from backup_operator.ui.pdfprobe import write_test_pdf
    except ImportError:
        return None
    return write_test_pdf


def cmd_kit_check(desktop: Desktop, args: argparse.Namespace) -> int:
    """One line per check; exit non-zero (the first failure's code) when the kit is not ready."""
    from backup_operator.core.kit import run_kit_checks

    results = run_kit_checks(desktop, max_age=timedelta(hours=args.max_age_hours), write_pdf=_pdf_probe())
    width = max(len(r.name) for r in results)
    for result in results:
        print(f"{'ok  ' if result.ok else 'FAIL'}  {result.name.ljust(width)}  {result.detail}")
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"This kit is NOT ready: {len(failed)} check(s) failed. Fix them before the kit is put away.")
        return failed[0].exit_code
    print("This kit is ready.")
    return 0


def cmd_print(desktop: Desktop, args: argparse.Namespace) -> int:
    """Write the crash sheet (next 24-72 h of on-call plus key numbers) as a PDF, without a window."""
    try:
        from backup_operator.ui.printing import print_command
    except ImportError:
        print("Printing needs the window's Qt libraries: install backup-operator[gui].", file=sys.stderr)
        return 2
    hours = max(24, min(72, args.hours))
    pages = print_command(desktop, hours, args.schedule or [], Path(args.output), paper=args.paper)
    print(f"Wrote the crash sheet ({hours} h, {pages} page{'s' if pages != 1 else ''}) to {args.output}.")
    return 0


def cmd_window(desktop: Desktop, args: argparse.Namespace) -> int:
    if sys.platform.startswith("linux") and not any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        # Qt would abort with a plugin error; say what is going on instead, and still answer.
        print("There is no screen to open the window on (no DISPLAY); the directory still works from the "
              "command line: backup-operator search NAME.", file=sys.stderr)
        return cmd_status(desktop, args)
    desktop.unlock_in_background()  # scrypt beside importing Qt
    try:
        from backup_operator.ui.app import run
    except ImportError as exc:
        print(f"The window cannot start ({exc}); install the GUI with pip install 'backup-operator[gui]'. "
              "The directory still works from the command line:", file=sys.stderr)
        return cmd_status(desktop, args)
    return run(desktop, self_test=getattr(args, "self_test", None), started=_STARTED)


# --- the parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backup-operator",
        description="Backup Operator: the hospital directory and on-call schedules, offline. "
                    "With no command, opens the window.")
    parser.add_argument("--version", action="version", version=f"backup-operator {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("enroll", help="create this desktop's key pair and print the public key for IT")
    p.add_argument("--name", help="this desktop's name as IT knows it (default: the computer's name)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--key-file", action="store_true",
                     help="keep the key in a passphrase-protected file (portable kits)")
    how.add_argument("--keyring", action="store_true", help="keep the key in the OS key store")
    p.add_argument("--replace", action="store_true", help="replace an existing key (IT must re-add it)")
    p.add_argument("--upgrade", action="store_true",
                   help="add a signing key to a key enrolled without one (same store; IT re-adds the new line)")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("trust", help="pin the exporter's public signing key (bo-signer-…)")
    p.add_argument("key", help="the key text, or a file that holds it")
    p.add_argument("--only", action="store_true",
                   help="trust this key alone: every other pinned key is withdrawn (after a stolen key)")
    p.set_defaults(func=cmd_trust)

    p = sub.add_parser("untrust", help="withdraw an exporter signing key (stolen or retired): it is refused "
                                       "from now on, even when endorsed")
    p.add_argument("key", help="the key text, or a file that holds it")
    p.set_defaults(func=cmd_untrust)

    p = sub.add_parser("inbox", help="list, add or remove the folders this desktop takes snapshots from")
    inbox = p.add_subparsers(dest="inbox_command", metavar="ACTION")
    for action in ("add", "remove"):
        q = inbox.add_parser(action, help=f"{action} an inbox folder or http(s) address")
        q.add_argument("path", help="a folder, a share, or https://server/path/ (http:// on a trusted LAN)")
        if action == "add":
            q.add_argument("--receipts", metavar="URL",
                           help="http(s) inboxes: PUT this desktop's receipt under URL (WebDAV); default none")
            q.add_argument("--ca-file", metavar="PEM",
                           help="https inboxes: trust this CA bundle (an internal CA not in the system store)")
    inbox.add_parser("list", help="list the inbox folders")
    p.set_defaults(func=cmd_inbox)

    p = sub.add_parser("sync", help="install the newest valid snapshot from the inboxes")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("verify", help="explain whether a snapshot file is good for this desktop")
    p.add_argument("file")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("search", help="search the directory (names, departments, titles, numbers)")
    p.add_argument("query", help="what to look for; '-' reads one query per line from standard input")
    p.add_argument("--limit", type=int, default=10, help="how many results (default 10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("oncall", help="who is on call now (or at a time), until when, who is next, and the "
                                      "escalation ladder")
    p.add_argument("query", help="a schedule id, or words: 'cardiology', 'ED', 'pharmacist', 'icu on call'")
    p.add_argument("--at", metavar="TIME",
                   help="another time: 21:00, '2026-03-07 21:00' (in the schedule's zone) or with an offset "
                        "(2026-03-07T21:00-05:00); default now")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_oncall)

    p = sub.add_parser("kit-check", help="check that this kit is ready to be used offline")
    p.add_argument("--max-age-hours", type=float, default=24.0,
                   help="how old the data may be for the kit to count as ready (default 24)")
    p.set_defaults(func=cmd_kit_check)

    p = sub.add_parser("print", help="write the on-call crash sheet as a PDF")
    p.add_argument("--hours", type=int, default=72, help="how far ahead, 24 to 72 (default 72)")
    p.add_argument("--schedule", action="append", metavar="ID",
                   help="an on-call schedule to include (repeat; default: the window's favourites, else all)")
    p.add_argument("-o", "--output", required=True, help="the PDF file to write")
    p.add_argument("--paper", choices=("auto", "letter", "a4"),
                   help="paper size (default: the window's setting; 'auto' is Letter in the US and Canada, else A4)")
    p.set_defaults(func=cmd_print)

    p = sub.add_parser("window", help="open the window (the same as no command)")
    p.add_argument("--self-test", metavar="QUERY",
                   help="open, search QUERY, print the first result and the time it took, then quit")
    p.set_defaults(func=cmd_window)

    p = sub.add_parser("status", help="this desktop's enrolment, inboxes and snapshot age")
    p.set_defaults(func=cmd_status)

    from backup_operator.cli_outage import add_parsers as add_outage_parsers
    add_outage_parsers(sub)  # journal, changes, drill
    return parser


# The commands whose first work needs the desktop's key: a key file's scrypt starts before the parser is
# built (its outage commands import the journal and the model: tens of milliseconds).
_UNLOCK_FIRST = {"search", "window", "sync"}


def _desktop_unlocking(argv: list[str]) -> Desktop | None:
    """The desktop, its key file's passphrase already being opened, for a command in ``_UNLOCK_FIRST`` (no
    command is the window); None otherwise, or when its settings cannot be read (``main`` says why)."""
    command = argv[0] if argv else "window"
    if command not in _UNLOCK_FIRST:
        return None
    try:
        desktop = Desktop(desktop_home())
    except BackupOperatorError:
        return None
    desktop.unlock_in_background()
    return desktop


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0].startswith("_"):  # no command an operator types does (nor the store's imports)
        from backup_operator.core.install import WORKER_COMMAND, worker_main

        if argv[0] == WORKER_COMMAND:
            # The window's install worker (core/install.py): this same program, started by the window with
            # its work on standard input. Not a command an operator types, so not in the parser or its help.
            return worker_main(argv[1:])
    early = _desktop_unlocking(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        desktop = early or Desktop(desktop_home())
        func = getattr(args, "func", cmd_window)
        return func(desktop, args)
    except BackupOperatorError as exc:
        # One line, always: a message may quote an OS or key-store error with line breaks in it.
        print(shown(" ".join(str(exc).split())), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
