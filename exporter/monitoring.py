"""Is the exporter healthy? One verdict for ``status``, its JSON, the Nagios line, the health file and alerts.

Hospitals watch servers with Nagios, Icinga, Zabbix or PRTG. They need the exporter's state as an exit
code, a machine-readable document, or a file, and a message when something goes wrong. All of them come
from one assessment (``assess``) of the run history and the desktops' receipts:

* **critical** (``status`` exits 57): the last run failed, was refused or was skipped; nothing was ever
  published; or nothing has been published for more than ``behind_after_intervals`` export intervals
  (the service stopped, or every run fails);
* **warning** (exits 56): a desktop has not confirmed a snapshot that was published more than
  ``behind_after_intervals`` intervals ago (it is behind), or the last run reached only some inboxes;
* **ok** (exits 0): the last run published everywhere and every desktop is current or catching up.

A desktop that simply has not synced the snapshot published five minutes ago is not behind: it is
only behind once it missed a snapshot for longer than two intervals (by default), so a monitor does not
flap on every export.

This module must never change the state or a destination; ``write_health_file`` writes only the
health file, atomically.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backup_operator.core.model import format_utc, parse_utc
from backup_operator.errors import DesktopsBehind, ExportFailing
from backup_operator.fsutil import atomic_write
from backup_operator.textsafe import shown

from exporter.recipients import Recipient
from exporter.state import RunRecord, State
from exporter.status import desktop_statuses, format_age

__all__ = ["Health", "DesktopHealth", "assess", "nagios_line", "write_health_file", "run_document", "EXIT_CODES",
           "NAGIOS_CODES", "utc_now"]

log = logging.getLogger("exporter.monitoring")

# status's exit codes (documented in docs/EXPORTER.md, "Monitoring"), and the Nagios plugin convention.
EXIT_CODES = {"ok": 0, "warning": DesktopsBehind.exit_code, "critical": ExportFailing.exit_code}
NAGIOS_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
_FAILED = ("failed", "refused", "skipped")


@dataclass
class DesktopHealth:
    name: str
    state: str  # "ok", "catching up", "behind", "no receipt"
    confirmed_version: int | None
    installed_at: str | None
    age_s: float | None
    missed_since: str | None = None  # when the first snapshot it has not confirmed was published


@dataclass
class Health:
    status: str  # "ok", "warning", "critical"
    summary: str
    problems: list[str]
    checked_at: str
    host: str
    interval_minutes: float
    latest_version: int | None
    latest_published_at: str | None
    last_run: dict[str, Any] | None
    desktops: list[DesktopHealth] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def behind(self) -> list[DesktopHealth]:
        return [d for d in self.desktops if d.state in ("behind", "no receipt")]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["exit_code"] = self.exit_code
        doc["desktops_behind"] = len(self.behind)
        return doc


def run_document(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"id": run.id, "started_at": run.started_at, "finished_at": run.finished_at, "trigger": run.trigger,
            "result": run.result, "snapshot_version": run.snapshot_version, "counts": run.counts,
            "forced": run.forced, "message": run.message, "warnings": run.warnings}


def _seconds_since(text: str | None, now: datetime) -> float | None:
    try:
        return (now - parse_utc(text)).total_seconds() if text else None
    except ValueError:
        return None


def assess(state: State, recipients: list[Recipient], *, interval_minutes: float, now: datetime,
           behind_after_intervals: float = 2.0, unreachable: list[str] | None = None, history: int = 2000) -> Health:
    """The exporter's health now, from the run history and the receipts remembered in the state."""
    limit_s = behind_after_intervals * interval_minutes * 60
    runs = state.runs(history)
    finished = [r for r in runs if r.result != "running"]
    last = finished[0] if finished else None
    published = [r for r in runs if r.result in ("published", "partial") and r.snapshot_version]
    latest = published[0] if published else None
    critical, warning = [], []

    if last is None:
        critical.append("no export has run yet")
    elif last.result in _FAILED:
        critical.append(f"the last run (#{last.id}, {last.started_at}, {last.trigger}) {last.result}"
                        + (f": {last.message}" if last.message else ""))
    elif last.result == "partial":
        warning.append(f"the last run (#{last.id}) reached only some inboxes: {last.message}")
    if latest is None:
        if last is not None:
            critical.append("no snapshot has been published yet")
    else:
        age = _seconds_since(latest.finished_at, now)
        if age is not None and age > limit_s:
            critical.append(f"no snapshot has been published for {format_age(age)} (snapshot {latest.snapshot_version} "
                            f"at {latest.finished_at}; one is expected every {interval_minutes:g} min)")

    desktops = []
    latest_version = latest.snapshot_version if latest else None
    for status in desktop_statuses(recipients, state.receipts(), latest_version, now):
        recipient = next(r for r in recipients if r.name == status.name)
        confirmed = status.confirmed_version
        if latest_version is None or (confirmed is not None and confirmed >= latest_version):
            desktops.append(DesktopHealth(status.name, "ok", confirmed, status.installed_at, status.age_s))
            continue
        # The first snapshot this desktop has not confirmed (for a new desktop: the first after enrolment).
        newer = [r for r in published if (confirmed is None or r.snapshot_version > confirmed)
                 and (confirmed is not None or not recipient.added_at or (r.finished_at or "") >= recipient.added_at)]
        missed = min(newer, key=lambda r: r.snapshot_version) if newer else None
        waited = _seconds_since(missed.finished_at, now) if missed else None
        late = waited is not None and waited > limit_s
        name = ("no receipt" if confirmed is None else "behind") if late else \
            ("catching up" if missed else "ok")
        desktops.append(DesktopHealth(status.name, name, confirmed, status.installed_at, status.age_s,
                                      missed.finished_at if missed else None))
    late_desktops = [d for d in desktops if d.state in ("behind", "no receipt")]
    if late_desktops:
        shown = ", ".join(f"{d.name} ({'never confirmed a snapshot' if d.confirmed_version is None else f'at {d.confirmed_version}'})"
                          for d in late_desktops[:5])
        more = f" and {len(late_desktops) - 5} more" if len(late_desktops) > 5 else ""
        warning.append(f"{len(late_desktops)} desktops are behind by more than {behind_after_intervals:g} export "
                       f"intervals (latest is {latest_version}): {shown}{more}")

    status = "critical" if critical else "warning" if warning else "ok"
    problems = critical + warning
    if status == "ok":
        current = sum(1 for d in desktops if d.state == "ok")
        summary = (f"snapshot {latest_version} published {format_age(_seconds_since(latest.finished_at, now))} ago; "
                   f"{current} of {len(desktops)} desktops current") if latest else "nothing to report"
    else:
        summary = problems[0] + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else "")
    return Health(status=status, summary=summary, problems=problems, checked_at=format_utc(now),
                  host=socket.gethostname(), interval_minutes=interval_minutes, latest_version=latest_version,
                  latest_published_at=latest.finished_at if latest else None, last_run=run_document(last),
                  desktops=desktops, unreachable=list(unreachable or []))


def nagios_line(health: Health) -> str:
    """One line in the Nagios plugin format (also Icinga, PRTG's EXE sensors, Zabbix's system.run)."""
    age = _seconds_since(health.latest_published_at, parse_utc(health.checked_at))
    perf = [f"desktops_behind={len(health.behind)};1;;0;{len(health.desktops)}",
            f"desktops={len(health.desktops)}"]
    if age is not None:
        perf.append(f"last_publish_age={int(age)}s;{int(health.interval_minutes * 120)}")
    if health.latest_version is not None:
        perf.append(f"snapshot_version={health.latest_version}")
    summary = shown(health.summary.replace("|", "/"))
    return f"BACKUP OPERATOR EXPORT {health.status.upper()} - {summary} | {' '.join(perf)}"


def write_health_file(path: Path, health: Health) -> None:
    """The health document for monitors that read files; replaced atomically, never half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(health.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(path, data.encode("utf-8"), mode=0o644)


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
