"""What every panel shares: the library (opened off the GUI thread), the thread pool, thumbnails,
and one way to run library work in the background and report back."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from sba_desktop.paths import AppPaths
from sba_desktop.ui.preferences import Preferences, write_preferences
from sba_desktop.ui.results import ThumbnailLoader
from sba_desktop.ui.tasks import Worker, submit


def _open_library(home):
    from sba_desktop.library.library import Library

    lib = Library.open(home)
    if lib.model is not None:
        lib.photo_encoder()  # loads the network now, not at the first query
    return lib


class AppContext(QObject):
    libraryLoaded = Signal(object)   # a freshly opened Library
    message = Signal(str)            # one line for the status bar
    failed = Signal(str)             # a plain-words error
    prefsChanged = Signal(object)    # Preferences: every panel applies what concerns it

    def __init__(self, home: str | None, paths: AppPaths, parent=None):
        super().__init__(parent)
        self.home = home
        self.paths = paths
        self.lib = None
        self.pool = QThreadPool.globalInstance()
        self.thumbs = ThumbnailLoader(paths.cache, self)
        from sba_desktop.ui.tasks import WriteJobs

        self.jobs = WriteJobs(self, self)  # every job that writes the library, one at a time
        self.prefs = Preferences()
        # a dragged slider changes the size many times a second: stored once it rests
        self._save_prefs = QTimer(self, singleShot=True, interval=400)
        self._save_prefs.timeout.connect(self._store_prefs)
        self._unsaved = False

    # ------------------------------------------------------------------ preferences
    def set_prefs(self, prefs: Preferences | None = None, **changes) -> None:
        """Apply new preferences at once (prefsChanged) and store them in the library soon after."""
        prefs = replace(prefs or self.prefs, **changes)
        if prefs == self.prefs:
            return
        self.prefs = prefs
        self.prefsChanged.emit(prefs)
        self._unsaved = True
        self._save_prefs.start()

    def show_prefs(self, prefs: Preferences) -> None:
        """Preferences read from the library (the window opening): applied, not written back."""
        self.prefs = prefs
        self.prefsChanged.emit(prefs)

    def _store_prefs(self) -> None:
        if self.lib is None or not self.lib.writable:
            return  # still loading: stored once it is open (see _loaded); read-only: kept for this session
        self._unsaved = False
        self.jobs.submit(write_preferences, lambda _p: None, self.prefs, own_library=False, pause_watcher=False,
                         failed=lambda m: logging.getLogger("sba_desktop.ui").warning("preferences: %s", m))

    def flush_prefs(self) -> None:
        """The window closes: preferences not stored yet are stored now, on this thread."""
        if self._unsaved and self.lib is not None and self.lib.writable:
            self._save_prefs.stop()
            self._unsaved = False
            write_preferences(self.lib, self.prefs)

    def load_library(self) -> None:
        self.run(_open_library, self._loaded, self.home)

    def _loaded(self, lib) -> None:
        # the previous library is not closed here: a background task may still hold it
        self.lib = lib
        self.libraryLoaded.emit(lib)
        if self._unsaved:
            self._save_prefs.start()  # changed while it loaded: stored on this library
        for line in lib.repairs:  # a damaged file found and rebuilt as the library opened
            self.message.emit(f"Repaired: {line}")

    def run(self, fn: Callable[..., Any], done: Callable[[Any], None], *args,
            failed: Callable[[str], None] | None = None, progress: Callable[[Any], None] | None = None) -> Worker:
        """fn(*args) off the GUI thread; done(result) or failed(message) back on it."""
        w = Worker(fn, *args, with_progress=progress is not None)
        if progress is not None:
            w.signals.progress.connect(progress)
        w.signals.finished.connect(done)
        w.signals.failed.connect(failed or self.failed.emit)
        return submit(w, self.pool)

    def run_on_library(self, fn: Callable[..., Any], done: Callable[[Any], None], *args) -> Worker | None:
        """fn(lib, *args) once the library is open; says so when it is still loading."""
        if self.lib is None:
            self.message.emit("The library is still loading…")
            return None
        return self.run(fn, done, self.lib, *args)
