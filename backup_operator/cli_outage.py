"""The desktop's outage commands: ``journal``, ``changes`` and ``drill`` (a thin layer, like cli.py).

Kept apart from cli.py so that file stays a list of the basic commands; ``add_parsers`` hangs these
under the same parser, and they report errors the same way (one sentence, the error's exit code).
Everything printed that came from data goes through ``textsafe.shown`` first.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from backup_operator.config import Desktop
from backup_operator.core import changes as core_changes
from backup_operator.core import journal as J
from backup_operator.core import outbox
from backup_operator.core.model import parse_utc
from backup_operator.errors import BackupOperatorError, JournalError, NoExporterKey, VersionNotAvailable
from backup_operator.fsutil import atomic_write
from backup_operator.textsafe import shown

__all__ = ["add_parsers", "drop_journals_after_sync"]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _local(text: str) -> str:
    try:
        moment = parse_utc(text).astimezone()
    except ValueError:
        return shown(text)
    return f"{moment:%a %d %b %H:%M} {moment.tzname()}"


# --- journal ------------------------------------------------------------------------------------------


def _journal(desktop: Desktop, *, create: bool = True) -> J.Journal | None:
    public = None
    if desktop.config.public_key:
        from backup_operator.snapshot.keys import DesktopPublicKey
        public = DesktopPublicKey.from_text(desktop.config.public_key)
    return J.current_journal(desktop.home, desktop=desktop.name, public_key=public, create=create)


def _entry_line(entry: J.Entry, n: int) -> str:
    r = entry.current
    marks = []
    if entry.withdrawn:
        marks.append("WITHDRAWN")
    elif entry.amended:
        marks.append(f"amended ×{len(entry.revisions) - 1}")
    head = f"#{n:<3} {entry.entry_id[:8]}  {_local(r.call_time)}  {shown(r.action or '-')}"
    if marks:
        head += f"  [{', '.join(marks)}]"
    lines = [head]
    who = ", ".join(x for x in (f"from {r.caller}" if r.caller else "",
                                f"callback {r.callback}" if r.callback else "",
                                f"for {r.for_whom}" if r.for_whom else "") if x)
    if who:
        lines.append("     " + shown(who))
    if r.number_tried or r.on_call:
        lines.append("     " + shown(", ".join(x for x in (
            f"tried {r.number_tried}" if r.number_tried else "", f"on call: {r.on_call}" if r.on_call else "")
            if x)))
    if r.message:
        lines.append("     " + shown(r.message))
    if r.operator:
        lines.append("     operator: " + shown(r.operator))
    return "\n".join(lines)


def cmd_journal_add(desktop: Desktop, args: argparse.Namespace) -> int:
    journal = _journal(desktop)
    fields = {"caller": args.caller, "callback": args.callback, "for_whom": args.for_whom,
              "number_tried": args.number, "on_call": args.on_call, "message": args.message,
              "action": args.action, "operator": args.operator or getpass.getuser(),
              "listing_id": args.listing, "call_time": args.time}
    saved = journal.add(fields)
    print(f"Saved entry {saved.entry_id[:8]} (number {saved.seq} in this journal) for the call at "
          f"{_local(saved.call_time)}. It is encrypted on this desktop and sent to IT when an inbox is reachable.")
    return 0


def _read(desktop: Desktop, journal: J.Journal) -> J.JournalContents:
    contents = journal.read(desktop.key())
    for problem in contents.problems:
        print(f"Note: {shown(problem)}", file=sys.stderr)
    return contents


def cmd_journal_list(desktop: Desktop, args: argparse.Namespace) -> int:
    paths = J.list_journals(desktop.home) if args.all else [p for p in [_path_of(desktop)] if p]
    if not paths:
        print("No journal entries yet on this desktop (start one with 'backup-operator journal add').")
        return 0
    docs = []
    for path in paths:
        journal = J.Journal(path)
        contents = _read(desktop, journal)
        entries = contents.search(args.query or "")
        if args.json:
            docs.append({"journal_id": contents.journal_id, "desktop": contents.desktop,
                         "created_at": contents.created_at, "problems": contents.problems,
                         "entries": [{"entry_id": e.entry_id, "withdrawn": e.withdrawn,
                                      "revisions": [r.to_json() for r in e.revisions]} for e in entries]})
            continue
        title = f" — {shown(journal.title)}" if journal.title else ""
        print(f"Journal started {_local(contents.created_at)}{title}: {len(contents.entries)} entries"
              + (f", {len(entries)} matching {shown(args.query)!r}" if args.query else ""))
        for n, entry in enumerate(contents.entries, 1):
            if entry not in entries:
                continue
            print(_entry_line(entry, n))
            if args.history and entry.amended:
                for r in entry.revisions[:-1]:
                    print(f"       revision {r.revision} saved {_local(r.saved_at)}: "
                          f"{shown(r.action)}; {shown(r.message)}")
                for r in entry.revisions[1:]:
                    print(f"       revision {r.revision} reason: {shown(r.reason)}")
    if args.json:
        print(json.dumps(docs if args.all else docs[0], ensure_ascii=False, indent=1))
    return 0


def _path_of(desktop: Desktop) -> Path | None:
    logs = J.list_journals(desktop.home)
    return logs[-1] if logs else None


def cmd_journal_amend(desktop: Desktop, args: argparse.Namespace) -> int:
    journal = _journal(desktop, create=False)
    if journal is None:
        raise JournalError("There is no journal on this desktop yet.")
    entry = journal.read(desktop.key()).entry(args.entry)
    changes = {k: v for k, v in (("caller", args.caller), ("callback", args.callback), ("for_whom", args.for_whom),
                                 ("number_tried", args.number), ("on_call", args.on_call),
                                 ("message", args.message), ("action", args.action),
                                 ("operator", args.operator), ("call_time", args.time)) if v is not None}
    withdraw = args.journal_command == "withdraw"
    if not withdraw and not changes:
        raise JournalError("Say what to change (for example --message '...'); nothing was saved.")
    saved = journal.amend(entry, changes, reason=args.reason, withdraw=withdraw)
    what = "Withdrew" if withdraw else "Amended"
    print(f"{what} entry {entry.entry_id[:8]} (revision {saved.revision}); the original is kept.")
    return 0


def cmd_journal_new(desktop: Desktop, args: argparse.Namespace) -> int:
    from backup_operator.snapshot.keys import DesktopPublicKey

    if not desktop.config.public_key:
        raise JournalError("This desktop is not enrolled yet; run 'backup-operator enroll' first.")
    journal = J.start_new(desktop.home, desktop=desktop.name, public_key=DesktopPublicKey.from_text(
        desktop.config.public_key), title=args.title or "")
    print(f"Started a new journal ({journal.journal_id[:8]}); earlier journals are kept and still sent to IT.")
    return 0


def _recipient(desktop: Desktop):
    """The exporter's receiving key, from the newest snapshot that opens (signed by the exporter)."""
    try:
        snapshot = desktop.store().open_newest()
    except BackupOperatorError as exc:
        raise NoExporterKey(f"The journal cannot be sealed for IT: no snapshot opens on this desktop ({exc}).") \
            from None
    try:
        return outbox.exporter_recipient(snapshot.conn)
    finally:
        snapshot.close()


def cmd_journal_export(desktop: Desktop, args: argparse.Namespace) -> int:
    paths = J.list_journals(desktop.home) if args.all else [p for p in [_path_of(desktop)] if p]
    if not paths:
        raise JournalError("There is no journal on this desktop to export.")
    recipient = _recipient(desktop)
    if recipient is None:
        raise NoExporterKey("The installed snapshot does not name the exporter's receiving key (an older "
                            "exporter made it); run 'backup-operator sync' after IT's next export.")
    key = desktop.key()
    outputs = []
    for n, path in enumerate(paths):
        contents = _read(desktop, J.Journal(path))
        blob = outbox.seal_journal(contents, desktop_name=desktop.name, recipient=recipient, key=key)
        target = Path(args.output)
        if len(paths) > 1:
            target = target.with_name(f"{target.stem}-{n + 1}{target.suffix or outbox.JOURNAL_SUFFIX}")
        atomic_write(target, blob, mode=0o600)
        outputs.append((target, len(contents.entries), len(contents.revisions)))
    for target, entries, revisions in outputs:
        print(f"Wrote {target}: {entries} entries ({revisions} revisions), signed by this desktop and sealed "
              "to the exporter; only IT's exporter can open it (backup-operator-export journal import).")
    return 0


def cmd_journal_send(desktop: Desktop, args: argparse.Namespace) -> int:
    report = outbox.drop_pending(desktop.home, desktop.inboxes(), desktop_name=desktop.name, key=desktop.key,
                                 recipient=lambda: _recipient(desktop), force=args.again)
    return _print_drop(report, verbose=True)


def _print_drop(report: outbox.DropReport, *, verbose: bool) -> int:
    for path in report.written:
        print(f"Sent the journal to {path}.")
    for problem in report.problems:
        print(f"Could not send the journal: {shown(problem)}", file=sys.stderr)
    if report.pending and not report.written:
        print(f"{report.pending} journal(s) wait to be sent: no inbox can be reached right now; they leave with "
              "the next sync that reaches one.", file=sys.stderr)
    elif verbose and not report.written and not report.pending:
        print("Nothing new to send: IT already has every saved entry.")
    return 0


def drop_journals_after_sync(desktop: Desktop) -> None:
    """Called by ``sync``: send unsent journal entries and drill receipts if an inbox is reachable (never
    fails the sync)."""
    for path in outbox.drop_drill_receipts(desktop.home, desktop.inboxes()):
        print(f"Sent the drill receipt {path.name} to {path.parent.parent}.")
    if not J.list_journals(desktop.home):
        return
    try:
        report = outbox.drop_pending(desktop.home, desktop.inboxes(), desktop_name=desktop.name, key=desktop.key,
                                     recipient=lambda: _recipient(desktop))
    except BackupOperatorError as exc:
        print(f"The journal was not sent: {' '.join(str(exc).split())}", file=sys.stderr)
        return
    _print_drop(report, verbose=False)


# --- changes -----------------------------------------------------------------------------------------


def changes_between(desktop: Desktop, since: int | None, now: datetime) -> core_changes.ChangeSummary:
    """Changes up to the newest installed snapshot: stored by the exporter, or compared here."""
    from backup_operator.core.model import open_database
    from backup_operator.snapshot import envelope

    store = desktop.store()
    snapshot = store.open_newest()
    try:
        stored = core_changes.read_summary(snapshot.conn, snapshot.version)
        if since is None or (stored is not None and stored.since_version == since):
            if stored is None:
                raise VersionNotAvailable(f"Snapshot version {snapshot.version} carries no list of changes (an "
                                          "older exporter made it); give --since with an older version this "
                                          "desktop still holds.")
            return stored
        if since >= snapshot.version:
            return core_changes.ChangeSummary(snapshot.version, since)
        if since not in store.installed_versions():
            held = ", ".join(map(str, store.installed_versions())) or "none"
            raise VersionNotAvailable(f"Version {since} is no longer on this desktop (it holds {held}); "
                                      "choose one of those.")
        sealed = envelope.read_capped(store.path_of(since), store.size_cap)
        header = envelope.verify(sealed, store.trusted)
        old = envelope.decrypt(sealed, header, desktop.key())
        open_database(old).close()  # the same integrity check as any snapshot that is opened
        return core_changes.diff_databases(snapshot.conn.serialize(), old, version=snapshot.version,
                                           since_version=since, now=now)
    finally:
        snapshot.close()


def cmd_changes(desktop: Desktop, args: argparse.Namespace) -> int:
    summary = changes_between(desktop, args.since, _now())
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False, indent=1))
        return 0
    since = f"since version {summary.since_version}" if summary.since_version is not None else ""
    print(f"Version {summary.version} {since}: {summary.describe_counts()}.")
    for kind, words in core_changes.KINDS.items():
        items = [c for c in summary.items if c.kind == kind]
        if not items:
            continue
        print(f"\n{words} ({summary.counts.get(kind, len(items))}):")
        for c in items[:args.limit]:
            if c.before and c.after:
                print(f"  {shown(c.title)}: {shown(c.before)} → {shown(c.after)}")
            else:
                print(f"  {shown(c.title)} ({shown(c.after or c.before)})")
        if len(items) > args.limit:
            print(f"  … and {summary.counts.get(kind, len(items)) - args.limit} more (--limit N, or --json)")
    return 0


# --- drill ------------------------------------------------------------------------------------------


def cmd_drill(desktop: Desktop, args: argparse.Namespace) -> int:
    """Five generated look-ups, timed, answered at the prompt; then the kit check and the signed receipt."""
    import random
    import time

    from backup_operator.core.drill import TARGET_SECONDS, Drill, generate
    from backup_operator.core.kit import run_kit_checks
    from backup_operator.core.search import run_search_cli
    from backup_operator.errors import DrillNotPassed

    snapshot = desktop.store().open_newest()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    asked_at = parse_utc(args.now) if args.now else _now()  # --now: the same drill again (tests, IT)
    try:
        questions = generate(snapshot.conn, asked_at, random.Random(seed))
        drill = Drill(questions, desktop=desktop.name, operator=args.operator or getpass.getuser(),
                      snapshot_version=snapshot.version, data_as_of=snapshot.meta.created_at, now=_now,
                      clock=time.monotonic, seed=seed)
        print(f"Drill on snapshot version {snapshot.version}: {len(questions)} look-ups, timed. Answer with what the "
              "directory shows (a name or a number). Type '? WORDS' to search, 'skip' to skip.")
        for n, question in enumerate(questions, 1):
            print(f"\n{n}/{len(questions)} ({question.kind}): {shown(question.text)}")
            while True:
                print(f"  your answer ({question.wants}): ", end="", flush=True)
                line = sys.stdin.readline()
                if not line:
                    answer = drill.skip()
                    print("\n  (no more input: skipped)")
                    break
                line = line.strip()
                if line.startswith("?"):
                    run_search_cli(snapshot.conn, line[1:].strip() or " ", limit=5, as_json=False, out=sys.stdout)
                    continue
                if not line:
                    continue
                if line.lower() == "skip":
                    answer = drill.skip()
                    print(f"  skipped ({answer.seconds:.0f} s); the directory says: {shown(question.expected)}")
                    break
                answer = drill.answer(line)
                verdict = "right" if answer.correct else f"not what the directory says: {shown(question.expected)}"
                slow = f" (over {TARGET_SECONDS:.0f} s)" if answer.seconds > TARGET_SECONDS else ""
                print(f"  {verdict} — {answer.seconds:.1f} s{slow}")
                break
    finally:
        snapshot.close()
    kit = run_kit_checks(desktop, write_pdf=_pdf_probe())
    result = drill.finish([{"name": k.name, "ok": k.ok} for k in kit])
    print(f"\nKit check: {'ok' if result.kit_ok else 'FAILED'} ("
          + ", ".join(f"{k.name} {'ok' if k.ok else 'FAILED'}" for k in kit) + ")")
    local, written, problems = outbox.save_drill(desktop.home, desktop.inboxes(), result.receipt(), desktop.key())
    print(f"Score: {result.correct} of {len(result.answers)} right in {result.seconds:.1f} s; "
          f"{'PASSED' if result.passed else 'NOT PASSED'} (drill {result.drill_id}, seed {seed}).")
    print(f"Signed receipt: {local}" + (f"; sent to {len(written)} inbox(es)." if written else
                                       "; it goes to IT with the next sync that reaches an inbox."))
    for problem in problems:
        print(f"Could not leave the receipt: {shown(problem)}", file=sys.stderr)
    if args.report:
        try:
            from backup_operator.ui.drill_report import write_report_command
        except ImportError:
            print("The PDF report needs the window's Qt libraries: install backup-operator[gui].", file=sys.stderr)
        else:
            pages = write_report_command(result, questions, Path(args.report))
            print(f"Wrote the drill report ({pages} page{'s' if pages != 1 else ''}) to {args.report}.")
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    return 0 if result.passed else DrillNotPassed.exit_code


def _pdf_probe():
    from backup_operator.cli import _pdf_probe as probe

    return probe()


# --- the parsers ------------------------------------------------------------------------------------


def _entry_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--caller", help="who called (name, ward, role)")
    p.add_argument("--callback", help="the number to call back")
    p.add_argument("--for", dest="for_whom", metavar="WHOM", help="whom the call was for")
    p.add_argument("--number", help="the number that was tried")
    p.add_argument("--on-call", dest="on_call", metavar="WHO", help="who was on call at the time")
    p.add_argument("--message", "-m", help="the message taken")
    p.add_argument("--action", choices=J.ACTIONS, help="what was done")
    p.add_argument("--operator", help="who took the call (default: this computer's user)")
    p.add_argument("--time", help="when the call came, in UTC like 2026-03-07T14:05:00Z (default: now)")


def add_parsers(sub) -> None:
    p = sub.add_parser("journal", help="the outage journal: calls and messages taken while the servers are down",
                       description="Write down the calls taken during an outage. Entries are encrypted on this "
                                   "desktop, never deleted (amendments keep the original) and sent to IT, "
                                   "sealed, when an inbox is reachable again.")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION")
    p.set_defaults(func=lambda desktop, args, parser=p: (parser.print_help(), 2)[1])

    a = jsub.add_parser("add", help="save a new entry", description="Save a new journal entry (saved to disk "
                        "before this command returns).")
    _entry_options(a)
    a.add_argument("--listing", help="the directory listing id the call was about")
    a.set_defaults(func=cmd_journal_add)

    a = jsub.add_parser("list", help="show this outage's entries (searchable)",
                        description="Show the entries of this outage's journal, oldest first.")
    a.add_argument("query", nargs="?", help="only entries with all these words in any field")
    a.add_argument("--all", action="store_true", help="every journal on this desktop, not just this outage's")
    a.add_argument("--history", action="store_true", help="show every earlier revision of amended entries")
    a.add_argument("--json", action="store_true", help="machine-readable output, every revision")
    a.set_defaults(func=cmd_journal_list)

    for action, words in (("amend", "change an entry (the original is kept)"),
                          ("withdraw", "mark an entry as withdrawn (it is kept and still sent)")):
        a = jsub.add_parser(action, help=words, description=words[0].upper() + words[1:] + ".")
        a.add_argument("entry", help="the entry's number (the first characters are enough)")
        a.add_argument("--reason", required=True, help="why (kept with the new revision)")
        if action == "amend":
            _entry_options(a)
        else:
            a.set_defaults(**{k: None for k in ("caller", "callback", "for_whom", "number", "on_call", "message",
                                                "action", "operator", "time")})
        a.set_defaults(func=cmd_journal_amend)

    a = jsub.add_parser("export", help="write the journal as a file only IT's exporter can open",
                        description="Write this outage's journal as one file, signed by this desktop and sealed "
                                    "to the exporter (for a USB stick when no inbox is reachable).")
    a.add_argument("-o", "--output", required=True, help="the file to write (.bojournal)")
    a.add_argument("--all", action="store_true", help="every journal on this desktop (one file each)")
    a.set_defaults(func=cmd_journal_export)

    a = jsub.add_parser("send", help="send unsent entries to the inboxes now (sync does it too)",
                        description="Send every journal with unsent entries into each reachable inbox.")
    a.add_argument("--again", action="store_true", help="send every journal again, even if IT has it")
    a.set_defaults(func=cmd_journal_send)

    a = jsub.add_parser("new", help="start the journal of a new outage",
                        description="Start a new journal; earlier ones are kept and still sent.")
    a.add_argument("--title", help="a few words about the outage")
    a.set_defaults(func=cmd_journal_new)

    p = sub.add_parser("changes", help="what changed in the directory with the last update",
                       description="List what changed: on call in the next 72 hours, numbers, listings added "
                                   "and removed, details. By default what the newest snapshot changed since the "
                                   "version before it.")
    p.add_argument("--since", type=int, metavar="VERSION", help="compare with this older version (one this "
                   "desktop still holds)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=25, metavar="N", help="changes shown per kind (default 25)")
    p.set_defaults(func=cmd_changes)

    p = sub.add_parser("drill", help="a timed exercise: five look-ups, the kit check, a signed receipt",
                       description="Run a drill on the current data: five generated look-ups (on call now, an "
                                   "extension, a reverse number, an as-of question, a department line), answered "
                                   "at the prompt and timed, then the kit check. The result is written as a "
                                   "receipt signed by this desktop and left in its inboxes for IT. Exit 0 when "
                                   "the drill passed (4 of 5 right and the kit check ok), 77 when not.")
    p.add_argument("--operator", help="who is drilling (default: this computer's user)")
    p.add_argument("--report", metavar="PDF", help="also write the drill report for the disaster-plan binder")
    p.add_argument("--seed", type=int, help="draw the same questions again (the seed is printed at the end)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON at the end")
    p.add_argument("--now", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_drill)
