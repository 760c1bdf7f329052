"""The window and the command line do not import each other: the CLI opens the window lazily, and the
wording both show (the data's age, counts) lives in ``core.wording``."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_of_the_window_imports_the_command_line():
    offenders = []
    for path in sorted((ROOT / "backup_operator" / "ui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names
                          if n == "backup_operator.cli" or n.startswith("backup_operator.cli.")]
    assert offenders == []


def test_the_import_contract_is_declared_and_kept():
    exe = shutil.which("lint-imports")
    assert exe, "lint-imports comes with the test extra"
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "the window never imports the command line KEPT" in done.stdout, done.stdout[-2000:]
