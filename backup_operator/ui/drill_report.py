"""The drill report on paper: what the disaster-plan binder keeps after a drill.

One page per drill: who drilled, when, on which data, each look-up with its answer as the directory
gives it, the time it took and whether it was right, the kit check, and the verdict. ``report_html``
composes the text; ``write_report`` lays it out with the crash sheet's stamped header and footer.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtGui import QPdfWriter

from backup_operator.core.drill import PASS_CORRECT, TARGET_SECONDS, DrillResult, Question
from backup_operator.core.model import parse_utc
from backup_operator.ui.printing import render

__all__ = ["report_html", "write_report"]


def _local(text: str) -> str:
    try:
        moment = parse_utc(text).astimezone()
    except ValueError:
        return html.escape(text)
    return f"{moment:%a %d %b %Y %H:%M} {moment.tzname()}"


def report_html(result: DrillResult, questions: Sequence[Question]) -> str:
    e = html.escape
    verdict = "PASSED" if result.passed else "NOT PASSED"
    rows = []
    for n, (question, answer) in enumerate(zip(questions, result.answers), 1):
        outcome = "skipped" if answer.skipped else ("right" if answer.correct else "wrong")
        slow = " (slow)" if answer.seconds > TARGET_SECONDS else ""
        rows.append(f"<tr><td>{n}</td><td>{e(question.kind)}</td><td>{e(question.text)}</td>"
                    f"<td>{e(question.expected)}</td><td><b>{outcome}</b></td><td>{answer.seconds:.0f} s{slow}</td></tr>")
    kit = "".join(f"<tr><td>{e(str(k.get('name', '')))}</td><td><b>{'ok' if k.get('ok') else 'FAILED'}</b></td></tr>"
                  for k in result.kit) or "<tr><td colspan='2'>not run</td></tr>"
    return f"""
<h1>Backup Operator drill report — {verdict}</h1>
<p>Desktop <b>{e(result.desktop)}</b>, operator <b>{e(result.operator)}</b>; started {_local(result.started_at)},
finished {_local(result.finished_at)}.</p>
<p>Directory snapshot version {result.snapshot_version}, data as of {_local(result.data_as_of)}.
Drill {e(result.drill_id)}.</p>
<p><b>{result.correct} of {len(result.answers)} look-ups right</b> in {result.seconds:.0f} s
({result.slow} slower than {TARGET_SECONDS:.0f} s); kit check {'passed' if result.kit_ok else 'FAILED'}.
A drill passes with {PASS_CORRECT} right and a passing kit check.</p>
<h2>Look-ups</h2>
<table width="100%"><tr><th>#</th><th>Kind</th><th>Question</th><th>The directory's answer</th>
<th>Result</th><th>Time</th></tr>{''.join(rows)}</table>
<h2>Kit check</h2>
<table><tr><th>Check</th><th>Result</th></tr>{kit}</table>
<h2>Signed off</h2>
<p>Operator: ______________________ &nbsp;&nbsp; Supervisor: ______________________ &nbsp;&nbsp; Date: ____________</p>
"""


def write_report(result: DrillResult, questions: Sequence[Question], target: Path,
                 now: datetime | None = None) -> int:
    """Write the report as a PDF; returns the number of pages."""
    now = now or datetime.now(UTC)
    writer = QPdfWriter(str(target))
    writer.setResolution(300)
    writer.setTitle("Backup Operator drill report")
    writer.setCreator("Backup Operator")
    footer = (f"Drill {result.drill_id} · desktop {result.desktop} · snapshot {result.snapshot_version} · "
              f"printed {now.astimezone():%a %d %b %Y %H:%M %Z}")
    return render(writer, report_html(result, questions), footer, title="Drill report")


def write_report_command(result: DrillResult, questions: Sequence[Question], target: Path) -> int:
    """For ``backup-operator drill --report``: no window, so an offscreen Qt application of its own."""
    import os

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and os.name != "nt":
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(["backup-operator"])
    try:
        return write_report(result, questions, target)
    finally:
        del app
