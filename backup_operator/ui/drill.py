"""Help → Drill: the timed exercise in the window.

A small window beside the main one (not modal: the operator looks each answer up in the main window as
during a real call), one question at a time with a running clock; "Use selection" answers with what is
selected in the main window. At the end: the score, the kit check, the signed receipt, and the report
as a PDF for the disaster-plan binder.
"""

from __future__ import annotations

import getpass
import html
import random
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from backup_operator.core.drill import TARGET_SECONDS, Drill, DrillResult, generate
from backup_operator.errors import BackupOperatorError

__all__ = ["DrillDialog"]


class DrillDialog(QDialog):
    finished_drill = Signal(object)  # DrillResult

    def __init__(self, window, *, seed: int | None = None, clock=time.monotonic, parent=None):
        super().__init__(parent or window)
        self.main_window = window
        self.setWindowTitle("Drill")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.clock = clock
        self.drill: Drill | None = None
        self.drill_result: DrillResult | None = None
        self.receipt_note = ""

        self.pages = QStackedWidget()
        # intro
        intro = QWidget()
        il = QVBoxLayout(intro)
        text = QLabel("<h2>Drill: five look-ups, timed</h2><p>As in an outage, find each answer in the main "
                      "window (search, on call, a number), then type it here or press <b>Use selection</b>. "
                      "The kit check runs at the end. The result is signed and sent to IT; nothing from the "
                      "directory leaves this desktop with it.</p>")
        text.setWordWrap(True)
        self.operator = QLineEdit(getpass.getuser())
        self.operator.setAccessibleName("Operator")
        self.start_button = QPushButton("&Start the drill")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        row = QHBoxLayout()
        row.addWidget(QLabel("&Operator:", buddy=self.operator))
        row.addWidget(self.operator, 1)
        il.addWidget(text)
        il.addLayout(row)
        il.addWidget(self.start_button)
        il.addStretch(1)
        # a question
        ask = QWidget()
        al = QVBoxLayout(ask)
        self.progress = QLabel()
        self.timer_label = QLabel()
        self.timer_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.timer_label)
        self.question = QLabel()
        self.question.setWordWrap(True)
        self.question.setProperty("factor", 1.3)
        self.question.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.answer = QLineEdit()
        self.answer.setAccessibleName("Your answer")
        self.answer.returnPressed.connect(self.submit)
        self.feedback = QLabel()
        self.feedback.setWordWrap(True)
        self.use_button = QPushButton("Use selection (Alt+U)")
        self.use_button.clicked.connect(self.use_selection)
        self.skip_button = QPushButton("S&kip")
        self.skip_button.clicked.connect(self.skip)
        self.submit_button = QPushButton("&Answer")
        self.submit_button.clicked.connect(self.submit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.skip_button)
        buttons.addStretch(1)
        buttons.addWidget(self.submit_button)
        al.addLayout(top)
        al.addWidget(self.question)
        al.addWidget(self.answer)
        al.addLayout(buttons)
        al.addWidget(self.feedback)
        al.addStretch(1)
        # the result
        done = QWidget()
        dl = QVBoxLayout(done)
        self.report = QTextBrowser()
        self.pdf_button = QPushButton("Save the &report as PDF…")
        self.pdf_button.clicked.connect(lambda: self.save_report())
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(self.pdf_button)
        row.addStretch(1)
        row.addWidget(close)
        dl.addWidget(self.report, 1)
        dl.addLayout(row)
        for page in (intro, ask, done):
            self.pages.addWidget(page)
        for button in (self.use_button, self.skip_button, self.submit_button, self.pdf_button, close):
            button.setAutoDefault(False)  # Enter in the answer field answers; it never presses a button
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        QShortcut(QKeySequence("Alt+U"), self, activated=self.use_selection)
        self.ticker = QTimer(self, interval=1000)
        self.ticker.timeout.connect(self._tick)
        self.resize(640, 300)

    # --- running -------------------------------------------------------------------------------------

    def start(self) -> bool:
        session = self.main_window.session
        if session is None:
            self.feedback.setText("Open the directory first.")
            return False
        questions = generate(session.conn, self.main_window.now(), random.Random(self.seed))
        self.drill = Drill(questions, desktop=self.main_window.desktop.name, operator=self.operator.text().strip() or
                           getpass.getuser(), snapshot_version=session.version, data_as_of=session.created_at,
                           now=self.main_window.now, clock=self.clock, seed=self.seed)
        self.pages.setCurrentIndex(1)
        self._show_question()
        self.ticker.start()
        return True

    def _show_question(self) -> None:
        question = self.drill.current
        if question is None:
            self._finish()
            return
        n = len(self.drill.answers) + 1
        self.progress.setText(f"Look-up {n} of {len(self.drill.questions)} — {question.kind}")
        self.question.setText(html.escape(question.text))
        self.answer.clear()
        self.answer.setPlaceholderText(f"Type {question.wants}, or Use selection (Alt+U)")
        self.answer.setFocus()
        self._tick()

    def _tick(self) -> None:
        if self.drill is not None and not self.drill.done:
            seconds = self.drill.elapsed()
            slow = " — take your time, but a caller is waiting" if seconds > TARGET_SECONDS else ""
            self.timer_label.setText(f"{seconds:.0f} s{slow}")

    def use_selection(self) -> None:
        if self.drill is None or self.drill.current is None:
            return
        question = self.drill.current
        whose, contact = self.main_window.selected_contact()
        if question.accepted_numbers:
            self.answer.setText(contact.value if contact is not None else "")
        else:
            name = getattr(whose, "name", whose) if whose is not None else ""
            result = self.main_window.current_result()
            if not name and result is not None:
                name = result.name
            self.answer.setText(str(name or ""))
        self.answer.setFocus()

    def submit(self) -> None:
        if self.drill is None or self.drill.current is None:
            return
        question = self.drill.current
        given = self.answer.text()
        if not given.strip():
            self.feedback.setText("Type an answer, use the selection, or Skip.")
            return
        answer = self.drill.answer(given)
        verdict = "Right" if answer.correct else f"Not what the directory says: {question.expected}"
        self.feedback.setText(f"{verdict} ({answer.seconds:.0f} s).")
        self._show_question()

    def skip(self) -> None:
        if self.drill is None or self.drill.current is None:
            return
        question = self.drill.current
        answer = self.drill.skip()
        self.feedback.setText(f"Skipped ({answer.seconds:.0f} s); the directory says: {question.expected}.")
        self._show_question()

    def _finish(self) -> None:
        from backup_operator.core import outbox

        self.ticker.stop()
        kit = [{"name": k.name, "ok": k.ok} for k in self.main_window.kit_check()]
        self.drill_result = self.drill.finish(kit)
        desktop = self.main_window.desktop
        try:
            local, written, problems = outbox.save_drill(desktop.home, desktop.inboxes(), self.drill_result.receipt(),
                                                         desktop.key(interactive=False))
            self.receipt_note = (f"Signed receipt saved; sent to {len(written)} inbox(es)." if written else
                                 "Signed receipt saved; it is sent to IT with the next sync that reaches an inbox.")
            if problems:
                self.receipt_note += " " + "; ".join(problems)
        except BackupOperatorError as exc:
            self.receipt_note = f"The receipt could not be signed or saved: {exc}"
        self.report.setHtml(self._result_html())
        self.pages.setCurrentIndex(2)
        self.resize(max(self.width(), 760), max(self.height(), 560))
        self.pdf_button.setFocus()
        self.finished_drill.emit(self.drill_result)

    def _result_html(self) -> str:
        r = self.drill_result
        rows = "".join(
            f"<tr><td>{n}</td><td>{html.escape(q.kind)}</td><td>{'skipped' if a.skipped else 'right' if a.correct else 'wrong'}"
            f"</td><td>{a.seconds:.0f} s</td><td>{html.escape(q.expected)}</td></tr>"
            for n, (q, a) in enumerate(zip(self.drill.questions, r.answers), 1))
        kit = "".join(f"<li>{html.escape(k['name'])}: {'ok' if k['ok'] else 'FAILED'}</li>" for k in r.kit)
        verdict = "Drill passed" if r.passed else "Drill NOT passed"
        return (f"<h2>{verdict}: {r.correct} of {len(r.answers)} right in {r.seconds:.0f} s</h2>"
                f"<table cellpadding='3'><tr><th>#</th><th>Look-up</th><th>Result</th><th>Time</th>"
                f"<th>The directory's answer</th></tr>{rows}</table>"
                f"<p><b>Kit check:</b></p><ul>{kit}</ul><p>{html.escape(self.receipt_note)}</p>")

    def save_report(self, target: Path | None = None) -> Path | None:
        from backup_operator.ui.drill_report import write_report

        if self.drill_result is None:
            return None
        if target is None:
            name, _ = QFileDialog.getSaveFileName(self, "Save the drill report", str(
                Path.home() / f"drill-{self.drill_result.finished_at[:10]}.pdf"), "PDF (*.pdf)")
            if not name:
                return None
            target = Path(name)
        write_report(self.drill_result, self.drill.questions, target, now=self.main_window.now())
        self.main_window.say(f"Saved the drill report to {target}.")
        return target
