"""Backup Operator: the desktop side (search, on call, verified snapshots) that works with no server.

Subpackages: ``core`` (headless model, search, on call, store), ``snapshot`` (format, envelope, keys),
``ui`` (PySide6 only). The desktop never imports the exporter.
"""

__version__ = "0.1.0"
