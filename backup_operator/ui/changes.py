""""What changed since you last looked": the badge after an update and the list of changes.

The badge appears when the window opens a snapshot newer than the one the operator last looked at
(``core.changes.last_seen``); the view lists the changes, on call first, and Enter or a double click opens
the listing in the main window. Looking marks the version as seen.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from backup_operator.core import changes as C
from backup_operator.ui.journal import RowsTable
from backup_operator.ui.models import RecordRole, _valid

__all__ = ["ChangesModel", "ChangesDialog", "ChangesBadge", "summary_for_window"]


class ChangesModel(RowsTable):
    HEADERS = ("What", "About", "Before", "Now")

    def set_changes(self, changes: list[C.Change]) -> None:
        self.beginResetModel()
        self._rows = list(changes)
        self.endResetModel()

    def change(self, row: int) -> C.Change | None:
        return self._row(row)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not _valid(self, index):
            return None
        change = self._row(index.row())
        if change is None:
            return None
        if role == RecordRole:
            return change
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            values = (change.kind_words, change.title, change.before or "—", change.after or "—")
            return values[index.column()] if 0 <= index.column() < len(values) else None
        if role == Qt.ItemDataRole.ForegroundRole and not change.listing_id and index.column() == 1:
            from PySide6.QtGui import QBrush, QColor
            return QBrush(QColor("#555555"))
        return None


def summary_for_window(window) -> C.ChangeSummary | None:
    """Changes since the operator last looked: compared here when both versions are installed, else the
    summary the exporter stored in the newest snapshot."""
    from backup_operator.cli_outage import changes_between

    session = window.session
    if session is None:
        return None
    seen = C.last_seen(window.desktop.home)
    try:
        if seen and seen < session.version:
            try:
                return changes_between(window.desktop, seen, datetime.now(UTC))
            except Exception:
                pass
        return C.read_summary(session.conn, session.version)
    except Exception:
        return None


class ChangesBadge(QPushButton):
    """A button in the status bar: 'What changed: 12' after an update, hidden once looked at."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setStyleSheet("QPushButton { background: #ffd54f; color: #000; font-weight: bold; "
                           "border: 1px solid #8a6d00; border-radius: 4px; padding: 2px 10px; }")
        self.setAccessibleName("What changed since you last looked")
        self.hide()

    def show_count(self, summary: C.ChangeSummary | None) -> None:
        if summary is None or summary.since_version is None or not summary.total:
            self.hide()
            return
        self.setText(f"What changed: {summary.total:,} (Ctrl+Shift+W)")
        self.setToolTip(summary.describe_counts())
        self.show()


class ChangesDialog(QDialog):
    """The list of changes; Enter or a double click opens the listing in the main window."""

    open_listing = Signal(str, str)  # listing id, its name

    def __init__(self, summary: C.ChangeSummary, opener: Callable[[str, str], None] | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("What changed since you last looked")
        self.summary = summary
        since = (f"since version {summary.since_version}" if summary.since_version is not None
                 else "(no earlier version to compare with)")
        heading = QLabel(f"<h2>Version {summary.version} {since}</h2><p>{html.escape(summary.describe_counts())}"
                         + (f" — the first {len(summary.items):,} are listed." if summary.truncated else ".")
                         + " On call: changes in the next 72 hours. Enter opens the listing.</p>")
        heading.setWordWrap(True)
        self.model = ChangesModel(self)
        self.model.set_changes(summary.items)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, header.ResizeMode.ResizeToContents)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, header.ResizeMode.Stretch)
        self.table.setAccessibleName("Changes")
        self.table.doubleClicked.connect(lambda *_: self.open_current())
        if self.model.rowCount():
            self.table.selectRow(0)
        if opener is not None:
            self.open_listing.connect(opener)
        QShortcut(QKeySequence("Return"), self.table, activated=self.open_current)
        QShortcut(QKeySequence("Enter"), self.table, activated=self.open_current)
        self.open_button = QPushButton("&Open the listing")
        self.open_button.clicked.connect(self.open_current)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.table.setFocus()
        self.resize(960, 600)

    def open_current(self) -> bool:
        index = self.table.currentIndex()
        change = self.model.change(index.row()) if index.isValid() else None
        if change is None or not change.listing_id:
            return False
        self.open_listing.emit(change.listing_id, change.after if change.kind == "on call" else change.title)
        self.accept()
        return True
