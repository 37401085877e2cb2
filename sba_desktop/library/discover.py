"""Finding photo files under folders: safe against loops, vanishing files and odd names."""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from typing import Iterator

from .decode import PHOTO_EXTENSIONS, read_head, sniff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundFile:
    path: str        # absolute; may hold undecodable bytes (surrogateescape)
    size: int
    mtime_ns: int


def walk_photos(root: str, problems: list[tuple[str, str]] | None = None) -> Iterator[FoundFile]:
    """Yield candidate photo files under `root` (recursively).

    A file is a candidate when its extension is a photo's, or when it has no
    extension and its first bytes are a known image format. Directory symlinks
    are followed once (a loop is visited once); hidden folders are skipped.
    Unreadable folders are reported in `problems` as (path, reason).
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack = [os.path.abspath(root)]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError as exc:
            if problems is not None:
                problems.append((d, f"cannot open folder: {exc.strerror or exc}"))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue  # symlink loop or a folder reached twice
        seen_dirs.add(key)
        try:
            entries = list(os.scandir(d))
        except OSError as exc:
            if problems is not None:
                problems.append((d, f"cannot list folder: {exc.strerror or exc}"))
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=True):
                    subdirs.append(e.path)
                    continue
                if not e.is_file(follow_symlinks=True):
                    continue
                ext = os.path.splitext(e.name)[1].lower()
                if ext not in PHOTO_EXTENSIONS:
                    if ext or e.name.endswith(".xmp"):
                        continue
                    try:
                        if sniff(read_head(e.path)) is None:
                            continue
                    except OSError:
                        continue
                s = e.stat(follow_symlinks=True)
                if not stat.S_ISREG(s.st_mode):
                    continue
                yield FoundFile(e.path, s.st_size, s.st_mtime_ns)
            except FileNotFoundError:
                continue  # vanished while we looked (or a dangling symlink)
            except OSError as exc:
                if problems is not None:
                    problems.append((e.path, f"cannot stat: {exc.strerror or exc}"))
        stack.extend(sorted(subdirs, reverse=True))


def is_under(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) + os.sep
    return path.startswith(folder)
