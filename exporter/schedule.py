"""``serve``: run exports on the cron schedule of the config, one at a time, until told to stop.

APScheduler 3 with one cron trigger per ``[[schedule.jobs]]`` entry (read in ``[schedule] timezone``),
and these rules:

* **one at a time**: one worker thread, ``max_instances = 1`` per job, and every export takes the
  exporter lock, so a scheduled run, a second job and a ``run`` typed by hand never overlap (the
  later one is skipped and logged, not queued);
* **coalesce**: after a pause (server asleep, a long export) the missed runs of a job become one;
* **misfire grace**: a run that could not start within ``misfire_grace_s`` of its time is skipped
  and logged; the next one comes as scheduled;
* **one exporter**: ``serve`` holds ``serve.lock`` for its lifetime; a second one refuses to start;
* **clean stop**: SIGTERM (or Ctrl+C) stops new runs, lets the running export finish, then exits 0.

Run history is in the exporter's state (``status`` shows it). This module must never run the export
logic itself: the job is ``pipeline.run_export``.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime
from typing import Callable

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from backup_operator.errors import BackupOperatorError, ConfigError

from exporter.config import Config
from backup_operator.errors import ExporterBusy
from exporter.home import ExporterHome
from exporter.lock import ExclusiveLock
from exporter.sources.localtime import zone

__all__ = ["build_scheduler", "cron_trigger", "run_scheduled", "serve"]

log = logging.getLogger("exporter.schedule")


def cron_trigger(cron: str, timezone_name: str, job_name: str = "") -> CronTrigger:
    try:
        return CronTrigger.from_crontab(cron, timezone=zone(timezone_name))
    except ValueError as exc:
        raise ConfigError(f"[[schedule.jobs]] {job_name or cron!r}: {cron!r} is not a cron line like "
                          f"\"*/15 * * * *\" (minute hour day month weekday): {exc}.") from None


def run_scheduled(home: ExporterHome, job_name: str) -> str:
    """The scheduled job: one export; every outcome is logged, nothing is raised into the scheduler."""
    from exporter.pipeline import run_export

    try:
        outcome = run_export(home, trigger="scheduled")
    except ExporterBusy as exc:
        log.warning("%s: skipped: %s", job_name, exc)
        return "skipped"
    except BackupOperatorError as exc:
        log.error("%s: %s", job_name, exc)  # already recorded in the run history
        return "failed"
    except Exception:
        log.exception("%s: unexpected error", job_name)
        return "failed"
    log.info("%s: snapshot %s %s", job_name, outcome.version, outcome.result)
    return outcome.result


def build_scheduler(home: ExporterHome, config: Config, *,
                    scheduler_cls: type[BaseScheduler] = BlockingScheduler,
                    job: Callable[[ExporterHome, str], object] = run_scheduled) -> BaseScheduler:
    if not config.schedule.jobs:
        raise ConfigError(f"No [[schedule.jobs]] in {config.path}; add one, e.g. cron = \"*/15 * * * *\".")
    settings = config.schedule
    scheduler = scheduler_cls(
        timezone=zone(settings.timezone),
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace_s},
    )
    for n, entry in enumerate(settings.jobs, 1):
        scheduler.add_job(job, cron_trigger(entry.cron, settings.timezone, entry.name), args=[home, entry.name],
                          id=f"job-{n}", name=entry.name, replace_existing=True)
    scheduler.add_listener(lambda event: record_scheduler_skip(scheduler, home, event),
                           EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
    return scheduler


def record_scheduler_skip(scheduler: BaseScheduler, home: ExporterHome | None, event) -> None:
    """A run the scheduler did not start is history too: record it as skipped, so monitoring sees it."""
    from exporter.pipeline import record_skipped

    job = scheduler.get_job(event.job_id)
    name = job.name if job is not None else event.job_id
    times = getattr(event, "scheduled_run_times", None) or [getattr(event, "scheduled_run_time", None)]
    when = ", ".join(f"{t:%Y-%m-%d %H:%M %Z}" for t in times if t is not None)
    if event.code == EVENT_JOB_MAX_INSTANCES:
        why = (f"{name} ({when}): the previous export was still running (APScheduler: maximum number of running "
               "instances reached)")
    else:
        why = (f"{name} ({when}): it could not start within misfire_grace_s of its time (the server was busy or "
               "asleep)")
    log.warning("skipped: %s", why)
    if home is None or not isinstance(home, ExporterHome):
        return
    try:
        record_skipped(home, "scheduled", why)
        from exporter.notifications import after_run
        after_run(home)
    except Exception:
        log.exception("the skipped run could not be recorded")


def serve(home: ExporterHome, config: Config, *, run_now: bool = False,
          scheduler_cls: type[BaseScheduler] = BlockingScheduler) -> int:
    with ExclusiveLock(home.serve_lock, "the exporter service ('serve')"):
        scheduler = build_scheduler(home, config, scheduler_cls=scheduler_cls)
        stopping = threading.Event()

        def stop(signum, _frame) -> None:
            if stopping.is_set():
                return
            stopping.set()
            log.info("received %s: no new runs; waiting for a running export to finish",
                     signal.Signals(signum).name)
            scheduler.shutdown(wait=True)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if run_now:
                scheduler.add_job(run_scheduled, args=[home, "run at start"], id="run-now",
                                  name="run at start", next_run_time=datetime.now(scheduler.timezone))
            for job in scheduler.get_jobs():
                if job.id != "run-now":
                    nxt = job.trigger.get_next_fire_time(None, datetime.now(scheduler.timezone))
                    log.info("scheduled %r (%s): next run %s", job.name, job.trigger, nxt)
            log.info("serving exports from %s (pid lock %s); stop with SIGTERM or Ctrl+C", home.root,
                     home.serve_lock)
            scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("stopped")
    return 0
