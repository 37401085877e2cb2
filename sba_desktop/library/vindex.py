"""The HNSW vector index (hnswlib): ids are photo ids, inner product on L2-normalised vectors.

The module comes from chroma-hnswlib's binary wheels (Python 3.11/3.12) or nmslib's hnswlib
(3.13): the API used here is common to both; their files differ, and a file the installed build
cannot read is rebuilt from the catalog like any torn file (Library._open_index).

The index is a derived file: the catalog holds every vector, so the index can
always be rebuilt. It is saved atomically (write to a temporary file, then
rename) and checked against the catalog when the library opens.
"""
from __future__ import annotations

import os
from pathlib import Path

import hnswlib
import numpy as np

# Build/search parameters: measured in `sba bench` (recall@10 >= 0.98 at 1M vectors).
HNSW_M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 96


class VectorIndex:
    def __init__(self, dim: int, capacity: int = 1024, ef_construction: int = EF_CONSTRUCTION):
        """ef_construction: lower builds faster and finds a little less (a throw-away index)."""
        self.dim = dim
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(max_elements=max(capacity, 16), ef_construction=ef_construction, M=HNSW_M)
        self._index.set_ef(EF_SEARCH)
        self._live: set[int] = set()

    # ------------------------------------------------------------------ persistence
    @classmethod
    def load(cls, path: str | Path, dim: int) -> "VectorIndex":
        self = cls.__new__(cls)
        self.dim = dim
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.load_index(str(path), max_elements=0)
        self._index.set_ef(EF_SEARCH)
        labels = set(int(i) for i in self._index.get_ids_list())
        deleted = set()
        # hnswlib has no public "is deleted" query, but get_items refuses deleted labels
        ordered = sorted(labels)
        for start in range(0, len(ordered), 4096):
            chunk = ordered[start:start + 4096]
            try:
                self._index.get_items(chunk)
            except RuntimeError:
                for i in chunk:
                    try:
                        self._index.get_items([i])
                    except RuntimeError:
                        deleted.add(i)
        self._live = labels - deleted
        return self

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        self._index.save_index(str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return len(self._live)

    def ids(self) -> set[int]:
        return set(self._live)

    def __contains__(self, photo_id: int) -> bool:
        return int(photo_id) in self._live

    def add(self, ids: np.ndarray, vectors: np.ndarray, threads: int = 1) -> None:
        """Add vectors under photo ids; `threads` > 1 builds in parallel (a bulk load)."""
        if len(ids) == 0:
            return
        need = self._index.get_current_count() + len(ids)
        if need > self._index.get_max_elements():
            self._index.resize_index(max(need, int(self._index.get_max_elements() * 1.5)))
        self._index.add_items(np.asarray(vectors, np.float32), np.asarray(ids, np.int64), num_threads=threads)
        self._live.update(int(i) for i in ids)

    def remove(self, ids) -> None:
        for i in ids:
            i = int(i)
            if i in self._live:
                self._index.mark_deleted(i)
                self._live.discard(i)

    def vector(self, photo_id: int) -> np.ndarray:
        return np.asarray(self._index.get_items([photo_id])[0], np.float32)

    def vectors(self, ids) -> np.ndarray:
        """Stored vectors of live ids, (len(ids), dim) float32."""
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._index.get_items(ids), np.float32)

    def search(self, query: np.ndarray, k: int, ef: int = EF_SEARCH) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) best first; score = inner product (cosine). A lower `ef` is faster and
        finds a little less (enough for the very nearest: copies of a photo)."""
        q = np.atleast_2d(np.asarray(query, np.float32))
        k = min(k, len(self._live))
        if k == 0:
            return np.zeros((q.shape[0], 0), np.int64), np.zeros((q.shape[0], 0), np.float32)
        self._index.set_ef(max(ef, k))
        # a batch (the neighbourhood search looks up 200 candidates at once) uses every core
        threads = 1 if len(q) < 8 else (os.cpu_count() or 1)
        labels, dist = self._index.knn_query(q, k=k, num_threads=threads)
        return labels.astype(np.int64), (1.0 - dist).astype(np.float32)
