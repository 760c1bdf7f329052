"""``python -m exporter`` is the same as ``backup-operator-export``."""

import sys

from exporter.cli import main

sys.exit(main())
