"""Plain-words errors for the command line (no tracebacks in a user's face) and its exit codes."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable

log = logging.getLogger("sba_desktop")

EXIT_OK = 0
EXIT_ERROR = 1        # the command could not do what was asked (message on stderr)
EXIT_USAGE = 2        # bad arguments (argparse's own code)
EXIT_INTERRUPTED = 130


class UserError(RuntimeError):
    """An error whose message is meant for the person using the program."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _quiet_stdout() -> None:
    """After a closed pipe (`sba duplicates | head`), later writes and the final flush go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_friendly(fn: Callable[[], int]) -> int:
    """Run a command: its errors become one line on stderr and an exit code, never a traceback."""
    from .engine.registry import MissingWeightsError
    from .engine.sba import ModelMismatchError
    from .library.decode import DecodeError
    from .library.lock import LibraryBusyError

    try:
        code = fn()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_stdout()  # the reader stopped reading: that is how `| head` ends, not an error
        return EXIT_OK
    except KeyboardInterrupt:
        print("sba: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserError, MissingWeightsError, ModelMismatchError, FileNotFoundError, NotADirectoryError,
            PermissionError, ValueError, DecodeError, LibraryBusyError, RuntimeError) as exc:
        print(f"sba: {_one_line(exc)}", file=sys.stderr)
        log.debug("error", exc_info=True)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line here, the traceback in the log
        log.exception("unexpected error")
        print(f"sba: unexpected error: {exc.__class__.__name__}: {_one_line(exc)} "
              f"(details in the log file)", file=sys.stderr)
        return EXIT_ERROR
