"""Plain-words errors for the command line (no tracebacks in a user's face) and its exit codes."""
from __future__ import annotations

import errno
import logging
import os
import sqlite3
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


def user_message(exc: BaseException, library_folder: str | os.PathLike | None = None) -> str:
    """One plain line for any error: the CLI prints it, the window shows it. `library_folder`:
    where the library's catalog lives (SQLite's errors name no file)."""
    if isinstance(exc, SbaError):
        return exc.user_message
    if isinstance(exc, sqlite3.DatabaseError):
        return _sqlite_line(exc, library_folder)
    if isinstance(exc, OSError) and exc.errno in _DISK_REFUSALS:
        return disk_error_line(exc, os.path.dirname(os.fsdecode(exc.filename)) if exc.filename else "the library")
    text = _one_line(exc)
    if isinstance(exc, FileNotFoundError):
        return f"Not found: {text}"
    if isinstance(exc, PermissionError):
        return f"Permission denied: {text}"
    if isinstance(exc, MemoryError):
        return "out of memory: close other programs and run the command again"
    return text


def disk_error_line(exc: OSError, folder: str | os.PathLike, what: str = "", need: int | None = None) -> str:
    """One line for an OSError of a write: which folder, what was being written, what is needed."""
    folder = os.fsdecode(folder)
    writing = f" to write {what}" if what else ""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        amount = f" (about {need / 1e6:.0f} MB)" if need and need >= 1e6 else ""
        return (f"no space left in {folder}{writing}: free some space there{amount} and run the same "
                "command again (nothing is lost)")
    if code == errno.EROFS:
        needs = f"cannot write {what} there" if what else "this command needs to write there"
        return f"{folder} is on a read-only disk: {needs} (nothing is lost)"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission to write in {folder}{writing}: allow writing there (nothing is lost)"
    text = exc.strerror or str(exc)
    return f"cannot write in {folder}{writing}: {text} (nothing is lost)"


_DISK_REFUSALS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # a permission error may be a read's


def _sqlite_line(exc: sqlite3.DatabaseError, folder: str | os.PathLike | None = None) -> str:
    """SQLite's errors carry no file name: the catalog is the only database."""
    text = str(exc).lower()
    where = os.fsdecode(folder) if folder else "the disk holding the library's catalog"
    if "full" in text or "i/o error" in text and folder and _free_bytes(folder) < 1 << 20:
        return disk_error_line(OSError(errno.ENOSPC, "No space left on device"), where, "the catalog")
    if "readonly" in text or "read-only" in text:
        return "the library is read-only: this command needs to change it (searches still work)"
    if "locked" in text or "busy" in text:
        return "the library is busy (another sba or the window is writing it): try again in a moment"
    return f"the library's catalog cannot be used: {_one_line(exc)} (sba status checks it)"


def one_line(exc: BaseException) -> str:
    """An error's text on one line, at most 300 characters."""
    return _one_line(exc)


def _free_bytes(folder: str | os.PathLike) -> int:
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


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


def run_friendly(fn: Callable[[], int], library_folder: str | os.PathLike | None = None) -> int:
    """Run a command: its errors become one line on stderr and an exit code, never a traceback
    (`library_folder` names the folder in SQLite's errors)."""
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
    except SbaError as exc:
        print(f"sba: {_one_line(exc)}", file=sys.stderr)  # the command's name says the kind
        log.info("error: %s", exc, exc_info=True)
        return EXIT_ERROR
    except (FileNotFoundError, NotADirectoryError, PermissionError, ValueError, RuntimeError,
            sqlite3.DatabaseError, OSError, MemoryError) as exc:
        plain = isinstance(exc, (sqlite3.DatabaseError, MemoryError)) or getattr(exc, "errno", None) in _DISK_REFUSALS
        line = user_message(exc, library_folder) if plain else _one_line(exc)
        print(f"sba: {line}", file=sys.stderr)  # the command's name says the kind
        log.warning("error: %s", exc, exc_info=True)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line here, the traceback in the log
        log.exception("unexpected error")
        print(f"sba: unexpected error: {exc.__class__.__name__}: {_one_line(exc)} "
              f"({_where_details()})", file=sys.stderr)
        return EXIT_ERROR


def _where_details() -> str:
    from sba_desktop.logs import log_file

    where = log_file()
    return f"details in {where}" if where is not None else "no log: its folder cannot be written"
