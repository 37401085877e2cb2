"""Encoding on a Ray cluster: the same library, its photos encoded by many machines.

Discovery, fitting and the catalog stay on this machine; decoding, inference and SBA run in Ray
Data actors (each holds one onnxruntime session and the fitted model), and the vectors stream
back through the same store path as the local job (one SQLite transaction per batch, then the
HNSW index). What crosses the network: photo paths and ids out, vectors (512 float32 = 2 KB per
photo) and sizes back, plus the fitted model once per worker (~65 MB). Photos must be readable
under the same path on every node (a shared mount).

A killed run leaves the unprocessed photos `pending` in the catalog: the next run continues with
them, and a photo stored twice (a batch replayed after a node died) is simply overwritten.
Optional: needs the `cluster` extra (ray[data]); nothing else imports this module.
"""
from __future__ import annotations

import io
import logging
import os
import time

import numpy as np

from sba_desktop.library.encoding import CHUNK, Encoded
from sba_desktop.jobs.index import IndexJob, Progress

log = logging.getLogger(__name__)

RAY_BATCH = 16  # photos per actor call: big enough for the per-call overhead, small for progress


class EncodeActor:
    """One Ray actor: decodes, runs the network and encodes photos with the fitted model."""

    def __init__(self, model_npz: bytes, threads: int):
        from sba_desktop.engine.runtime import load_runtime
        from sba_desktop.engine.sba import DescriptorModel

        self.model = DescriptorModel.load(io.BytesIO(model_npz))
        self.net = load_runtime(self.model.backbone, threads=threads)
        if self.net.version != self.model.backbone_version:
            raise RuntimeError(f"worker network {self.net.version} is not the model's "
                               f"{self.model.backbone_version}")
        from sba_desktop.library.encoding import PhotoEncoder

        self.encoder = PhotoEncoder(self.net, self.model.image_size, self.model, workers=1)

    def __call__(self, batch: dict) -> dict:
        from sba_desktop.library.encoding import Source

        n = len(batch["id"])
        vectors = np.zeros((n, self.model.dims), np.float32)
        peaks = np.zeros((n, len(self.model.detectors), 3), np.float32)
        width, height = np.zeros(n, np.int64), np.zeros(n, np.int64)
        errors = [""] * n
        looks = [None] * n  # the duplicate finder's facts (library/encoding.py Looks), as they are
        # the library's one encoding pipeline, decoding on this actor's thread
        for chunk in self.encoder.encode(Source(i, str(path)) for i, path in enumerate(batch["path"])):
            for e in chunk:
                if e.error is not None:
                    errors[e.key] = e.error
                else:
                    vectors[e.key], peaks[e.key] = e.vector, e.peaks
                    width[e.key], height[e.key] = e.width, e.height
                    looks[e.key] = e.looks
        return {"id": np.asarray(batch["id"], np.int64), "vector": vectors, "peaks": peaks, "width": width,
                "height": height, "error": np.asarray(errors, dtype=object), "looks": _objects(looks)}


def _objects(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def connect(address: str, num_cpus: int | None = None) -> None:
    """`local` starts a Ray runtime in this process (tests, or many processes on one machine);
    anything else joins a running cluster (`ray start --head` printed its address)."""
    import ray
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the job reports its own progress
    ctx.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return
    if address == "local":
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)


class RayIndexJob(IndexJob):
    """IndexJob whose encoding runs on Ray; scanning, fitting and storing are the local job's own."""

    def __init__(self, library, folders=None, progress=None, actors: int | None = None,
                 cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0, **kw):
        super().__init__(library, folders, progress, **kw)
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor
        self.gpus_per_actor = gpus_per_actor

    def _encode_pending(self) -> None:
        import ray

        work = self._pending_work()
        if work is None:
            return
        model, pending = work
        paths = self.lib.catalog.paths(pending)
        items = [{"id": pid, "path": paths[pid]} for pid in pending if pid in paths]
        model_file = self.lib.paths.model_file(model.model_id)
        actors = self.actors or max(1, int(ray.available_resources().get("CPU", 1) // self.cpus_per_actor))
        ds = ray.data.from_items(items).map_batches(
            EncodeActor, fn_constructor_args=(model_file.read_bytes(), max(1, int(self.cpus_per_actor))),
            batch_size=RAY_BATCH, batch_format="numpy", concurrency=actors,
            num_cpus=self.cpus_per_actor, num_gpus=self.gpus_per_actor or None)
        done, t0 = 0, time.perf_counter()
        for out in ds.iter_batches(batch_size=CHUNK, batch_format="numpy"):
            self._checkpoint()  # cancel: what was stored stays, the rest stays pending
            self._store([Encoded(int(pid), error=str(err)) if err else
                         Encoded(int(pid), int(w), int(h), vector=vec.astype(np.float32), peaks=pk, looks=lk)
                         for pid, vec, w, h, err, pk, lk in zip(out["id"], out["vector"], out["width"],
                                                                out["height"], out["error"], out["peaks"],
                                                                out["looks"])])
            done += len(out["id"])
            rate = done / max(time.perf_counter() - t0, 1e-9)
            self.progress(Progress("encoding", done, len(items), "", rate, (len(items) - done) / rate))
