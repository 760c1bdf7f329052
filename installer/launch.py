"""Entry point frozen by PyInstaller: the desktop program only (the exporter is not bundled)."""

import sys

from backup_operator.cli import main

if __name__ == "__main__":
    sys.exit(main())
