"""Every dialog fits a 1024×768 laptop at the default text size (and the smaller one): nothing of it lies
off the screen, where an operator could not reach a button or read a line.

Under a real window manager a dialog wider than the screen is cut off at the right edge (the crash
sheet's Print/Save buttons once were); the check here is the dialog's own minimum size, which no window
manager can shrink, and the size it opens at.
"""

from __future__ import annotations

import pytest
from layout_checks import settle

SCREEN = (1024, 768)
FRAME = (8, 48)  # what a window manager's border and title bar take


def _dialogs(window, env):
    from backup_operator.core import changes as C
    from backup_operator.ui.changes import ChangesDialog
    from backup_operator.ui.dialogs import (
        AboutDataDialog,
        CrashSheetDialog,
        HelpDialog,
        KitCheckDialog,
        SettingsDialog,
    )
    from backup_operator.ui.drill import DrillDialog
    from backup_operator.ui.journal import EntryDialog, JournalWindow, prefill_from_window

    summary = C.ChangeSummary(window.session.version, window.session.version - 1, counts={"numbers": 1})
    yield "crash sheet", lambda: CrashSheetDialog(window.session, window.settings, window.now, parent=window)
    yield "settings", lambda: SettingsDialog(env.desktop, window.settings, window.session, parent=window)
    yield "help", lambda: HelpDialog(window.actions_with_shortcuts(), parent=window)
    yield "about", lambda: AboutDataDialog(env.desktop, window.session, window.now(), parent=window)
    yield "kit check", lambda: KitCheckDialog(window.kit_check(), parent=window)
    yield "drill", lambda: DrillDialog(window)
    yield "journal entry", lambda: EntryDialog(fields=prefill_from_window(window), operator="op", now=window.now(),
                                               parent=window)
    yield "journal list", lambda: JournalWindow(window.outage.journal, parent=window)
    yield "what changed", lambda: ChangesDialog(summary, parent=window)


@pytest.mark.parametrize("text_size", ["normal", "large"])
def test_every_dialog_fits_a_1024x768_screen(qtbot, window, env, text_size):
    window.settings.text_size = text_size
    window.apply_display_settings()
    window.search.setText("amelia hart")
    too_big = []
    for name, make in _dialogs(window, env):
        dialog = make()
        qtbot.addWidget(dialog)
        dialog.show()
        settle(qtbot, dialog)
        need = dialog.minimumSizeHint().expandedTo(dialog.minimumSize())
        room_w, room_h = SCREEN[0] - FRAME[0], SCREEN[1] - FRAME[1]
        if need.width() > room_w or need.height() > room_h:
            too_big.append(f"{name} needs at least {need.width()}×{need.height()}")
        screen = dialog.screen().availableGeometry()
        if dialog.width() > screen.width() - FRAME[0] or dialog.height() > screen.height() - FRAME[1]:
            too_big.append(f"{name} opens at {dialog.width()}×{dialog.height()} on a {screen.width()}×"
                           f"{screen.height()} screen")
        dialog.close()
    assert too_big == [], f"at text size {text_size}: " + "; ".join(too_big)
