"""The window on a real X server (Xvfb, 1024×768, with openbox when it is installed): what the offscreen
tests check, checked again where a window manager places and sizes the window (real_screen_check.py).

Skips when Xvfb is missing, unless BO_REQUIRE_SERVICES=1 (CI), where that is a failure: tests/run.sh
installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services import require_service

HERE = Path(__file__).resolve().parent


def _free_display() -> int:
    for n in range(140, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture
def x_screen():
    xvfb = shutil.which("Xvfb")
    require_service(xvfb is not None, "Xvfb is not installed (tests/run.sh installs the xvfb package)")
    display = _free_display()
    server = subprocess.Popen([xvfb, f":{display}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{display}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    env = dict(os.environ, DISPLAY=f":{display}", QT_QPA_PLATFORM="xcb")
    manager = None
    if shutil.which("openbox"):
        manager = subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    try:
        yield env
    finally:
        for process in (manager, server):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_on_a_real_1024x768_screen_nothing_is_squeezed_or_cut(x_screen):
    done = subprocess.run([sys.executable, str(HERE / "real_screen_check.py")], env=x_screen, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["screen"] == [1024, 768] or result["screen"][0] == 1024
    assert len(result["steps"]) == 12, result["steps"]
