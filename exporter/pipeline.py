"""The export pipeline as plain functions: read → check → build → seal → publish.

``run_export`` strings them together for the command line and the scheduler, under the exporter lock,
and records the run in the exporter's state. Each stage can also be called on its own (tests, the
benchmark, ``check``).

Order matters for safety:

1. Everything is read before anything is built; a source that fails halfway raises, and nothing is
   published from a partial read.
2. Checks run on what was read; a failed check refuses the export unless explicitly overridden, and
   the override is logged with what it let through.
3. ``check`` runs exactly what ``run`` runs up to publishing (``prepare``: read, tidy, check, build with
   the model's validation, seal), so a dry run never passes what a run refuses.
4. The snapshot version is committed to the state only once the snapshot is sealed, just before it is
   published: a refused or failed run never uses a number up, and a number that may have reached a
   desktop is never given out again.
5. Each destination is written atomically and independently; the run records which ones failed.

This module must never print (the CLI does), and must never publish when a check failed without an
explicit override.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from backup_operator.core import model
from backup_operator.core.search.index import SearchIndex, write_index_in
from backup_operator.errors import BackupOperatorError, ConfigError, ExportError, ExporterBusy, ExportRefused, \
    ExportTimedOut, ValidationError
from backup_operator.snapshot import envelope
from backup_operator.snapshot.keys import DesktopPublicKey, SignerKey, SignerPublicKey

from exporter import changes as exporter_changes
from exporter.checks import CheckReport, explain_validation, run_checks
from exporter.config import Config, load_config
from exporter.deadline import check_deadline, current_deadline, deadline_message, export_deadline
from exporter.delta import group_key_for, prepare_publication, remember_published, with_group_key
from exporter.home import ExporterHome
from exporter.lock import ExclusiveLock
from exporter.publish import DestinationResult, highest_published_version, publish_all, resolve_destinations
from exporter.recipients import Recipient, load_recipients
from exporter.repair import drop_broken_references, tidy
from exporter.signing import load_endorsements, load_signing_key
from exporter.sources import DirectoryData, ReadWindow, read_sources
from exporter.receipts import verify_receipts
from exporter.state import State

__all__ = [
    "read",
    "check",
    "build",
    "seal",
    "publish",
    "prepare",
    "prerequisites",
    "next_version",
    "ExportOutcome",
    "run_export",
    "check_only",
    "record_skipped",
    "StageTimer",
]

log = logging.getLogger("exporter.pipeline")

DEADLINE_GRACE_S = 5.0


def give_back_freed_memory() -> None:
    """Return the memory the process freed to the system, where the C library keeps it otherwise (glibc).

    Building the search index of a million listings allocates and frees hundreds of MB in pieces; glibc
    keeps most of it for later allocations (it raises its threshold for mapping big blocks on its own
    each time one is freed), so the process stayed ~400 MB larger through the change summary and the
    seal, which is where the export's peak is. Elsewhere (another C library, Windows, macOS) nothing."""
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


class StageTimer:
    """Seconds spent per stage, for the log and the benchmark: wall time, and the CPU time of this process
    (all threads; stages run one after the other), which a busy shared machine does not inflate as much."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, stage: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                timer.seconds[stage] = timer.seconds.get(stage, 0.0) + time.perf_counter() - self.t0
                timer.cpu[stage] = timer.cpu.get(stage, 0.0) + time.process_time() - self.c0

        return _Stage()

    def describe(self) -> str:
        return ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())


# --- the stages -------------------------------------------------------------------------------


def read(config: Config, now: datetime) -> DirectoryData:
    window = ReadWindow.around(now, config.export.window_days_back, config.export.window_days_ahead)
    return read_sources(config, window)


def check(data: DirectoryData, config: Config, now: datetime, baseline: dict[str, int] | None) -> CheckReport:
    return run_checks(data, now=now, baseline=baseline, settings=config.checks)


@dataclass
class Annotation:
    """What the build adds to the finished database (the change summary): ``summarize`` only reads it,
    ``store`` then writes its result."""

    summarize: Callable[[sqlite3.Connection], object]
    store: Callable[[sqlite3.Connection, object], None]


def build(data: DirectoryData, config: Config, *, version: int, now: datetime,
          annotate: Annotation | None = None) -> bytes:
    """The snapshot database: what ``read`` streamed in, plus schedules and shifts, validated, indexed.

    ``annotate`` adds to the finished database in place (the change summary) before it is serialised.
    """
    description = config.export.description
    if data.descriptions:
        description += " from " + ", ".join(data.descriptions)
    builder = data.builder
    builder.add_records("schedules", data.schedules)
    builder.add_records("shifts", data.shifts)
    builder.finish(snapshot_version=version, created_at=now,
                   expires_at=now + timedelta(hours=config.export.expires_after_hours),
                   expected_interval_s=config.export.expected_interval_s, source=description[:500])
    # The search index travels inside the snapshot: desktops then open a million listings in a fraction
    # of a second instead of building it themselves (bench/search: ours-stored vs ours-build). Its
    # numbers are read on a second, read-only connection to the build file, in a thread (none when the
    # database is in SQLite's memory).
    index = SearchIndex.build(builder.conn, reader=builder.reader())
    write_index_in(builder.conn, index)
    del index  # its arrays (hundreds of MB at 1M listings) must not outlive it into the summary and seal
    give_back_freed_memory()
    if annotate is not None:
        # After the index, not beside it: the last published database it decrypts (528 MB at 1M listings)
        # and the index's arrays at their peak would otherwise be in memory at the same time.
        annotate.store(builder.conn, annotate.summarize(builder.conn))
    return builder.serialize()


def seal(database: bytes | envelope.Packed, config: Config, *, version: int, now: datetime,
         recipients: list[DesktopPublicKey], signer: SignerKey,
         endorsements: list[envelope.Endorsement] = ()) -> bytes:
    """The sealed snapshot: ``database``, or what ``envelope.pack`` made of it, encrypted once and its key
    wrapped for each recipient, signed."""
    packed = database if isinstance(database, envelope.Packed) else envelope.pack(database)
    return envelope.seal_packed(packed, snapshot_version=version, created_at=now,
                                expires_at=now + timedelta(hours=config.export.expires_after_hours),
                                recipients=recipients, signer=signer, endorsements=endorsements)


def publish(sealed: bytes, version: int, config: Config, recipients: list[Recipient], *,
            sleep: Callable[[float], None] = time.sleep) -> list[DestinationResult]:
    return publish_all(sealed, version, resolve_destinations(config, recipients), config.publish, sleep=sleep)


# --- a whole run, up to publishing (``run`` and ``check`` share this) ----------------------------

# Young objects the cyclic garbage collector lets pile up before it looks (Python's default is 700).
BULK_GC_THRESHOLD = 200_000


@contextlib.contextmanager
def bulk_collection():
    """Fewer, cheaper runs of the cyclic garbage collector while millions of rows pass through.

    Reading a million listings makes tens of millions of short-lived tuples, each one counted towards
    the next collection, and every third or so full collection walked every object the program had
    made since it started: a third of the read's time at 1M (bench/desktop.py). The objects alive now
    (modules, configuration) are frozen out of the collections, and the collector waits for many more
    new objects before it runs. Nothing is switched off: reference counting frees the rows as always,
    and reference cycles are still collected, only less often. The settings are put back afterwards.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], BULK_GC_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@dataclass
class ExportOutcome:
    run_id: int | None
    result: str = "running"  # then published, partial, refused, failed or skipped
    version: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    report: CheckReport | None = None
    destinations: list[DestinationResult] = field(default_factory=list)
    size_bytes: int | None = None
    forced: bool = False
    warnings: list[str] = field(default_factory=list)
    # What the export changed in the data it read, in the open (skipped empty values, dropped references).
    changes: list[str] = field(default_factory=list)
    timer: StageTimer = field(default_factory=StageTimer)
    database: bytes | None = field(default=None, repr=False)  # kept only for a web folder's delta

    @property
    def failed_destinations(self) -> list[DestinationResult]:
        return [d for d in self.destinations if not d.ok]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def refusal_message(report: CheckReport) -> str:
    return (f"The export was refused and nothing was published: {report.summary()}. Fix the source, or "
            "publish anyway with --force (the override is logged; references to removed listings are then "
            "dropped and counted).")


def next_version(state: State, destinations, signed_by=()) -> int:
    """The version this export will carry: the next free number, read but not yet taken.

    It is taken (committed to the state) only once the snapshot is sealed and about to be published,
    so a refused or failed run never uses a number up. It comes from the state, raised only by a snapshot
    in an inbox that this exporter's own keys signed (a lost or restored state); never by a file name or
    a receipt, which anyone with write access to a share could plant (issue 10).
    """
    counter = state.last_version()
    signed, named = highest_published_version(destinations, 10.0, own_keys=list(signed_by), above=counter) \
        if destinations else (0, 0)
    version = max(counter, signed) + 1
    if signed > counter:
        log.warning("the state's version counter (%d) is behind snapshot %d that this exporter signed and "
                    "published (was state.sqlite lost or restored?): continuing from %d", counter, signed, version)
    if named >= version:
        log.warning("an inbox holds a file named for snapshot version %d that this exporter's keys did not "
                    "sign (planted or damaged); it is ignored and the next version is %d", named, version)
    return version


def prepare(config: Config, outcome: ExportOutcome, *, now: datetime, baseline: dict[str, int] | None,
            force: bool, recipients: list[DesktopPublicKey] | None, signer: SignerKey | None,
            endorsements: list[envelope.Endorsement] = (), home: ExporterHome | None = None,
            group_key: tuple[str, bytes] | None = None) -> bytes | None:
    """Everything a run does before publishing: read → tidy → check → build → seal.

    ``run`` publishes what this returns; ``check`` calls exactly this and stops, so a dry run can never
    pass what a run would refuse. Fills ``outcome`` as it goes (counts, report, warnings, changes), so
    a refusal is recorded with what was read. Returns the sealed snapshot, or None when there is nobody
    to seal for yet (``check`` before the first desktop is enrolled). With ``home``, the build stores
    what changed since the last kept snapshot, and the exporter's receiving key is one more recipient.
    With ``group_key`` (web folders), the database carries the deltas' group key and is kept in
    ``outcome.database`` for the delta (exporter/delta.py).
    """
    with bulk_collection():
        return _prepare(config, outcome, now=now, baseline=baseline, force=force, recipients=recipients,
                        signer=signer, endorsements=endorsements, home=home, group_key=group_key)


def _prepare(config: Config, outcome: ExportOutcome, *, now: datetime, baseline: dict[str, int] | None,
             force: bool, recipients: list[DesktopPublicKey] | None, signer: SignerKey | None,
             endorsements: list[envelope.Endorsement], home: ExporterHome | None,
             group_key: tuple[str, bytes] | None) -> bytes | None:
    timer = outcome.timer
    with timer("read"):
        data = _read_within_deadline(config, now)
    outcome.counts = data.counts
    # What sources left out or added on their own (zero-length calendar events, a feed read as Latin-1…).
    outcome.changes += [w.removeprefix("note:").strip() for w in data.warnings if w.startswith("note:")]
    outcome.changes += tidy(data, config.checks)
    with timer("check"):
        report = check(data, config, now, baseline)
    check_deadline("after the checks")
    outcome.report = report
    outcome.warnings += [w.message for w in report.warnings]
    for warning in report.warnings:
        log.warning("check %s: %s", warning.name, warning.message)
    if not report.passed:
        override = "--force" if force else "[checks] force = true" if config.checks.force else None
        if override is None:
            raise ExportRefused(refusal_message(report), report)
        outcome.forced = True
        for failure in report.failures:
            log.warning("check %s FAILED but overridden by %s: %s", failure.name, override, failure.message)
            for row in failure.rows:
                log.warning("    %s", row)
        outcome.warnings.append(f"checks overridden by {override}: {report.summary()}")
        outcome.changes += drop_broken_references(data)
    for change in outcome.changes:
        log.warning("%s", change)
    outcome.counts = data.counts
    with timer("build"):
        # What changed since the last published version, and the key desktops seal journals to.
        annotate = None if home is None else Annotation(
            lambda conn: exporter_changes.summarize(home, conn, version=outcome.version, now=now),
            lambda conn, summary: exporter_changes.store_in(home, conn, summary))
        try:
            database = build(data, config, version=outcome.version, now=now, annotate=annotate)
        except ValidationError as exc:
            raise explain_validation(exc) from None
    check_deadline("after building the snapshot")
    if group_key is not None:
        database = with_group_key(database, group_key)
        outcome.database = database
    if recipients is None or signer is None:
        return None
    if home is not None:
        # The exporter's receiving key is one more recipient: its own copy is the next diff's baseline.
        recipients = list(recipients) + [exporter_changes.own_recipient(home)]
    with timer("seal"):
        packed = envelope.pack(database)
        # Nothing needs the database any more (outcome.database keeps it for a web folder's delta): at 1M
        # listings its 528 MB are freed before the payload is encrypted and the file assembled.
        del database
        sealed = seal(packed, config, version=outcome.version, now=now, recipients=recipients,
                      signer=signer, endorsements=endorsements)
        del packed
    outcome.size_bytes = len(sealed)
    check_deadline("after sealing, before publishing")
    return sealed


def _read_within_deadline(config: Config, now: datetime) -> DirectoryData:
    """``read``, but given up (and the lock freed) when the export's deadline passes.

    Every source wait has its own timeout; this is the net under them, for what no timeout can reach (a
    database server that froze without closing its connection, a hung network share). The reading
    thread is abandoned, not killed: Python cannot kill a thread; its connection dies with the process
    or when the server notices.
    """
    deadline = current_deadline()
    if deadline is None:
        return read(config, now)
    context = contextvars.copy_context()
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["data"] = context.run(read, config, now)
        except BaseException as exc:  # handed to the export's own thread below
            box["error"] = exc

    worker = threading.Thread(target=work, name="export-read", daemon=True)
    worker.start()
    # A little grace, so that a source's own timeout (cut to the deadline, with a clearer message and a
    # clean disconnect) fires first whenever it can.
    worker.join(max(0.0, deadline.left()) + DEADLINE_GRACE_S)
    if worker.is_alive():
        log.error("the export's reading thread is still waiting (%s); it is abandoned", deadline.where)
        raise ExportTimedOut(deadline_message(deadline, deadline.where))
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["data"]  # type: ignore[return-value]


def own_keys(needs: "Prerequisites") -> list[SignerPublicKey]:
    """Every signing key this exporter has used: the current one and those in its endorsement chain."""
    out = [needs.signer.public]
    for e in needs.endorsements:
        out += [e.by_signer, e.new_signer]
    return list(dict.fromkeys(out))


@dataclass
class Prerequisites:
    """What a run needs besides the data: desktops to seal for, inboxes to write to, the signing key."""

    recipients: list[Recipient]
    destinations: list
    signer: SignerKey
    endorsements: list[envelope.Endorsement]


def prerequisites(home: ExporterHome, config: Config) -> Prerequisites:
    recipients = load_recipients(home.recipients)
    if not recipients:
        raise ConfigError("No desktops are enrolled, so there is nobody to seal a snapshot for; add one "
                          "with 'backup-operator-export recipients add NAME KEY'.")
    destinations = resolve_destinations(config, recipients)
    if not destinations:
        raise ConfigError("No inbox is configured: give desktops an --inbox, or add [[destinations]] to "
                          f"{home.config}.")
    return Prerequisites(recipients, destinations, load_signing_key(home), load_endorsements(home))


def check_only(home: ExporterHome, *, now: datetime | None = None, force: bool = False,
               config: Config | None = None, outcome: ExportOutcome | None = None) -> ExportOutcome:
    """``check``: exactly what ``run`` does up to publishing (read, check, build, seal); nothing is written.

    Raises what a run would raise (ExportRefused, ValidationError, SourceError, ...). When the data is
    fine but the run itself could not go on (no desktop enrolled yet, no key), raises that ConfigError
    last, saying the data passed. Pass ``outcome`` to see what was read even when it raises.
    """
    config = config or load_config(home.config)
    now = now or _now()
    state = State(home.state)
    try:
        needs, missing = prerequisites(home, config), None
    except BackupOperatorError as exc:
        needs, missing = None, exc
    outcome = outcome if outcome is not None else ExportOutcome(run_id=None)
    outcome.version = next_version(state, needs.destinations if needs else [], own_keys(needs) if needs else ())
    baseline = state.last_published()
    with export_deadline(config.export.deadline_minutes * 60):
        prepare(config, outcome, now=now, baseline=baseline.counts if baseline else None, force=force,
                recipients=[r.key for r in needs.recipients] if needs else None,
                signer=needs.signer if needs else None, endorsements=needs.endorsements if needs else (),
                home=home)
    if missing is not None:
        raise type(missing)(f"The data passed every check and the snapshot was built, but 'run' would stop "
                            f"here: {missing}")
    return outcome


def run_export(home: ExporterHome, *, force: bool = False, trigger: str = "manual",
               now: datetime | None = None, sleep: Callable[[float], None] = time.sleep) -> ExportOutcome:
    """One whole export under the exporter lock, recorded in the run history.

    Raises the stage's error (SourceError, ExportRefused, ValidationError, ...) after recording it;
    returns the outcome when something was published (check ``failed_destinations``). A run that finds
    another export holding the lock is recorded as skipped and raises ExporterBusy.
    """
    lock = ExclusiveLock(home.run_lock, "an export")
    try:
        lock.acquire()
    except ExporterBusy as exc:
        record_skipped(home, trigger, str(exc))
        _after_run(home)
        raise
    try:
        return _run_locked(home, force=force, trigger=trigger, now=now, sleep=sleep)
    finally:
        lock.release()
        _after_run(home)


def _after_run(home: ExporterHome) -> None:
    """The health file and alerts (exporter.notifications); never raises."""
    from exporter.notifications import after_run

    after_run(home)


def record_skipped(home: ExporterHome, trigger: str, why: str) -> None:
    """A run that did not happen is history too: monitoring must see it."""
    state = State(home.state)
    run_id = state.start_run(trigger)
    state.finish_run(run_id, result="skipped", message=why)
    log.warning("export %d (%s) skipped: %s", run_id, trigger, why)


def _run_locked(home: ExporterHome, *, force: bool, trigger: str, now: datetime | None,
                sleep: Callable[[float], None]) -> ExportOutcome:
    config = load_config(home.config)
    state = State(home.state)
    state.mark_interrupted_runs()
    needs = prerequisites(home, config)
    now = now or _now()
    outcome = ExportOutcome(run_id=state.start_run(trigger))
    timer = outcome.timer
    log.info("export %d started (%s) for %d desktops, %d destinations", outcome.run_id, trigger,
             len(needs.recipients), len(needs.destinations))
    taken: int | None = None  # the version, once committed: only then may a snapshot carry it out
    try:
        baseline = state.last_published()
        outcome.version = next_version(state, needs.destinations, own_keys(needs))
        # Web folders get deltas, sealed to a group key that travels inside the full snapshot.
        web = any(d.kind == "web" for d in needs.destinations)
        group_key = group_key_for(home, [r.key for r in needs.recipients]) if web else None
        with export_deadline(config.export.deadline_minutes * 60):
            sealed = prepare(config, outcome, now=now, baseline=baseline.counts if baseline else None,
                             force=force, recipients=[r.key for r in needs.recipients], signer=needs.signer,
                             endorsements=needs.endorsements, home=home, group_key=group_key)
        # Taken only now, with a sealed snapshot in hand: from here on the number may reach a desktop,
        # so it is never given out again, even if publishing fails.
        allocated = state.allocate_version(outcome.version - 1)
        if allocated != outcome.version:
            raise ExportError(f"The snapshot version counter in {home.state} moved during this export "
                              f"({outcome.version} became {allocated}); nothing was published, run again.")
        taken = allocated
        publication = None
        if group_key is not None:
            with timer("delta"):
                publication = prepare_publication(
                    home, outcome.database, outcome.version, created_at=now,
                    expires_at=now + timedelta(hours=config.export.expires_after_hours),
                    recipients=[r.key for r in needs.recipients], signer=needs.signer,
                    endorsements=needs.endorsements, full_size=len(sealed), group_key=group_key)
        with timer("publish"):
            outcome.destinations = publish_all(sealed, outcome.version, needs.destinations, config.publish,
                                               sleep=sleep, publication=publication)
        if publication is not None and any(d.ok for d, c in zip(outcome.destinations, needs.destinations)
                                           if c.kind == "web"):
            made = publication.deltas[-1] if publication.deltas else None
            remember_published(home, outcome.database, outcome.version, made.content if made else None)
    except BackupOperatorError as exc:
        result = "refused" if isinstance(exc, ExportRefused) else "failed"
        state.finish_run(outcome.run_id, result=result, snapshot_version=taken,
                         counts=outcome.counts, warnings=outcome.warnings + outcome.changes, message=str(exc),
                         forced=outcome.forced)
        # The caller shows this error itself; the console handler skips records marked "raised".
        log.error("export %d %s: %s", outcome.run_id, result, exc, extra={"raised": True})
        raise
    except BaseException as exc:
        state.finish_run(outcome.run_id, result="failed", snapshot_version=taken,
                         counts=outcome.counts, message=f"{type(exc).__name__}: {exc}")
        raise

    read_at = model.format_utc(_now())
    for dest in outcome.destinations:
        state.record_destination(outcome.run_id, dest.destination, dest.ok, dest.attempts, dest.message,
                                 round(dest.seconds, 3))
        state.save_receipts(verify_receipts(dest.receipts, needs.recipients, latest=state.last_version(),
                                            read_at=read_at))
    failed = outcome.failed_destinations
    outcome.result = "published" if not failed else "partial" if len(failed) < len(outcome.destinations) \
        else "failed"
    if outcome.result != "failed":
        exporter_changes.remember(home, outcome.version, sealed)
    message = "" if not failed else "not written to " + "; ".join(
        f"{d.destination} ({d.message})" for d in failed)
    state.finish_run(outcome.run_id, result=outcome.result, snapshot_version=outcome.version,
                     counts=outcome.counts, warnings=outcome.warnings + outcome.changes, message=message,
                     forced=outcome.forced, size_bytes=outcome.size_bytes)
    log.info("export %d %s: snapshot %d, %s, %d bytes, %s", outcome.run_id, outcome.result, outcome.version,
             ", ".join(f"{v} {k}" for k, v in outcome.counts.items()), outcome.size_bytes, timer.describe())
    for dest in failed:
        log.error("destination %s failed after %d attempts: %s", dest.destination, dest.attempts, dest.message)
    return outcome

