"""Looking inside photos: each photo's windows (engine/windows.py) in the catalog, and the search
for the photos whose best window matches a query, shown as their own band of results ("inside
other photos") beside the whole-photo search, never fused into its scores (every fusion measured
lost landmarks: docs/quality.md).

The windows belong to one fitted model (they go through its PCA): a refit makes them again. They
are a cache of the photos, like the vectors: a damaged row is left out of searches (and made
again by the next indexing), never a crash.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from sba_desktop.engine.windows import PhotoWindows, WindowTable
from sba_desktop.library.catalog import Catalog, dec

log = logging.getLogger(__name__)

INSIDE_RESULTS = 10  # photos the band shows


@dataclass
class InsideHit:
    photo_id: int
    path: str
    score: float
    box: tuple[float, float, float, float]   # the matching part: x, y, w, h as fractions of the photo
    size: tuple[int, int] | None             # the photo's width and height in pixels (when known)

    def pixels(self) -> tuple[int, int, int, int] | None:
        """The matching part in the photo's own pixels (what `sba search --region` takes)."""
        if not self.size:
            return None
        w, h = self.size
        x, y, bw, bh = self.box
        return round(x * w), round(y * h), round(bw * w), round(bh * h)


class InsideStore:
    """The windows of a library's photos, and the searches over them. The table a search reads is
    kept in memory until the catalog's windows change (a counter a trigger keeps: changes made
    by another process, a watcher, are seen too)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._lock = threading.Lock()
        self._table: tuple[tuple[str, int], WindowTable] | None = None

    # ------------------------------------------------------------------ writing
    def missing(self, model_id: str) -> list[int]:
        """Indexed photos of the model without windows of it."""
        return [r[0] for r in self.catalog.db.execute(
            "SELECT p.id FROM photos p LEFT JOIN windows w ON w.photo_id = p.id AND w.model_id = ? "
            "WHERE p.state = 'indexed' AND p.model_id = ? AND w.photo_id IS NULL ORDER BY p.id",
            (model_id, model_id))]

    def store(self, model_id: str, rows: list[tuple[int, PhotoWindows]]) -> None:
        """Photos' windows, in one transaction (a photo no longer indexed is left out)."""
        with self.catalog.transaction():
            self.catalog.db.executemany(
                "INSERT OR REPLACE INTO windows(photo_id, model_id, vectors, scales, boxes) "
                "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM photos WHERE id = ? AND state = 'indexed')",
                [(pid, model_id, w.vectors.astype(np.int8).tobytes(), w.scales.astype(np.float32).tobytes(),
                  w.boxes.astype(np.float32).tobytes(), pid) for pid, w in rows])

    def forget_other_models(self, model_id: str) -> int:
        """Windows of any model but this one (a refit's predecessor): they go."""
        return self.catalog.db.execute("DELETE FROM windows WHERE model_id != ?", (model_id,)).rowcount

    def forget_all(self) -> int:
        """Looking inside turned off: the windows go (8 KiB a photo)."""
        return self.catalog.db.execute("DELETE FROM windows").rowcount

    def count(self, model_id: str) -> int:
        return self.catalog.db.execute("SELECT count(*) FROM windows WHERE model_id = ?", (model_id,)).fetchone()[0]

    # ------------------------------------------------------------------ searching
    def _version(self) -> int:
        return int(self.catalog.db.execute("SELECT n FROM windows_version").fetchone()[0])

    def table(self, model_id: str, dims: int) -> WindowTable:
        """Every window of the model's indexed photos, from memory while the catalog's are unchanged."""
        with self._lock:
            key = (model_id, self._version())
            if self._table is None or self._table[0] != key:
                self._table = (key, self._read(model_id, dims))
            return self._table[1]

    def _read(self, model_id: str, dims: int) -> WindowTable:
        ids, windows = [], []
        damaged = 0
        for pid, *blobs in self.catalog.db.execute(
                "SELECT w.photo_id, w.vectors, w.scales, w.boxes FROM windows w JOIN photos p ON p.id = w.photo_id "
                "WHERE w.model_id = ? AND p.state = 'indexed' AND p.model_id = ?", (model_id, model_id)):
            found = _parse(*blobs, dims)
            if found is None:
                damaged += 1
                continue
            ids.append(pid)
            windows.append(found)
        if damaged:
            log.warning("%d photos' windows are damaged and left out of searches inside photos", damaged)
        return WindowTable.of(ids, windows, dims)

    def best_window(self, model_id: str, photo_id: int, query: np.ndarray
                    ) -> tuple[float, tuple[float, float, float, float]] | None:
        """One photo's window most like the query: (score, x, y, w, h as fractions of the photo),
        None when it has no (sound) windows of this model. What the Why view and `sba explain` show."""
        row = self.catalog.db.execute("SELECT vectors, scales, boxes FROM windows WHERE photo_id = ? AND model_id = ?",
                                      (photo_id, model_id)).fetchone()
        found = _parse(*row, len(query)) if row else None
        if found is None or not len(found.scales):
            return None
        scores = WindowTable.of([photo_id], [found], len(query)).exact_scores(np.arange(len(found.scales)), query)
        best = int(np.argmax(scores))
        return float(scores[best]), tuple(float(v) for v in found.boxes[best])

    def search(self, model_id: str, query: np.ndarray, top: int = INSIDE_RESULTS,
               exclude: set[int] = frozenset()) -> list[InsideHit]:
        """The `top` photos (but `exclude`) whose best window is most like the query vector."""
        best = self.table(model_id, len(query)).best(query, top, exclude)
        if not best:
            return []
        facts = {}
        marks = ",".join("?" * len(best))
        for pid, path, w, h in self.catalog.db.execute(
                f"SELECT id, path, width, height FROM photos WHERE id IN ({marks})", [b[0] for b in best]):
            facts[pid] = (dec(path), (w, h) if w and h else None)
        return [InsideHit(pid, facts[pid][0], score, box, facts[pid][1]) for pid, score, box in best if pid in facts]


def _parse(vectors: bytes, scales: bytes, boxes: bytes, dims: int) -> PhotoWindows | None:
    """A stored row's windows; None when its sizes disagree (damaged bytes, another model's width)
    or a scale or place is not a number."""
    if not all(isinstance(b, bytes) for b in (vectors, scales, boxes)) or len(scales) % 4:
        return None
    n = len(scales) // 4
    if len(vectors) != n * dims or len(boxes) != n * 16:
        return None
    scales_, boxes_ = np.frombuffer(scales, np.float32), np.frombuffer(boxes, np.float32).reshape(n, 4)
    if not (np.isfinite(scales_).all() and np.isfinite(boxes_).all()):
        return None
    return PhotoWindows(np.frombuffer(vectors, np.int8).reshape(n, dims), scales_, boxes_)
