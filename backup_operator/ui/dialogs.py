"""Dialogs: the crash sheet, settings, keyboard help and "about this data". All keyboard-complete."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
)

from backup_operator.config import Desktop
from backup_operator.core.freshness import freshness
from backup_operator.core.session import Session
from backup_operator.core.wording import describe_counts
from backup_operator.errors import BackupOperatorError
from backup_operator.ui.models import SchedulesModel
from backup_operator.ui.printing import MAX_HOURS, MIN_HOURS, footer_line, render, sheet_html, write_pdf
from backup_operator.ui.settings import PAPER_SIZES, TEXT_SIZES, UiSettings

__all__ = ["AboutDataDialog", "CrashSheetDialog", "HelpDialog", "KitCheckDialog", "SettingsDialog"]


class CrashSheetDialog(QDialog):
    """Choose schedules and hours, then save a PDF or send it to a printer."""

    def __init__(self, session: Session, settings: UiSettings, clock: Callable[[], datetime], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Crash sheet")
        self.session, self.settings, self.clock = session, settings, clock
        favourites = [f for f in settings.favourites if session.schedule(f)]
        self.model = SchedulesModel(session.schedules(), favourites or [s.id for s in session.schedules()], self)
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setAccessibleName("Schedules on the sheet (Space ticks)")
        self.hours = QSpinBox()
        self.hours.setRange(MIN_HOURS, MAX_HOURS)
        self.hours.setSingleStep(24)
        self.hours.setSuffix(" hours")
        self.hours.setValue(settings.print_hours)
        all_button = QPushButton("&All")
        none_button = QPushButton("&None")
        all_button.clicked.connect(lambda: self.model.set_all(True))
        none_button.clicked.connect(lambda: self.model.set_all(False))
        self.save_button = QPushButton("&Save as PDF…")
        self.print_button = QPushButton("&Print…")
        self.save_button.clicked.connect(self.save_pdf)
        self.print_button.clicked.connect(self.send_to_printer)
        cancel = QPushButton("Cancel (Esc)")
        cancel.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        # Long lines wrap: unwrapped at the default text size they made the dialog wider than a 1024-wide
        # laptop, and the window manager cut off the Print and Save buttons.
        heading = QLabel("On-call schedules on the sheet (Space ticks or unticks; favourites are ticked):")
        heading.setWordWrap(True)
        layout.addWidget(heading)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(all_button)
        row.addWidget(none_button)
        row.addStretch(1)
        row.addWidget(QLabel("Covering the next"))
        row.addWidget(self.hours)
        layout.addLayout(row)
        stamped = QLabel("The sheet also lists the departments' key numbers and is stamped with the data "
                         "version, its age and when it was printed.")
        stamped.setWordWrap(True)
        layout.addWidget(stamped)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.print_button)
        buttons.addWidget(self.save_button)
        buttons.addWidget(cancel)
        layout.addLayout(buttons)
        self.save_button.setDefault(True)
        self.resize(700, 560)
        self.list.setFocus()
        if self.model.rowCount():
            self.list.setCurrentIndex(self.model.index(0))

    def print_mode(self) -> None:
        self.print_button.setDefault(True)

    def _chosen(self) -> list[str] | None:
        ids = self.model.checked_ids()
        if not ids:
            QMessageBox.information(self, "Crash sheet", "Tick at least one on-call schedule (Space), then try again.")
            return None
        self.settings.print_hours = self.hours.value()
        return ids

    def save_pdf(self, target: str | None = None) -> Path | None:
        ids = self._chosen()
        if ids is None:
            return None
        if not target:
            now = self.clock()
            target, _ = QFileDialog.getSaveFileName(self, "Save the crash sheet",
                                                    str(Path.home() / f"crash-sheet-{now:%Y%m%d-%H%M}.pdf"),
                                                    "PDF (*.pdf)")
            if not target:
                return None
        try:
            write_pdf(self.session, ids, self.hours.value(), Path(target), self.clock(), paper=self.settings.paper)
        except (OSError, BackupOperatorError) as exc:
            QMessageBox.warning(self, "Crash sheet", f"The PDF could not be written ({exc}). Choose another folder.")
            return None
        self.accept()
        return Path(target)

    def send_to_printer(self) -> None:
        ids = self._chosen()
        if ids is None:
            return
        try:
            from PySide6.QtPrintSupport import QPrintDialog, QPrinter
        except ImportError:
            QMessageBox.information(self, "Crash sheet", "Printing is not available here; save a PDF instead.")
            return
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        dialog = QPrintDialog(printer, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        now = self.clock()
        try:
            render(printer, sheet_html(self.session, ids, self.hours.value(), now), footer_line(self.session, now),
                   paper=self.settings.paper)
        except OSError as exc:
            QMessageBox.warning(self, "Crash sheet", f"The printer refused the sheet ({exc}). Save a PDF instead.")
            return
        self.accept()


class SettingsDialog(QDialog):
    def __init__(self, desktop: Desktop, settings: UiSettings, session: Session | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.desktop, self.settings = desktop, settings
        self.size = QComboBox()
        self.size.addItems([name.capitalize() for name in TEXT_SIZES])
        self.size.setCurrentIndex(list(TEXT_SIZES).index(settings.text_size))
        self.contrast = QCheckBox("High contrast (white on black)")
        self.contrast.setChecked(settings.high_contrast)
        self.inbox = QLineEdit(desktop.config.inboxes[0] if desktop.config.inboxes else "")
        self.inbox.setPlaceholderText("Folder where IT's exporter drops new snapshots")
        browse = QPushButton("&Browse…")
        browse.clicked.connect(self._browse)
        inbox_row = QHBoxLayout()
        inbox_row.addWidget(self.inbox, 1)
        inbox_row.addWidget(browse)
        self.support = QLineEdit(settings.support)
        self.support.setPlaceholderText("e.g. the IT service desk on ext 5555")
        self.paper = QComboBox()
        self.paper.addItems(list(PAPER_SIZES.values()))
        self.paper.setCurrentIndex(list(PAPER_SIZES).index(settings.paper))
        self.favourites = SchedulesModel(session.schedules() if session else [], settings.favourites, self)
        fav_view = QListView()
        fav_view.setModel(self.favourites)
        form = QFormLayout()
        self.labels: dict[str, QLabel] = {}
        for text, field, row in (("&Text size:", self.size, self.size), ("", self.contrast, self.contrast),
                                 ("&Inbox:", self.inbox, inbox_row), ("&Who to call for problems:", self.support,
                                                                      self.support),
                                 ("&Paper for the crash sheet:", self.paper, self.paper),
                                 ("&Favourite schedules:", fav_view, fav_view)):
            # A label with a buddy: Alt+letter moves there, and the "&" is drawn as an underline,
            # not as a literal ampersand (a label for a row that is a layout has no buddy by itself).
            label = QLabel(text)
            label.setBuddy(field)
            self.labels[text.replace("&", "")] = label
            form.addRow(label, row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("More inboxes: IT runs 'backup-operator inbox add PATH'."))
        layout.addWidget(buttons)
        self.resize(760, 600)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Inbox folder", self.inbox.text())
        if folder:
            self.inbox.setText(folder)

    def save(self) -> None:
        self.settings.text_size = list(TEXT_SIZES)[self.size.currentIndex()]
        self.settings.high_contrast = self.contrast.isChecked()
        self.settings.support = self.support.text()
        self.settings.paper = list(PAPER_SIZES)[self.paper.currentIndex()]
        if self.favourites.rowCount():
            self.settings.favourites = self.favourites.checked_ids()
        inbox = self.inbox.text().strip()
        current = self.desktop.config.inboxes
        try:
            if inbox and (not current or current[0] != inbox):
                self.desktop.config.inboxes = [inbox] + [p for p in current[1:] if p != inbox]
                self.desktop.save()
        except BackupOperatorError as exc:
            QMessageBox.warning(self, "Settings", str(exc))
            return
        self.accept()


class HelpDialog(QDialog):
    def __init__(self, shortcuts: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Help — keyboard shortcuts")
        text = QTextBrowser()
        rows = "".join(f"<tr><td><b>{html.escape(keys)}</b></td><td>{html.escape(what)}</td></tr>"
                       for what, keys in shortcuts)
        text.setHtml(
            "<h2>Finding someone</h2>"
            "<p>Just type: a name (any order, small typos are fine), a department, a role, or part of a "
            "number. Results change as you type, best first. <b>Up/Down</b> choose, <b>Enter</b> copies the "
            "first number to dial (or opens an on-call schedule), <b>Esc</b> clears. Typing always goes to "
            "the search box.</p>"
            "<h2>Who is on call</h2><p>Type the department and \"on call\" (<i>ED on call</i>, <i>cards on "
            "call</i>, <i>pharmacist on call</i>): the department's schedule comes first. Press Enter on it. "
            "Names change by themselves at every handover. <b>Ctrl+T</b> (or <b>Tab</b>) goes to the date and "
            "time: type it, <b>Tab</b> moves between its parts, <b>Enter</b> shows that time; <b>Ctrl+N</b> "
            "goes back to now. Times are in the schedule's own time zone, shown with its offset.</p>"
            "<h2>How old is this?</h2><p>The top line always says when the data was made. An amber or red "
            "banner means it is older than usual: expected while the servers or the network are down. "
            "Keep working; if a number fails, call the department line. <b>Ctrl+K</b> shortens the banner to "
            "one line once you have read it.</p>"
            f"<h2>All shortcuts</h2><table cellpadding='4'>{rows}</table>")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        close.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(close)
        self.text = text
        self.resize(820, 720)


class AboutDataDialog(QDialog):
    def __init__(self, desktop: Desktop, session: Session | None, now: datetime, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About this data and desktop")
        lines = [f"Desktop: {desktop.name}", f"Home folder: {desktop.home}",
                 f"Inboxes: {', '.join(map(str, desktop.inboxes())) or 'none'}"]
        if session is not None:
            state = freshness(session.meta, session.version, now)
            lines += [state.line, f"Valid until: {session.meta.expires_at.astimezone():%a %d %b %Y %H:%M %Z}",
                      f"Source: {session.meta.source}",
                      "Holds: " + describe_counts(session.meta.counts)]
        label = QLabel("\n".join(lines))
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(close)


class KitCheckDialog(QDialog):
    """The kit self-check (the same checks as 'backup-operator kit-check'), one line per check."""

    def __init__(self, results, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Kit check")
        ready = all(r.ok for r in results)
        rows = "".join(
            f"<tr><td><b>{'OK' if r.ok else 'FAIL'}</b></td><td><b>{html.escape(r.name)}</b></td>"
            f"<td>{html.escape(r.detail)}</td></tr>" for r in results)
        verdict = ("<h2>This kit is ready.</h2>" if ready else
                   f"<h2>This kit is NOT ready: {sum(not r.ok for r in results)} check(s) failed.</h2>"
                   "<p>Fix them before the kit is put away, or tell IT.</p>")
        self.text = QTextBrowser()
        self.text.setHtml(f"{verdict}<table cellpadding='4'>{rows}</table>")
        self.ready = ready
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(close)
        self.resize(900, 480)
