"""Monitoring the exporter (issue 11, problem 4): exit codes, JSON, a Nagios line, the health file,
skipped runs in the history, and alerts by email and webhook with rate limiting.

Email goes through a real SMTP server (aiosmtpd) started on loopback; webhooks through a local HTTP
server; desktops are the real desktop program syncing from a folder inbox.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from contextlib import closing
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backup_operator.core.model import format_utc, parse_utc

from exporter.config import parse_config
from exporter.lock import ExclusiveLock
from exporter.monitoring import assess
from exporter.notifications import Log, notify
from exporter.recipients import load_recipients
from exporter.signing import signer_public
from exporter.state import State

from exporter_support import demo_sources_toml, run_desktop


# --- servers the tests start ---------------------------------------------------------------------


class SmtpServer:
    """aiosmtpd on a free loopback port, keeping every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        server = self

        class Handler:
            async def handle_DATA(self, _server, _session, envelope):
                server.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                        message_from_bytes(envelope.original_content or envelope.content)))
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for _, _, m in self.messages]

    def stop(self):
        self.controller.stop()


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


class WebhookServer:
    def __init__(self, status: int = 200):
        self.posts = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.posts.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    server = WebhookServer()
    yield server
    server.stop()


# --- helpers ---------------------------------------------------------------------------------------


def _config(home, extra: str = "", sources: str | None = None) -> None:
    home.config.write_text("[publish]\nretries = 0\n" + extra + "\n" + (sources if sources is not None
                                                                          else demo_sources_toml()),
                           encoding="utf-8")


def _broken_sources(tmp_path) -> str:
    return f'[[sources]]\ntype = "csv"\ntable = "listings"\npath = "{tmp_path / "missing.csv"}"\n'


def _age_history(home, hours: float) -> None:
    """Move every recorded time back, as if ``hours`` had passed since (instead of waiting for them)."""
    def back(text):
        return format_utc(parse_utc(text) - timedelta(hours=hours)) if text else text

    with closing(sqlite3.connect(home.state)) as conn:
        for table, columns in (("runs", ("started_at", "finished_at")), ("receipts", ("installed_at", "read_at"))):
            rows = conn.execute(f"SELECT rowid, {', '.join(columns)} FROM {table}").fetchall()
            for rowid, *values in rows:
                conn.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} WHERE rowid = ?",
                             [back(v) for v in values] + [rowid])
        conn.commit()


def _desktop(cli, tmp_path, exporter, name: str):
    """A real desktop (the desktop program) enrolled with a folder inbox; returns its home."""
    desk_home, inbox = tmp_path / name, tmp_path / f"{name}-inbox"
    inbox.mkdir()
    key = run_desktop(desk_home, "enroll", "--name", name, "--key-file").stdout.strip().splitlines()[-1]
    run_desktop(desk_home, "trust", signer_public(exporter.home).to_text())
    run_desktop(desk_home, "inbox", "add", str(inbox))
    code, out, err = cli("recipients", "add", name, key, "--inbox", str(inbox))
    assert code == 0, err
    return desk_home


# --- status: exit codes, JSON, Nagios -------------------------------------------------------------------


@pytest.mark.slow
def test_status_exit_codes_json_and_nagios_follow_the_exporters_health(demo_exporter, cli, tmp_path):
    home = demo_exporter.home
    cli("recipients", "remove", "desk-a")
    desk = _desktop(cli, tmp_path, demo_exporter, "switchboard-1")
    _config(home)

    assert cli("run")[0] == 0
    run_desktop(desk, "sync")
    code, out, err = cli("status")
    assert code == 0 and "Health: OK" in out
    code, out, err = cli("status", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "ok" and doc["exit_code"] == 0 and doc["desktops_behind"] == 0
    assert doc["desktops"][0]["name"] == "switchboard-1" and doc["desktops"][0]["confirmed_version"] == 1
    assert doc["runs"][0]["result"] == "published"
    code, out, err = cli("status", "--nagios")
    assert code == 0 and out.startswith("BACKUP OPERATOR EXPORT OK - ") and "desktops_behind=0" in out

    # A second snapshot the desktop never picks up, published an hour ago (two intervals are 30 minutes).
    assert cli("run")[0] == 0
    code, out, err = cli("status", "--cached")
    assert code == 0 and "Health: OK" in out  # just published: the desktop is catching up, not behind
    _age_history(home, 1)
    assert cli("run")[0] == 0  # the exporter keeps publishing; the desktop has missed snapshot 2 for an hour
    code, out, err = cli("status", "--cached", "--json")
    doc = json.loads(out)
    assert code == 56 and doc["status"] == "warning" and doc["desktops_behind"] == 1
    assert "switchboard-1 (at 1)" in doc["summary"]
    code, out, err = cli("status", "--cached", "--nagios")
    assert code == 1 and out.startswith("BACKUP OPERATOR EXPORT WARNING - 1 desktops are behind")
    # ... and no export since then: the exporter itself is stale, which is critical.
    _age_history(home, 2)
    code, out, err = cli("status", "--cached", "--nagios")
    assert code == 2 and "CRITICAL - no snapshot has been published for 2 h" in out

    # A failed run is critical at once, with its message.
    _config(home, sources=_broken_sources(tmp_path))
    assert cli("run")[0] == 51
    code, out, err = cli("status", "--cached")
    assert code == 57 and "Health: CRITICAL — the last run" in out and "failed" in out

    # A broken config still gives a monitoring plugin one line and UNKNOWN.
    home.config.write_text("[export]\nwidgets = 1\n", encoding="utf-8")
    code, out, err = cli("status", "--nagios")
    assert code == 3 and out.startswith("BACKUP OPERATOR EXPORT UNKNOWN - ") and "widgets" in out


def test_a_run_skipped_by_the_lock_is_recorded_and_is_critical(demo_exporter, cli):
    home = demo_exporter.home
    assert cli("run")[0] == 0
    with ExclusiveLock(home.run_lock, "an export"):
        code, out, err = cli("run")
    assert code == 54
    last = State(home.state).runs()[0]
    assert last.result == "skipped" and "already running" in last.message
    code, out, err = cli("status", "--cached")
    assert code == 57 and "SKIPPED" in out and "Health: CRITICAL" in out


def test_runs_the_scheduler_could_not_start_are_recorded_as_skipped(demo_exporter, monkeypatch):
    """APScheduler's "maximum number of running instances reached" and misfires used to leave no trace."""
    from apscheduler.schedulers.base import BaseScheduler

    from exporter.schedule import build_scheduler

    import test_schedule as sched  # the fake clock and the manual scheduler of the scheduler tests

    clock = sched.FakeClock(datetime(2026, 6, 1, 10, 0, tzinfo=sched.CHICAGO))
    job = sched.Recorder(hold=True)
    config = sched.config_with([("quarter", "*/15 * * * *")])
    scheduler = build_scheduler(demo_exporter.home, config, scheduler_cls=sched.ManualScheduler, job=job)
    assert isinstance(scheduler, BaseScheduler)
    sched.started(scheduler, clock, monkeypatch)
    try:
        clock.now = datetime(2026, 6, 1, 10, 15, tzinfo=sched.CHICAGO)
        scheduler.tick()
        assert job.entered.wait(30)
        for minute in (30, 45):  # the first export is still running
            clock.now = datetime(2026, 6, 1, 10, minute, tzinfo=sched.CHICAGO)
            scheduler.tick()
        job.release.set()
    finally:
        scheduler.shutdown(wait=True)
    skipped = [r for r in State(demo_exporter.home.state).runs() if r.result == "skipped"]
    assert len(skipped) == 2
    assert all("maximum number of running instances reached" in r.message for r in skipped)
    assert "10:30" in skipped[1].message and "10:45" in skipped[0].message
    health = json.loads((demo_exporter.home.root / "health.json").read_text())
    assert health["status"] == "critical" and "skipped" in health["summary"]


def test_the_health_file_is_written_after_every_run(demo_exporter, cli, tmp_path):
    home = demo_exporter.home
    target = tmp_path / "monitor" / "exporter-health.json"
    _config(home, f'[monitoring]\nhealth_file = "{target}"\n')
    assert cli("run")[0] == 0
    doc = json.loads(target.read_text())
    assert doc["status"] == "ok" and doc["latest_version"] == 1 and doc["last_run"]["result"] == "published"
    _config(home, f'[monitoring]\nhealth_file = "{target}"\n', sources=_broken_sources(tmp_path))
    assert cli("run")[0] == 51
    doc = json.loads(target.read_text())
    assert doc["status"] == "critical" and doc["exit_code"] == 57 and doc["last_run"]["result"] == "failed"
    assert not list(target.parent.glob(".tmp-*"))


# --- alerts ---------------------------------------------------------------------------------------------------


def _email(smtp, extra: str = "") -> str:
    return (f'[notify]\nrepeat_minutes = 240\nmin_interval_minutes = 60\n[notify.email]\nhost = "127.0.0.1"\n'
            f'port = {smtp.port}\nsecurity = "none"\nfrom = "bo-exporter@lakeshore.example"\n'
            f'to = ["switchboard-it@lakeshore.example", "oncall-it@lakeshore.example"]\n{extra}')


def test_failed_runs_email_it_once_then_recovery_through_a_real_smtp_server(demo_exporter, cli, smtp, tmp_path):
    home = demo_exporter.home
    _config(home, _email(smtp), sources=_broken_sources(tmp_path))
    for _ in range(4):  # an hour of failing runs
        assert cli("run")[0] == 51
    assert len(smtp.messages) == 1
    sender, rcpts, mail = smtp.messages[0]
    assert sender == "bo-exporter@lakeshore.example"
    assert rcpts == ["switchboard-it@lakeshore.example", "oncall-it@lakeshore.example"]
    assert str(mail["Subject"]).startswith("[Backup Operator] CRITICAL on ")
    body = mail.get_payload(decode=True).decode()
    assert "missing.csv" in body and "backup-operator-export status" in body

    _config(home, _email(smtp))
    assert cli("run")[0] == 0
    assert len(smtp.messages) == 2 and "RECOVERED" in smtp.subjects()[1]
    assert cli("run")[0] == 0
    assert len(smtp.messages) == 2  # healthy runs send nothing


def test_a_night_long_outage_sends_a_handful_of_messages_not_hundreds(demo_exporter, smtp, webhook, monkeypatch):
    """Eight hours of failed runs every 15 minutes, then recovery: 1 alert + 2 reminders + 1 recovery."""
    home = demo_exporter.home
    monkeypatch.setenv("BO_TEST_WEBHOOK_TOKEN", "t0ken")
    config = parse_config({"notify": {
        "repeat_minutes": 240, "min_interval_minutes": 60,
        "email": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "from": "bo@lakeshore.example",
                  "to": "it@lakeshore.example"},
        "webhook": {"url": f"http://127.0.0.1:{webhook.port}/hooks/bo", "token_env": "BO_TEST_WEBHOOK_TOKEN"}}})
    state = State(home.state)
    start = datetime(2026, 11, 1, 1, 0, tzinfo=timezone.utc)
    sent = []
    for step in range(33):  # 01:00 → 09:00, a failed run every 15 minutes
        now = start + timedelta(minutes=15 * step)
        run_id = state.start_run("scheduled")
        state.finish_run(run_id, result="failed", message="Source 'hr' could not connect (server down)")
        health = assess(state, load_recipients(home.recipients), interval_minutes=15, now=now)
        message = notify(health, config.notify, home.state, description="test", now=now,
                         runs=[{"result": "failed", "started_at": format_utc(now)}])
        sent += [message.kind] if message else []
    run_id = state.start_run("scheduled")
    state.finish_run(run_id, result="published", snapshot_version=1)
    now = start + timedelta(hours=8, minutes=15)
    health = assess(state, load_recipients(home.recipients), interval_minutes=15, now=now)
    sent += [notify(health, config.notify, home.state, description="test", now=now).kind]

    assert sent == ["problem", "reminder", "reminder", "recovered"]
    assert len(smtp.messages) == 4 and len(webhook.posts) == 4
    path, headers, payload = webhook.posts[0]
    assert path == "/hooks/bo" and headers["Authorization"] == "Bearer t0ken"
    assert payload["status"] == "critical" and payload["kind"] == "problem" and "server down" in payload["text"]
    assert payload["health"]["exit_code"] == 57
    assert "still CRITICAL" in smtp.subjects()[1] and webhook.posts[3][2]["kind"] == "recovered"
    assert [r["delivered"] for r in Log(home.state).all()] == [1, 1, 1, 1]


def test_flapping_is_rate_limited(demo_exporter, webhook):
    home = demo_exporter.home
    config = parse_config({"notify": {"min_interval_minutes": 60, "on_recovery": True,
                                      "webhook": {"url": f"http://127.0.0.1:{webhook.port}/"}}})
    state = State(home.state)
    start = datetime(2026, 11, 1, 1, 0, tzinfo=timezone.utc)
    sent = []
    for step in range(16):  # fails, works, fails, works ... every 15 minutes for four hours
        now = start + timedelta(minutes=15 * step)
        run_id = state.start_run("scheduled")
        if step % 2:
            state.finish_run(run_id, result="published", snapshot_version=step)
        else:
            state.finish_run(run_id, result="failed", message="flaky")
        health = assess(state, [], interval_minutes=15, now=now)
        message = notify(health, config.notify, home.state, description="test", now=now)
        sent += [message.kind] if message else []
    assert len(sent) <= 8 and len(webhook.posts) == len(sent)
    assert sent[:2] == ["problem", "recovered"]


def test_an_unreachable_webhook_never_fails_the_export_and_notify_test_says_so(demo_exporter, cli, tmp_path):
    home = demo_exporter.home
    broken = WebhookServer(status=500)
    try:
        _config(home, f'[notify.webhook]\nurl = "http://127.0.0.1:{broken.port}/x?secret=1"\n',
                sources=_broken_sources(tmp_path))
        code, out, err = cli("run")
        assert code == 51  # the source's failure, not the alert's
        assert len(broken.posts) == 1
        [row] = Log(home.state).all()
        assert row["delivered"] == 0 and "did not accept" in row["detail"]
        code, out, err = cli("notify-test")
        assert code == 58 and "did not accept the message" in err and "secret" not in err
    finally:
        broken.stop()


def test_notify_test_sends_by_every_channel(demo_exporter, cli, smtp, webhook):
    home = demo_exporter.home
    _config(home, _email(smtp) + f'[notify.webhook]\nurl = "http://127.0.0.1:{webhook.port}/hook"\n')
    code, out, err = cli("notify-test")
    assert code == 0, err
    assert "sent by email and webhook" in out
    assert "TEST" in smtp.subjects()[0] and webhook.posts[0][2]["kind"] == "test"


def test_alert_subjects_carry_no_control_characters(demo_exporter, cli, smtp, tmp_path):
    """A source error message is outside data: it must not inject mail headers."""
    home = demo_exporter.home
    evil = f"{tmp_path}/x\\r\\nBcc: attacker@evil.example\\r\\n.csv"  # TOML escapes: a real CR LF
    _config(home, _email(smtp), sources=f'[[sources]]\ntype = "csv"\ntable = "listings"\npath = "{evil}"\n')
    cli("run")
    assert len(smtp.messages) == 1
    sender, rcpts, mail = smtp.messages[0]
    assert rcpts == ["switchboard-it@lakeshore.example", "oncall-it@lakeshore.example"]
    assert mail["Bcc"] is None
    subject = "".join(str(mail["Subject"]).splitlines())
    assert "\r" not in subject and "failed" in subject
