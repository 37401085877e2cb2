"""The indexing job: scan folders, fit the model once, encode new photos, keep all consistent.

Plain Python (no Qt): progress goes to a callback, pause/cancel are events.
Crash safety: every batch of vectors is one SQLite transaction; the HNSW file
is a derived cache saved atomically and repaired from the catalog when the
library opens. Killed at any moment, the next run continues where it stopped.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from threadpoolctl import threadpool_limits

from sba_desktop.engine.runtime import load_runtime
from sba_desktop.engine.sba import DescriptorModel
from sba_desktop.engine.windows import WINDOW_SIDE, photo_windows
from sba_desktop.library.decode import fingerprint
from sba_desktop.library.discover import is_under, walk_photos
from sba_desktop.library.encoding import CHUNK, FIT_SAMPLE, Encoded, PhotoEncoder, Source, fit_model, fit_sample, vectors_from_maps
from sba_desktop.library.library import Library

log = logging.getLogger(__name__)

INDEX_SAVE_SECONDS = 30.0


@dataclass
class Progress:
    phase: str            # scanning | fitting | encoding | done
    done: int
    total: int
    current: str = ""
    rate: float = 0.0     # photos per second
    eta_s: float | None = None


@dataclass
class IndexReport:
    found: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    removed: int = 0
    encoded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    fitted: bool = False
    cancelled: bool = False
    seconds: float = 0.0
    offline: list[str] = field(default_factory=list)   # folders not reachable now: their photos kept
    indexed_ids: list[int] = field(default_factory=list)  # photos encoded by this run
    refit_encoded: int = 0      # photos re-encoded for the next model (a refit in the background)
    refit_left: int = 0         # photos the refit still has to re-encode (it continues next run)
    refitted: bool = False      # the next model took over in this run
    looked_inside: int = 0      # photos whose windows were made (looking inside photos)

    @property
    def changed_anything(self) -> bool:
        return bool(self.new or self.changed or self.moved or self.removed)

    def changes(self) -> str:
        """'3 new, 0 changed, 1 moved, 0 removed': what a scan found."""
        return f"{self.new} new, {self.changed} changed, {self.moved} moved, {self.removed} removed"

    def summary(self) -> str:
        """The one line every front-end shows for a finished run."""
        if self.cancelled:
            return f"Indexing cancelled: {self.encoded} photos encoded, the rest stays pending"
        return (f"{self.found} photos found: {self.changes()}; {self.encoded} encoded in {self.seconds:.1f}s"
                + (" (model fitted)" if self.fitted else "")
                + (f"; refit: {self.refit_encoded} re-encoded, {self.refit_left} to go (the current model "
                   "serves searches meanwhile)" if self.refit_left else "")
                + ("; the library's model was refitted on the whole library" if self.refitted else "")
                + (f"; looked inside {self.looked_inside} photos" if self.looked_inside else "")
                + (f"; {len(self.offline)} folder(s) offline" if self.offline else ""))

    def to_json(self, display: Callable[[str], str] = str) -> dict:
        return {"found": self.found, "new": self.new, "changed": self.changed, "moved": self.moved,
                "removed": self.removed, "encoded": self.encoded, "fitted": self.fitted,
                "cancelled": self.cancelled, "seconds": round(self.seconds, 2),
                "refit_encoded": self.refit_encoded, "refit_left": self.refit_left, "refitted": self.refitted,
                "looked_inside": self.looked_inside,
                "skipped": [{"path": display(p), "reason": why} for p, why in self.skipped],
                "problems": [{"path": display(p), "reason": why} for p, why in self.problems],
                "offline": [display(f) for f in self.offline]}


class Cancelled(Exception):
    pass


class IndexJob:
    def __init__(self, library: Library, folders: list[str] | None = None,
                 progress: Callable[[Progress], None] | None = None, workers: int | None = None,
                 rebuild: bool = False, fit_sample: int = FIT_SAMPLE, defer: set[str] | None = None,
                 refit_budget_s: float | None = None):
        """refit_budget_s: at most this long re-encoding for a refit, and as long looking inside
        photos, in one run (the watcher's jobs take turns with the window's); None: until it is done."""
        self.lib = library
        self.refit_budget_s = refit_budget_s
        self.folders = folders
        self.progress = progress or (lambda p: None)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.rebuild = rebuild
        self.fit_sample = fit_sample
        self.defer = defer or set()  # files still being written: neither added nor removed this run
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.report = IndexReport()

    # ------------------------------------------------------------------ control
    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _checkpoint(self) -> None:
        self._running.wait()
        if self._cancel.is_set():
            raise Cancelled()

    # ------------------------------------------------------------------ run
    def run(self) -> IndexReport:
        t0 = time.perf_counter()
        with self.lib.writer_lock():
            try:
                for f in self.folders or []:
                    self.lib.add_folder(f)
                self._scan()
                self._fit_if_needed()
                self._encode_pending()
                self._refit_if_due()
                self._look_inside()
            except Cancelled:
                self.report.cancelled = True
            finally:
                self.lib.save_index()
        self.report.seconds = time.perf_counter() - t0
        self.report.skipped = self.lib.catalog.skipped()
        self.progress(Progress("done", self.report.encoded, self.report.encoded))
        return self.report

    # ------------------------------------------------------------------ scan
    def _scan(self) -> None:
        cat = self.lib.catalog
        for folder in cat.folders():
            self._checkpoint()
            self.progress(Progress("scanning", 0, 0, folder))
            known = cat.photos_under(folder)
            if not os.path.isdir(folder):
                # an unplugged disk or a share that is down: its photos stay (shown as offline)
                self.report.offline.append(folder)
                continue
            found = {}
            problems: list[tuple[str, str]] = []
            for ff in walk_photos(folder, problems):
                if ff.path in self.defer:
                    continue
                found[ff.path] = ff
                if len(found) % 500 == 0:
                    self.progress(Progress("scanning", len(found), 0, ff.path))
                    self._checkpoint()
            self.report.problems += problems
            if not found and known:
                # an empty mount point where a disk was: offline, not "every photo deleted"
                self.report.offline.append(folder)
                continue
            self.report.found += len(found)
            unreadable = [p for p, _ in problems]  # a folder we could not list loses nothing
            vanished = {p: row for p, row in known.items()
                        if p not in found and p not in self.defer
                        and not any(p == u or is_under(p, u) for u in unreadable)}
            by_fp: dict[str, list] = {}
            for row in vanished.values():
                if row.fingerprint:
                    by_fp.setdefault(row.fingerprint, []).append(row)
            with cat.transaction():
                for path, ff in found.items():
                    row = known.get(path)
                    if row is not None and row.size == ff.size and row.mtime_ns == ff.mtime_ns:
                        continue
                    try:
                        fp = fingerprint(path, ff.size)
                    except OSError:
                        fp = None
                    if row is None and fp and by_fp.get(fp):
                        moved = by_fp[fp].pop()
                        cat.move_photo(moved.id, path, ff.size, ff.mtime_ns)
                        del vanished[moved.path]
                        self.report.moved += 1
                        continue
                    if row is not None and fp and row.fingerprint == fp and row.state != "pending":
                        cat.move_photo(row.id, path, ff.size, ff.mtime_ns)  # touched, same content
                        continue
                    pid = cat.upsert_pending(path, ff.size, ff.mtime_ns, fp)
                    if row is None:
                        self.report.new += 1
                    else:
                        self.report.changed += 1
                        self.lib.unindex([pid])
                gone = [row.id for row in vanished.values()]
                cat.delete_photos(gone)
            self.lib.unindex(gone)
            self.report.removed += len(gone)

    # ------------------------------------------------------------------ fitting
    def _sources(self, ids: list[int]) -> Iterator[Source]:
        paths = self.lib.catalog.paths(ids)
        for pid in ids:
            if pid in paths:
                yield Source(pid, paths[pid])

    def _ticker(self, phase: str, total: int):
        """on_batch callback of the encoder: progress (rate over the last batches) and the
        cancel/pause checkpoint."""
        times: deque = deque(maxlen=50)
        state = {"n": 0, "t": time.perf_counter()}

        def tick(k: int) -> None:
            self._checkpoint()
            now = time.perf_counter()
            times.append((k, now - state["t"]))
            state["t"] = now
            state["n"] += k
            rate = sum(c for c, _ in times) / max(sum(t for _, t in times), 1e-9)
            self.progress(Progress(phase, state["n"], total, "", rate, (total - state["n"]) / max(rate, 1e-9)))
        return tick

    def _fit_if_needed(self) -> None:
        """The library's first model, fitted on its first photos (later ones: _refit_if_due)."""
        if self.lib.model is not None:
            return
        fitted = self._fit_new_model("fitting")
        if fitted is None:
            return
        model, sample = fitted
        self.lib.set_model(model)
        self.report.fitted = True
        for i in range(0, len(sample), CHUNK):
            self._store(sample[i:i + CHUNK])

    def _fit_new_model(self, phase: str) -> tuple[DescriptorModel, list[Encoded]] | None:
        """A model fitted on the library's seeded sample (decoded through the pipeline), and the
        sample's vectors from its kept maps: the arithmetic PhotoEncoder does after a forward."""
        usable = self.lib.catalog.usable_ids()
        if not usable:
            return None
        s = self.lib.settings()
        sample = fit_sample(usable, self.fit_sample)
        backbone = load_runtime(s.backbone)
        encoder = PhotoEncoder(backbone, s.image_size, workers=self.workers)
        maps: list[Encoded] = []
        failed: list[Encoded] = []
        for chunk in encoder.encode(self._sources(sample), self._ticker(phase, len(sample))):
            for e in chunk:
                (failed if e.error else maps).append(e)
        if failed:
            self.lib.store_results(failed)
        if not maps:
            return None
        model = fit_model([e.map for e in maps], backbone, s.image_size, s.n_detectors, s.dims, s.global_weight)
        for i in range(0, len(maps), CHUNK):
            part = maps[i:i + CHUNK]
            vecs, peaks = vectors_from_maps(model, [e.map for e in part])
            for e, v, p in zip(part, vecs, peaks):
                e.vector, e.peaks, e.map = v, p, None
        return model, maps

    def _refit_if_due(self) -> None:
        """Refit in the background: the next model is fitted on a fresh sample of the whole
        library and every photo re-encoded into the catalog's staging table while the active
        model keeps serving searches; then one switch. Killed or out of budget, the next run
        continues where this one stopped (staged vectors are committed chunk by chunk)."""
        lib = self.lib
        if lib.model is None:
            return
        staged = lib.staged_model()
        if staged is None:
            if not (self.rebuild or lib.refit_due()):
                return
            fitted = self._fit_new_model("refitting")
            if fitted is None:
                return
            staged, sample = fitted
            lib.begin_refit(staged)
            for i in range(0, len(sample), CHUNK):
                lib.stage_results(staged, sample[i:i + CHUNK])
            self.report.refit_encoded += len(sample)
        todo = lib.catalog.unstaged_ids(staged.model_id)
        if todo:
            t0 = time.monotonic()
            for chunk in self._encoded(staged, todo, "re-encoding"):
                lib.stage_results(staged, chunk)
                self.report.refit_encoded += len(chunk)
                if self.refit_budget_s is not None and time.monotonic() - t0 > self.refit_budget_s:
                    break
            todo = lib.catalog.unstaged_ids(staged.model_id)
        self.report.refit_left = len(todo)
        if not todo:
            lib.switch_to_staged(staged)
            self.report.refitted = True

    # ------------------------------------------------------------------ looking inside
    def _look_inside(self) -> None:
        """When the library looks inside its photos: the windows of every indexed photo that has
        none of the active model yet (engine/windows.py), each photo read once more at
        WINDOW_SIDE px through the same pipeline (maps only), committed chunk by chunk."""
        lib, model = self.lib, self.lib.model
        if model is None:
            return
        if not lib.settings().inside:
            lib.inside.forget_all()
            return
        lib.inside.forget_other_models(model.model_id)
        todo = lib.inside.missing(model.model_id)
        if not todo:
            return
        encoder = PhotoEncoder(load_runtime(model.backbone), WINDOW_SIDE, workers=self.workers)
        t0 = time.monotonic()
        with threadpool_limits(limits=1, user_api="blas"):
            for chunk in encoder.encode(self._sources(todo), self._ticker("looking inside", len(todo))):
                read = [e for e in chunk if e.error is None]
                for e in chunk:
                    if e.error is not None:  # readable at the search's size, not now: changed or gone
                        log.warning("no windows for photo %s: %s", e.key, e.error)
                windows = photo_windows(model, [e.map for e in read])
                lib.inside.store(model.model_id, [(int(e.key), w) for e, w in zip(read, windows)])
                self.report.looked_inside += len(read)
                if self.refit_budget_s is not None and time.monotonic() - t0 > self.refit_budget_s:
                    break  # the watcher's turn is up: its next run goes on

    # ------------------------------------------------------------------ encoding
    def _store(self, results: list[Encoded]) -> None:
        self.lib.store_results(results)
        done = [int(e.key) for e in results if e.error is None]
        self.report.indexed_ids += done
        self.report.encoded += len(done)

    def _pending_work(self) -> tuple[DescriptorModel, list[int]] | None:
        """The model and the photos still to encode, or None when there is nothing to do."""
        model = self.lib.model
        pending = self.lib.catalog.pending_ids() if model is not None else []
        return (model, pending) if pending else None

    def _encode_pending(self) -> None:
        work = self._pending_work()
        if work is None:
            return
        model, pending = work
        last_save = time.monotonic()
        for chunk in self._encoded(model, pending, "encoding"):
            self._store(chunk)
            if time.monotonic() - last_save > INDEX_SAVE_SECONDS:
                self.lib.save_index()
                last_save = time.monotonic()

    def _encoded(self, model: DescriptorModel, ids: list[int], phase: str) -> Iterator[list[Encoded]]:
        """Chunks of photos encoded with a fitted model (the active one, or the next one of a refit)."""
        encoder = PhotoEncoder(load_runtime(model.backbone), model.image_size, model, workers=self.workers)
        # numpy's BLAS pool would fight the inference pool for the same cores (measured 1.6x
        # slower forwards on 2 cores): the aggregation between forwards runs on one thread.
        with threadpool_limits(limits=1, user_api="blas"):
            yield from encoder.encode(self._sources(ids), self._ticker(phase, len(ids)))
