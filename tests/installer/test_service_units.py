"""The systemd unit that runs the exporter's ``serve`` (issue 11: running as a service).

Checked two ways: against the program (the command it starts exists and parses, the environment variable
it sets is the one the exporter reads, the signal it stops with is one serve handles, and it waits long
enough for a running export), and by ``systemd-analyze verify``, which reads the unit as systemd would —
unknown keys, bad values, a command that is not executable. The unit's ExecStart points at the documented
install location (/opt/backup-operator/venv); the verify runs on a copy pointing at this test's own
``backup-operator-export``, so it checks the unit, not this machine's layout.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.cli import build_parser
from exporter.config import ExportSettings
from exporter.home import HOME_ENV

UNIT = Path(__file__).resolve().parents[2] / "installer" / "linux" / "backup-operator-export.service"
DOCUMENTED_PROGRAM = "/opt/backup-operator/venv/bin/backup-operator-export"


def _settings(text: str) -> dict[tuple[str, str], list[str]]:
    section, found = "", {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault((section, key.strip()), []).append(value.strip())
    return found


def _minutes(value: str) -> float:
    units = {"min": 1, "h": 60, "s": 1 / 60}
    for unit, factor in units.items():
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value) / 60  # plain seconds


def test_the_unit_starts_serve_the_way_the_exporter_expects():
    unit = _settings(UNIT.read_text(encoding="utf-8"))
    [command] = unit[("Service", "ExecStart")]
    program, *arguments = shlex.split(command)
    assert program == DOCUMENTED_PROGRAM and arguments == ["serve"]
    assert build_parser().parse_args(arguments).command == "serve"
    environment = dict(item.split("=", 1) for value in unit[("Service", "Environment")] for item in shlex.split(value))
    home = environment[HOME_ENV]
    assert home == "/var/lib/" + unit[("Service", "StateDirectory")][0]
    # serve stops cleanly on SIGTERM (exporter/schedule.py), after a running export, which is bounded by
    # the export deadline: systemd must not kill it before.
    assert unit[("Service", "KillSignal")] == ["SIGTERM"]
    assert _minutes(unit[("Service", "TimeoutStopSec")][0]) > ExportSettings().deadline_minutes
    assert unit[("Service", "Restart")] == ["on-failure"] and unit[("Service", "UMask")] == ["0077"]
    assert unit[("Install", "WantedBy")] == ["multi-user.target"]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (the systemd package); the unit was not verified")
    program = shutil.which("backup-operator-export") or str(Path(sys.executable).parent / "backup-operator-export")
    assert Path(program).exists(), "the exporter's command is not installed next to this Python"
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text(encoding="utf-8").replace(DOCUMENTED_PROGRAM, program), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    # Lines about other units (this machine's targets) are not this unit's business.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr
    # And it does fail on a broken unit, so the pass above means something.
    broken = tmp_path / "broken.service"
    broken.write_text(copy.read_text(encoding="utf-8").replace(program, str(tmp_path / "missing"))
                      .replace("KillSignal=SIGTERM", "KillSignal=SIGNOTHING"), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode != 0 or "broken.service" in result.stderr
