"""Logging to the user log dir (one file, rotated)."""
from __future__ import annotations

import logging
import logging.handlers

from sba_desktop.paths import AppPaths

_done = False


def setup_logging(paths: AppPaths, level: int = logging.INFO) -> None:
    global _done
    if _done:
        return
    paths.ensure()
    handler = logging.handlers.RotatingFileHandler(paths.log_file, maxBytes=2_000_000, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("sba_desktop")
    root.addHandler(handler)
    root.setLevel(level)
    _done = True
