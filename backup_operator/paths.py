"""Where a desktop keeps its state: one home folder, chosen once.

Order: ``BACKUP_OPERATOR_HOME``; portable mode (a ``portable.txt`` marker beside the executable keeps
everything in ``data/`` next to it, for kits on a USB stick); else the platform's user data folder.
Two desktops on one machine (tests, a kit being prepared) simply use two homes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

__all__ = ["desktop_home", "portable_root", "PORTABLE_MARKER"]

PORTABLE_MARKER = "portable.txt"


def portable_root() -> Path | None:
    exe_dir = Path(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]).resolve().parent
    return exe_dir if (exe_dir / PORTABLE_MARKER).is_file() else None


def desktop_home() -> Path:
    explicit = os.environ.get("BACKUP_OPERATOR_HOME")
    if explicit:
        return Path(explicit).expanduser()
    root = portable_root()
    if root is not None:
        return root / "data"
    return Path(platformdirs.user_data_dir("BackupOperator", appauthor=False))
