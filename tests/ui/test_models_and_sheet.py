"""Every Qt item model passes qtmodeltester; the crash sheet PDF says what it must."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ui_support import NOW
from PySide6.QtCore import Qt

from backup_operator.core.session import open_session
from backup_operator.ui.models import RecordRole, ResultsModel, SchedulesModel


@pytest.fixture
def session(env):
    s = open_session(env.desktop)
    yield s
    s.close()


def test_results_model(qtmodeltester, session):
    model = ResultsModel()
    model.set_results(session.search("cardiology", 50, NOW))
    assert model.rowCount() > 2
    qtmodeltester.check(model, force_py=True)
    model.set_results([])
    qtmodeltester.check(model, force_py=True)


def test_schedules_model_is_checkable(qtmodeltester, session):
    model = SchedulesModel(session.schedules(), ["pharmacy"])
    qtmodeltester.check(model, force_py=True)
    row = next(r for r in range(model.rowCount()) if model.data(model.index(r), RecordRole).id == "ir")
    assert model.setData(model.index(row), Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    assert set(model.checked_ids()) == {"pharmacy", "ir"}


def _pdf_text(path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_crash_sheet_pdf_has_the_rota_numbers_and_stamps(qtbot, session, tmp_path):
    from backup_operator.ui.printing import write_pdf

    target = tmp_path / "sheet.pdf"
    pages = write_pdf(session, ["cardio-attending", "ir"], 48, target, NOW)
    assert pages >= 1
    text = " ".join(_pdf_text(target).split())
    assert "On-call crash sheet" in text
    assert "Snapshot version 1842" in text and "3 h 12 min ago" in text and "printed at" in text
    assert "Cardiology — attending" in text and "Radiology — interventional" in text
    for name in ("Amelia Hart", "Priya Raman", "John Smith"):
        assert name in text
    assert "Sat 07 Mar 08:00 – 20:00 EST" in text  # Amelia Hart's day shift
    assert "Sat 07 Mar 20:00 EST – Sun 08 Mar 08:00 EDT" in text, "a night across the DST change"
    assert "Mon 09 Mar 08:00 – 20:00 EDT" in text
    assert "4471" in text and "Key numbers" in text and "Security control room" in text
    assert "Pharmacy" in text  # key numbers include every department
    assert "Emergency — physician in charge" not in text  # only the chosen schedules


def test_print_command_writes_the_sheet(env, tmp_path, capsys, monkeypatch):
    from backup_operator.cli import main

    monkeypatch.setenv("BACKUP_OPERATOR_HOME", str(env.home))
    target = tmp_path / "cli.pdf"
    assert main(["print", "--hours", "24", "--schedule", "pharmacy", "-o", str(target)]) == 0
    text = _pdf_text(target)
    assert "Pharmacy — on-call pharmacist" in text and "Cardiology — attending" not in text
    assert "Wrote" in capsys.readouterr().out
    assert main(["print", "--schedule", "nope", "-o", str(target)]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize("points", [8, 10, 14, 20])
@pytest.mark.parametrize("page", [300, 450])
def test_page_breaks_never_cut_through_a_table_row(qtbot, points, page):
    from PySide6.QtGui import QFont, QTextDocument, QTextTable

    from backup_operator.ui.printing import _page_breaks

    rows = "".join(f"<tr><td>Shift {n}</td><td>{'Line<br>' * (1 + n % 4)}</td></tr>" for n in range(120))
    doc = QTextDocument()
    font = QFont()
    font.setPointSize(points)  # the window's text size setting changes the layout, and so the breaks
    doc.setDefaultFont(font)
    doc.setHtml(f"<h1>Sheet</h1><p>intro</p><table border='1' cellpadding='3'>{rows}</table><p>end</p>")
    doc.setTextWidth(500)
    slices = _page_breaks(doc, page)
    assert len(slices) > 5 and slices[0][0] == 0 and slices[-1][1] == doc.size().height()
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False)), "pages must follow on"
    layout = doc.documentLayout()
    table = next(f for f in doc.rootFrame().childFrames() if isinstance(f, QTextTable))
    for row in range(table.rows()):
        cells = [table.cellAt(row, col) for col in range(table.columns())]
        top = min(layout.blockBoundingRect(c.firstCursorPosition().block()).top() for c in cells)
        bottom = max(layout.blockBoundingRect(c.lastCursorPosition().block()).bottom() for c in cells)
        for _, cut in slices[:-1]:
            assert not (top < cut < bottom), f"row {row} ({top:.0f}–{bottom:.0f}) is cut at {cut:.0f}"


def test_the_sheet_has_every_contact_method_and_its_instructions(qtbot, session, tmp_path):
    from backup_operator.ui.printing import sheet_html

    html_text = sheet_html(session, ["cardio-attending"], 24, NOW)
    # Amelia Hart's shift row: pager first, with its instructions, then the mobile and the office line.
    for text in ("Pager <b>4471</b>", "Page, then wait 5 minutes before trying the mobile",
                 "Mobile <b>608-555-0147</b>", "Text only while in the cath lab", "Extension (Office) <b>4402</b>",
                 "Staffed 07:00–19:00; after hours it rings the ward"):
        assert text in html_text, text


@pytest.mark.parametrize("paper, locale, expected", [
    ("letter", None, "letter"), ("a4", None, "A4"), ("auto", ("en", "US"), "letter"), ("auto", ("en", "CA"), "letter"),
    ("auto", ("de", "DE"), "A4"), ("auto", ("en", "GB"), "A4"),
])
def test_the_paper_size(qtbot, session, tmp_path, paper, locale, expected):
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo (poppler-utils) is not installed")
    from PySide6.QtCore import QLocale

    from backup_operator.ui.printing import write_pdf

    before = QLocale()
    if locale:
        QLocale.setDefault(QLocale(f"{locale[0]}_{locale[1]}"))
    try:
        target = tmp_path / "sheet.pdf"
        write_pdf(session, ["pharmacy"], 24, target, NOW, paper=paper)
    finally:
        QLocale.setDefault(before)
    info = subprocess.run(["pdfinfo", str(target)], capture_output=True, text=True, check=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size:"))
    assert f"({expected})" in size, size
