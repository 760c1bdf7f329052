"""Qt item models: thin adapters over the session's plain records (``core.session``).

Each model holds a list of frozen records and maps rows and columns to text; none of them queries the
database or computes anything an operator relies on. Every one is checked with pytest-qt's
``qtmodeltester``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from PySide6.QtCore import QAbstractListModel, QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from backup_operator.core.session import Contact, Entry, OnCallNow, Result, Schedule, ShiftRow, wall_time

__all__ = ["ContactsModel", "OnCallModel", "RecordRole", "ResultsModel", "SchedulesModel", "ShiftsModel"]

RecordRole = Qt.ItemDataRole.UserRole + 1  # the record behind a row (Result, Contact, TierNow, …)
SpansRole = Qt.ItemDataRole.UserRole + 2
SubtitleRole = Qt.ItemDataRole.UserRole + 3
NumberRole = Qt.ItemDataRole.UserRole + 4

_Index = QModelIndex | QPersistentModelIndex


def _valid(model, index: _Index) -> bool:
    return index.isValid() and index.model() is model and not index.parent().isValid()


class _RowsTableModel(QAbstractTableModel):
    """A flat table over a Python list: the shape the contacts, on-call and shifts tables share."""

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list = []

    def _row(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None


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


class ContactsModel(_RowsTableModel):
    """One entry's contact methods, in the order to try them."""

    HEADERS = ("Try", "How", "Number", "Instructions")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[Contact] = []

    def set_entry(self, entry: Entry | None) -> None:
        self.beginResetModel()
        self._rows = list(entry.contacts) if entry else []
        self.endResetModel()

    def contact(self, row: int) -> Contact | None:
        return self._row(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not _valid(self, index) or index.row() >= len(self._rows):
            return None
        c = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (f"{index.row() + 1}.", c.caption, c.value, c.instructions)[index.column()]
        if role == RecordRole:
            return c
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        return None


def _reach(entry: Entry | None, limit: int = 3) -> str:
    if entry is None:
        return ""
    lines = []
    for c in entry.contacts[:limit]:
        line = f"{c.caption}: {c.value}"
        if c.instructions:
            line += f" — {c.instructions}"
        lines.append(line)
    return "\n".join(lines)


def _in(delta) -> str:
    minutes = max(0, int(delta.total_seconds()) // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"in {days} d {hours} h"
    if hours:
        return f"in {hours} h {minutes} min"
    return f"in {minutes} min"


class OnCallModel(_RowsTableModel):
    """Who holds each tier of one schedule at the chosen instant, how to reach them, until when, who next."""

    HEADERS = ("Tier", "On call", "How to reach", "Until", "Next")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._now: OnCallNow | None = None
        self._rows: list = []

    def set_on_call(self, now: OnCallNow | None) -> None:
        self.beginResetModel()
        self._now = now
        self._rows = list(now.tiers) if now else []
        self.endResetModel()

    def tier(self, row: int):
        return self._row(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not _valid(self, index) or index.row() >= len(self._rows) or self._now is None:
            return None
        t = self._rows[index.row()]
        zone = self._now.schedule.zone
        if role == Qt.ItemDataRole.DisplayRole:
            col = index.column()
            if col == 0:
                return f"{t.tier}. {t.role}" if t.role else f"Tier {t.tier}"
            if col == 1:
                if t.who is None:
                    return "NOBODY — use the department line"
                return f"{t.who.name}\n{t.who.title}" if t.who.title else t.who.name
            if col == 2:
                return _reach(t.who)
            if col == 3:
                if not t.until:
                    return ""
                return f"{wall_time(t.until, zone)}\n({_in(t.until - self._now.at)})"
            if col == 4:
                if t.next_who is None:
                    return "nobody scheduled"
                again = " (again)" if t.who is not None and t.next_who.id == t.who.id else ""
                if t.next_start is None:
                    return t.next_who.name + again
                return f"{t.next_who.name}{again}\nfrom {wall_time(t.next_start, zone)}"
        if role == RecordRole:
            return t
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        return None


class ShiftsModel(_RowsTableModel):
    """Shifts of one schedule over a period (the 7-day view), in the schedule's own time zone."""

    HEADERS = ("From", "To", "Tier", "Who", "First number")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[ShiftRow] = []
        self._zone: ZoneInfo | None = None
        self._at: datetime | None = None

    def set_shifts(self, rows: list[ShiftRow], zone: ZoneInfo | None, at: datetime | None = None) -> None:
        self.beginResetModel()
        self._rows, self._zone, self._at = list(rows), zone, at
        self.endResetModel()

    def shift(self, row: int) -> ShiftRow | None:
        return self._row(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not _valid(self, index) or index.row() >= len(self._rows) or self._zone is None:
            return None
        s = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            first = s.who.first_contact
            return (wall_time(s.start, self._zone, offset=False), wall_time(s.end, self._zone, offset=False),
                    f"{s.tier}. {s.role}" if s.role else f"Tier {s.tier}", s.who.name,
                    f"{first.caption}: {first.value}" if first else "")[index.column()]
        if role == RecordRole:
            return s
        if role == Qt.ItemDataRole.FontRole and self._at is not None and s.start <= self._at < s.end:
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
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
