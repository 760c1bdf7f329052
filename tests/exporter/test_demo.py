"""``backup-operator-export demo --no-gui`` end to end, as a user runs it: two separate programs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from exporter_support import REPO


@pytest.mark.slow
def test_demo_runs_the_whole_chain_and_can_run_again(tmp_path):
    env = dict(os.environ)
    env["BACKUP_OPERATOR_EXPORT_HOME"] = str(tmp_path / "export-home")
    env.pop("BACKUP_OPERATOR_HOME", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "exporter", "demo", "--no-gui"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr + first.stdout
    out = first.stdout
    assert "Exported snapshot 1:" in out
    assert "Installed snapshot version 1" in out
    assert "search 'cardiology'" in out and "Cardiology" in out.split("search 'cardiology'")[1]
    assert "Traceback" not in first.stderr

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "already enrolled" in again.stdout
    assert "Exported snapshot 2:" in again.stdout and "Installed snapshot version 2" in again.stdout
    receipt = tmp_path / "export-home" / "demo" / "inbox" / "receipts" / "demo-desktop.json"
    assert receipt.is_file()
    status = subprocess.run([sys.executable, "-m", "exporter", "--home",
                             str(tmp_path / "export-home" / "demo" / "exporter"), "status"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    line = next(row for row in status.stdout.splitlines() if row.startswith("demo-desktop"))
    assert " 2 " in line and line.rstrip().endswith("ok")
