"""The outage journal in the window: Ctrl+J writes an entry prefilled from what is on screen; the journal
list (Ctrl+Shift+J) searches, shows every revision, amends and withdraws, and sends to IT.

Thin over ``core.journal``: the dialogs collect text, the core seals and saves it (fsync before the
dialog closes), and nothing here keeps an entry anywhere but in widgets while it is typed.
"""

from __future__ import annotations

import getpass
import html
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QDateTime, QModelIndex, QPersistentModelIndex, Qt, QTimeZone
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
)

from backup_operator.core import journal as J
from backup_operator.core import outbox
from backup_operator.core.model import parse_utc
from backup_operator.errors import BackupOperatorError
from backup_operator.fsutil import atomic_write
from backup_operator.snapshot.keys import DesktopPublicKey
from backup_operator.ui.models import RecordRole, _valid

__all__ = ["EntryDialog", "JournalModel", "JournalWindow", "RowsTable", "prefill_from_window"]

ACTION_WORDS = {"": "—", "paged": "Paged", "transferred": "Transferred", "no answer": "No answer",
                "message taken": "Message taken", "called back": "Called back", "other": "Other"}


def _local(text: str) -> str:
    try:
        moment = parse_utc(text).astimezone()
    except ValueError:
        return text
    return f"{moment:%a %d %b %H:%M}"


class RowsTable(QAbstractTableModel):
    """A flat, read-only table over a Python list (the journal and the changes share it)."""

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list = []

    def _row(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None


class JournalModel(RowsTable):
    """Entries of one journal, oldest call first; the row's record is the ``core.journal.Entry``."""

    HEADERS = ("Time", "Caller", "For", "Action", "Message", "Status")

    def set_entries(self, entries: list[J.Entry]) -> None:
        self.beginResetModel()
        self._rows = list(entries)
        self.endResetModel()

    def entry(self, row: int) -> J.Entry | None:
        return self._row(row)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not _valid(self, index):
            return None
        entry = self._row(index.row())
        if entry is None:
            return None
        if role == RecordRole:
            return entry
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            r = entry.current
            status = "Withdrawn" if entry.withdrawn else (f"Amended ({len(entry.revisions) - 1})" if entry.amended
                                                         else "")
            values = (_local(r.call_time), r.caller, r.for_whom, ACTION_WORDS.get(r.action, r.action),
                      " ".join(r.message.split()), status)
            return values[index.column()] if 0 <= index.column() < len(values) else None
        return None


def prefill_from_window(window) -> dict:
    """For whom, which number, who is on call now: from the selection, best effort (never blocks writing)."""
    fields: dict = {}
    try:
        session = getattr(window, "session", None)
        result = window.current_result() if session is not None else None
        now = window.now()
        whose, contact = window.selected_contact()
        if result is not None and result.kind == "schedule":
            schedule = session.schedule(result.id)
            status = session.on_call(result.id, now)
            holder = next((t for t in status.tiers if t.who), None)
            fields["for_whom"] = schedule.name if schedule else result.name
            if holder is not None:
                fields["on_call"] = f"{holder.who.name} ({holder.role or f'tier {holder.tier}'})"
                fields["listing_id"] = holder.who.id
                first = holder.who.first_number
                fields["number_tried"] = first.value if first else ""
        elif result is not None:
            entry = session.entry(result.id)
            if entry is not None:
                fields["for_whom"], fields["listing_id"] = entry.name, entry.id
                number = contact if contact is not None else entry.first_number
                fields["number_tried"] = number.value if number else ""
                holders = []
                # The rotas of the person's department (or those a department line belongs to).
                schedules = [s for s in session.schedules() if entry.department and s.department == entry.department]
                for schedule in schedules or session.schedules_for(entry):
                    status = session.on_call(schedule.id, now)
                    holder = next((t for t in status.tiers if t.who), None)
                    holders.append(f"{schedule.name}: {holder.who.name if holder else 'nobody'}")
                if holders:
                    fields["on_call"] = "; ".join(holders)
        if contact is not None and "number_tried" not in fields:
            fields["number_tried"] = contact.value
            fields["for_whom"] = getattr(whose, "name", str(whose or ""))
    except Exception:  # a prefill problem must never stop an operator writing a call down
        pass
    return fields


class EntryDialog(QDialog):
    """A new entry, or an amendment of one (then a reason is required and the original is shown)."""

    def __init__(self, *, fields: dict, operator: str, now: datetime, amend: J.Entry | None = None,
                 withdraw: bool = False, parent=None):
        super().__init__(parent)
        self.amending, self.withdrawing = amend, withdraw
        title = "Withdraw journal entry" if withdraw else "Amend journal entry" if amend else "Journal entry"
        self.setWindowTitle(title)
        self.when = QDateTimeEdit()
        self.when.setDisplayFormat("ddd dd MMM yyyy HH:mm")
        self.when.setCalendarPopup(True)
        start = parse_utc(fields["call_time"]) if fields.get("call_time") else now
        self.when.setDateTime(QDateTime.fromSecsSinceEpoch(int(start.timestamp()), QTimeZone.systemTimeZone()))
        self.caller = QLineEdit(fields.get("caller", ""))
        self.callback = QLineEdit(fields.get("callback", ""))
        self.for_whom = QLineEdit(fields.get("for_whom", ""))
        self.number = QLineEdit(fields.get("number_tried", ""))
        self.on_call = QLineEdit(fields.get("on_call", ""))
        self.message = QPlainTextEdit(fields.get("message", ""))
        self.message.setTabChangesFocus(True)
        self.message.setMinimumHeight(90)
        self.action = QComboBox()
        for key, words in ACTION_WORDS.items():
            self.action.addItem(words, key)
        self.action.setCurrentIndex(max(0, self.action.findData(fields.get("action", ""))))
        self.operator = QLineEdit(fields.get("operator") or operator)
        self.reason = QLineEdit()
        self.listing_id = fields.get("listing_id", "")
        for widget, name in ((self.caller, "Caller"), (self.callback, "Callback number"), (self.for_whom, "For whom"),
                             (self.number, "Number tried"), (self.on_call, "On call now"),
                             (self.message, "Message"), (self.reason, "Reason")):
            widget.setAccessibleName(name)
        form = QFormLayout()
        form.addRow("&Time of the call:", self.when)
        form.addRow("&Caller:", self.caller)
        form.addRow("Call&back number:", self.callback)
        form.addRow("&For whom:", self.for_whom)
        form.addRow("&Number tried:", self.number)
        form.addRow("On call &now:", self.on_call)
        form.addRow("&Message:", self.message)
        form.addRow("&Action taken:", self.action)
        form.addRow("&Operator:", self.operator)
        if amend is not None:
            form.addRow("&Reason (required):", self.reason)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #a00000; font-weight: bold;")
        self.problem.hide()
        note = QLabel("Saved encrypted on this desktop the moment you press Save, and sent to IT when the "
                      "network is back." if amend is None else
                      "The original stays in the journal; this saves a new revision with your reason.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox()
        self.save_button = buttons.addButton("Withdraw" if withdraw else "&Save", QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        if withdraw:
            for widget in (self.when, self.caller, self.callback, self.for_whom, self.number, self.on_call,
                           self.message, self.action, self.operator):
                widget.setEnabled(False)
        self.resize(720, 560)
        (self.reason if amend is not None else self.caller).setFocus()

    def fields(self) -> dict:
        moment = datetime.fromtimestamp(self.when.dateTime().toSecsSinceEpoch(), UTC)
        return {"call_time": moment, "caller": self.caller.text(), "callback": self.callback.text(),
                "for_whom": self.for_whom.text(), "number_tried": self.number.text(), "on_call": self.on_call.text(),
                "message": self.message.toPlainText(), "action": self.action.currentData() or "",
                "operator": self.operator.text(), "listing_id": self.listing_id}

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()


class JournalTools:
    """The window's journal: writes and reads the current journal for the window's desktop."""

    def __init__(self, window):
        self.window = window
        self.desktop = window.desktop
        self.operator = getpass.getuser()
        self.list_window: JournalWindow | None = None

    def journal(self) -> J.Journal:
        public = DesktopPublicKey.from_text(self.desktop.config.public_key) if self.desktop.config.public_key else None
        return J.current_journal(self.desktop.home, desktop=self.desktop.name, public_key=public)

    def _save(self, dialog: EntryDialog, save: Callable[[dict], J.Revision]) -> J.Revision | None:
        while dialog.exec() == QDialog.DialogCode.Accepted:
            fields = dialog.fields()
            try:
                revision = save(fields)
            except BackupOperatorError as exc:
                dialog.show_problem(" ".join(str(exc).split()))
                continue
            self.operator = fields["operator"] or self.operator
            return revision
        return None

    def new_entry(self, fields: dict | None = None) -> J.Revision | None:
        fields = dict(fields if fields is not None else prefill_from_window(self.window))
        dialog = EntryDialog(fields=fields, operator=self.operator, now=self.window.now(), parent=self.window)
        try:
            journal = self.journal()
        except BackupOperatorError as exc:
            QMessageBox.warning(self.window, "Journal", f"{exc}")
            return None
        revision = self._save(dialog, lambda f: journal.add(f, now=self.window.now()))
        if revision is not None:
            self.window.say(f"Saved journal entry {revision.seq} (call at {_local(revision.call_time)}).")
            if self.list_window is not None:
                self.list_window.refresh()
        return revision

    def amend(self, entry: J.Entry, *, withdraw: bool = False) -> J.Revision | None:
        current = entry.current
        fields = {k: getattr(current, k) for k in J.FIELDS}
        dialog = EntryDialog(fields=fields, operator=self.operator, now=self.window.now(), amend=entry,
                             withdraw=withdraw, parent=self.list_window or self.window)
        journal = self.journal()
        return self._save(dialog, lambda f: journal.amend(
            entry, {} if withdraw else {k: v for k, v in f.items() if k != "listing_id"},
            reason=dialog.reason.text(), now=self.window.now(), withdraw=withdraw))

    def show_list(self) -> "JournalWindow":
        if self.list_window is None:
            self.list_window = JournalWindow(self, parent=self.window)
        self.list_window.refresh()
        self.list_window.show()
        self.list_window.raise_()
        self.list_window.activateWindow()
        self.list_window.search.setFocus()
        return self.list_window


class JournalWindow(QDialog):
    """This outage's journal: search, every revision, amend, withdraw, send to IT, export a file."""

    def __init__(self, tools: JournalTools, parent=None):
        super().__init__(parent)
        self.tools = tools
        self.setWindowTitle("Outage journal")
        self.contents: J.JournalContents | None = None
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the journal: any words (caller, name, number, message)")
        self.search.setAccessibleName("Search the journal")
        self.search.textChanged.connect(self._filter)
        self.model = JournalModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setSectionResizeMode(4, self.table.horizontalHeader().ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_current())
        self.table.doubleClicked.connect(lambda *_: self.amend_current())
        self.detail = QTextBrowser()
        self.detail.setAccessibleName("The entry and its revisions")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("&New entry (Ctrl+J)")
        self.amend_button = QPushButton("&Amend…")
        self.withdraw_button = QPushButton("&Withdraw…")
        self.send_button = QPushButton("Send to &IT now")
        self.export_button = QPushButton("E&xport file…")
        close = QPushButton("Close")
        self.new_button.clicked.connect(lambda: self.tools.new_entry({}))
        self.amend_button.clicked.connect(self.amend_current)
        self.withdraw_button.clicked.connect(lambda: self.amend_current(withdraw=True))
        self.send_button.clicked.connect(self.send_now)
        self.export_button.clicked.connect(self.export_file)
        close.clicked.connect(self.close)
        for b in (self.new_button, self.amend_button, self.withdraw_button, self.send_button, self.export_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        QShortcut(QKeySequence("Ctrl+J"), self, activated=lambda: self.tools.new_entry({}))
        QShortcut(QKeySequence("Ctrl+F"), self, activated=self.search.setFocus)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.search)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        self.resize(980, 640)

    def refresh(self) -> None:
        try:
            journal = self.tools.journal()
            self.contents = journal.read(self.tools.desktop.key(interactive=False))
        except BackupOperatorError as exc:
            self.contents = None
            self.summary.setText(f"The journal cannot be read: {exc}")
            self.model.set_entries([])
            return
        problems = f" <b>{len(self.contents.problems)} problem(s) reading the file:</b> " + html.escape(
            "; ".join(self.contents.problems[:3])) if self.contents.problems else ""
        title = f" — {html.escape(journal.title)}" if journal.title else ""
        self.summary.setText(f"Journal started {_local(self.contents.created_at)}{title}: "
                             f"{len(self.contents.entries)} entries. Entries are never deleted: an amendment or a "
                             f"withdrawal keeps the original.{problems}")
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        if self.contents is None:
            return
        current = self.current_entry()
        self.model.set_entries(self.contents.search(text))
        row = next((i for i, e in enumerate(self.model._rows) if current and e.entry_id == current.entry_id),
                   self.model.rowCount() - 1)
        if row >= 0:
            self.table.selectRow(row)
        self._show_current()

    def current_entry(self) -> J.Entry | None:
        index = self.table.currentIndex()
        return self.model.entry(index.row()) if index.isValid() else None

    def _show_current(self) -> None:
        entry = self.current_entry()
        enabled = entry is not None and not entry.withdrawn
        self.amend_button.setEnabled(enabled)
        self.withdraw_button.setEnabled(enabled)
        if entry is None:
            self.detail.setHtml("<p>No entry chosen.</p>")
            return
        e = html.escape
        parts = []
        for r in reversed(entry.revisions):
            head = ("Original" if r.revision == 0 else f"Revision {r.revision}") + f", saved {_local(r.saved_at)}"
            if r.status == "withdrawn":
                head += " — WITHDRAWN"
            rows = "".join(f"<tr><td><b>{label}</b></td><td>{e(value)}</td></tr>" for label, value in (
                ("Time", _local(r.call_time)), ("Caller", r.caller), ("Callback", r.callback),
                ("For", r.for_whom), ("Number tried", r.number_tried), ("On call", r.on_call),
                ("Message", r.message), ("Action", ACTION_WORDS.get(r.action, r.action)), ("Operator", r.operator),
                ("Reason", r.reason)) if value)
            parts.append(f"<h3>{e(head)}</h3><table cellpadding='2'>{rows}</table>")
        self.detail.setHtml("".join(parts))

    def amend_current(self, *, withdraw: bool = False) -> None:
        entry = self.current_entry()
        if entry is None or entry.withdrawn:
            return
        if self.tools.amend(entry, withdraw=withdraw) is not None:
            self.refresh()

    def send_now(self) -> None:
        from backup_operator.cli_outage import _recipient

        desktop = self.tools.desktop
        try:
            report = outbox.drop_pending(desktop.home, desktop.inboxes(), desktop_name=desktop.name,
                                         key=lambda: desktop.key(interactive=False),
                                         recipient=lambda: _recipient(desktop), force=True)
        except BackupOperatorError as exc:
            QMessageBox.warning(self, "Journal not sent", str(exc))
            return
        if report.written:
            text = f"Sent to IT: {len(report.written)} file(s) in the inbox."
        elif report.unreachable:
            text = "No inbox can be reached now; the journal leaves by itself when one can."
        else:
            text = "Nothing to send."
        if report.problems:
            text += " Problems: " + "; ".join(report.problems)
        self.summary.setText(text)
        self.tools.window.say(text)

    def export_file(self, target: Path | None = None) -> Path | None:
        from backup_operator.cli_outage import _recipient

        desktop = self.tools.desktop
        if target is None:
            name, _ = QFileDialog.getSaveFileName(self, "Export the journal for IT", str(Path.home() / (
                f"{outbox.safe_name(desktop.name)}-journal{outbox.JOURNAL_SUFFIX}")), "Journal (*.bojournal)")
            if not name:
                return None
            target = Path(name)
        try:
            recipient = _recipient(desktop)
            if recipient is None or self.contents is None:
                raise BackupOperatorError("The installed snapshot does not name the exporter's key yet; the "
                                          "journal cannot be sealed for IT.")
            key = desktop.key(interactive=False)
            blob = outbox.seal_journal(self.contents, desktop_name=desktop.name, recipient=recipient, key=key)
            atomic_write(target, blob, mode=0o600)
        except BackupOperatorError as exc:
            QMessageBox.warning(self, "Journal not exported", str(exc))
            return None
        self.summary.setText(f"Exported to {target}: only IT's exporter can open it.")
        return target
