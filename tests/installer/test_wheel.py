"""Install from what we ship: the wheel ``python -m build`` makes, installed the way docs/EXPORTER.md says.

The documented ``pip install`` line is read from docs/EXPORTER.md itself and run in a new virtual
environment, with only two changes so that it works offline: ``--no-index`` (no package index is asked),
and a venv that sees the packages this test runs with (their site-packages folders as path entries),
where the dependencies pinned in constraints.txt already are. Then both programs run from that venv — not from this
checkout — through the whole demo chain (export, seal, publish, sync, search), which needs the packaged
resources too. The wheel is built from a copy of the tree, so the checkout is left as it was.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "EXPORTER.md"

pytestmark = pytest.mark.slow


def _documented_install() -> list[str]:
    lines = [line.strip() for line in DOCS.read_text(encoding="utf-8").splitlines()
             if re.search(r"bin/pip install .*backup_operator-.*\.whl\[", line)]
    assert len(lines) >= 1, "docs/EXPORTER.md no longer shows how to install the wheel"
    return shlex.split(lines[0].split("#")[0])


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BACKUP_OPERATOR", "VIRTUAL_ENV"))}
    env.update(BACKUP_OPERATOR_EXPORT_HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def test_the_documented_wheel_install_works_in_a_clean_venv(tmp_path):
    pytest.importorskip("build", reason="the 'build' package (a test dependency) is not installed")
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".benchmarks",
        ".import_linter_cache", "tests"))
    # A local version label: if the machine running the tests has this checkout installed where the venv
    # can see it (an editable install in the system site-packages), pip must still install the wheel.
    project = source / "pyproject.toml"
    project.write_text(project.read_text(encoding="utf-8").replace(f'version = "{version}"',
                                                                     f'version = "{version}+wheeltest"', 1),
                       encoding="utf-8")
    dist = tmp_path / "dist"
    # --no-isolation: build with the setuptools and wheel installed here instead of fetching them.
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
                            str(source)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = dist.glob("*.whl")
    assert wheel.name == f"backup_operator-{version}+wheeltest-py3-none-any.whl"

    command = _documented_install()
    pip, verb, *rest = command
    assert pip.endswith("/bin/pip") and verb == "install"
    documented_wheel = next(arg for arg in rest if ".whl[" in arg)
    assert Path(documented_wheel.split("[")[0]).name == f"backup_operator-{version}-py3-none-any.whl", \
        "the docs name another version's wheel"
    extras = documented_wheel[documented_wheel.index("["):]
    assert "exporter" in extras

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    # The packages this test runs with (constraint-pinned), visible to the new venv as plain path entries:
    # their .pth files are not run, so an editable install of this checkout stays out of it.
    [venv_site] = (venv / "lib").glob("python3*/site-packages")
    (venv_site / "installed-here.pth").write_text(
        "\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))) + "\n", encoding="utf-8")
    args = [str(REPO / "constraints.txt") if arg == "constraints.txt" else
            f"{wheel}{extras}" if arg == documented_wheel else arg for arg in rest]
    home = tmp_path / "exporter-home"
    env = _clean_env(home)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index", *args], capture_output=True,
                               text=True, timeout=900, env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import exporter, backup_operator; "
                            "from importlib.metadata import version; print(version('backup-operator')); "
                            "print(exporter.__file__); print(backup_operator.__file__)"],
                           capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    installed_version, *files = where.stdout.split()
    assert installed_version == f"{version}+wheeltest"
    assert all(path.startswith(str(venv)) for path in files), where.stdout
    version_line = subprocess.run([str(venv / "bin" / "backup-operator-export"), "--version"],
                                  capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert version_line.stdout.strip() == f"backup-operator-export {version}"
    demo = subprocess.run([str(venv / "bin" / "backup-operator-export"), "demo", "--no-gui"], capture_output=True,
                          text=True, timeout=1200, env={**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"},
                          cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Done." in demo.stdout and "Traceback" not in demo.stderr
