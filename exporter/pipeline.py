"""The export pipeline as plain functions: read → check → build → seal → publish.

``run_export`` strings them together for the command line and the scheduler, under the exporter lock,
and records the run in the exporter's state. Each stage can also be called on its own (tests, the
benchmark, ``check``).

Order matters for safety:

1. Everything is read before anything is built; a source that fails halfway raises, and nothing is
   published from a partial read.
2. Checks run on what was read; a failed check refuses the export unless explicitly overridden, and
   the override is logged with what it let through.
3. The snapshot version is committed to the state before sealing, above anything already seen in the
   inboxes, so a number is never reused, even after a failed run.
4. Each destination is written atomically and independently; the run records which ones failed.

This module must never print (the CLI does), and must never publish when a check failed without an
explicit override.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from backup_operator.core import model
from backup_operator.core.search import store_index
from backup_operator.errors import BackupOperatorError, ConfigError
from backup_operator.snapshot import envelope
from backup_operator.snapshot.keys import DesktopPublicKey, SignerKey

from exporter import changes as exporter_changes
from exporter.checks import CheckReport, run_checks
from exporter.config import Config, load_config
from exporter.delta import group_key_for, prepare_publication, remember_published, with_group_key
from backup_operator.errors import ExportRefused
from exporter.home import ExporterHome
from exporter.lock import ExclusiveLock
from exporter.publish import DestinationResult, highest_published_version, publish_all, resolve_destinations
from exporter.recipients import Recipient, load_recipients
from exporter.signing import load_endorsements, load_signing_key
from exporter.sources import DirectoryData, ReadWindow, read_sources
from exporter.state import ReceiptRecord, State

__all__ = [
    "read",
    "check",
    "build",
    "seal",
    "publish",
    "ExportOutcome",
    "run_export",
    "check_only",
    "StageTimer",
]

log = logging.getLogger("exporter.pipeline")


class StageTimer:
    """Seconds spent per stage, for the log and the benchmark."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[stage] = timer.seconds.get(stage, 0.0) + time.perf_counter() - self.t0

        return _Stage()

    def describe(self) -> str:
        return ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())


# --- the stages -------------------------------------------------------------------------------


def read(config: Config, now: datetime) -> DirectoryData:
    window = ReadWindow.around(now, config.export.window_days_back, config.export.window_days_ahead)
    return read_sources(config, window)


def check(data: DirectoryData, config: Config, now: datetime, baseline: dict[str, int] | None) -> CheckReport:
    return run_checks(data, now=now, baseline=baseline, settings=config.checks)


def build(data: DirectoryData, config: Config, *, version: int, now: datetime) -> bytes:
    description = config.export.description
    if data.descriptions:
        description += " from " + ", ".join(data.descriptions)
    database = model.build_database(
        listings=data.listings,
        contact_methods=data.contact_methods,
        schedules=data.schedules,
        shifts=data.shifts,
        snapshot_version=version,
        created_at=now,
        expires_at=now + timedelta(hours=config.export.expires_after_hours),
        expected_interval_s=config.export.expected_interval_s,
        source=description[:500],
    )
    # The search index travels inside the snapshot: desktops then open a million listings in a fraction
    # of a second instead of building the index themselves (bench/search: ours-stored vs ours-build).
    return store_index(database)


def seal(database: bytes, config: Config, *, version: int, now: datetime,
         recipients: list[DesktopPublicKey], signer: SignerKey,
         endorsements: list[envelope.Endorsement] = ()) -> bytes:
    return envelope.seal(database, snapshot_version=version, created_at=now,
                         expires_at=now + timedelta(hours=config.export.expires_after_hours),
                         recipients=recipients, signer=signer, endorsements=endorsements)


def publish(sealed: bytes, version: int, config: Config, recipients: list[Recipient], *,
            sleep: Callable[[float], None] = time.sleep) -> list[DestinationResult]:
    return publish_all(sealed, version, resolve_destinations(config, recipients), config.publish, sleep=sleep)


# --- a whole run ------------------------------------------------------------------------------


@dataclass
class ExportOutcome:
    run_id: int | None
    result: str = "running"  # then published, partial, refused or failed
    version: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    report: CheckReport | None = None
    destinations: list[DestinationResult] = field(default_factory=list)
    size_bytes: int | None = None
    forced: bool = False
    warnings: list[str] = field(default_factory=list)
    timer: StageTimer = field(default_factory=StageTimer)

    @property
    def failed_destinations(self) -> list[DestinationResult]:
        return [d for d in self.destinations if not d.ok]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def refusal_message(report: CheckReport) -> str:
    return (f"The export was refused and nothing was published: {report.summary()}. Fix the source, or "
            "publish anyway with --force (the override is logged).")


def check_only(home: ExporterHome, *, now: datetime | None = None,
               config: Config | None = None) -> tuple[DirectoryData, CheckReport]:
    """``check``: read and check exactly as a run would, without sealing or publishing anything."""
    config = config or load_config(home.config)
    now = now or _now()
    baseline = State(home.state).last_published()
    data = read(config, now)
    return data, check(data, config, now, baseline.counts if baseline else None)


def run_export(home: ExporterHome, *, force: bool = False, trigger: str = "manual",
               now: datetime | None = None, sleep: Callable[[float], None] = time.sleep) -> ExportOutcome:
    """One whole export under the exporter lock, recorded in the run history.

    Raises the stage's error (SourceError, ExportRefused, ValidationError, ...) after recording it;
    returns the outcome when something was published (check ``failed_destinations``) .
    """
    with ExclusiveLock(home.run_lock, "an export"):
        return _run_locked(home, force=force, trigger=trigger, now=now, sleep=sleep)


def _run_locked(home: ExporterHome, *, force: bool, trigger: str, now: datetime | None,
                sleep: Callable[[float], None]) -> ExportOutcome:
    config = load_config(home.config)
    state = State(home.state)
    state.mark_interrupted_runs()
    recipients = load_recipients(home.recipients)
    if not recipients:
        raise ConfigError("No desktops are enrolled, so there is nobody to seal a snapshot for; add one "
                          "with 'backup-operator-export recipients add NAME KEY'.")
    destinations = resolve_destinations(config, recipients)
    if not destinations:
        raise ConfigError("No inbox is configured: give desktops an --inbox, or add [[destinations]] to "
                          f"{home.config}.")
    signer = load_signing_key(home)
    endorsements = load_endorsements(home)
    now = now or _now()
    outcome = ExportOutcome(run_id=state.start_run(trigger))
    timer = outcome.timer
    log.info("export %d started (%s) for %d desktops, %d destinations", outcome.run_id, trigger,
             len(recipients), len(destinations))
    try:
        baseline = state.last_published()
        with timer("read"):
            data = read(config, now)
        outcome.counts = data.counts
        with timer("check"):
            report = check(data, config, now, baseline.counts if baseline else None)
        outcome.report = report
        outcome.warnings = [w.message for w in report.warnings]
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
        floor = highest_published_version(destinations, min(config.publish.timeout_s, 10.0))
        outcome.version = state.allocate_version(floor)
        with timer("build"):
            database = build(data, config, version=outcome.version, now=now)
            # What changed since the last published version, and the key desktops seal journals to.
            database = exporter_changes.annotate(home, database, version=outcome.version, now=now)
        group_key = None
        if any(d.kind == "web" for d in destinations):
            # Deltas for web folders are sealed to a group key that travels inside the full snapshot.
            group_key = group_key_for(home, [r.key for r in recipients])
            database = with_group_key(database, group_key)
        with timer("seal"):
            # The exporter's receiving key is one more recipient: its own copy is the next diff's baseline.
            sealed = seal(database, config, version=outcome.version, now=now,
                          recipients=[r.key for r in recipients] + [exporter_changes.own_recipient(home)],
                          signer=signer, endorsements=endorsements)
        outcome.size_bytes = len(sealed)
        publication = None
        if group_key is not None:
            with timer("delta"):
                publication = prepare_publication(
                    home, database, outcome.version, created_at=now,
                    expires_at=now + timedelta(hours=config.export.expires_after_hours),
                    recipients=[r.key for r in recipients], signer=signer, endorsements=endorsements,
                    full_size=len(sealed), group_key=group_key)
        with timer("publish"):
            outcome.destinations = publish_all(sealed, outcome.version, destinations, config.publish,
                                               sleep=sleep, publication=publication)
        if publication is not None and any(d.ok for d, c in zip(outcome.destinations, destinations)
                                           if c.kind == "web"):
            remember_published(home, database, outcome.version)
    except BackupOperatorError as exc:
        result = "refused" if isinstance(exc, ExportRefused) else "failed"
        state.finish_run(outcome.run_id, result=result, snapshot_version=outcome.version,
                         counts=outcome.counts, warnings=outcome.warnings, message=str(exc),
                         forced=outcome.forced)
        # The caller shows this error itself; the console handler skips records marked "raised".
        log.error("export %d %s: %s", outcome.run_id, result, exc, extra={"raised": True})
        raise
    except BaseException as exc:
        state.finish_run(outcome.run_id, result="failed", snapshot_version=outcome.version,
                         counts=outcome.counts, message=f"{type(exc).__name__}: {exc}")
        raise

    read_at = model.format_utc(_now())
    for dest in outcome.destinations:
        state.record_destination(outcome.run_id, dest.destination, dest.ok, dest.attempts, dest.message,
                                 round(dest.seconds, 3))
        state.save_receipts([ReceiptRecord(r.public_key or f"name:{r.desktop}", r.desktop, r.destination,
                                           r.snapshot_version, r.installed_at, read_at) for r in dest.receipts])
    failed = outcome.failed_destinations
    outcome.result = "published" if not failed else "partial" if len(failed) < len(outcome.destinations) \
        else "failed"
    if outcome.result != "failed":
        exporter_changes.remember(home, outcome.version, sealed)
    message = "" if not failed else "not written to " + "; ".join(
        f"{d.destination} ({d.message})" for d in failed)
    state.finish_run(outcome.run_id, result=outcome.result, snapshot_version=outcome.version,
                     counts=outcome.counts, warnings=outcome.warnings, message=message,
                     forced=outcome.forced, size_bytes=outcome.size_bytes)
    log.info("export %d %s: snapshot %d, %s, %d bytes, %s", outcome.run_id, outcome.result, outcome.version,
             ", ".join(f"{v} {k}" for k, v in outcome.counts.items()), outcome.size_bytes, timer.describe())
    for dest in failed:
        log.error("destination %s failed after %d attempts: %s", dest.destination, dest.attempts, dest.message)
    return outcome
