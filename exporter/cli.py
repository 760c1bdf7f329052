"""``backup-operator-export``: the exporter's command line, a thin layer over the pipeline.

Commands: ``init``, ``recipients add|remove|list``, ``run``, ``check``, ``status``, ``journal import``,
``diff``, ``serve``, ``demo``.
Every deliberate error becomes one sentence on stderr and the error's exit code (see backup_operator.errors
and backup_operator.errors); an unforeseen one becomes one sentence pointing at the log, never a
traceback on the console.

This module must never contain export logic; it parses arguments, calls exporter functions and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path, PureWindowsPath

from backup_operator.errors import BackupOperatorError
from backup_operator.textsafe import shown

from exporter import __version__
from exporter.home import HOME_ENV, ExporterHome, export_home

__all__ = ["main", "build_parser"]

log = logging.getLogger("exporter.cli")


def _home(args) -> ExporterHome:
    return export_home(args.home)


def _config(home: ExporterHome):
    from exporter.config import load_config
    config = load_config(home.config)
    for warning in config.warnings:  # inline secrets: said on every command, logged by _logging
        print(f"warning: {warning}", file=sys.stderr)
    return config


def _logging(args, home: ExporterHome, config=None, *, console=logging.WARNING) -> None:
    from exporter.logs import setup_logging
    setup_logging(home, config, console_level=logging.DEBUG if args.verbose else console)
    for warning in getattr(config, "warnings", ()):
        # Already said on the console by _config; the log keeps it for the service's history.
        logging.getLogger("exporter.config").warning("%s", warning, extra={"raised": True})


# --- commands ---------------------------------------------------------------------------------


def cmd_init(args) -> int:
    from exporter.config import STARTER_CONFIG
    from exporter.signing import PASSPHRASE_ENV, create_signing_key

    home = _home(args).ensure()
    public = create_signing_key(home, force=args.force)
    from exporter.changes import receiving_key
    receiving_key(home)  # desktops seal their outage journals to it; snapshots carry its public half
    if not home.config.exists():
        from exporter.config import write_new_config
        write_new_config(home.config, STARTER_CONFIG)
        print(f"Wrote a starter config to {home.config}; add your sources and destinations there.")
    protected = (f"protected by the passphrase in {PASSPHRASE_ENV}" if os.environ.get(PASSPHRASE_ENV)
                 else f"not passphrase-protected (set {PASSPHRASE_ENV} before init to protect it)")
    print(f"Created the signing key {home.signing_key} (mode 0600, {protected}).")
    print("Pin this key on every desktop with: backup-operator trust KEY")
    print(public.to_text())
    return 0


def cmd_rotate_key(args) -> int:
    from exporter.signing import rotate_signing_key

    home = _home(args)
    old, new = rotate_signing_key(home)
    print(f"The signing key is now {new.to_text()}")
    print(f"It is endorsed by the previous key {old.to_text()}: desktops that trust the previous key accept "
          "the next snapshot and then trust the new key by themselves.")
    print("Give the new key to new installs (site.toml, backup-operator trust). The old key is kept in "
          f"{home.retired_keys}. After a suspected key theft, do not rotate: re-pin every desktop instead.")
    return 0


def cmd_recipients_add(args) -> int:
    from exporter.recipients import add_recipient

    home = _home(args).ensure()
    names = {d.name for d in _config(home).destinations}
    # A relative folder means relative to where IT typed it, not to wherever the service later runs.
    inboxes = [i if i in names or "://" in i or i.startswith("\\\\") or PureWindowsPath(i).drive
               else str(Path(i).expanduser().resolve()) for i in args.inbox or []]
    recipient = add_recipient(home.recipients, args.name, args.key, inboxes, replace=args.replace)
    where = ", ".join(recipient.inboxes) if recipient.inboxes else "the configured [[destinations]] only"
    print(f"Enrolled {recipient.name} ({recipient.key.to_text()[:24]}…); inboxes: {where}.")
    print("The next export is sealed for it.")
    return 0


def cmd_recipients_remove(args) -> int:
    from exporter.recipients import remove_recipient

    home = _home(args)
    recipient = remove_recipient(home.recipients, args.name)
    print(f"Removed {recipient.name}: from the next snapshot on, nothing is sealed to its key.")
    print("Run an export now (backup-operator-export run) so the revocation takes effect at once.")
    return 0


def cmd_recipients_list(args) -> int:
    from exporter.recipients import load_recipients

    recipients = load_recipients(_home(args).recipients)
    if not recipients:
        print("No desktops are enrolled.")
        return 0
    for r in recipients:
        print(f"{r.name}\t{r.key.to_text()}\t{', '.join(r.inboxes) or '-'}\t(added {r.added_at or '?'})")
    return 0


def _print_outcome(outcome) -> None:
    c = outcome.counts
    print(f"Snapshot {outcome.version}: {c.get('listings', 0)} listings, {c.get('contact_methods', 0)} contact "
          f"methods, {c.get('oncall_schedules', 0)} on-call schedules, {c.get('oncall_shifts', 0)} shifts; "
          f"{(outcome.size_bytes or 0) / 1024:.0f} KiB sealed ({outcome.timer.describe()}).")
    if outcome.forced:
        print("Checks FAILED and were overridden:")
        print(outcome.report.describe())
    for change in outcome.changes:
        print(f"note: {change}")
    for warning in outcome.warnings:
        if not warning.startswith("checks overridden"):
            print(f"warning: {warning}")
    for dest in outcome.destinations:
        state = "ok" if dest.ok else "FAILED"
        extra = f" — {dest.message}" if dest.message else ""
        tries = f" after {dest.attempts} attempts" if dest.attempts > 1 else ""
        print(f"  {state:6} {dest.destination}{tries}{extra}")


def cmd_run(args) -> int:
    from backup_operator.errors import ExportRefused, PublishFailed
    from exporter.pipeline import run_export

    home = _home(args)
    _logging(args, home, _config(home))
    try:
        outcome = run_export(home, force=args.force, trigger="manual")
    except ExportRefused as exc:
        if exc.report is not None:
            print(exc.report.describe(), file=sys.stderr)
        raise
    _print_outcome(outcome)
    failed = outcome.failed_destinations
    if failed:
        ok = len(outcome.destinations) - len(failed)
        raise PublishFailed(f"Snapshot {outcome.version} was written to {ok} of {len(outcome.destinations)} "
                            f"inboxes; not to {', '.join(d.destination for d in failed)}. Those desktops keep "
                            "their last snapshot; fix the destination and run again.")
    print(f"Published snapshot {outcome.version} to {len(outcome.destinations)} inboxes.")
    return 0


def cmd_check(args) -> int:
    from backup_operator.errors import ExportRefused
    from exporter.pipeline import ExportOutcome, check_only

    home = _home(args)
    _logging(args, home, _config(home))
    outcome = ExportOutcome(run_id=None)

    def summary() -> None:
        c = outcome.counts
        if c:
            print(f"Read {c['listings']} listings, {c['contact_methods']} contact methods, "
                  f"{c['oncall_schedules']} on-call schedules, {c['oncall_shifts']} shifts.")
        if outcome.report is not None:
            print(outcome.report.describe())
        for change in outcome.changes:
            print(f"note: {change}")

    try:
        check_only(home, force=args.force, outcome=outcome)
    except ExportRefused as exc:
        summary()
        raise ExportRefused(str(exc).replace("The export was refused", "An export would be refused"),
                            exc.report) from None
    except BackupOperatorError:
        summary()
        raise
    summary()
    verdict = "Checks FAILED and were overridden by --force" if outcome.forced else "All checks passed"
    print(f"{verdict}; snapshot {outcome.version} was built and sealed as 'run' would "
          f"({(outcome.size_bytes or 0) / 1024:.0f} KiB), and nothing was published (use 'run' to export).")
    return 0


def cmd_status(args) -> int:
    from exporter.monitoring import NAGIOS_CODES, assess, nagios_line, run_document
    from exporter.recipients import load_recipients
    from exporter.state import State
    from exporter.status import refresh_receipts, render_status

    home = _home(args)
    if args.drills:
        from exporter.drills import read_drills, render_drills
        config = _config(home)
        recipients = load_recipients(home.recipients)
        records, ignored = read_drills(config, recipients)
        print(render_drills(records, recipients, ignored, now=datetime.now(timezone.utc)))
        return 0
    try:
        config = _config(home)
        recipients = load_recipients(home.recipients)
        state = State(home.state)
        unreachable = [] if args.cached else refresh_receipts(config, recipients, state)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        health = assess(state, recipients, interval_minutes=config.export.interval_minutes, now=now,
                        behind_after_intervals=config.monitoring.behind_after_intervals, unreachable=unreachable)
    except BackupOperatorError as exc:
        if args.nagios:  # a monitoring plugin must say UNKNOWN, in one line, with exit 3
            print(f"BACKUP OPERATOR EXPORT UNKNOWN - {shown(exc)}")
            return NAGIOS_CODES["unknown"]
        raise
    if args.nagios:
        print(nagios_line(health))
        return NAGIOS_CODES[health.status]
    if args.json:
        doc = health.to_json()
        doc["runs"] = [run_document(run) for run in state.runs(args.runs)]
        print(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))
        return health.exit_code
    text, statuses = render_status(state, recipients, now=now, runs=args.runs, unreachable=unreachable)
    print(text)
    print()
    print(f"Health: {health.status.upper()} — {shown(health.summary)}")
    for problem in health.problems[1:]:
        print(f"  also: {shown(problem)}")
    return health.exit_code


def cmd_notify_test(args) -> int:
    from backup_operator.errors import ConfigError, NotificationFailed
    from exporter.monitoring import assess, utc_now
    from exporter.notifications import compose, deliver
    from exporter.recipients import load_recipients
    from exporter.state import State

    home = _home(args)
    config = _config(home)
    settings = config.notify
    channels = [name for name, c in (("email", settings.email), ("webhook", settings.webhook)) if c is not None]
    if not channels:
        raise ConfigError(f"No [notify.email] or [notify.webhook] in {home.config}; add one (docs/EXPORTER.md, "
                          "Monitoring).")
    health = assess(State(home.state), load_recipients(home.recipients),
                    interval_minutes=config.export.interval_minutes, now=utc_now(),
                    behind_after_intervals=config.monitoring.behind_after_intervals)
    failures = deliver(compose("test", health, description=config.export.description), settings)
    if failures:
        raise NotificationFailed(" ".join(failures))
    print(f"A test message was sent by {' and '.join(channels)}; check that it arrived.")
    return 0


def cmd_serve(args) -> int:
    from exporter.schedule import serve

    home = _home(args)
    config = _config(home)
    _logging(args, home, config, console=logging.INFO)
    return serve(home, config, run_now=args.run_now)


def cmd_demo(args) -> int:
    from exporter.demo import run_demo

    return run_demo(_home(args), gui=not args.no_gui, verbose=args.verbose)


def cmd_journal_import(args) -> int:
    from backup_operator.errors import SealedFileRefused
    from exporter.changes import receiving_key
    from exporter.journal import (
        expand_files,
        import_journals,
        journal_files_in,
        read_csv_keys,
        sql_keys,
        write_csv,
        write_sql,
    )
    from exporter.publish import resolve_destinations
    from exporter.recipients import load_recipients

    home = _home(args)
    recipients = load_recipients(home.recipients)
    files = expand_files(args.files)
    if args.from_inboxes:
        folders = [Path(d.path) for d in resolve_destinations(_config(home), recipients) if d.kind == "folder"]
        files += [f for f in journal_files_in(folders) if f not in files]
    if not files:
        print("No journal files were given or found (desktops leave them in <inbox>/journals/).",
              file=sys.stderr)
        return 2
    key = receiving_key(home, create=False)
    existing_rows = []
    if args.output:
        existing, existing_rows = read_csv_keys(Path(args.output))
    elif args.into:
        existing = sql_keys(args.into, args.table)
    else:
        existing = set()
    report = import_journals(files, recipients, key, existing)
    if args.output:
        write_csv(Path(args.output), report, existing_rows)
        where = f"{args.output} ({report.total_rows} revisions in all, {report.new_rows} added now)"
    elif args.into:
        write_sql(args.into, report, args.table)
        where = f"table {args.table} ({report.total_rows} revisions in all, {report.new_rows} added now)"
    else:
        where = "nowhere (give -o FILE or --into URL to write the merge)"
    print(f"Read {len(files) - len(report.refused)} of {len(files)} journal files from "
          f"{len(report.desktops)} desktops; {len(report.rows)} distinct revisions, merged in time order into "
          f"{where}.")
    print("\n".join(shown(line) for line in report.describe().splitlines()))  # names from desktops' files
    if report.refused:
        first = report.refused[0][1]
        return first.exit_code if isinstance(first, SealedFileRefused) else 1
    return 0


def cmd_diff(args) -> int:
    import json as json_module

    from exporter.changes import diff_against_sources, diff_versions

    home = _home(args)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if len(args.versions) == 2:
        result = diff_versions(home, args.versions[0], args.versions[1], now)
    elif len(args.versions) <= 1:
        _logging(args, home, _config(home))
        result = diff_against_sources(home, now, args.versions[0] if args.versions else None)
    else:
        print("Give no version (the sources now against the last published), one (against that version), "
              "or two versions.", file=sys.stderr)
        return 2
    summary = result.summary
    if args.json:
        print(json_module.dumps({"from": result.old_label, "to": result.new_label, **summary.to_json()},
                                ensure_ascii=False, indent=1))
        return 0
    from backup_operator.core.changes import KINDS
    print(f"From {result.old_label} to {result.new_label}: {summary.describe_counts()} "
          f"(on call: {summary.horizon_start} to {summary.horizon_end}).")
    for kind, words in KINDS.items():
        items = [c for c in summary.items if c.kind == kind]
        if items:
            print(f"\n{words} ({summary.counts.get(kind, len(items))}):")
        for c in items[:args.limit]:
            arrow = f"{c.before} → {c.after}" if c.before and c.after else (c.after or c.before)
            print(f"  {c.title}: {arrow}")
        if len(items) > args.limit:
            print(f"  … and {summary.counts.get(kind, len(items)) - args.limit} more (--limit N, or --json)")
    return 0


# --- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backup-operator-export",
        description="Build, check, seal and publish the offline directory snapshot for every enrolled "
                    "desktop.",
        epilog=f"The exporter keeps its config, key and state in one home folder (set {HOME_ENV} or "
               "--home to choose it). See docs/EXPORTER.md.")
    parser.add_argument("--home", metavar="FOLDER", help=f"the exporter home (default: ${HOME_ENV} or the "
                        "platform's data folder)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more on the console")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="create the exporter's signing key and print its public key",
                       description="Create the Ed25519 signing key (mode 0600; passphrase from "
                                   "BACKUP_OPERATOR_EXPORT_PASSPHRASE if set) and a starter config, and "
                                   "print the bo-signer-... key for desktops to pin.")
    p.add_argument("--force", action="store_true", help="replace an existing key (every desktop must then "
                   "trust the new one)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("rotate-key", help="replace the signing key by a new one the old key endorses",
                       description="Planned signing-key rotation: create a new signing key, endorsed by the "
                                   "current one, so desktops move to it without reinstalling (the endorsement "
                                   "travels in every snapshot). Not for a stolen key: re-pin desktops then.")
    p.set_defaults(func=cmd_rotate_key)

    p = sub.add_parser("recipients", help="enrol, revoke and list desktops",
                       description="Manage the desktops each snapshot is sealed for.")
    rsub = p.add_subparsers(dest="recipients_command", metavar="ACTION")
    p.set_defaults(func=lambda args, parser=p: (parser.print_help(), 2)[1])
    a = rsub.add_parser("add", help="enrol a desktop by its public key",
                        description="Enrol a desktop: NAME is how status shows it, KEY is the bo-desktop-... "
                                    "line printed by 'backup-operator enroll'.")
    a.add_argument("name", metavar="NAME")
    a.add_argument("key", metavar="KEY")
    a.add_argument("--inbox", action="append", metavar="PATH",
                   help="where this desktop picks snapshots up: a folder, \\\\server\\share\\path, "
                        "sftp://user@host/path, or a [[destinations]] name (repeatable)")
    a.add_argument("--replace", action="store_true", help="replace the key of a desktop with this name")
    a.set_defaults(func=cmd_recipients_add)
    r = rsub.add_parser("remove", help="revoke a desktop (the next snapshot is not sealed to it)",
                        description="Revoke a desktop: from the next snapshot on, nothing is sealed to its key.")
    r.add_argument("name", metavar="NAME")
    r.set_defaults(func=cmd_recipients_remove)
    lst = rsub.add_parser("list", help="list enrolled desktops", description="List enrolled desktops.")
    lst.set_defaults(func=cmd_recipients_list)

    p = sub.add_parser("run", help="export now: read, check, build, seal, publish",
                       description="Run one export now. A failed check refuses the export unless --force.")
    p.add_argument("--force", action="store_true", help="publish even if a check fails (logged)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check", help="do everything 'run' does except publishing",
                       description="A dry run: read the sources, run every check, build the snapshot with the "
                                   "model's validation and seal it, exactly as 'run' would, but publish nothing "
                                   "and use up no version. Exits with the code 'run' would (52 refused, 3 "
                                   "invalid data, 51 a source failed).")
    p.add_argument("--force", action="store_true", help="show what 'run --force' would publish (what it "
                   "overrides and drops)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("status", help="last runs, which desktops are behind, and a verdict for monitoring",
                       description="Show the last runs and, per desktop, the snapshot version it last "
                                   "confirmed and how old that is, then one health verdict. Exit code: 0 all "
                                   "current; 56 a desktop is behind by more than two export intervals (or the "
                                   "last run reached only some inboxes); 57 the last run failed, was refused "
                                   "or skipped, or nothing was published for more than two intervals.")
    p.add_argument("--runs", type=int, default=10, metavar="N", help="how many runs to show (default 10)")
    p.add_argument("--cached", action="store_true", help="do not read receipts from the destinations; use "
                   "the ones remembered")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the health and the last runs as JSON "
                       "(for Zabbix, PRTG and scripts); same exit codes")
    shape.add_argument("--nagios", action="store_true", help="print one line in the Nagios plugin format and "
                       "exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios, Icinga, PRTG EXE sensors)")
    shape.add_argument("--drills", action="store_true", help="which desktops drilled when and how they did (from "
                   "the signed drill receipts in the inboxes)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("journal", help="import the desktops' outage journals after an outage",
                       description="Import the sealed outage journals desktops leave in their inboxes.")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION")
    p.set_defaults(func=lambda args, parser=p: (parser.print_help(), 2)[1])
    j = jsub.add_parser("import", help="verify journal files and merge them in time order",
                        description="Verify each journal file (signed by an enrolled desktop, sealed to this "
                                    "exporter), merge every desktop's entries in time order without duplicates "
                                    "(importing twice gives the same result) and report per desktop.")
    j.add_argument("files", nargs="*", metavar="FILE", help="journal files (.bojournal) or folders holding them")
    j.add_argument("--from-inboxes", action="store_true",
                   help="also take every journal in the folder inboxes' journals/ folders")
    out = j.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="CSV", help="merge into this CSV file (kept and extended)")
    out.add_argument("--into", metavar="SQL_URL", help="merge into a table of this database (SQLAlchemy URL)")
    j.add_argument("--table", default="backup_operator_journal", help="the table for --into "
                   "(default backup_operator_journal; made if missing)")
    j.set_defaults(func=cmd_journal_import)

    p = sub.add_parser("diff", help="what the next export would change (or between two kept versions)",
                       description="Compare the sources now with the last published snapshot, before "
                                   "publishing anything; or one kept version with the sources; or two kept "
                                   "versions. Lists listings added and removed, numbers and details changed, "
                                   "and on-call changes in the next 72 hours.")
    p.add_argument("versions", nargs="*", type=int, metavar="VERSION", help="zero, one or two snapshot versions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="changes shown per kind (default 50)")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("notify-test", help="send a test alert by every configured channel",
                       description="Send a test message by [notify.email] and [notify.webhook], to check the "
                                   "settings. Exit code 58 if a channel did not accept it.")
    p.set_defaults(func=cmd_notify_test)

    p = sub.add_parser("serve", help="run exports on the schedule in the config until stopped",
                       description="Run exports on the cron schedule in [schedule] until SIGTERM or Ctrl+C. "
                                   "Only one serve (and one export) runs at a time.")
    p.add_argument("--run-now", action="store_true", help="also run one export right away")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run the whole chain on the sample hospital",
                       description="Export the sample hospital, deliver it to a local demo desktop, sync "
                                   "and search it with the desktop program, then open the window.")
    p.add_argument("--no-gui", action="store_true", help="stop after the printed search results")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BackupOperatorError as exc:
        print(f"error: {shown(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130
    except Exception as exc:  # the promise is one sentence, never a traceback
        from exporter.logs import log_traceback_to_file
        log_traceback_to_file(exc)
        print(f"error: something unexpected went wrong ({type(exc).__name__}: {exc}); the details are in "
              "the exporter log. Nothing was published by this command.", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
