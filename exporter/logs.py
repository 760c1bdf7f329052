"""Logging for the exporter: a rotating log file in the exporter home, and the console.

The file keeps everything at the configured level (default INFO), so IT can see last night's runs;
the console shows what the command is doing (``serve``: INFO; one-shot commands: warnings unless -v).

This module must never log directory contents or key material; the pipeline logs counts, versions,
destinations and check findings (row descriptions name listings by id, which is not secret here).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys

from exporter.config import Config
from exporter.home import ExporterHome

__all__ = ["setup_logging", "log_traceback_to_file"]

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_OURS = "exporter._handler"


def setup_logging(home: ExporterHome, config: Config | None, *, console_level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
    level = getattr(logging, (config.log.level if config else "INFO").upper())
    root.setLevel(min(level, console_level))

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if console_level > logging.INFO
                                           else _FORMAT))
    # An error that is also raised to the command is printed once, by the command, not twice.
    console.addFilter(lambda record: not getattr(record, "raised", False))
    setattr(console, _OURS, True)
    root.addHandler(console)

    path = config.log.file if config and config.log.file else home.logs / "exporter.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=config.log.max_bytes if config else 5 * 1024 * 1024,
            backupCount=config.log.backups if config else 5, encoding="utf-8", delay=True)
    except OSError as exc:
        logging.getLogger("exporter").warning("the log file %s cannot be opened (%s); logging to the "
                                              "console only", path, exc)
        return
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_FORMAT))
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    # Chatty libraries stay at warnings unless IT asks for DEBUG.
    for noisy in ("paramiko", "apscheduler.executors", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))


def log_traceback_to_file(exc: BaseException) -> None:
    """Put an unforeseen error's traceback in the log file only: the console gets one sentence."""
    record = logging.LogRecord("exporter", logging.ERROR, __file__, 0, "unexpected error: %s", (exc,),
                               (type(exc), exc, exc.__traceback__))
    for handler in logging.getLogger().handlers:
        if getattr(handler, _OURS, False) and isinstance(handler, logging.FileHandler):
            handler.handle(record)
