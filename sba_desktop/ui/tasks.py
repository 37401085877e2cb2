"""Background work for the window: Qt's thread pool for reads (Worker, submit), and one queue
for every job that writes the library (WriteJobs).

Indexing, rebuilding, the indexing that auto-tagging starts, the watcher's jobs and label changes
run one at a time, in the order asked, so no two writers meet (no "library busy" between the
window's own jobs). Jobs that change the vectors (`own_library=True`) run on a library opened for
them: the window's library, which every search reads, is never changed under a search; once such a
job is done the window's library is reopened (one swap, on the GUI thread). The watcher pauses
while a job of the window runs, and hands its own jobs to this queue (`run_blocking`).
"""
from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from sba_desktop.errors import SbaError, user_message


def _child_main(out, home, fn: Callable, args: tuple) -> None:
    """In a process of its own: fn(lib, *args, progress=) on a library opened for it; what it says
    and what it returns go back through `out`."""
    from sba_desktop.library.library import Library
    from sba_desktop.logs import setup_logging
    from sba_desktop.paths import app_paths

    try:
        setup_logging(app_paths(home))  # the child's troubles go into the window's log file
        lib = Library.open(home)
        try:
            result = fn(lib, *args, progress=lambda value: out.put(("progress", value)))
        finally:
            lib.close()
        out.put(("done", result))
    except Exception as exc:  # one plain line for the window; the details into the log
        logging.getLogger("sba_desktop.ui").error("background process failed:\n%s", traceback.format_exc())
        out.put(("failed", user_message(exc)))


def _in_own_process(home, fn: Callable, *args, progress=None):
    """Like _on_own_library, in a fresh Python process: what the job imports and allocates (the
    look-alike grouping imports scikit-learn: 100-160 MB a process never gives back) goes when it
    ends. fn must be a module-level function; its progress values and result are pickled."""
    import multiprocessing
    import queue

    mp = multiprocessing.get_context("spawn")  # never fork a process running Qt's threads
    out = mp.Queue()
    child = mp.Process(target=_child_main, args=(out, home, fn, args), daemon=True)
    child.start()
    try:
        while True:
            try:
                kind, value = out.get(timeout=0.5)
            except queue.Empty:
                if child.is_alive():
                    continue
                try:  # it may have said its last word just before it ended
                    kind, value = out.get(timeout=1.0)
                except queue.Empty:
                    raise SbaError("the background process stopped before it finished "
                                   f"(exit code {child.exitcode})") from None
            if kind == "progress":
                if progress is not None:
                    progress(value)
            elif kind == "done":
                return value
            else:
                raise SbaError(value)  # already the one plain line
    finally:
        child.join(10)


def _on_own_library(home, fn: Callable, *args, progress=None):
    from sba_desktop.library.library import Library

    lib = Library.open(home)
    try:
        return fn(lib, *args, progress=progress) if progress is not None else fn(lib, *args)
    finally:
        lib.close()


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple
    done: Callable[[Any], None]
    failed: Callable[[str], None] | None = None
    progress: Callable[[Any], None] | None = None
    library: str = "own"         # own: changes vectors (its own Library, then the window's is reopened);
                                 # process: the same in a process of its own;
                                 # window: changes labels only; none: brings its own (the watcher's jobs)
    pause_watcher: bool = True
    reload_if: Callable[[Any], bool] | None = None  # "none" jobs: reopen the window's library after?
    cancelled: bool = False      # given up before it started (the watcher is stopping)


class WriteJobs(QObject):
    _fromThread = Signal(object)   # a job asked for by another thread (the watcher), queued to the GUI

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.watcher = None            # set by the library panel when it starts watching
        self.watcher_on = lambda: True  # whether the user wants the watcher running
        self._queue: deque[_Job] = deque()
        self._running: _Job | None = None
        self._paused_watcher = False
        self._fromThread.connect(self._enqueue)

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    def submit(self, fn: Callable[..., Any], done: Callable[[Any], None], *args,
               failed: Callable[[str], None] | None = None, progress: Callable[[Any], None] | None = None,
               own_library: bool = True, pause_watcher: bool = True, own_process: bool = False) -> None:
        """fn(lib, *args[, progress=]) once the jobs before it are done; done(result) or
        failed(message) on the GUI thread. own_library=False runs it on the window's library
        (jobs that only change labels: no reload needed); own_process=True on its own library in
        a process of its own (fn module-level, always given progress=; not in a frozen bundle,
        which cannot start itself as a plain Python)."""
        where = ("process" if own_process and not getattr(sys, "frozen", False) else "own") if own_library \
            else "window"
        self._enqueue(_Job(fn, args, done, failed, progress, where, pause_watcher))

    def run_blocking(self, fn: Callable[[], Any], stop: threading.Event | None = None,
                     reload_if: Callable[[Any], bool] = lambda result: True) -> Any:
        """For another thread (the watcher): run fn() as the queue's next job and wait for it.
        Returns None when `stop` is set before the job started (the application is closing).
        The window's library is reopened after it when reload_if(result)."""
        finished = threading.Event()
        box: dict = {}

        def job():
            box["started"] = True
            try:
                box["result"] = fn()
            except BaseException as exc:
                box["error"] = exc
                raise
            finally:
                finished.set()  # from the worker itself: the GUI thread may be busy closing the window
            return box["result"]

        item = _Job(job, (), lambda _: None, lambda _: None, None, library="none", pause_watcher=False,
                    reload_if=reload_if)
        self._fromThread.emit(item)
        while not finished.wait(0.2):
            if stop is not None and stop.is_set() and not box.get("started"):
                item.cancelled = True
                return None
        if "error" in box:
            raise box["error"]
        return box.get("result")

    # ------------------------------------------------------------------ the queue (GUI thread)
    def _enqueue(self, job: _Job) -> None:
        self._queue.append(job)
        self._next()

    def _next(self) -> None:
        if self._running is not None:
            return
        while self._queue and self._queue[0].cancelled:
            self._queue.popleft()
        if not self._queue:
            if self._paused_watcher and self.watcher is not None and self.watcher_on():
                self.watcher.resume()  # it looks once for what changed while it waited
            self._paused_watcher = False
            return
        job = self._running = self._queue.popleft()
        if job.pause_watcher and self.watcher is not None:
            self.watcher.pause()   # one writer at a time: the watcher waits for this job
            self._paused_watcher = True
        done, failed = (lambda r: self._finished(job, r)), (lambda m: self._failed(job, m))
        if job.library in ("own", "process"):
            self.ctx.run(_on_own_library if job.library == "own" else _in_own_process, done, self.ctx.home,
                         job.fn, *job.args, failed=failed, progress=job.progress)
        elif job.library == "none":
            self.ctx.run(job.fn, done, *job.args, failed=failed, progress=job.progress)
        elif self.ctx.lib is None:
            self._failed(job, "The library is still loading…")
        else:
            self.ctx.run(job.fn, done, self.ctx.lib, *job.args, failed=failed, progress=job.progress)

    def _finished(self, job: _Job, result) -> None:
        self._running = None
        if job.library in ("own", "process") or job.library == "none" and job.reload_if(result):
            self.ctx.load_library()  # the window's library now holds what the job stored
        job.done(result)
        self._next()

    def _failed(self, job: _Job, message: str) -> None:
        self._running = None
        (job.failed or self.ctx.failed.emit)(message)
        self._next()


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
        fn, args, kwargs = self.fn, self.args, self.kwargs
        # a finished runnable can outlive its run (seen: the one that checked the detector names
        # kept a reopened library alive); it lets go of its function and arguments at once
        self.fn, self.args, self.kwargs = None, (), {}
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # shown to the user in plain words, logged in full
            logging.getLogger("sba_desktop.ui").error("background task failed:\n%s", traceback.format_exc())
            self._emit(self.signals.failed, user_message(exc))
            return
        finally:
            del fn, args, kwargs
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

    def delivered(*_) -> None:
        # The slots hold their closures (an explanation's page, a library) and this one holds
        # `signals`: a cycle through Qt that Python's collector cannot see. Deleting the QObject
        # drops its connections, so the closures and the result go (they leaked one per task).
        _in_flight.discard(signals)
        signals.deleteLater()
    _in_flight.add(signals)
    # connected last, so it runs after the caller's own slots
    signals.finished.connect(delivered)
    signals.failed.connect(delivered)
    (pool or QThreadPool.globalInstance()).start(worker)
    return worker
