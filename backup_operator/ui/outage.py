"""The window's outage tools in one place: the journal (Ctrl+J, Ctrl+Shift+J), what changed (a badge and
Ctrl+Shift+W) and the drill (Help → Drill).

``install`` hangs them on an existing main window through its public pieces (menus, status bar,
``session_changed``), so window.py needs one line and its layout stays its own.
"""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QMenu
from PySide6.QtCore import Qt

from backup_operator.core import changes as C
from backup_operator.ui.changes import ChangesBadge, ChangesDialog, summary_for_window
from backup_operator.ui.journal import JournalTools

__all__ = ["OutageTools", "install", "open_listing"]


def _menu(window, title: str) -> QMenu | None:
    menus = getattr(window, "menus", None) or {}
    if title.lower() in menus:
        return menus[title.lower()]
    for action in window.menuBar().actions():
        menu = action.menu()
        if menu is not None and action.text().replace("&", "") == title:
            return menu
    return None


def open_listing(window, listing_id: str) -> bool:
    """Show ``listing_id`` in the main window: search for its name and select it."""
    session = window.session
    entry = session.entry(listing_id) if session is not None else None
    if entry is None:
        window.say("That listing is not in this version of the directory.")
        return False
    if window.views.currentIndex() != 0:
        window.views.setCurrentIndex(0)
    window.search.setText(entry.name)
    for row in range(window.results.rowCount()):
        result = window.results.result(row)
        if result is not None and result.kind == "listing" and result.id == listing_id:
            window.results_view.setCurrentIndex(window.results.index(row))
            window.results_view.scrollTo(window.results.index(row))
            break
    window.search.setFocus()
    return True


class OutageTools:
    def __init__(self, window):
        self.window = window
        self.journal = JournalTools(window)
        self.badge = ChangesBadge()
        self.badge.clicked.connect(self.show_changes)
        window.statusBar().addPermanentWidget(self.badge)
        self.summary: C.ChangeSummary | None = None
        self.drill_dialog = None
        window.session_changed.connect(self.session_opened)

        file = _menu(window, "File")
        first = file.actions()[0] if file is not None and file.actions() else None
        new = window._action(None, "New journal entry (prefilled from the selection)…", "Ctrl+J",
                             lambda: self.journal.new_entry())
        show = window._action(None, "Outage journal: search, amend, send to IT…", "Ctrl+Shift+J",
                              self.journal.show_list)
        if file is not None:
            file.insertActions(first, [new, show])
            file.insertSeparator(first)
        view = _menu(window, "View") or window.menuBar().addMenu("&View")
        view.addSeparator()
        self.act_changes = window._action(view, "What changed since you last looked…", "Ctrl+Shift+W",
                                          self.show_changes)
        helpmenu = _menu(window, "Help") or window.menuBar().addMenu("&Help")
        helpmenu.addSeparator()
        self.act_drill = window._action(helpmenu, "Drill: a timed exercise with the kit check…", "Ctrl+Shift+R",
                                        self.start_drill)
        if window.session is not None:
            self.session_opened(window.session.version)

    def session_opened(self, version: int) -> None:
        home = self.window.desktop.home
        seen = C.last_seen(home)
        if not seen:
            C.mark_seen(home, version)  # the first snapshot this desktop shows: nothing to compare yet
            self.badge.hide()
            return
        if version <= seen:
            self.badge.hide()
            return
        stored = None
        try:
            stored = C.read_summary(self.window.session.conn, version)
        except Exception:
            stored = None
        if stored is not None and stored.since_version == seen:
            self.summary = stored
            self.badge.show_count(stored)
        else:
            self.summary = None  # compared when the operator opens the view
            self.badge.setText("What changed: updated (Ctrl+Shift+W)")
            self.badge.setToolTip(f"The data was updated from version {seen} to {version}.")
            self.badge.show()
        if self.badge.isVisible():
            self.window.say(f"The directory was updated to version {version}: see what changed (Ctrl+Shift+W).")

    def show_changes(self) -> ChangesDialog | None:
        window = self.window
        if window.session is None:
            return None
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            summary = self.summary or summary_for_window(window)
        finally:
            QApplication.restoreOverrideCursor()
        if summary is None:
            window.say("This snapshot carries no list of changes (an older exporter made it).")
            return None
        C.mark_seen(window.desktop.home, window.session.version)
        self.badge.hide()
        self.summary = None
        dialog = ChangesDialog(summary, lambda listing_id, _name: open_listing(window, listing_id), parent=window)
        dialog.setModal(False)
        dialog.show()
        self.changes_dialog = dialog
        return dialog

    def start_drill(self):
        from backup_operator.ui.drill import DrillDialog

        if self.drill_dialog is not None and self.drill_dialog.isVisible():
            self.drill_dialog.raise_()
            return self.drill_dialog
        self.drill_dialog = DrillDialog(self.window)
        self.drill_dialog.show()
        return self.drill_dialog


def install(window) -> OutageTools:
    window.outage = OutageTools(window)
    return window.outage
