"""One writer at a time: an advisory file lock next to the catalog, on every platform.

POSIX: flock on the whole file. Windows: msvcrt locks one byte far past the end of the file
(Windows locks are mandatory, so locking the holder's line would stop others from reading who
holds it). Either way the system drops the lock when the holder dies, even when it is killed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO
from sba_desktop.errors import SbaError

# Where the Windows lock sits: past any text the holder writes into the file.
_WINDOWS_LOCK_OFFSET = 1 << 20


class LibraryBusyError(SbaError):
    """Another process is changing this library right now."""
    prefix = "The library is busy"


def _try_lock(fh: IO[str]) -> bool:
    """Take the lock without waiting; False when another process holds it."""
    if os.name == "nt":
        import msvcrt  # Windows only: read here, never run on this project's CI (Linux)
        fh.seek(_WINDOWS_LOCK_OFFSET)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        finally:
            fh.seek(0)
        return True
    import fcntl
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fh: IO[str]) -> None:
    if os.name == "nt":
        import msvcrt
        fh.seek(_WINDOWS_LOCK_OFFSET)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl
    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class WriterLock:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def acquire(self) -> "WriterLock":
        fh = open(self.path, "a+", encoding="utf-8")
        if not _try_lock(fh):
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LibraryBusyError(
                f"the library is being changed by {holder}; wait until it finishes "
                "(searching still works meanwhile)")
        fh.seek(0)
        fh.truncate()
        fh.write(f"sba-desktop process {os.getpid()}")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            _unlock(self._fh)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
