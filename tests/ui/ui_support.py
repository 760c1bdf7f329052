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
