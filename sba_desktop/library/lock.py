"""One writer at a time: an advisory file lock next to the catalog."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LibraryBusyError(RuntimeError):
    """Another process is changing this library right now."""


class WriterLock:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = None

    def acquire(self) -> "WriterLock":
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LibraryBusyError(
                f"the library is being changed by {holder}; wait until it finishes "
                "(searching still works meanwhile)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"sba-desktop process {os.getpid()}")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
