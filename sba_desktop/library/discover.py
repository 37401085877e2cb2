"""Finding photo files under folders: safe against loops, vanishing files and odd names.

A photo folder is untrusted input: a link inside it that leads out of it (to `/`, to another
user's files) is not followed, and the system's virtual folders (/proc, /sys, /dev) are never
read as photo folders.
"""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from typing import Iterator

from sba_desktop.errors import UserError
from sba_desktop.library.decode import PHOTO_EXTENSIONS, RAW_EXTENSIONS, read_head, sniff

log = logging.getLogger(__name__)

RENDERED_EXTENSIONS = PHOTO_EXTENSIONS - RAW_EXTENSIONS  # what a RAW file's companion may be
VIDEO_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".avi", ".mkv", ".mts", ".m2ts", ".3gp", ".wmv", ".webm"})


# the kernel's views of processes, devices and drivers: endless, changing, never photos
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev") if os.name == "posix" else ()


def system_folder(path: str) -> str | None:
    """The virtual system folder `path` lies in (after links), or None."""
    real = os.path.realpath(path)
    return next((f for f in SYSTEM_FOLDERS if real == f or is_under(real, f)), None)


def check_photo_folder(path: str) -> None:
    """UserError for a folder that must not be read as a photo folder."""
    found = system_folder(path)
    if found is not None:
        raise UserError(f"{path}: {found} is a virtual folder of the system, not a photo folder")


@dataclass(frozen=True)
class FoundFile:
    path: str        # absolute; may hold undecodable bytes (surrogateescape)
    size: int
    mtime_ns: int


def _stem_ext(name: str) -> tuple[str, str]:
    """('IMG_0001', '.cr2') of 'IMG_0001.CR2': extensions compare in lower case."""
    stem, ext = os.path.splitext(name)
    return stem, ext.lower()


def walk_photos(root: str, problems: list[tuple[str, str]] | None = None) -> Iterator[FoundFile]:
    """Yield candidate photo files under `root` (recursively).

    A file is a candidate when its extension is a photo's, or when it has no
    extension and its first bytes are a known image format. Links (to folders or files) are
    followed only when they stay inside `root` (a loop is visited once): the links that lead out
    of it are reported once in `problems`. Hidden folders and the system's virtual folders are
    skipped. Unreadable folders are reported in `problems` as (path, reason).

    A RAW file beside a JPEG/HEIC of the same name (IMG_0001.CR2 + IMG_0001.JPG, as cameras
    write them) is one photo with two files: only the JPEG/HEIC is yielded (it is the camera's
    own rendering of the RAW, and decodes fastest); `raw_companions` finds the RAW again. A
    video is reported in `problems` (only photos are indexed), except the motion half of a Live
    Photo (IMG_0001.MOV beside IMG_0001.HEIC).
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack = [os.path.abspath(root)]
    real_root = os.path.realpath(root)
    leaving: list[str] = []

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return (real == real_root or is_under(real, real_root)) and system_folder(real) is None
    yield from _walk(stack, seen_dirs, problems, inside, leaving)
    if leaving and problems is not None:
        more = f" (and {len(leaving) - 1} more)" if len(leaving) > 1 else ""
        problems.append((leaving[0], f"a link out of {root}: not followed{more}"))


def _walk(stack: list[str], seen_dirs: set[tuple[int, int]], problems: list[tuple[str, str]] | None,
          inside, leaving: list[str]) -> Iterator[FoundFile]:
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
        rendered = {stem for stem, ext in map(_stem_ext, (e.name for e in entries)) if ext in RENDERED_EXTENSIONS}
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_symlink() and not inside(e.path):
                    leaving.append(e.path)
                    continue
                if e.is_dir(follow_symlinks=True):
                    if e.path not in SYSTEM_FOLDERS:  # under `/` itself
                        subdirs.append(e.path)
                    continue
                if not e.is_file(follow_symlinks=True):
                    continue
                stem, ext = _stem_ext(e.name)
                if ext in RAW_EXTENSIONS and stem in rendered:
                    continue  # the RAW half of a RAW + JPEG pair
                if ext in VIDEO_EXTENSIONS:
                    if problems is not None and stem not in rendered:
                        problems.append((e.path, "a video: only photos are indexed"))
                    continue
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


def raw_companions(path: str) -> list[str]:
    """RAW files with this photo's name in its folder (IMG_0001.CR2 beside IMG_0001.JPG): the
    other half of the photo, which walk_photos does not yield."""
    folder, name = os.path.split(path)
    stem, ext = _stem_ext(name)
    if ext in RAW_EXTENSIONS:
        return []
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    return sorted(os.path.join(folder, n) for n in names
                  if n != name and _stem_ext(n)[0] == stem and _stem_ext(n)[1] in RAW_EXTENSIONS)


def is_under(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) + os.sep
    return path.startswith(folder)
