"""Live folders: the library's folders are watched and the catalog and index kept current.

No Qt here: the application runs a LibraryWatcher in the background, `sba watch` in the
foreground. File events come from watchdog (inotify on Linux, FSEvents on macOS,
ReadDirectoryChangesW on Windows; Qt's QFileSystemWatcher does not recurse). Events only say
*that* something changed; the indexing job then does the work it always does (fingerprints
recognise moves, vanished files leave, new subfolders are found), so a watched library and a
re-indexed one are the same library.

Rules for real copying:
- a file is left alone until its size and mtime have not changed for `settle_s` (a copy in
  progress is deferred, not decoded half-written); a file that failed while partial is retried
  when it changes (the job re-reads any file whose size or mtime moved);
- a burst of events (a 2,000-photo import) becomes one job once the folder is quiet for `settle_s`,
  or every `max_wait_s` during a long import;
- temporary and hidden files are ignored (.part, .crdownload, ~, .DS_Store, dot-folders).
Folders that vanish (an unplugged disk) are offline: their photos are kept and come back with
the folder. Where events are unavailable (inotify's watch limit, network filesystems) the
folder is rescanned every `rescan_s` instead, and the status says so.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

REFIT_SLICE_S = 30.0  # seconds of refit re-encoding per watcher job
IGNORED_SUFFIXES = (".part", ".crdownload", ".download", ".partial", ".tmp", ".temp", ".swp", "~", ".xmp")
IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
# Filesystems whose changes made by other machines raise no local events.
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "ceph", "glusterfs",
              "fuse.rclone", "davfs", "fuse.gvfsd-fuse"}


def ignored(path: str, root: str) -> bool:
    """Temporary or hidden files, and anything inside a dot-folder, never start a job."""
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if any(p.startswith(".") and p not in (".", "..") for p in parts):
        return True
    name = parts[-1]
    return name in IGNORED_NAMES or name.lower().endswith(IGNORED_SUFFIXES) or name.startswith("~$")


def filesystem_type(path: str) -> str | None:
    """The mount's filesystem type of `path` on Linux (None elsewhere or when unknown)."""
    try:
        with open("/proc/mounts") as fh:
            mounts = [line.split()[1:3] for line in fh]
    except OSError:
        return None
    path = os.path.realpath(path)
    best, fstype = "", None
    for mnt, fs in mounts:
        mnt = mnt.replace("\\040", " ")
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
            best, fstype = mnt, fs
    return fstype


class ChangeTracker:
    """Touched paths and whether they have settled (pure logic; the clock and stat are injectable)."""

    def __init__(self, settle_s: float = 2.0, max_wait_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.settle_s, self.max_wait_s, self.clock = settle_s, max_wait_s, clock
        self._seen: dict[str, tuple[tuple | None, float]] = {}  # path -> (size, mtime) | None, last change
        self._first: float | None = None
        self._lock = threading.Lock()

    def touch(self, path: str) -> None:
        now = self.clock()
        with self._lock:
            self._seen[path] = (_stat(path), now)
            if self._first is None:
                self._first = now

    def __len__(self) -> int:
        return len(self._seen)

    def poll(self) -> tuple[bool, set[str], set[str]]:
        """(run a job now?, settled paths, paths still being written)."""
        now = self.clock()
        settled, busy = set(), set()
        with self._lock:
            if not self._seen:
                return False, settled, busy
            for path, (sig, since) in list(self._seen.items()):
                cur = _stat(path)
                if cur != sig:
                    self._seen[path] = (cur, now)
                    since = now
                (settled if now - since >= self.settle_s else busy).add(path)
            waited = now - (self._first or now)
        return (not busy) or waited >= self.max_wait_s, settled, busy

    def done(self, paths: set[str]) -> None:
        with self._lock:
            for p in paths:
                self._seen.pop(p, None)
            self._first = self.clock() if self._seen else None


def _stat(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # gone (deleted or moved away): nothing left to settle
    return (st.st_size, st.st_mtime_ns) if os.path.isfile(path) else ("dir",)


@dataclass
class WatchStatus:
    folders: dict[str, str] = field(default_factory=dict)   # folder -> events | rescans | offline
    paused: bool = False
    pending: int = 0
    last_run: float | None = None
    last_summary: str = ""
    proposals: int = 0   # inbox photos that got category proposals so far
    refit_left: int = 0  # photos a refit of the model still has to re-encode (a slice per job)

    def line(self) -> str:
        n = len(self.folders)
        if self.paused:
            return f"watching paused ({n} folder{'s' * (n != 1)})"
        modes = list(self.folders.values())
        parts = [f"watching {modes.count('events')} folder{'s' * (modes.count('events') != 1)}"]
        if modes.count("rescans"):
            parts.append(f"{modes.count('rescans')} rescanned periodically (no file events there)")
        if modes.count("offline"):
            parts.append(f"{modes.count('offline')} offline")
        if self.pending:
            parts.append(f"{self.pending} changes waiting to settle")
        if self.refit_left:
            parts.append(f"refitting the model for the grown library: {self.refit_left} photos to go "
                         "(searches use the current model meanwhile)")
        return ", ".join(parts)


class LibraryWatcher:
    """Watches every folder of a library (opened here, in this object's own thread)."""

    def __init__(self, home: str | None = None, settle_s: float = 2.0, max_wait_s: float = 30.0,
                 rescan_s: float = 300.0, tick_s: float = 0.25, use_events: bool = True,
                 on_status: Callable[[WatchStatus], None] | None = None,
                 on_report: Callable[[object], None] | None = None,
                 runner: Callable[[Callable[[], object], threading.Event], object] | None = None):
        """runner(job, stop) runs a job and returns its result: by default here, in the watcher's
        thread; the application passes its coordinator of writing jobs, so the watcher's jobs
        wait their turn behind the window's own (None back: stopped before it ran)."""
        self.home = home
        self.runner = runner or (lambda job, stop: job())
        self.tracker = ChangeTracker(settle_s, max_wait_s)
        self.rescan_s, self.tick_s, self.use_events = rescan_s, tick_s, use_events
        self.on_status = on_status or (lambda s: None)
        self.on_report = on_report or (lambda r: None)
        self.status = WatchStatus()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self._watches: dict[str, object] = {}
        self._last_scan: dict[str, float] = {}
        self._rescan_due = threading.Event()
        self._working = False
        self._job = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> "LibraryWatcher":
        self._thread = threading.Thread(target=self._run, name="library-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the job in progress has committed what it did."""
        self._stop.set()
        job = self._job
        if job is not None:
            job.cancel()  # the job stores its finished batches and saves the index on the way out
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._rescan_due.set()  # changes made while paused were not tracked: look once

    def rescan(self) -> None:
        self._rescan_due.set()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is pending and no job runs (for tests and `sba watch --once`)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not len(self.tracker) and not self._rescan_due.is_set() and not self._working:
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        from sba_desktop.paths import app_paths
        from sba_desktop.library.catalog import Catalog

        # Between jobs the watcher holds only the catalog (sqlite): the model and the vector index
        # are opened for a job and let go after it, so an idle application keeps one copy of them.
        catalog = Catalog(app_paths(self.home).ensure().catalog_file)
        try:
            self._rescan_due.set()  # catch up with what changed while nobody watched
            while not self._stop.is_set():
                self._sync_watches(catalog.folders())
                self.status.paused = self._paused.is_set()
                self.status.pending = len(self.tracker)
                if not self._paused.is_set():
                    self._maybe_run()
                self.on_status(self.status)
                self._stop.wait(self.tick_s)
        except BaseException as exc:  # reported, never a silent dead thread
            log.exception("the folder watcher stopped")
            self.error = exc
        finally:
            if self._observer is not None:
                self._observer.stop()
                self._observer.join(5)
            catalog.close()

    def _sync_watches(self, folders: list[str]) -> None:
        """Start/stop watching folders as they are added, forgotten, unplugged or come back."""
        for folder in list(self._watches):
            if folder not in folders or not os.path.isdir(folder):
                self._unwatch(folder)
        modes = self.status.folders
        for folder in folders:
            before = modes.get(folder)
            if not os.path.isdir(folder):
                if before != "offline":
                    log.info("folder offline (its photos are kept): %s", folder)
                modes[folder] = "offline"
                continue
            if before == "offline":
                log.info("folder is back: %s", folder)
                self._rescan_due.set()
            if folder in self._watches:
                modes[folder] = "events"
            elif before == "rescans":
                pass  # events were refused once for this folder: keep rescanning it
            else:
                modes[folder] = "events" if self._watch(folder) else "rescans"
            if modes[folder] == "rescans" and time.monotonic() - self._last_scan.get(folder, 0) >= self.rescan_s:
                self._rescan_due.set()
        for folder in list(modes):
            if folder not in folders:
                del modes[folder]

    def _watch(self, folder: str) -> bool:
        if not self.use_events or (filesystem_type(folder) or "") in NETWORK_FS:
            return False
        try:
            from watchdog.observers import Observer

            if self._observer is None:
                self._observer = Observer()
                self._observer.start()
            self._watches[folder] = self._observer.schedule(_Handler(self, folder), folder, recursive=True)
            return True
        except OSError as exc:  # e.g. ENOSPC: inotify's watch limit (fs.inotify.max_user_watches)
            log.warning("no file events for %s (%s): rescanning it every %.0f s instead",
                        folder, exc, self.rescan_s)
            return False

    def _unwatch(self, folder: str) -> None:
        watch = self._watches.pop(folder, None)
        if watch is not None and self._observer is not None:
            try:
                self._observer.unschedule(watch)
            except (KeyError, OSError):
                pass

    def _maybe_run(self) -> None:
        run, settled, busy = self.tracker.poll()
        if self._rescan_due.is_set():
            run = True
        if not run:
            return
        self._rescan_due.clear()
        from sba_desktop.jobs.index import IndexJob
        from sba_desktop.library.library import Library
        from sba_desktop.library.lock import LibraryBusyError

        self._working = True

        def job():
            lib = Library.open(self.home)
            try:
                # a refit takes turns: a slice of re-encoding per job, the rest in the next ones
                self._job = IndexJob(lib, defer=busy, refit_budget_s=REFIT_SLICE_S)
                try:
                    report = self._job.run()
                except LibraryBusyError:
                    log.info("library busy (another writer): the watcher retries shortly")
                    self._rescan_due.set()
                    return None
                finally:
                    self._job = None
                self._after_job(lib, report, settled)
                return report
            finally:
                lib.close()

        try:
            report = self.runner(job, self._stop)
            if report is not None:
                self.on_report(report)
        finally:
            self._working = False

    def _after_job(self, lib, report, settled: set[str]) -> None:
        now = time.monotonic()
        for folder in self.status.folders:
            self._last_scan[folder] = now
        self.tracker.done(settled)
        self.status.last_run = time.time()
        self.status.last_summary = report.changes()
        self.status.refit_left = report.refit_left
        if report.refit_left:
            self._rescan_due.set()  # continue the refit in the next job
        if report.new or report.changed:
            self.status.proposals += self._tag_inbox(lib, report)

    def _tag_inbox(self, lib, report) -> int:
        """Photos that arrived in an inbox folder get category proposals (shown in the review)."""
        from sba_desktop.errors import UserError
        from sba_desktop.library.discover import is_under
        from sba_desktop.jobs.tagging import inbox_folders, propose

        inboxes = inbox_folders(lib)
        if not inboxes or not report.indexed_ids or not lib.catalog.examples():
            return 0
        paths = lib.catalog.paths(report.indexed_ids)
        n = 0
        for inbox in inboxes:
            if any(is_under(p, inbox) for p in paths.values()):
                try:
                    n += len(propose(lib, inbox))
                except UserError as exc:
                    log.info("inbox %s not tagged: %s", inbox, exc)
        return n


class _Handler:
    """watchdog callbacks -> the tracker (dispatch is the only method watchdog calls)."""

    def __init__(self, watcher: LibraryWatcher, root: str):
        self.watcher, self.root = watcher, root

    def dispatch(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for path in (getattr(event, "src_path", None), getattr(event, "dest_path", None)):
            if path:
                path = os.fsdecode(path)
                if not ignored(path, self.root):
                    self.watcher.tracker.touch(path)
