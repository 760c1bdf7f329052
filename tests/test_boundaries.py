"""Machine-checked import boundaries (DESIGN.md "Layout"; STYLE.md 1 and 3).

Two independent checks: import-linter's static contracts from pyproject.toml, and a run that imports
every headless module in a fresh interpreter where PySide6 cannot be imported at all (as on a server, or
a kit built without the window), then looks at what got loaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is not installed; it comes with the test extra (pip install -e '.[test]')")
    return subprocess.run([exe, "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_linter_contracts_are_kept():
    done = _lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    for name in ("core and snapshot never import Qt", "only snapshot/ calls cryptography",
                 "the exporter never imports the desktop UI", "the desktop never imports the exporter"):
        assert f"{name} KEPT" in done.stdout, done.stdout


def test_import_linter_would_catch_a_broken_boundary(tmp_path):
    """Control: a contract that the code does break is reported, so the check above can fail."""
    config = tmp_path / "broken.toml"
    config.write_text(textwrap.dedent("""
        [tool.importlinter]
        root_packages = ["backup_operator"]
        include_external_packages = true

        [[tool.importlinter.contracts]]
        name = "core may not use the envelope (false, on purpose)"
        type = "forbidden"
        source_modules = ["backup_operator.core.store"]
        forbidden_modules = ["backup_operator.snapshot.envelope"]
    """))
    done = _lint_imports(str(config))
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout


HEADLESS_PROBE = r"""
import importlib, json, pkgutil, sys

blocked_attempts = []

class NoQt:
    # A kit or server without Qt: any attempt to import it fails, and is written down.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6"):
            blocked_attempts.append(name)
            raise ImportError(f"{name} is blocked by the headless test")
        return None

sys.meta_path.insert(0, NoQt())

import backup_operator, backup_operator.core, backup_operator.snapshot
names = ["backup_operator", "backup_operator.cli", "backup_operator.config", "backup_operator.errors",
         "backup_operator.fsutil", "backup_operator.paths"]
for package in (backup_operator.core, backup_operator.snapshot):
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)

# The command line's parser and help work without Qt too.
from backup_operator import cli
parser = cli.build_parser()

print(json.dumps({"imported": names, "failed": failed, "blocked_attempts": blocked_attempts,
                  "loaded": sorted(sys.modules)}))
"""


def test_headless_modules_import_and_load_no_qt_and_no_exporter():
    done = subprocess.run([sys.executable, "-c", HEADLESS_PROBE], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}
    assert result["blocked_attempts"] == [], "a headless module tried to import Qt"
    assert {"backup_operator.core.store", "backup_operator.core.model", "backup_operator.snapshot.envelope",
            "backup_operator.snapshot.keys", "backup_operator.cli"} <= set(result["imported"])
    loaded = result["loaded"]
    assert [m for m in loaded if m.split(".")[0] in ("PySide6", "shiboken6", "PyQt5", "PyQt6")] == []
    assert [m for m in loaded if m == "backup_operator.ui" or m.startswith("backup_operator.ui.")] == []
    assert [m for m in loaded if m == "exporter" or m.startswith("exporter.")] == []


def test_the_probe_would_notice_qt():
    """Control: the same blocker does see an import of Qt (so an empty list above means something)."""
    probe = HEADLESS_PROBE.replace("print(json.dumps(", "try:\n    import PySide6.QtCore\nexcept ImportError:\n"
                                   "    pass\nprint(json.dumps(", 1)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["blocked_attempts"] and "PySide6" not in result["loaded"]


def test_no_module_outside_snapshot_imports_cryptography_directly():
    """The same rule as the import-linter contract, by reading the source: a second, independent check."""
    import ast

    offenders = []
    for path in sorted((ROOT / "backup_operator").rglob("*.py")) + sorted((ROOT / "exporter").rglob("*.py")):
        if "snapshot" in path.relative_to(ROOT).parts:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a stray escape in someone's string is not this test's business
            tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "cryptography"]
    assert offenders == []
