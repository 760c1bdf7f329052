"""Constants of the window tests' sample desktop, importable by name from any test module.

(``from conftest import ...`` picks whichever conftest Python imported first when several test folders
run together, so the constants live in a module with a name of its own.)
"""

from datetime import UTC, date, datetime, timedelta

PASSPHRASE = "correct horse battery staple"
FIRST_DAY = date(2026, 3, 1)  # two weeks of shifts; US daylight saving starts on 8 March 2026
CREATED = datetime(2026, 3, 7, 11, 0, tzinfo=UTC)  # 06:00 in New York
NOW = CREATED + timedelta(hours=3, minutes=12)
INTERVAL = 4 * 3600
VERSION = 1842


def type_text(widget, text: str) -> None:
    """Type ``text`` into ``widget`` one key at a time, as a keyboard would, whatever its characters.

    QTest.keyClicks (and qtbot.keyClicks/keyClick with a character) turns every character into a key code
    through Qt's ASCII table, whose check is compiled into release builds too: a character outside it, such
    as the ü of "Müller" or the dash of "07:00–19:00", stops the whole Python process with "ASSERT: false in
    qasciikey.cpp" and "Fatal Python error: Aborted" instead of failing the test. Characters beyond ASCII
    are therefore sent as the key event a layout with that key gives: its Latin-1 key code where Qt has one
    (Key_Udiaeresis for ü), otherwise Key_unknown, with the character as the event's text — what QLineEdit
    and the shortcut handling read.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    for ch in text:
        if ch.isascii():
            QTest.keyClick(widget, ch)
            continue
        upper = ch.upper()
        code = ord(upper) if len(upper) == 1 else ord(ch)  # ß has no one-letter capital; its key is 0xdf
        key = Qt.Key(code) if 0xA0 <= code <= 0xFF else Qt.Key.Key_unknown
        QTest.sendKeyEvent(QTest.KeyAction.Click, widget, key, ch, Qt.KeyboardModifier.NoModifier)
