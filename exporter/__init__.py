"""The exporter: runs on the application server and keeps every enrolled desktop's snapshot current.

The pipeline is plain functions (``exporter.pipeline``): read the sources, check what was read, build
the SQLite snapshot, seal it for every enrolled desktop, publish it to every inbox. The command line
(``exporter.cli``) and the scheduler (``exporter.schedule``) are thin layers over it.

The exporter uses ``backup_operator.core.model`` and ``backup_operator.snapshot`` and must never import
the desktop UI (``backup_operator.ui``) or Qt.
"""

__version__ = "0.1.0"
