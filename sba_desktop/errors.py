"""Plain-words errors for the command line (no tracebacks in a user's face)."""
from __future__ import annotations

import logging
import sys
from typing import Callable

log = logging.getLogger("sba_desktop")


class UserError(RuntimeError):
    """An error whose message is meant for the person using the program."""


def run_friendly(fn: Callable[[], int]) -> int:
    from .engine.registry import MissingWeightsError
    from .engine.sba import ModelMismatchError
    from .library.decode import DecodeError
    from .library.lock import LibraryBusyError

    try:
        return fn()
    except (UserError, MissingWeightsError, ModelMismatchError, FileNotFoundError,
            PermissionError, ValueError, DecodeError, LibraryBusyError, RuntimeError) as exc:
        print(f"sba: {exc}", file=sys.stderr)
        log.debug("error", exc_info=True)
        return 2
    except KeyboardInterrupt:
        print("sba: interrupted", file=sys.stderr)
        return 130
