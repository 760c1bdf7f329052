"""Find files shipped in the top-level ``resources/`` folder (synonyms, icons, demo data).

Places looked in, in order: ``BACKUP_OPERATOR_RESOURCES`` (an explicit folder), a PyInstaller bundle
(``resources/`` inside ``sys._MEIPASS``), a source checkout or editable install (``resources/`` beside the
package), and a wheel install (``<prefix>/share/backup-operator/resources``, from pyproject's data-files).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["resource_path"]


def _roots() -> list[Path]:
    roots = []
    override = os.environ.get("BACKUP_OPERATOR_RESOURCES")
    if override:
        roots.append(Path(override))
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
