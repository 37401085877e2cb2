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


class SbaError(RuntimeError):
    """An error of the product whose message is meant for the person using it.
    `prefix` says in words what kind of trouble it is (the window shows it before the message)."""
    prefix = ""

    @property
    def user_message(self) -> str:
        text = _one_line(self)
        return f"{self.prefix}: {text}" if self.prefix else text


class UserError(SbaError):
    """Something the person asked for cannot be done as asked (a wrong folder, a bad number)."""


def user_message(exc: BaseException) -> str:
    """One plain line for any error: the CLI prints it, the window shows it."""
    if isinstance(exc, SbaError):
        return exc.user_message
    text = _one_line(exc)
    if isinstance(exc, FileNotFoundError):
        return f"Not found: {text}"
    if isinstance(exc, PermissionError):
        return f"Permission denied: {text}"
    return text


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
    except (SbaError, FileNotFoundError, NotADirectoryError, PermissionError, ValueError,
            RuntimeError) as exc:
        print(f"sba: {_one_line(exc)}", file=sys.stderr)  # the command's name says the kind
        log.debug("error", exc_info=True)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line here, the traceback in the log
        log.exception("unexpected error")
        print(f"sba: unexpected error: {exc.__class__.__name__}: {_one_line(exc)} "
              f"(details in the log file)", file=sys.stderr)
        return EXIT_ERROR
