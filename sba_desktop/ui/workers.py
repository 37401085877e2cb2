"""Background work for the window: Qt's thread pool, results back through signals."""
from __future__ import annotations

import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from sba_desktop.errors import user_message


class WorkerSignals(QObject):
    finished = Signal(object)   # the function's return value
    failed = Signal(str)        # a plain-words message (the traceback goes to the log)
    progress = Signal(object)


class Worker(QRunnable):
    """Runs fn(*args, progress=emit?) off the GUI thread."""

    def __init__(self, fn: Callable[..., Any], *args, with_progress: bool = False, **kwargs):
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = WorkerSignals()
        if with_progress:
            self.kwargs["progress"] = self.signals.progress.emit
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # shown to the user in plain words, logged in full
            import logging

            logging.getLogger("sba_desktop.ui").error("background task failed:\n%s", traceback.format_exc())
            self._emit(self.signals.failed, user_message(exc))
            return
        self._emit(self.signals.finished, result)

    @staticmethod
    def _emit(signal, value) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the window closed while we worked: nobody to tell
            pass


# Signals of running workers stay referenced until their result was delivered: a lambda
# connected to a signal runs in the sender's context, and a deleted sender drops it.
_in_flight: set[WorkerSignals] = set()


def submit(worker: Worker, pool: QThreadPool | None = None) -> Worker:
    signals = worker.signals
    _in_flight.add(signals)
    # connected last, so it runs after the caller's own slots
    signals.finished.connect(lambda *_: _in_flight.discard(signals))
    signals.failed.connect(lambda *_: _in_flight.discard(signals))
    (pool or QThreadPool.globalInstance()).start(worker)
    return worker
