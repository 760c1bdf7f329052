"""``status``: the last runs, and per enrolled desktop the snapshot it last confirmed and how old that is.

Receipts are read back from every destination (each desktop writes ``receipts/<name>.json`` into its
inbox after installing) and remembered in the state, so status still answers when a share is down.
A desktop is matched to its receipt by public key (names can be reused), else by name. A desktop is
flagged BEHIND when it confirmed an older version than the last one published, and NO RECEIPT when it
never confirmed one.

This module must never change a destination; it only reads receipts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from backup_operator.core.model import format_utc, parse_utc
from backup_operator.textsafe import shown

from exporter.config import Config
from exporter.publish import open_destination, resolve_destinations
from exporter.recipients import Recipient
from exporter.state import ReceiptRecord, RunRecord, State

__all__ = ["DesktopStatus", "desktop_statuses", "refresh_receipts", "format_age", "render_status"]


@dataclass
class DesktopStatus:
    name: str
    confirmed_version: int | None
    installed_at: str | None
    age_s: float | None
    flag: str  # "ok", "BEHIND", "NO RECEIPT"
    where: str = ""


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} days"


def refresh_receipts(config: Config, recipients: list[Recipient], state: State) -> list[str]:
    """Read receipts from every destination into the state; return the destinations that did not answer."""
    problems = []
    read_at = format_utc(datetime.now(timezone.utc))
    for dest in resolve_destinations(config, recipients):
        target = None
        try:
            target = open_destination(dest, min(config.publish.timeout_s, 10.0))
            state.save_receipts([ReceiptRecord(r.public_key or f"name:{r.desktop}", r.desktop, dest.label,
                                               r.snapshot_version, r.installed_at, read_at)
                                 for r in target.read_receipts()])
        except Exception as exc:
            problems.append(f"{dest.label}: {exc}")
        finally:
            if target is not None:
                target.close()
    return problems


def desktop_statuses(recipients: list[Recipient], receipts: list[ReceiptRecord], latest: int | None,
                     now: datetime) -> list[DesktopStatus]:
    out = []
    for recipient in recipients:
        key = recipient.key.to_text()
        mine = [r for r in receipts if r.public_key == key] or \
               [r for r in receipts if r.public_key in ("", f"name:{recipient.name}") and r.desktop == recipient.name]
        if not mine:
            out.append(DesktopStatus(recipient.name, None, None, None, "NO RECEIPT"))
            continue
        best = max(mine, key=lambda r: (r.snapshot_version, r.installed_at))
        try:
            age = (now - parse_utc(best.installed_at)).total_seconds()
        except ValueError:
            age = None
        flag = "BEHIND" if latest is not None and best.snapshot_version < latest else "ok"
        out.append(DesktopStatus(recipient.name, best.snapshot_version, best.installed_at, age, flag,
                                 best.destination))
    return out


def _run_line(run: RunRecord) -> str:
    counts = run.counts
    what = (f"{counts.get('listings', 0)} listings, {counts.get('contact_methods', 0)} contact methods, "
            f"{counts.get('oncall_schedules', 0)} schedules, {counts.get('oncall_shifts', 0)} shifts"
            if counts else "")
    version = f"snapshot {run.snapshot_version}" if run.snapshot_version else "no snapshot"
    line = f"  #{run.id:<4} {run.started_at}  {run.trigger:<9} {run.result.upper():<9} {version}"
    if what:
        line += f"  ({what})"
    if run.forced:
        line += "  FORCED"
    extra = [f"      {run.message}"] if run.message else []
    extra += [f"      warning: {w}" for w in run.warnings]
    return "\n".join([line] + extra)


def render_status(state: State, recipients: list[Recipient], *, now: datetime, runs: int = 10,
                  unreachable: list[str] | None = None) -> tuple[str, list[DesktopStatus]]:
    lines = []
    history = state.runs(runs)
    lines.append("Last runs:" if history else "No export has run yet.")
    lines += [_run_line(run) for run in history]
    published = state.last_published()
    latest = published.snapshot_version if published else None
    statuses = desktop_statuses(recipients, state.receipts(), latest, now)
    lines.append("")
    if latest is not None:
        lines.append(f"Latest published snapshot: {latest} ({published.finished_at})")
    if not recipients:
        lines.append("No desktops are enrolled.")
    else:
        width = max(len("DESKTOP"), *(len(shown(s.name)) for s in statuses))
        lines.append(f"{'DESKTOP':<{width}}  {'CONFIRMED':>9}  {'INSTALLED AT':<20}  {'AGE':>12}  STATE")
        for s in statuses:
            confirmed = str(s.confirmed_version) if s.confirmed_version is not None else "—"
            lines.append(f"{shown(s.name):<{width}}  {confirmed:>9}  {shown(s.installed_at or 'never'):<20}  "
                         f"{format_age(s.age_s):>12}  {s.flag}"
                         + (f" (latest is {latest})" if s.flag == "BEHIND" else ""))
    for problem in unreachable or []:
        lines.append(f"receipts could not be read from {shown(problem)}")
    return "\n".join(lines), statuses
