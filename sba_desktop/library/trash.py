"""The system trash, with a way back: Qt's QFile.moveToTrash (QtCore only, no window needed).

Qt uses each platform's own trash: the freedesktop.org Trash on Linux (files/ + info/*.trashinfo),
the Recycle Bin on Windows, ~/.Trash on macOS. It tells where the file went, so the last move can be
undone by moving the file back. Nothing is ever deleted here.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Trashed:
    path: str                    # where the photo was
    in_trash: str | None = None  # where it is now (None: not moved)
    error: str | None = None     # why it was not moved

    @property
    def moved(self) -> bool:
        return self.in_trash is not None


def trash_place() -> str:
    """Where move_to_trash puts files, in words a person can go and look at."""
    if sys.platform == "win32":
        return "the Recycle Bin"
    if sys.platform == "darwin":
        return "the Trash (~/.Trash)"
    from PySide6.QtCore import QStandardPaths

    data_home = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return f"the Trash ({os.path.join(data_home, 'Trash')})" if data_home else "the Trash"


def move_to_trash(paths: list[str]) -> list[Trashed]:
    """Move each file to the system trash; a file that cannot be moved is left where it is."""
    from PySide6.QtCore import QFile, QStandardPaths

    # Qt's freedesktop trash lives in the data folder and gives up when that folder does not
    # exist yet (a fresh account)
    data_home = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    if data_home and sys.platform.startswith("linux"):
        os.makedirs(data_home, exist_ok=True)
    out = []
    for path in paths:
        if not os.path.lexists(path):
            out.append(Trashed(path, error="no longer there (moved or deleted outside sba-desktop)"))
            continue
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            # Qt's file names are UTF-16: a Linux name that is not valid UTF-8 cannot be passed on
            out.append(Trashed(path, error="its name is not valid UTF-8, which the system trash "
                                           "cannot take; rename it first"))
            continue
        f = QFile(path)
        if f.moveToTrash():
            out.append(Trashed(path, in_trash=f.fileName()))
        else:
            out.append(Trashed(path, error=f"the system refused: {f.errorString() or 'no trash here'}"))
    return out


def restore(items: list[Trashed]) -> list[Trashed]:
    """Move trashed files back where they were; returns the ones that could not go back."""
    failed = []
    for item in items:
        if not item.moved:
            continue
        if os.path.lexists(item.path):
            failed.append(Trashed(item.path, item.in_trash, "another file has taken its place"))
            continue
        try:
            Path(item.path).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(item.in_trash, item.path)
        except OSError as exc:
            failed.append(Trashed(item.path, item.in_trash, f"cannot move it back: {exc}"))
            continue
        _forget_trash_entry(item.in_trash)
    return failed


def _forget_trash_entry(in_trash: str) -> None:
    """freedesktop.org Trash: drop the .trashinfo of a restored file (a file manager would)."""
    p = Path(in_trash)
    if p.parent.name == "files":
        info = p.parent.parent / "info" / (p.name + ".trashinfo")
        info.unlink(missing_ok=True)
