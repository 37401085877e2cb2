"""The indexing job: scan folders, fit the model once, encode new photos, keep all consistent.

Plain Python (no Qt): progress goes to a callback, pause/cancel are events.
Crash safety: every batch of vectors is one SQLite transaction; the HNSW file
is a derived cache saved atomically and repaired from the catalog when the
library opens. Killed at any moment, the next run continues where it stopped.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from ..engine.runtime import load_runtime
from ..engine.sba import DescriptorModel, DescriptorSpec, ReductionSpec
from .decode import DecodeError, decode, fingerprint
from .discover import is_under, walk_photos
from .library import Library

log = logging.getLogger(__name__)

FIT_SAMPLE = 1000          # photos the detectors and PCA are learned on
AUTO_REFIT_LIMIT = 256     # while the model was fitted on fewer photos, it is refitted as the library doubles
BATCH = 64                 # photos per catalog transaction
FORWARD_BATCH = 4          # photos of one shape per inference run (best in sba bench's batch sweep)
MAX_BUFFERED = 32          # decoded photos waiting for a full batch, at most (memory bound)
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


class Cancelled(Exception):
    pass


class IndexJob:
    def __init__(self, library: Library, folders: list[str] | None = None,
                 progress: Callable[[Progress], None] | None = None, workers: int | None = None,
                 rebuild: bool = False, fit_sample: int = FIT_SAMPLE, defer: set[str] | None = None):
        self.lib = library
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
                        if self.lib.index is not None:
                            self.lib.index.remove([pid])
                gone = [row.id for row in vanished.values()]
                cat.delete_photos(gone)
            if self.lib.index is not None and gone:
                self.lib.index.remove(gone)
            self.report.removed += len(gone)

    # ------------------------------------------------------------------ fitting
    def _needs_fit(self, usable: int) -> bool:
        m = self.lib.model
        if self.rebuild or m is None:
            return usable > 0
        return m.fitted_on < AUTO_REFIT_LIMIT and usable >= 2 * m.fitted_on

    def _fit_if_needed(self) -> None:
        cat = self.lib.catalog
        usable = cat.usable_ids()
        if not self._needs_fit(len(usable)):
            return
        s = self.lib.settings()
        sample = usable if len(usable) <= self.fit_sample else sorted(
            random.Random(0).sample(usable, self.fit_sample))
        backbone = load_runtime(s.backbone)
        maps: list[np.ndarray] = []
        kept: list[tuple[int, int, int]] = []
        skipped: list[tuple[int, str]] = []
        n = 0
        for batch, bad in self._forward_batches(sample, s.image_size, backbone):
            self._checkpoint()
            skipped += bad
            if batch:
                fmaps = self._forward(backbone, batch)
                maps += list(fmaps.astype(np.float16))  # half the memory; maps are in [0, 6]
                kept += [(pid, w, h) for pid, _, w, h, _ in batch]
            n += len(batch) + len(bad)
            self.progress(Progress("fitting", n, len(sample), batch[-1][4] if batch else ""))
        if skipped:
            cat.store_results([], skipped, "")
        if not maps:
            return
        model = DescriptorModel.fit(maps, backbone.name, backbone.version, s.image_size,
                                    DescriptorSpec("sba", s.n_detectors), ReductionSpec(s.dims))
        self.lib.set_model(model)
        self.report.fitted = True
        vecs = model.encode_maps(maps)
        peaks = [model.detector_peaks(np.asarray(m, np.float32)[None])[0] for m in maps]
        del maps
        self._store([(pid, v, w, h, pk) for (pid, w, h), v, pk in zip(kept, vecs, peaks)], [], reduced=True)
        self.report.encoded += len(kept)

    # ------------------------------------------------------------------ encoding
    def _decoded(self, ids: list[int], image_size: int, backbone) -> Iterator[tuple[int, object]]:
        """Decode + preprocess in worker threads, a bounded window ahead, in order.

        Pillow and numpy release the GIL while decoding and resizing, so threads overlap with
        the inference (processes measured no faster in sba bench, and would copy every array).
        One decoder per core: on 2 cores one or two decoders beside the inference measured the
        same within the machine's noise (88-105 photos/s for 640x480 photos), and two were
        faster for 12-MP JPEGs. A file that makes its worker fail costs that file (skipped with
        the reason), never the job."""
        paths = self.lib.catalog.paths(ids)

        def work(pid: int):
            path = paths.get(pid)
            if path is None:
                return pid, "vanished from the catalog"
            try:
                photo = decode(path, image_size)
                x = backbone.preprocess(photo.rgb, image_size)
                return pid, (x, photo.width, photo.height, path)
            except DecodeError as exc:
                return pid, str(exc)
            except BaseException as exc:  # never let one photo stop the job (MemoryError included)
                log.exception("unexpected error decoding %s", path)
                return pid, f"unexpected error: {exc.__class__.__name__}: {exc}"

        with ThreadPoolExecutor(self.workers, thread_name_prefix="decode") as pool:
            window: deque = deque()
            it = iter(ids)
            for pid in it:
                window.append(pool.submit(work, pid))
                if len(window) >= self.workers * 8:
                    break
            try:
                while window:
                    yield window.popleft().result()
                    nxt = next(it, None)
                    if nxt is not None:
                        window.append(pool.submit(work, nxt))
            finally:
                for f in window:
                    f.cancel()

    @staticmethod
    def _forward(backbone, batch: list[tuple]) -> np.ndarray:
        return backbone.forward(np.stack([x for _, x, *_ in batch]))

    def _forward_batches(self, ids: list[int], image_size: int, backbone
                         ) -> Iterator[tuple[list[tuple], list[tuple[int, str]]]]:
        """Decoded photos grouped by their resized shape into batches of FORWARD_BATCH.

        A library has a handful of aspect ratios, so most batches fill; a shape that waits
        too long (more than MAX_BUFFERED photos held) and the rest at the end go as partial
        batches. Yields (batch of (pid, x, w, h, path), skipped [(pid, reason)])."""
        buckets: dict[tuple, list[tuple]] = {}
        held = 0
        for pid, item in self._decoded(ids, image_size, backbone):
            if isinstance(item, str):
                yield [], [(pid, item)]
                continue
            x, w, h, path = item
            bucket = buckets.setdefault(x.shape, [])
            bucket.append((pid, x, w, h, path))
            held += 1
            if len(bucket) >= FORWARD_BATCH:
                held -= len(bucket)
                yield buckets.pop(x.shape), []
            elif held > MAX_BUFFERED:
                fullest = max(buckets, key=lambda k: len(buckets[k]))
                held -= len(buckets[fullest])
                yield buckets.pop(fullest), []
        for bucket in buckets.values():
            yield bucket, []

    def _store(self, indexed: list, skipped: list, reduced: bool = False) -> None:
        """Store a batch; raw descriptors are reduced here, all at once (one read of the PCA basis)."""
        model = self.lib.model
        assert model is not None
        if indexed and not reduced:
            vecs = model.reduce(np.stack([r for _, r, *_ in indexed]))
            indexed = [(pid, v, *rest) for (pid, _, *rest), v in zip(indexed, vecs)]
        self.lib.catalog.store_results(indexed, skipped, model.model_id)
        self.report.indexed_ids += [int(i) for i, *_ in indexed]
        if indexed and self.lib.index is not None:
            self.lib.index.add(np.array([i for i, *_ in indexed], np.int64),
                               np.stack([v for _, v, *_ in indexed]))

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
        backbone = load_runtime(model.backbone)
        if backbone.version != model.backbone_version:
            raise RuntimeError(f"backbone weights changed ({backbone.version} vs {model.backbone_version}): rebuild")
        indexed, skipped = [], []
        last_save = time.monotonic()
        times: deque = deque(maxlen=50)
        t_prev = time.perf_counter()
        n = 0
        # numpy's BLAS pool would fight the inference pool for the same cores (measured 1.6x
        # slower forwards on 2 cores): the aggregation between forwards runs on one thread.
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                for batch, bad in self._forward_batches(pending, model.image_size, backbone):
                    self._checkpoint()
                    skipped += bad
                    if batch:
                        fmaps = self._forward(backbone, batch)
                        raw, peaks = model.raw_vectors(fmaps), model.detector_peaks(fmaps)
                        indexed += [(pid, r, w, h, pk) for (pid, _, w, h, _), r, pk in zip(batch, raw, peaks)]
                    now = time.perf_counter()
                    k = len(batch) + len(bad)
                    times.append((k, now - t_prev))
                    t_prev = now
                    n += k
                    rate = sum(c for c, _ in times) / max(sum(t for _, t in times), 1e-9)
                    self.progress(Progress("encoding", n, len(pending), batch[-1][4] if batch else "",
                                           rate, (len(pending) - n) / max(rate, 1e-9)))
                    if len(indexed) + len(skipped) >= BATCH:
                        self._store(indexed, skipped)
                        self.report.encoded += len(indexed)
                        indexed, skipped = [], []
                        if time.monotonic() - last_save > INDEX_SAVE_SECONDS:
                            self.lib.save_index()
                            last_save = time.monotonic()
        finally:
            if indexed or skipped:
                self._store(indexed, skipped)
                self.report.encoded += len(indexed)
