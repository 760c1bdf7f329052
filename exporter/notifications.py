"""Alerts when the exporter is in trouble: by email (SMTP) and webhook (HTTP POST), a handful, not hundreds.

After every run (and every skipped run) the exporter assesses its health (exporter.monitoring) and
decides whether to tell someone:

* a problem starts (ok → warning or critical, or warning → critical): send at once, unless a message
  went out less than ``min_interval_minutes`` ago (an exporter flapping every run);
* it goes on: a reminder every ``repeat_minutes`` (default 4 hours), saying how many runs failed since;
* it ends: one "recovered" message (``on_recovery``).

So an outage of a night with runs every 15 minutes sends three or four messages, not forty. What was
sent is kept in the exporter's state (table ``notifications``), so ``serve`` restarts do not reset it.

A notification that cannot be delivered is logged and recorded; it never fails or delays the export.
Messages carry the health summary, which names sources, files and desktops but never directory data
or secrets; header lines are stripped of control characters. This module must never block for longer
than its channels' timeouts.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import sqlite3
import ssl
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from backup_operator.core.model import format_utc, parse_utc
from backup_operator.errors import NotificationFailed

from exporter.monitoring import Health

__all__ = ["Message", "decide", "compose", "notify", "send_email", "send_webhook", "deliver", "after_run"]

log = logging.getLogger("exporter.notifications")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sent_at TEXT NOT NULL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    delivered INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""
_RANK = {"ok": 0, "warning": 1, "critical": 2}


@dataclass
class Message:
    kind: str  # "problem", "worse", "reminder", "recovered", "test"
    status: str
    subject: str
    body: str
    payload: dict


def _clean(text: str, limit: int) -> str:
    """One line for a mail header or a chat title: no control characters (no header injection)."""
    flat = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Log:
    """The notifications sent so far, in the exporter's state database."""

    def __init__(self, path):
        self.path = path
        with closing(sqlite3.connect(path, timeout=30)) as conn:
            conn.executescript(_SCHEMA)

    def last_delivered(self) -> sqlite3.Row | None:
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT * FROM notifications WHERE delivered = 1 AND kind <> 'test' "
                                "ORDER BY id DESC LIMIT 1").fetchone()

    def record(self, message: Message, delivered: bool, detail: str, now: datetime) -> None:
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.execute("INSERT INTO notifications (sent_at, status, kind, summary, delivered, detail) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (format_utc(now), message.status, message.kind, message.subject, int(delivered), detail))
            conn.commit()

    def all(self) -> list[sqlite3.Row]:
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT * FROM notifications ORDER BY id").fetchall()


def decide(health: Health, last: sqlite3.Row | None, settings, now: datetime) -> str | None:
    """What to send now, if anything: "problem", "worse", "reminder", "recovered" or None."""
    since = (now - parse_utc(last["sent_at"])) if last is not None else None
    if health.status == "ok":
        if last is not None and last["status"] != "ok" and settings.on_recovery:
            return "recovered"
        return None
    if last is None or last["status"] == "ok":
        if since is not None and since < timedelta(minutes=settings.min_interval_minutes):
            return None  # flapping: the last message was moments ago
        return "problem"
    if _RANK[health.status] > _RANK[last["status"]]:
        return "worse" if since is None or since >= timedelta(minutes=settings.min_interval_minutes) else None
    if since is not None and since >= timedelta(minutes=settings.repeat_minutes):
        return "reminder"
    return None


def _failed_runs_since(runs: list[dict], since: str | None) -> int:
    return sum(1 for r in runs if r["result"] in ("failed", "refused", "skipped")
               and (since is None or r["started_at"] >= since))


def compose(kind: str, health: Health, *, description: str, failed_since: int = 0,
            repeat_minutes: float = 240) -> Message:
    word = {"ok": "OK", "warning": "WARNING", "critical": "CRITICAL"}[health.status]
    heads = {"problem": f"{word}", "worse": f"now {word}", "reminder": f"still {word}", "recovered": "RECOVERED",
             "test": "TEST"}
    subject = _clean(f"[Backup Operator] {heads[kind]} on {health.host}: "
                     + ("the exporter is healthy again" if kind == "recovered" else
                        "test message, no action needed" if kind == "test" else health.summary), 200)
    lines = [f"Backup Operator exporter on {health.host} ({description}): {word}", ""]
    if kind == "test":
        lines += ["This is a test message sent by 'backup-operator-export notify-test'. No action is needed.", ""]
    if health.problems:
        lines += [f"- {p}" for p in health.problems] + [""]
    elif kind == "recovered":
        lines += [f"{health.summary}.", ""]
    if health.last_run:
        run = health.last_run
        lines.append(f"Last run: #{run['id']} {run['started_at']} ({run['trigger']}) {run['result']}"
                     + (f": {run['message']}" if run["message"] else ""))
    if health.latest_version is not None:
        lines.append(f"Latest snapshot: {health.latest_version}, published {health.latest_published_at}")
    if health.desktops:
        behind = health.behind
        lines.append(f"Desktops: {len(health.desktops) - len(behind)} of {len(health.desktops)} current"
                     + (f"; behind: {', '.join(d.name for d in behind[:10])}" if behind else ""))
    if failed_since and kind in ("reminder", "recovered", "worse"):
        lines.append(f"Runs failed, refused or skipped since the first message: {failed_since}")
    lines += ["", f"What to do: on {health.host}, run 'backup-operator-export status' and read the exporter log.",
              "Operators keep working from the last snapshot on their desktops."]
    if kind in ("problem", "worse", "reminder"):
        lines.append(f"A reminder follows every {repeat_minutes:g} minutes while this lasts, and one message "
                     "when it is over.")
    body = "\n".join(lines) + "\n"
    payload = {"text": f"{subject}\n{body}", "status": health.status, "kind": kind, "summary": health.summary,
               "host": health.host, "health": health.to_json()}
    return Message(kind, health.status, subject, body, payload)


def send_email(message: Message, email) -> None:
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = email.sender
    mail["To"] = ", ".join(email.to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="backup-operator.invalid")
    mail["X-Backup-Operator-Status"] = message.status
    mail.set_content(message.body)
    password = os.environ.get(email.password_env) if email.password_env else None
    if email.password_env and password is None:
        raise NotificationFailed(f"[notify.email] password_env: the environment variable {email.password_env} "
                                 "is not set.")
    try:
        if email.security == "ssl":
            client = smtplib.SMTP_SSL(email.host, email.port, timeout=email.timeout_s,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(email.host, email.port, timeout=email.timeout_s)
        with client:
            if email.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if email.username:
                client.login(email.username, password or "")
            client.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotificationFailed(f"The alert email could not be sent through {email.host}:{email.port} "
                                 f"({type(exc).__name__}: {exc}).") from None


def send_webhook(message: Message, webhook) -> None:
    data = json.dumps(message.payload, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "backup-operator-exporter"}
    if webhook.token_env:
        token = os.environ.get(webhook.token_env)
        if not token:
            raise NotificationFailed(f"[notify.webhook] token_env: the environment variable {webhook.token_env} "
                                     "is not set.")
        headers["Authorization"] = f"Bearer {token}"
    shown = webhook.url.split("?")[0]
    request = urllib.request.Request(webhook.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=webhook.timeout_s) as response:
            response.read(65536)
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc
        raise NotificationFailed(f"The alert webhook {shown} did not accept the message ({reason}).") from None


def deliver(message: Message, settings) -> list[str]:
    """Send ``message`` on every configured channel; returns the failures (empty: all delivered)."""
    failures = []
    for name, channel, send in (("email", settings.email, send_email), ("webhook", settings.webhook, send_webhook)):
        if channel is None:
            continue
        try:
            send(message, channel)
            log.info("notification (%s, %s) sent by %s", message.kind, message.status, name)
        except NotificationFailed as exc:
            failures.append(str(exc))
            log.error("%s", exc)
    return failures


def notify(health: Health, settings, state_path, *, description: str, now: datetime,
           runs: list[dict] | None = None) -> Message | None:
    """Send what ``decide`` says for this health, record it, and return it (None: nothing to send)."""
    if settings.email is None and settings.webhook is None:
        return None
    journal = Log(state_path)
    last = journal.last_delivered()
    kind = decide(health, last, settings, now)
    if kind is None:
        return None
    episode_start = None
    if last is not None and last["status"] != "ok":
        problem_rows = [r for r in journal.all() if r["delivered"] and r["kind"] == "problem"]
        episode_start = problem_rows[-1]["sent_at"] if problem_rows else last["sent_at"]
    message = compose(kind, health, description=description,
                      failed_since=_failed_runs_since(runs or [], episode_start) if episode_start else 0,
                      repeat_minutes=settings.repeat_minutes)
    failures = deliver(message, settings)
    journal.record(message, delivered=not failures or len(failures) < _channels(settings), detail="; ".join(failures),
                   now=now)
    return message


def _channels(settings) -> int:
    return int(settings.email is not None) + int(settings.webhook is not None)


def after_run(home, *, now: datetime | None = None) -> Health | None:
    """After every run or skipped run: write the health file, and alert if ``decide`` says so.

    Never raises: monitoring must not turn a published export into a failed command.
    """
    from exporter.config import load_config
    from exporter.monitoring import assess, utc_now, write_health_file
    from exporter.recipients import load_recipients
    from exporter.state import State

    try:
        config = load_config(home.config)
        now = now or utc_now()
        state = State(home.state)
        health = assess(state, load_recipients(home.recipients), interval_minutes=config.export.interval_minutes,
                        now=now, behind_after_intervals=config.monitoring.behind_after_intervals)
        path = config.monitoring.health_file or home.root / "health.json"
        try:
            write_health_file(path, health)
        except OSError as exc:
            log.error("the health file %s cannot be written (%s)", path, exc)
        runs = [{"result": r.result, "started_at": r.started_at} for r in state.runs(500)]
        notify(health, config.notify, home.state, description=config.export.description, now=now, runs=runs)
        return health
    except Exception:
        log.exception("monitoring after the run failed (the export itself is not affected)")
        return None
