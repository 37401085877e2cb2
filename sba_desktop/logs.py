"""Logging to the user log dir (one file, rotated), set up before anything else can fail.

When the log folder cannot be written (a read-only library, a full disk) the product still runs:
it logs nowhere, and its one-line errors say there is no log instead of pointing at one.
"""
from __future__ import annotations

import faulthandler
import logging
import logging.handlers
from pathlib import Path

from sba_desktop.paths import AppPaths

_log_file: Path | None = None
_done = False


def setup_logging(paths: AppPaths, level: int = logging.INFO) -> Path | None:
    """Log into paths.log_file; the file in use, None when its folder cannot be written."""
    global _done, _log_file
    if _done:
        return _log_file
    _done = True
    logging.raiseExceptions = False  # a log write the disk refuses (full) is dropped, never printed
    root = logging.getLogger("sba_desktop")
    root.setLevel(level)
    try:
        paths.logs.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(paths.log_file, maxBytes=2_000_000, backupCount=3,
                                                       encoding="utf-8")
    except OSError:
        root.addHandler(logging.NullHandler())
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    _log_file = paths.log_file
    try:  # a crash of native code (hnswlib, onnxruntime, a decoder) leaves its stack in the log
        faulthandler.enable(handler.stream)
    except (AttributeError, ValueError, OSError):
        pass
    return _log_file


def log_file() -> Path | None:
    """The log file in use, or None (not set up, or not writable)."""
    return _log_file
