"""Writes that cannot be turned against the user, and plain words for a disk that refuses them.

Every file the product writes goes through `replace_file`: the new content goes into a
temporary file created exclusively (O_EXCL, never through a link) with a unique name in the
target's own folder, is flushed to the disk and checked, and only then renamed over the target
(a rename replaces a link at the target itself, never the file it points to). On any failure the
temporary file is removed and the target is left as it was.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable

from sba_desktop.errors import SbaError, disk_error_line

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file (mkstemp gives 0600)


class DiskError(SbaError):
    """The disk refused a write (full, read-only, no permission): what and where, in one line."""


def is_disk_refusal(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                                                      errno.EACCES, errno.EPERM)


def unique_temp(target: str | os.PathLike) -> str:
    """A new empty file beside `target`, created exclusively under a unique name (mkstemp opens
    with O_CREAT | O_EXCL | O_NOFOLLOW: a planted file or link of that name is never used)."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX)
    try:
        try:  # the replaced file's permissions (a sidecar others read), else a new file's
            st = os.lstat(target)
            mode = st.st_mode & 0o777 if stat.S_ISREG(st.st_mode) else _NEW_FILE_MODE
        except OSError:
            mode = _NEW_FILE_MODE
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return tmp


def replace_file(target: str | os.PathLike, fill: Callable[[str], None], what: str = "",
                 verify: Callable[[str], None] | None = None, need: int | None = None) -> None:
    """Write `target` anew: `fill(tmp_path)` writes the content into a fresh temporary file
    beside it, `verify(tmp_path)` (optional) raises if what reached the disk is not right, and
    the temporary file then replaces the target. No temporary file is left behind on failure;
    a refusal of the disk becomes a DiskError naming the folder."""
    target = Path(target)
    try:
        tmp = unique_temp(target)
    except OSError as exc:
        raise DiskError(disk_error_line(exc, target.parent, what, need)) from exc
    try:
        fill(tmp)
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise DiskError(disk_error_line(exc, target.parent, what, need)) from exc
        raise


def write_bytes(target: str | os.PathLike, data: bytes, what: str = "") -> None:
    """`replace_file` with bytes held in memory."""
    def fill(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
    replace_file(target, fill, what, need=len(data))


def remove_stale_temps(folder: str | os.PathLike, names: Callable[[str], bool]) -> list[str]:
    """Remove temporary files a killed or older writer left in `folder` (only names for which
    `names(name)` is true, never through a link); the removed names."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if e.name.endswith(TMP_SUFFIX) and names(e.name) and e.is_file(follow_symlinks=False):
            try:
                os.unlink(e.path)
                removed.append(e.name)
            except OSError:
                pass
    return removed
