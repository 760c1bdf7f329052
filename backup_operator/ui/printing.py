"""The crash sheet: the next 24–72 hours of on-call for chosen schedules and the key numbers, on paper.

Made for the moment the screens go dark: black on white, no colour carrying meaning, large enough to
read on a clipboard, every page stamped with the snapshot version, the data's age and when it was
printed (paper goes out of date silently). ``sheet_html`` composes the text (Qt-free logic over the
session); ``render`` lays it out on any paged device (a PDF writer or a printer) with a header and
footer on each page.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QLocale, QMarginsF, QRectF, Qt
from PySide6.QtGui import (
    QFont,
    QFontMetricsF,
    QPagedPaintDevice,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextCursor,
    QTextDocument,
    QTextTable,
)

from backup_operator.core.session import Session, wall_time, zone_offsets
from backup_operator.core.wording import describe_age

__all__ = ["MAX_HOURS", "MIN_HOURS", "footer_line", "page_size", "render", "sheet_html", "stamp_line", "write_pdf"]

MIN_HOURS, MAX_HOURS = 24, 72

CSS = """
body { font-family: 'DejaVu Sans', 'Arial', sans-serif; font-size: 10pt; color: #000; }
h1 { font-size: 17pt; margin: 0 0 4pt 0; }
h2 { font-size: 13pt; margin: 12pt 0 2pt 0; }
p { margin: 2pt 0; }
table { border-collapse: collapse; margin-top: 3pt; }
th { font-weight: bold; text-align: left; background: #e6e6e6; }
td, th { border: 1px solid #000; padding: 3pt; vertical-align: top; }
.now { font-weight: bold; }
.gap { font-weight: bold; font-style: italic; }
"""


def _local(moment: datetime) -> str:
    local = moment.astimezone()
    return f"{local:%a %d %b %Y %H:%M} {local.tzname()}"


def footer_line(session: Session, now: datetime) -> str:
    return (f"Snapshot version {session.version} · data as of {_local(session.created_at)} · "
            f"printed at {_local(now)}")


def stamp_line(session: Session, now: datetime) -> str:
    return (f"Snapshot version {session.version} · data as of {_local(session.created_at)} "
            f"({describe_age(session.created_at, now)}) · valid until {_local(session.meta.expires_at)} · "
            f"printed at {_local(now)}")


def _span(start: datetime, end: datetime, zone) -> str:
    """'Sat 07 Mar 08:00 – 20:00 EST', or both ends in full when the shift crosses midnight or an offset."""
    a, b = start.astimezone(zone), end.astimezone(zone)
    keep = lambda text: text.replace(" ", "\u00a0")
    if a.date() == b.date() and a.tzname() == b.tzname():
        return f"{keep(f'{a:%a %d %b %H:%M}')} – {keep(f'{b:%H:%M} {b.tzname()}')}"
    return f"{keep(wall_time(start, zone, offset=False))} – {keep(wall_time(end, zone, offset=False))}"


def _numbers(entry) -> str:
    """Every contact method of ``entry`` in order, with its instructions: paper is read when the screen
    is dark, so nothing the screen would show is left off (a pager and "text only" included)."""
    parts = []
    for c in entry.contacts:
        text = f"{html.escape(c.caption)} <b>{html.escape(c.value)}</b>"
        if c.instructions:
            text += f" <i>({html.escape(c.instructions)})</i>"
        parts.append(text)
    return "<br>".join(parts)


# Where Letter paper is the norm (the US and Canada first); everywhere else prints A4.
_LETTER_TERRITORIES = frozenset("US CA MX PH CL CO VE CR GT PA DO PR SV".split())  # ISO 3166 codes


def page_size(paper: str = "auto") -> QPageSize:
    """The crash sheet's paper: "letter", "a4", or "auto" (this computer's locale decides)."""
    if paper == "auto":
        code = QLocale.territoryToCode(QLocale().territory())
        paper = "letter" if code in _LETTER_TERRITORIES else "a4"
    return QPageSize(QPageSize.PageSizeId.Letter if paper == "letter" else QPageSize.PageSizeId.A4)


def sheet_html(session: Session, schedule_ids: Sequence[str], hours: int, now: datetime) -> str:
    hours = max(MIN_HOURS, min(MAX_HOURS, int(hours)))
    end = now + timedelta(hours=hours)
    out = [f"<html><head><style>{CSS}</style></head><body>",
           "<h1>On-call crash sheet</h1>",
           f"<p><b>{html.escape(stamp_line(session, now))}</b></p>",
           (f"<p>Covers the next {hours} hours: {html.escape(_local(now))} to {html.escape(_local(end))}. "
            "Each schedule's times are in its own time zone, shown on every line. When nobody answers, "
            "follow the escalation; when nobody is on call, call the department line.</p>")]
    for sid in schedule_ids:
        schedule = session.schedule(sid)
        if schedule is None:
            continue
        zone = schedule.zone
        current = session.on_call(sid, now)
        fallback = current.fallback
        out.append(f"<h2>{html.escape(schedule.name)}</h2>")
        offsets = ", ".join(zone_offsets(zone, now, end))
        facts = [x for x in (schedule.department, schedule.site, f"times in {schedule.timezone} ({offsets})") if x]
        out.append(f"<p>{html.escape(' · '.join(facts))}</p>")
        if schedule.escalation:
            out.append(f"<p><b>Escalation:</b> {html.escape(schedule.escalation)}</p>")
        if fallback is not None:
            out.append(f"<p><b>Department line:</b> {html.escape(fallback.name)}<br>{_numbers(fallback)}</p>")
        shifts = session.shifts(sid, now, end)
        out.append('<table width="100%" cellspacing="0" cellpadding="3" border="1">'
                   "<tr><th width='28%'>When</th><th width='12%'>Tier</th>"
                   "<th width='26%'>Who</th><th width='34%'>How to reach</th></tr>")
        if not shifts:
            out.append('<tr><td colspan="4" class="gap">Nobody is scheduled in this period: '
                       "use the department line.</td></tr>")
        for s in shifts:
            cls = ' class="now"' if s.start <= now < s.end else ""
            role = f"{s.tier}. {s.role}" if s.role else f"Tier {s.tier}"
            out.append(f"<tr{cls}><td>{html.escape(_span(s.start, s.end, zone))}</td>"
                       f"<td>{html.escape(role)}</td>"
                       f"<td><b>{html.escape(s.who.name)}</b></td><td>{_numbers(s.who)}</td></tr>")
        out.append("</table>")
    key = session.key_numbers()
    if key:
        out.append("<h2>Key numbers</h2>")
        out.append('<table width="100%" cellspacing="0" cellpadding="3" border="1">'
                   "<tr><th>Name</th><th>Department</th><th>Numbers</th></tr>")
        for entry in key:
            out.append(f"<tr><td><b>{html.escape(entry.name)}</b></td><td>{html.escape(entry.department)}</td>"
                       f"<td>{_numbers(entry)}</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "".join(out)


def _page_breaks(doc: QTextDocument, height: float) -> list[tuple[float, float]]:
    """Where each page starts and ends: at a paragraph or table-row boundary, so that no shift's row is
    ever cut in two (half a row at the foot of a page, half at the top of the next, misreads as two)."""
    layout = doc.documentLayout()
    cuts: set[float] = set()
    rows: list[tuple[float, float]] = []  # (top, bottom) of every table row: never cut inside one
    for frame in doc.rootFrame().childFrames():
        if isinstance(frame, QTextTable):
            pad = frame.format().cellPadding() + frame.format().border() + 1
            for row in range(frame.rows()):
                cells = [frame.cellAt(row, col) for col in range(frame.columns())]
                top = min(layout.blockBoundingRect(c.firstCursorPosition().block()).top() for c in cells)
                bottom = max(layout.blockBoundingRect(c.lastCursorPosition().block()).bottom() for c in cells)
                rows.append((max(0.0, top - pad), bottom + pad))
                cuts.add(max(0.0, top - pad))
    block = doc.begin()
    while block.isValid():
        # Paragraphs outside tables; the empty block Qt keeps after each table reports a position
        # inside the table's last row, which the row check below throws out.
        if QTextCursor(block).currentTable() is None:
            cuts.add(layout.blockBoundingRect(block).top())
        block = block.next()
    cuts = {c for c in cuts if not any(top < c < bottom for top, bottom in rows)}
    total = doc.size().height()
    ordered = sorted(c for c in cuts if 0 < c < total)
    slices, top = [], 0.0
    while top < total - 0.5:
        limit = top + height
        if limit >= total:
            slices.append((top, total))
            break
        fitting = [c for c in ordered if top < c <= limit]
        bottom = fitting[-1] if fitting else limit  # a single row taller than a page is cut where it must be
        slices.append((top, bottom))
        top = bottom
    return slices or [(0.0, max(total, 1.0))]


def render(device: QPagedPaintDevice, text_html: str, footer: str, title: str = "On-call crash sheet", *,
           paper: str = "auto") -> int:
    """Lay the sheet out on ``device`` with a stamped header and footer on every page; returns pages."""
    layout = QPageLayout(page_size(paper), QPageLayout.Orientation.Portrait,
                         QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter)
    device.setPageLayout(layout)
    dpi = device.logicalDpiY() or 300
    page = device.pageLayout().paintRectPixels(dpi)
    doc = QTextDocument()
    doc.documentLayout().setPaintDevice(device)
    base = QFont("DejaVu Sans")
    base.setPointSizeF(10)
    doc.setDefaultFont(base)
    doc.setHtml(text_html)
    small = QFont(base)
    small.setPointSizeF(8)
    fm = QFontMetricsF(small, device)
    band = fm.height() * 1.8
    body = QRectF(0, band, page.width(), page.height() - 2 * band)
    doc.setTextWidth(body.width())  # one long column; _page_breaks cuts it between rows, never through one
    slices = _page_breaks(doc, body.height())
    pages = len(slices)
    painter = QPainter()
    if not painter.begin(device):
        raise OSError("the printer or PDF file could not be opened for writing")
    try:
        for n, (top, bottom) in enumerate(slices):
            if n:
                device.newPage()
            painter.setFont(small)
            painter.setPen(Qt.GlobalColor.black)
            painter.drawText(QRectF(0, 0, page.width(), fm.height()),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                             f"Backup Operator — {title}")
            painter.drawText(QRectF(0, 0, page.width(), fm.height()),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                             f"page {n + 1} of {pages}")
            painter.drawLine(0, int(fm.height() * 1.3), int(page.width()), int(fm.height() * 1.3))
            painter.save()
            painter.translate(body.left(), body.top() - top)
            doc.drawContents(painter, QRectF(0, top, body.width(), bottom - top))
            painter.restore()
            painter.setFont(small)
            y = page.height() - fm.height()
            painter.drawLine(0, int(y - fm.height() * 0.3), int(page.width()), int(y - fm.height() * 0.3))
            painter.drawText(QRectF(0, y, page.width(), fm.height()),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                             fm.elidedText(footer, Qt.TextElideMode.ElideRight, page.width()))
    finally:
        painter.end()
    return pages


def write_pdf(session: Session, schedule_ids: Sequence[str], hours: int, target: Path,
              now: datetime | None = None, *, paper: str = "auto") -> int:
    """Write the crash sheet as a PDF; returns the number of pages."""
    now = now or datetime.now(UTC)
    writer = QPdfWriter(str(target))
    writer.setResolution(300)
    writer.setTitle("Backup Operator on-call crash sheet")
    writer.setCreator("Backup Operator")
    return render(writer, sheet_html(session, schedule_ids, hours, now), footer_line(session, now), paper=paper)


def print_command(desktop, hours: int, schedule_ids: Sequence[str], output: Path,
                  clock: Callable[[], datetime] | None = None, paper: str | None = None) -> int:
    """``backup-operator print``: open the newest snapshot and write the sheet without a window."""
    import os

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and os.name != "nt":
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from backup_operator.core.session import open_session
    from backup_operator.errors import ConfigError
    from backup_operator.ui.settings import UiSettings

    app = QGuiApplication.instance() or QGuiApplication(["backup-operator"])
    session = open_session(desktop)
    try:
        settings = UiSettings(desktop.home)
        ids = list(schedule_ids) or settings.favourites or [s.id for s in session.schedules()]
        unknown = [sid for sid in ids if session.schedule(sid) is None]
        if unknown:
            known = ", ".join(s.id for s in session.schedules()[:12])
            raise ConfigError(f"No on-call schedule has the id {unknown[0]!r}; schedules include: {known}.")
        pages = write_pdf(session, ids, hours, output, (clock or (lambda: datetime.now(UTC)))(),
                          paper=paper or settings.paper)
    finally:
        session.close()
    del app
    return pages
