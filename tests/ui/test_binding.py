"""The Qt binding must not leak references to ``None``.

PySide6 6.12.0 on Python < 3.12 drops one reference to ``None`` on every call of a Qt method that
returns nothing (``QLabel.setText``, ``QPainter.setPen``, ``save``/``restore``); after a few thousand
such calls CPython aborts ("Fatal Python error: none_dealloc") and the window dies mid-shift with
nothing in ui.log. pyproject.toml keeps that release out and constraints.txt pins a good one; this test
proves it for whatever binding is installed: 10,000 void Qt calls, in a fresh interpreter (so an abort
fails this test instead of killing the test run), and ``sys.getrefcount(None)`` must not fall.

From Python 3.12 ``None`` is immortal and its count never moves, so there the test passes whatever the
binding does (the bug is silent there, and harmless).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import gc, json, sys
    from PySide6.QtGui import QColor, QImage, QPainter, QPen
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication([])
    label = QLabel()
    image = QImage(16, 16, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    pen = QPen(QColor("#000000"))
    calls = 0
    gc.collect()
    before = sys.getrefcount(None)
    lowest = before
    # 2,500 rounds of four calls that return nothing in C++ (None in Python): 10,000 void calls.
    for n in range(2500):
        label.setText("4471")
        painter.setPen(pen)
        painter.save()
        painter.restore()
        calls += 4
        if n % 50 == 0:
            now = sys.getrefcount(None)
            lowest = min(lowest, now)
            if before - now > 500:  # a leaking binding: stop long before None's count reaches zero
                break
    after = sys.getrefcount(None)
    painter.end()
    import PySide6
    print(json.dumps({"calls": calls, "before": before, "after": after, "lowest": min(lowest, after),
                      "pyside": PySide6.__version__, "python": sys.version.split()[0]}))
""")


def test_void_qt_calls_do_not_leak_references_to_none():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    if done.returncode < 0 or done.returncode == 134:
        name = signal.Signals(-done.returncode).name if done.returncode < 0 else "SIGABRT"
        raise AssertionError(f"CPython aborted ({name}) during void Qt calls: the Qt binding drops references "
                             f"to None. {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lost = result["before"] - result["lowest"]
    assert result["calls"] == 10_000, (
        f"PySide6 {result['pyside']} on Python {result['python']} lost {lost} references to None in "
        f"{result['calls']} void Qt calls (stopped early); this binding would abort the window. Install "
        "from constraints.txt.")
    # A few references may come and go with the interpreter's own caches; a leak loses one per call.
    assert lost < 100, (f"PySide6 {result['pyside']} on Python {result['python']}: sys.getrefcount(None) fell by "
                        f"{lost} over 10,000 void Qt calls")
