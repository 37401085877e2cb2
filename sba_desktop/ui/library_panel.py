"""The library: folders, the indexing job (progress, pause, cancel), the files it skipped, and the
live-folder watcher that keeps it current while the application runs."""
from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QFileDialog, QInputDialog, QListWidget, QProgressBar, QWidget

from sba_desktop.text import display
from sba_desktop.ui.context import AppContext


PHASE_WORDS = {"scanning": "Looking for photos", "fitting": "Learning your library",
               "encoding": "Reading photos", "refitting": "Learning your library again",
               "re-encoding": "Reading photos for the new model", "looking inside": "Looking inside photos",
               "done": "Ready"}


def time_left(seconds: float | None) -> str:
    if not seconds or seconds <= 0:
        return ""
    if seconds < 60:
        return f" · about {max(5, int(round(seconds / 5.0)) * 5)} s left"
    if seconds < 3600:
        return f" · about {int(round(seconds / 60))} min left"
    return f" · about {seconds / 3600:.1f} h left"


def progress_words(p) -> str:
    """An indexing step in a photographer's words: found N photos, learning your library, reading, ready."""
    words = PHASE_WORDS.get(p.phase, p.phase.capitalize())
    if p.phase == "scanning":
        return f"{words}: found {p.done:,} so far…" if p.done else f"{words}…"
    if p.phase == "done":
        return f"Ready: {p.done:,} photos read"
    if p.total:
        return f"{words}: {p.done:,} of {p.total:,}{time_left(p.eta_s)}"
    return f"{words}…"


def _run_index(lib, folders, holder: dict, rebuild: bool, progress):
    from sba_desktop.jobs.index import IndexJob

    job = IndexJob(lib, folders, progress, rebuild=rebuild)
    holder["job"] = job  # the running job: what Pause and Cancel act on
    try:
        return job.run()
    finally:
        holder.pop("job", None)


def _changed(report) -> bool:
    """A watcher job changed what searches see (its report; None: it did not run)."""
    return report is not None and bool(report.changed_anything or report.encoded or report.refitted)


def _forget(lib, folder: str) -> int:
    return lib.forget_folder(folder)


class _WatchBridge(QObject):
    """The watcher's thread talks to the GUI through queued signals."""
    status = Signal(object)   # WatchStatus
    report = Signal(object)   # IndexReport of a watcher job


class LibraryController(QObject):
    watchStatus = Signal(str)            # one line: "watching 3 folders, 1 offline"
    indexingStarted = Signal()
    indexingProgress = Signal(object)    # indexer.Progress
    indexingFinished = Signal(object)    # IndexReport, or None when it failed

    def __init__(self, ctx: AppContext, window: QWidget, actions: dict):
        super().__init__(window)
        self.ctx = ctx
        self.window = window
        self.indexing = False
        self.index_holder: dict = {}
        self._queued_runs = 0
        self.last_report = None
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.skipped = QListWidget()
        self.skipped_dock = QDockWidget("Skipped files", window)
        self.skipped_dock.setObjectName("skippedDock")
        self.skipped_dock.setWidget(self.skipped)
        self.add_act = actions["add"](lambda: self.add_folder())
        self.remove_act = actions["remove"](self.remove_folder)
        self.index_act = actions["index"](lambda: self.start_index([]))
        self.pause_act = actions["pause"](self.toggle_pause)
        self.cancel_act = actions["cancel"](self.cancel_index)
        self.skipped_act = actions["skipped"](self.show_skipped)
        self.pause_act.setEnabled(False)
        self.cancel_act.setEnabled(False)
        self.watch_act = actions["watch"](self.toggle_watch)
        self.watch_act.setCheckable(True)
        self.inbox_act = actions["inbox"](self.choose_inbox)
        self.watcher = None
        self._bridge = _WatchBridge(self)
        self._bridge.status.connect(lambda st: self.watchStatus.emit(st.line()))
        self._bridge.report.connect(self._watch_report)
        ctx.libraryLoaded.connect(self._library_loaded)

    def _library_loaded(self, lib) -> None:
        self._fill_skipped()
        if self.watcher is None and lib.catalog.folders() and os.environ.get("SBA_DESKTOP_NO_WATCH") != "1":
            self.start_watching()

    # ------------------------------------------------------------------ live folders
    def start_watching(self) -> None:
        from sba_desktop.jobs.watch import LibraryWatcher

        jobs = self.ctx.jobs
        self.watcher = LibraryWatcher(self.ctx.home, on_status=self._bridge.status.emit,
                                      on_report=self._bridge.report.emit,
                                      runner=lambda job, stop: jobs.run_blocking(job, stop, _changed))
        jobs.watcher, jobs.watcher_on = self.watcher, self.watch_act.isChecked
        if jobs.busy:
            self.watcher.pause()  # it starts once the jobs already queued are done
        self.watcher.start()
        self.watch_act.setChecked(True)

    def toggle_watch(self) -> None:
        if self.watcher is None:
            self.start_watching()
        elif self.watch_act.isChecked():
            self.watcher.resume()
        else:
            self.watcher.pause()

    def _watch_report(self, report) -> None:
        if report.changed_anything:  # the coordinator has reopened the window's library
            self.ctx.message.emit(f"Folders changed: {report.changes()}")

    def choose_inbox(self) -> None:
        from sba_desktop.jobs.tagging import set_inbox

        folder = QFileDialog.getExistingDirectory(self.window, "Inbox: photos arriving here get categories")
        if folder:
            self.ctx.jobs.submit(set_inbox, lambda folders: self.ctx.message.emit(
                f"Inbox folders: {', '.join(display(f) for f in folders)}"), folder, own_library=False)

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    # ------------------------------------------------------------------ folders
    def add_folder(self, parent: QWidget | None = None) -> str | None:
        """Ask for a folder, add and index it; the folder chosen, or None."""
        folder = QFileDialog.getExistingDirectory(parent or self.window, "Add a photo folder")
        if folder:
            self.start_index([folder])
        return folder or None

    def remove_folder(self) -> None:
        lib = self.ctx.lib
        if lib is None or not lib.catalog.folders():
            return
        folders = lib.catalog.folders()
        names = [display(f) for f in folders]
        folder, ok = QInputDialog.getItem(self.window, "Remove folder",
                                          "Forget this folder (files stay on disk):", names, 0, False)
        if ok:
            self.forget(folders[names.index(folder)])

    def forget(self, folder: str) -> None:
        """The folder and its photos leave the library (queued behind any job writing it); files stay."""
        self.ctx.jobs.submit(_forget, lambda n: self.ctx.message.emit(f"{n} photos left the library"), folder)

    # ------------------------------------------------------------------ indexing
    def start_index(self, folders: list[str], rebuild: bool = False) -> None:
        """Index (and add) folders: queued behind any job already writing the library."""
        if self.indexing:
            self.ctx.message.emit("Indexing is already running; this folder is indexed when it ends")
        self.indexing = True
        self._queued_runs += 1
        self.progress.setValue(0)
        self.progress.show()
        self.pause_act.setEnabled(True)
        self.cancel_act.setEnabled(True)
        self.index_act.setEnabled(False)
        self.indexingStarted.emit()
        self.ctx.jobs.submit(_run_index, self._done, folders, self.index_holder, rebuild,
                             failed=self._failed, progress=self._progress)

    def _progress(self, p) -> None:
        if p.total:
            self.progress.setMaximum(p.total)
            self.progress.setValue(p.done)
        else:
            self.progress.setMaximum(0)
        self.progress.setToolTip(progress_words(p))
        self.ctx.message.emit(progress_words(p))
        self.indexingProgress.emit(p)

    def _finished_ui(self) -> None:
        self._queued_runs -= 1
        if self._queued_runs > 0:
            return  # another indexing run is queued: the controls stay
        self.indexing = False
        self.progress.hide()
        self.pause_act.setEnabled(False)
        self.pause_act.setText("Pause")
        self.cancel_act.setEnabled(False)
        self.index_act.setEnabled(True)

    def _done(self, report) -> None:
        self._finished_ui()
        self.last_report = report
        self.ctx.message.emit(report.summary())
        self.indexingFinished.emit(report)

    def _failed(self, message: str) -> None:
        self._finished_ui()
        self.indexingFinished.emit(None)
        self.ctx.failed.emit(message)

    def toggle_pause(self) -> None:
        job = self.index_holder.get("job")
        if job is None:
            return
        if job.paused:
            job.resume()
            self.pause_act.setText("Pause")
        else:
            job.pause()
            self.pause_act.setText("Resume")
            self.ctx.message.emit("Paused")

    def cancel_index(self) -> None:
        job = self.index_holder.get("job")
        if job is not None:
            job.cancel()

    # ------------------------------------------------------------------ skipped files
    def show_skipped(self) -> None:
        self._fill_skipped()
        self.skipped_dock.show()

    def _fill_skipped(self) -> None:
        if self.ctx.lib is None:
            return
        self.skipped.clear()
        for p, why in self.ctx.lib.catalog.skipped():
            self.skipped.addItem(f"{display(p)} — {why}")
        self.skipped_act.setText(f"Skipped files ({self.skipped.count()})")

    def dock(self) -> QDockWidget:
        self.window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.skipped_dock)
        self.skipped_dock.hide()
        return self.skipped_dock
