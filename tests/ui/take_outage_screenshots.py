"""Screenshots of the outage screens (journal entry, journal list, what changed, drill) at 1024×768.

    python3 tests/ui/take_outage_screenshots.py docs/screenshots

Not a test. It builds a sample desktop whose data is current (two versions, the second with a change
summary, a journal with a few entries), opens the real main window at 1024×768 and each screen over it
as an operator would reach it, and saves what Qt draws (the window and the dialog on top, composed
where they stand on a 1024×768 screen). Dialogs are grabbed by Qt because Xvfb screen captures of this
setup show Qt dialogs as black rectangles.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from PySide6.QtCore import QEventLoop, QPoint, QThreadPool, QTimer
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import QApplication

from sample_hospital import records
from ui_support import INTERVAL, PASSPHRASE, VERSION

from backup_operator.config import Desktop
from backup_operator.core import changes as C
from backup_operator.core import journal as J
from backup_operator.core.model import build_database
from backup_operator.core.store import SnapshotStore
from backup_operator.snapshot import envelope, keys

SCREEN = (1024, 768)


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def build_home(root: Path, now: datetime) -> Desktop:
    signer, key = keys.SignerKey.generate(), keys.DesktopKey.generate()
    home = root / "home"
    desktop = Desktop(home)
    desktop.config.name, desktop.config.key_store = "switchboard-1", "file"
    desktop.config.public_key = key.public.to_text()
    desktop.config.trusted_signers = [signer.public.to_text()]
    (root / "inbox").mkdir(parents=True)
    desktop.config.inboxes = [str(root / "inbox")]
    desktop.save()
    (home / "desktop-key.json").write_bytes(keys.seal_key_file(key, PASSPHRASE, n=2**14))
    store = SnapshotStore(desktop.snapshots_dir, trusted=[signer.public], key=lambda: key)
    first_day = (now - timedelta(days=4)).date()

    def install(database: bytes, version: int, created: datetime) -> None:
        path = root / f"{version}.bosnap"
        path.write_bytes(envelope.seal(database, snapshot_version=version, created_at=created,
                                       expires_at=created + timedelta(days=3), recipients=[key.public],
                                       signer=signer))
        store.install(path)

    created = now - timedelta(hours=1)
    old = build_database(**records(first_day), snapshot_version=VERSION, created_at=created - timedelta(hours=4),
                         expires_at=created + timedelta(days=3), expected_interval_s=INTERVAL, source="St Mary's")
    install(old, VERSION, created - timedelta(hours=4))
    data = records(first_day)
    for row in data["contact_methods"]:
        if row["listing_id"] == "p-smith" and row["kind"] == "pager":
            row["value"] = "4499"
    data["listings"].append({"id": "p-new", "kind": "person", "display_name": "Quilla Zabriskie",
                             "title": "Attending cardiologist", "department": "Cardiology"})
    data["contact_methods"].append({"listing_id": "p-new", "kind": "pager", "value": "4490", "rank": 1})
    later = (now + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    swapped = 0
    for row in data["shifts"]:
        if row["schedule_id"].startswith("cardio") and row["tier"] == 1 and row["start_utc"] > later and swapped < 2:
            row["listing_id"], swapped = "p-new", swapped + 1
    new = build_database(**data, snapshot_version=VERSION + 1, created_at=created,
                         expires_at=created + timedelta(days=3), expected_interval_s=INTERVAL, source="St Mary's")
    summary = C.diff_databases(new, old, version=VERSION + 1, since_version=VERSION, now=created)
    conn = sqlite3.connect(":memory:")
    conn.deserialize(new)
    C.store_summary(conn, summary)
    conn.commit()
    install(conn.serialize(), VERSION + 1, created)
    C.mark_seen(home, VERSION)

    journal = J.current_journal(home, desktop="switchboard-1", public_key=key.public)
    first = journal.add({"caller": "Ward 7 nurse", "callback": "608-555-0101", "for_whom": "Amelia Hart",
                         "number_tried": "4471", "on_call": "Cardiology — attending: Amelia Hart",
                         "message": "Bed 7 chest pain, please call back", "action": "paged", "operator": "ana"},
                        now=now - timedelta(minutes=42))
    journal.add({"caller": "ED charge desk", "callback": "7100", "for_whom": "Pharmacy", "number_tried": "3000",
                 "message": "Needs a pharmacist for a dosing question", "action": "transferred", "operator": "ana"},
                now=now - timedelta(minutes=30))
    journal.add({"caller": "Visitor at front desk", "for_whom": "Security", "action": "message taken",
                 "message": "Lost property, call back tomorrow", "operator": "ben"}, now=now - timedelta(minutes=12))
    entry = next(e for e in journal.read(key).entries if e.entry_id == first.entry_id)
    journal.amend(entry, {"message": "Bed 7 chest pain, paged twice; Dr Hart called the ward back"},
                  reason="second page", now=now - timedelta(minutes=20))
    return Desktop(home)


def compose(window, dialog, out: Path) -> None:
    """What a 1024×768 screen shows: the main window, and the dialog where it stands over it."""
    settle(500)
    canvas = QPixmap(*SCREEN)
    canvas.fill()
    painter = QPainter(canvas)
    painter.drawPixmap(0, 0, window.grab())
    if dialog is not None:
        shot = dialog.grab()
        x = max(0, (SCREEN[0] - shot.width()) // 2)
        y = max(0, (SCREEN[1] - shot.height()) // 2)
        painter.fillRect(x - 1, y - 1, shot.width() + 2, shot.height() + 2, 0x404040)
        painter.drawPixmap(QPoint(x, y), shot)
    painter.end()
    canvas.save(str(out))
    print("wrote", out)


def main(out: Path) -> None:
    os.environ["BACKUP_OPERATOR_PASSPHRASE"] = PASSPHRASE
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(["backup-operator"])
    from backup_operator.ui.window import MainWindow
    from backup_operator.ui.journal import EntryDialog, prefill_from_window

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        desktop = build_home(Path(tmp), now)
        window = MainWindow(desktop, poll_ms=3_600_000)
        window.resize(*SCREEN)
        window.show()
        while window.session is None:
            settle(100)
        settle(500)
        window.search.setText("hart")
        settle(300)
        fields = prefill_from_window(window)
        fields.update(caller="Ward 7 nurse", callback="608-555-0101", message="Bed 7 chest pain, please call back",
                      action="paged")
        dialog = EntryDialog(fields=fields, operator="ana", now=window.now(), parent=window)
        dialog.show()
        compose(window, dialog, out / "journal-entry.png")
        dialog.close()

        listing = window.outage.journal.show_list()
        listing.table.selectRow(0)
        compose(window, listing, out / "journal-list.png")
        listing.close()

        window.search.setText("")
        window.outage.session_opened(window.session.version)
        compose(window, None, out / "changes-badge.png")
        changes = window.outage.show_changes()
        compose(window, changes, out / "changes.png")
        changes.close()

        drill = window.outage.start_drill()
        drill.start()
        settle(300)
        compose(window, drill, out / "drill.png")
        for question in list(drill.drill.questions):
            drill.answer.setText(question.accepted_names[0] if question.accepted_names
                                 else question.accepted_numbers[0])
            drill.submit()
        settle(300)
        compose(window, drill, out / "drill-result.png")
        drill.save_report(out / "drill-report.pdf")
        drill.close()
        window.close()
        QThreadPool.globalInstance().waitForDone(10_000)
    del app


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
