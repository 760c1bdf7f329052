"""Qt item models: thin adapters over the session's plain records (``core.session``).

Each model holds a short list of frozen records (at most a screenful of search results, or the
schedules) and maps rows to text; none of them queries the database or computes anything an operator
relies on, and none ever holds the whole directory. Every one is checked with pytest-qt's
``qtmodeltester``. (Contact methods, tiers and shifts are shown as wrapping labels, not tables: a
table elides what does not fit, and a number or an instruction must never be cut off.)
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from backup_operator.core.session import Result, Schedule

__all__ = ["RecordRole", "ResultsModel", "SchedulesModel"]

RecordRole = Qt.ItemDataRole.UserRole + 1  # the record behind a row (Result, Contact, TierNow, …)
SpansRole = Qt.ItemDataRole.UserRole + 2
SubtitleRole = Qt.ItemDataRole.UserRole + 3
NumberRole = Qt.ItemDataRole.UserRole + 4

_Index = QModelIndex | QPersistentModelIndex


def _valid(model, index: _Index) -> bool:
    return index.isValid() and index.model() is model and not index.parent().isValid()


class ResultsModel(QAbstractListModel):
    """Search results, best first. Display text is the name; the delegate draws the rest."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[Result] = []

    def set_results(self, rows: list[Result]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def result(self, row: int) -> Result | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not _valid(self, index) or index.row() >= len(self._rows):
            return None
        r = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return r.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return " — ".join(x for x in (r.name, r.subtitle, r.number) if x)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            kind = "On-call schedule" if r.kind == "schedule" else (r.listing_kind or "listing").title()
            return f"{kind}: {r.name}. {r.subtitle}. {r.number}"
        if role == RecordRole:
            return r
        if role == SpansRole:
            return list(r.spans)
        if role == SubtitleRole:
            return r.subtitle
        if role == NumberRole:
            return r.number
        return None


class SchedulesModel(QAbstractListModel):
    """All on-call schedules, checkable (which ones go on the crash sheet)."""

    def __init__(self, schedules: list[Schedule] | None = None, checked: list[str] | None = None, parent=None):
        super().__init__(parent)
        self._rows: list[Schedule] = list(schedules or [])
        self._checked: set[str] = set(checked or [])

    def set_schedules(self, schedules: list[Schedule], checked: list[str]) -> None:
        self.beginResetModel()
        self._rows, self._checked = list(schedules), set(checked)
        self.endResetModel()

    def checked_ids(self) -> list[str]:
        return [s.id for s in self._rows if s.id in self._checked]

    def set_all(self, on: bool) -> None:
        self._checked = {s.id for s in self._rows} if on else set()
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1),
                                  [Qt.ItemDataRole.CheckStateRole])

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not _valid(self, index):
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not _valid(self, index) or index.row() >= len(self._rows):
            return None
        s = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return s.name
        if role == Qt.ItemDataRole.CheckStateRole:
            return Qt.CheckState.Checked if s.id in self._checked else Qt.CheckState.Unchecked
        if role == RecordRole:
            return s
        return None

    def setData(self, index: _Index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not _valid(self, index) or role != Qt.ItemDataRole.CheckStateRole or index.row() >= len(self._rows):
            return False
        state = Qt.CheckState(value) if not isinstance(value, Qt.CheckState) else value
        sid = self._rows[index.row()].id
        if state == Qt.CheckState.Checked:
            self._checked.add(sid)
        else:
            self._checked.discard(sid)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        return True
