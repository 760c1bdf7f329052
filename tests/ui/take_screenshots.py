"""Take the README's screenshots of the window under a real X server (Xvfb), on the sample hospital,
at the size of a small laptop (1024×768) with a window manager, as an operator would see it.

    Xvfb :99 -screen 0 1024x768x24 &  DISPLAY=:99 openbox &
    DISPLAY=:99 python3 tests/ui/take_screenshots.py docs/screenshots

Not a test: it drives the window through its scenes with a fixed clock and captures the whole screen
with xwd (what an operator would see), and the crash sheet's first page with pdftoppm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import conftest as fx
from PySide6.QtCore import QEventLoop, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from backup_operator.config import Desktop


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(predicate, timeout_ms: int = 20_000) -> None:
    waited = 0
    while not predicate():
        settle(50)
        waited += 50
        if waited > timeout_ms:
            raise TimeoutError("the window did not get there")


def shoot(out: Path, name: str) -> None:
    settle(400)
    png = out / f"{name}.png"
    xwd = subprocess.run(["xwd", "-root", "-silent", "-display", os.environ["DISPLAY"]], capture_output=True,
                         check=True).stdout
    pnm = subprocess.run(["xwdtopnm"], input=xwd, capture_output=True, check=True).stdout
    png.write_bytes(subprocess.run(["pnmtopng"], input=pnm, capture_output=True, check=True).stdout)
    print("wrote", png)


def make_home(root: Path):
    tpl = fx.build_template(root, inbox=root / "inbox")
    return Desktop(root / "home"), tpl


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    os.environ["BACKUP_OPERATOR_PASSPHRASE"] = fx.PASSPHRASE
    app = QApplication.instance() or QApplication(["backup-operator"])
    from backup_operator.ui.app import icon_path
    from backup_operator.ui.window import MainWindow

    if icon_path():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon_path())))
    root = Path(tempfile.mkdtemp(prefix="bo-shots-"))
    try:
        desktop, _ = make_home(root)
        clock = {"now": fx.NOW}
        w = MainWindow(desktop, clock=lambda: clock["now"], poll_ms=3_600_000)
        w.fit_to_screen()
        w.move(0, 0)
        w.show()
        wait_for(lambda: w.session is not None and not w.watcher.busy)
        w.activateWindow()
        w.focus_search()

        w.search.setText("cardio")
        shoot(out, "search")
        w.search.setText("amelia")
        shoot(out, "details")
        w.search.setText("cardiology attending")
        w.activate_selection()
        shoot(out, "oncall")
        w.escape()
        w.search.setText("4471")
        shoot(out, "number")
        w.search.setText("ED on call")
        shoot(out, "oncall-question")
        clock["now"] = fx.CREATED + timedelta(hours=7)
        w.refresh_clock()
        w.search.setText("pharm")
        shoot(out, "stale-amber")
        clock["now"] = fx.CREATED + timedelta(hours=30)
        w.refresh_clock()
        shoot(out, "stale-red")
        w.acknowledge_banner()
        shoot(out, "stale-ack")
        clock["now"] = fx.CREATED - timedelta(hours=3)
        w.refresh_clock()
        shoot(out, "clock-behind")
        clock["now"] = fx.NOW
        w.refresh_clock()
        w.settings.high_contrast = True
        w.apply_display_settings()
        w.search.setText("smith")
        shoot(out, "high-contrast")
        w.settings.high_contrast = False
        w.apply_display_settings()
        w.close()

        from backup_operator.errors import NoSnapshot
        from backup_operator.ui.messages import explain

        for path in desktop.snapshots_dir.glob("*.bosnap"):
            path.unlink()
        (desktop.snapshots_dir / "high-water-mark").unlink()
        e = MainWindow(Desktop(desktop.home), clock=lambda: clock["now"], poll_ms=3_600_000, watch=False)
        e.fit_to_screen()
        e.move(0, 0)
        e.show()
        wait_for(lambda: e.pages.currentIndex() == e.PAGE_ERROR)
        shoot(out, "error-no-data")
        e.close()
        del explain, NoSnapshot

        os.environ.pop("BACKUP_OPERATOR_PASSPHRASE")
        u = MainWindow(Desktop(desktop.home), clock=lambda: clock["now"], poll_ms=3_600_000, watch=False)
        u.fit_to_screen()
        u.move(0, 0)
        u.show()
        u.activateWindow()
        settle()
        u.unlock.field.setFocus()
        shoot(out, "unlock")
        u.close()

        # The crash sheet from the real snapshot, first page as an image.
        os.environ["BACKUP_OPERATOR_PASSPHRASE"] = fx.PASSPHRASE
        desktop2, _ = make_home(root / "sheet")
        from backup_operator.core.session import open_session
        from backup_operator.ui.printing import write_pdf

        session = open_session(desktop2)
        pdf = out / "crash-sheet.pdf"
        write_pdf(session, ["cardio-attending", "ed-physician", "ir"], 72, pdf, fx.NOW)
        session.close()
        subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", str(pdf), str(out / "crash-sheet")],
                       check=True)
        produced = out / "crash-sheet-1.png"
        if produced.exists():
            produced.replace(out / "crash-sheet.png")
        print("wrote", out / "crash-sheet.png")
    finally:
        QThreadPool.globalInstance().waitForDone(10_000)
        shutil.rmtree(root, ignore_errors=True)




def demo(home: Path, out: Path, queries=(("search", "cardiology"), ("typo", "gibsn kwame"),
                                         ("number", "5621"))) -> None:
    """Screens on the demo hospital (``backup-operator-export demo --no-gui`` first), real clock."""
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(["backup-operator"])
    from backup_operator.ui.window import MainWindow

    w = MainWindow(Desktop(home), poll_ms=3_600_000, watch=False)
    w.fit_to_screen()
    w.move(0, 0)
    w.show()
    wait_for(lambda: w.session is not None)
    w.activateWindow()
    w.focus_search()
    for name, query in queries:
        w.search.setText(query)
        shoot(out, f"demo-{name}")
    w.search.setText("cardiology attending")
    schedule = next((r for r in w.results._rows if r.kind == "schedule"), None)
    if schedule:
        w.open_oncall(schedule.id)
        shoot(out, "demo-oncall")
    w.close()
    del app


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--demo":  # --demo DESKTOP_HOME [OUT]
        demo(Path(sys.argv[2]), Path(sys.argv[3] if len(sys.argv) > 3 else "docs/screenshots"))
    else:
        main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
