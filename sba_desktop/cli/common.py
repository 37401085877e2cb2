"""What every `sba` command shares: number and folder arguments, opening the library, the
progress bar, and how names, counts and times are written."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

from sba_desktop.errors import UserError
from sba_desktop.text import display

__all__ = ["bounded", "close_libraries", "count", "display", "folder_arg", "open_library", "positive_float", "positive_int",
           "progress_bar", "unit_float", "when"]


def bounded(kind: type, *, at_least: float | None = None, above: float | None = None,
            at_most: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number of `kind` (int or float) within the bounds; nan and inf are
    never within them."""
    noun = "whole number" if kind is int else "number"
    low = at_least if at_least is not None else above
    if at_most is not None:
        rule = f"must be between {low:g} and {at_most:g}"
    elif at_least is not None:
        rule = f"must be {at_least:g} or more"
    else:
        rule = f"must be more than {above:g}"

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {noun}: {text!r}") from None
        ok = v == v and abs(v) != float("inf")
        ok = ok and (at_least is None or v >= at_least) and (above is None or v > above)
        ok = ok and (at_most is None or v <= at_most)
        if not ok:
            raise argparse.ArgumentTypeError(f"{rule}, not {v}")
        return v
    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


positive_int = bounded(int, at_least=1)
positive_float = bounded(float, above=0)
unit_float = bounded(float, at_least=0, at_most=1)


def folder_arg(path: str) -> str:
    """An existing folder, as an absolute path; checked before anything is changed."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise UserError(f"{path}: no such folder")
    if not os.path.isdir(full):
        raise UserError(f"{path}: not a folder")
    from sba_desktop.library.discover import check_photo_folder

    check_photo_folder(full)
    return full


def open_library(args: argparse.Namespace):
    """The library, every file of it checked when it opens (library/library.py): one line on
    stderr per repair. Logging is set up before (cli/__init__.py main)."""
    from sba_desktop.library.library import Library

    lib = Library.open(args.home)
    for line in lib.repairs:
        print(f"sba: repaired: {line}", file=sys.stderr)
    _opened.append(lib)
    return lib


_opened: list = []


def close_libraries() -> None:
    """Close what the command opened (its end: the backup of the user's data follows the
    command's changes, library/health.py); a close the disk refuses is logged only."""
    while _opened:
        lib = _opened.pop()
        try:
            lib.close()
        except Exception:  # the command's own outcome stands
            import logging

            logging.getLogger(__name__).warning("closing the library failed", exc_info=True)


def progress_bar(json_mode: bool):
    """A progress callback drawing one line on a terminal (nothing when piped or --json)."""
    from sba_desktop.jobs.index import Progress

    tty = sys.stderr.isatty() and not json_mode

    def show(p: Progress) -> None:
        if not tty:
            return
        if p.phase == "done":
            sys.stderr.write("\r\033[K")
        elif p.total:
            width = 30
            fill = int(width * p.done / p.total)
            eta = f" ETA {p.eta_s:4.0f}s" if p.eta_s else ""
            sys.stderr.write(f"\r\033[K{p.phase:9} [{'#' * fill}{'.' * (width - fill)}] "
                             f"{p.done}/{p.total} {p.rate:5.1f}/s{eta}")
        else:
            sys.stderr.write(f"\r\033[K{p.phase} {p.done} files...")
        sys.stderr.flush()
    return show


def count(n: int, noun: str) -> str:
    """"1 group", "3 groups"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def when(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
