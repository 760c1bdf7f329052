"""The scheduler: cron triggers fire jobs, missed runs coalesce, late runs misfire, never two at once.

The scheduler is driven by a fake clock (APScheduler's ``datetime.now`` is replaced) and its
``_process_jobs`` step is called directly, so no test waits for wall-clock minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
from apscheduler.schedulers.base import BaseScheduler

from backup_operator.errors import ConfigError

from exporter.config import parse_config
from backup_operator.errors import ExporterBusy
from exporter.lock import ExclusiveLock
from exporter.schedule import build_scheduler, cron_trigger, run_scheduled, serve
from exporter.state import State

from exporter_support import REPO

CHICAGO = ZoneInfo("America/Chicago")


class FakeClock:
    def __init__(self, start: datetime):
        self.now = start

    def install(self, monkeypatch) -> None:
        clock = self

        class FakeDatetime(datetime):
            @classmethod
            def now(cls, tz=None):
                return clock.now.astimezone(tz) if tz else clock.now.replace(tzinfo=None)

        monkeypatch.setattr(apscheduler.schedulers.base, "datetime", FakeDatetime)
        monkeypatch.setattr(apscheduler.executors.base, "datetime", FakeDatetime)


class ManualScheduler(BaseScheduler):
    """A scheduler that only acts when the test calls ``tick()``."""

    def wakeup(self):
        pass

    def shutdown(self, wait=True):
        super().shutdown(wait)

    def tick(self):
        return self._process_jobs()


def config_with(jobs, grace=300):
    return parse_config({"schedule": {"timezone": "America/Chicago", "misfire_grace_s": grace,
                                      "jobs": [{"name": n, "cron": c} for n, c in jobs]}})


def fire_times(cron: str, start: datetime, count: int) -> list[datetime]:
    trigger = cron_trigger(cron, "America/Chicago")
    out, previous, now = [], None, start
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, now)
        out.append(nxt)
        previous, now = nxt, nxt
    return out


def test_cron_lines_fire_when_expected_even_across_dst():
    start = datetime(2026, 10, 31, 23, 50, tzinfo=CHICAGO)
    quarter = fire_times("*/15 * * * *", start, 3)
    assert [t.strftime("%H:%M") for t in quarter] == ["00:00", "00:15", "00:30"]
    nightly = fire_times("30 2 * * *", start, 3)
    # 02:30 local every night; on the fall-back night the UTC offset changes from -05:00 to -06:00.
    assert [t.astimezone(timezone.utc).strftime("%m-%d %H:%M") for t in nightly] == [
        "11-01 08:30", "11-02 08:30", "11-03 08:30"]
    # Spring forward: 02:30 does not exist on 2026-03-08 in Chicago; the run is not lost.
    spring = fire_times("30 2 * * *", datetime(2026, 3, 7, 12, 0, tzinfo=CHICAGO), 2)
    assert spring[0].date().isoformat() == "2026-03-08" and spring[1].date().isoformat() == "2026-03-09"


def test_a_bad_cron_line_is_named():
    with pytest.raises(ConfigError, match="'every quarter'.*not a cron line"):
        build_scheduler(None, config_with([("every quarter", "*/15 * *")]), scheduler_cls=ManualScheduler)
    with pytest.raises(ConfigError, match="No \\[\\[schedule.jobs\\]\\]"):
        build_scheduler(None, config_with([]), scheduler_cls=ManualScheduler)


class Recorder:
    """A job that records calls and can be held inside, to prove a second one is not started."""

    def __init__(self, hold: bool = False):
        self.calls: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self.release = threading.Event()
        self.entered = threading.Event()
        self.hold = hold
        self.lock = threading.Lock()

    def __call__(self, home, name):
        with self.lock:
            self.calls.append(name)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.set()
        if self.hold:
            assert self.release.wait(30)
        with self.lock:
            self.running -= 1


def started(scheduler, clock, monkeypatch):
    clock.install(monkeypatch)
    events = []
    scheduler.add_listener(lambda e: events.append(e.code),
                           EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_EXECUTED)
    scheduler.start()
    return events


def test_jobs_fire_from_cron_triggers_on_a_fake_clock(monkeypatch):
    clock = FakeClock(datetime(2026, 6, 1, 9, 59, tzinfo=CHICAGO))
    job = Recorder()
    scheduler = build_scheduler("home", config_with([("quarter", "*/15 * * * *"), ("nightly", "30 2 * * *")]),
                                scheduler_cls=ManualScheduler, job=job)
    events = started(scheduler, clock, monkeypatch)
    try:
        scheduler.tick()
        assert job.calls == []  # 09:59: nothing due
        for minute in (0, 15, 30):
            clock.now = datetime(2026, 6, 1, 10, minute, tzinfo=CHICAGO)
            scheduler.tick()
            scheduler._executors["default"]._pool.submit(lambda: None).result()  # drain the worker
        assert job.calls == ["quarter"] * 3
        clock.now = datetime(2026, 6, 2, 2, 30, tzinfo=CHICAGO)
        scheduler.tick()
        scheduler._executors["default"]._pool.submit(lambda: None).result()
        assert sorted(job.calls[3:]) == ["nightly", "quarter"]  # both due at 02:30 (quarter coalesced)
    finally:
        scheduler.shutdown(wait=True)
    assert events.count(EVENT_JOB_EXECUTED) == 5


def test_missed_runs_coalesce_into_one(monkeypatch):
    clock = FakeClock(datetime(2026, 6, 1, 10, 0, tzinfo=CHICAGO))
    job = Recorder()
    scheduler = build_scheduler("home", config_with([("quarter", "*/15 * * * *")]), scheduler_cls=ManualScheduler,
                                job=job)
    started(scheduler, clock, monkeypatch)
    try:
        clock.now += timedelta(hours=2)  # eight runs were due while the server slept
        scheduler.tick()
        scheduler._executors["default"]._pool.submit(lambda: None).result()
        assert job.calls == ["quarter"]
    finally:
        scheduler.shutdown(wait=True)


def test_a_run_later_than_the_misfire_grace_is_skipped(monkeypatch):
    clock = FakeClock(datetime(2026, 6, 1, 1, 0, tzinfo=CHICAGO))
    job = Recorder()
    scheduler = build_scheduler("home", config_with([("nightly", "30 2 * * *")], grace=300),
                                scheduler_cls=ManualScheduler, job=job)
    events = started(scheduler, clock, monkeypatch)
    try:
        scheduler.tick()
        clock.now = datetime(2026, 6, 1, 2, 40, tzinfo=CHICAGO)  # 10 minutes late, grace is 5
        scheduler.tick()
        scheduler._executors["default"]._pool.submit(lambda: None).result()
        assert job.calls == [] and EVENT_JOB_MISSED in events
        clock.now = datetime(2026, 6, 2, 2, 33, tzinfo=CHICAGO)  # 3 minutes late: within grace
        scheduler.tick()
        scheduler._executors["default"]._pool.submit(lambda: None).result()
        assert job.calls == ["nightly"]
    finally:
        scheduler.shutdown(wait=True)


def test_the_scheduler_never_starts_a_second_instance_while_one_runs(monkeypatch):
    clock = FakeClock(datetime(2026, 6, 1, 10, 0, tzinfo=CHICAGO))
    job = Recorder(hold=True)
    scheduler = build_scheduler("home", config_with([("quarter", "*/15 * * * *")]), scheduler_cls=ManualScheduler,
                                job=job)
    events = started(scheduler, clock, monkeypatch)
    try:
        clock.now = datetime(2026, 6, 1, 10, 15, tzinfo=CHICAGO)
        scheduler.tick()
        assert job.entered.wait(30)
        for minute in (30, 45):  # the first export is still running
            clock.now = datetime(2026, 6, 1, 10, minute, tzinfo=CHICAGO)
            scheduler.tick()
        assert events.count(EVENT_JOB_MAX_INSTANCES) == 2
        job.release.set()
    finally:
        scheduler.shutdown(wait=True)
    assert job.calls == ["quarter"] and job.most_at_once == 1


def test_two_exports_at_once_one_is_skipped_by_the_lock(demo_exporter, monkeypatch):
    """Two scheduled jobs (or a job and a manual run) racing: the lock lets exactly one export run."""
    import exporter.pipeline as pipeline

    real_read = pipeline.read
    inside, release = threading.Event(), threading.Event()

    def slow_read(config, now):
        inside.set()
        assert release.wait(60)
        return real_read(config, now)

    monkeypatch.setattr(pipeline, "read", slow_read)
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", run_scheduled(demo_exporter.home, "a")))
    first.start()
    assert inside.wait(60)
    results["second"] = run_scheduled(demo_exporter.home, "b")  # while the first holds the lock
    with pytest.raises(ExporterBusy, match="already running"):
        pipeline.run_export(demo_exporter.home)  # 'run' by hand meanwhile: refused at once
    release.set()
    first.join(60)
    assert results == {"first": "published", "second": "skipped"}
    runs = State(demo_exporter.home.state).runs()
    # Both skipped attempts are in the history (monitoring sees them), the published run too.
    assert sorted((r.trigger, r.result) for r in runs) == [("manual", "skipped"), ("scheduled", "published"),
                                                          ("scheduled", "skipped")]


def test_a_second_serve_refuses_to_start(demo_exporter):
    config = config_with([("quarter", "*/15 * * * *")])
    with ExclusiveLock(demo_exporter.home.serve_lock, "the exporter service ('serve')"):
        with pytest.raises(ExporterBusy, match="already running"):
            serve(demo_exporter.home, config, scheduler_cls=ManualScheduler)


@pytest.mark.slow
def test_serve_stops_cleanly_on_sigterm(demo_exporter):
    home = demo_exporter.home
    home.config.write_text(home.config.read_text() + '\n[schedule]\ntimezone = "UTC"\n[[schedule.jobs]]\n'
                           'name = "yearly"\ncron = "0 0 1 1 *"\n', encoding="utf-8")
    env = dict(os.environ, BACKUP_OPERATOR_EXPORT_HOME=str(home.root),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--run-now"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # wait for the run at start to finish, by its log line
        lines.append(line)
        if "run at start: snapshot" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    log = "".join(lines) + (proc.stderr.read() if not proc.stderr.closed else "")
    assert proc.returncode == 0, log
    assert "run at start: snapshot 1 published" in log
    text = (home.logs / "exporter.log").read_text()
    assert "received SIGTERM" in text and text.rstrip().endswith("stopped")
    # The lock was released: another serve could start now.
    with ExclusiveLock(home.serve_lock, "serve"):
        pass
