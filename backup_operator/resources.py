"""Find files shipped in the top-level ``resources/`` folder (synonyms, icons, demo data).

Three layouts exist: a source checkout or editable install (``resources/`` beside the package), a
PyInstaller bundle (``resources/`` inside ``sys._MEIPASS``), and a portable kit (the bundle's folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["resource_path"]


def _roots() -> list[Path]:
    roots = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.append(Path(bundle) / "resources")
    roots.append(Path(__file__).resolve().parent.parent / "resources")
    roots.append(Path(sys.prefix) / "share" / "backup-operator" / "resources")
    return roots


def resource_path(*parts: str) -> Path:
    """The path of a shipped resource; raises FileNotFoundError naming every place looked in."""
    tried = []
    for root in _roots():
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
        tried.append(str(candidate))
    raise FileNotFoundError(f"{'/'.join(parts)} is missing from this installation (looked in {', '.join(tried)})")
