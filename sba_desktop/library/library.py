"""A photo library on disk: catalog + fitted model + HNSW index, kept consistent.

No Qt here. The GUI and the CLI both drive this class.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.neighbourhood import AugmentedVectors, neighbourhood_search
from ..engine.sba import DEFAULT_DIMS, DEFAULT_IMAGE_SIZE, DescriptorModel
from ..paths import AppPaths, app_paths
from .catalog import Catalog
from .lock import WriterLock
from .vindex import VectorIndex

log = logging.getLogger(__name__)


@dataclass
class Settings:
    backbone: str = "efficientnet_lite0"
    image_size: int = DEFAULT_IMAGE_SIZE
    n_detectors: int = 25
    dims: int = DEFAULT_DIMS
    k: int = 40


@dataclass
class SearchHit:
    photo_id: int
    path: str
    score: float


class Library:
    """Open with `Library.open()`; everything lives under `paths.data`.

    The library owns its model and its vector index: jobs hand it their results
    (`store_results`, `unindex`, `set_model`) and never write those fields themselves. One lock
    orders those changes against searches, so a search never reads an index being changed."""

    def __init__(self, paths: AppPaths):
        self.paths = paths.ensure()
        self.catalog = Catalog(self.paths.data / "catalog.sqlite")
        self.model: DescriptorModel | None = None
        self.index: VectorIndex | None = None
        self.repaired = False
        self._state = threading.RLock()
        self._augmented: AugmentedVectors | None = None  # the default search's cache, kept between searches
        self._load_model_and_index()

    @classmethod
    def open(cls, home: str | os.PathLike | None = None) -> "Library":
        return cls(app_paths(home))

    def close(self) -> None:
        self.catalog.close()

    # ------------------------------------------------------------------ settings
    def settings(self) -> Settings:
        s = Settings()
        for field in ("backbone", "image_size", "n_detectors", "dims", "k"):
            v = self.catalog.get_meta(f"setting.{field}")
            if v:
                setattr(s, field, type(getattr(s, field))(v))
        return s

    def save_settings(self, s: Settings) -> bool:
        """Store settings; True when they differ from the model in use (a rebuild is needed)."""
        for field in ("backbone", "image_size", "n_detectors", "dims", "k"):
            self.catalog.set_meta(f"setting.{field}", str(getattr(s, field)))
        return self.needs_rebuild()

    def needs_rebuild(self) -> bool:
        if self.model is None:
            return False
        s = self.settings()
        return (self.model.backbone != s.backbone or self.model.image_size != s.image_size
                or self.model.spec.n_detectors != s.n_detectors or self.model.reduction.dims != s.dims)

    # ------------------------------------------------------------------ model + index
    @property
    def index_path(self) -> Path:
        return self.paths.data / "vectors.hnsw"

    def writer_lock(self) -> WriterLock:
        return WriterLock(self.paths.data / "writer.lock")

    def _load_model_and_index(self) -> None:
        active = self.catalog.active_model()
        if not active:
            self.model, self.index = None, None
            return
        model_id, file, _desc, dims = active
        self.model = DescriptorModel.load(self.paths.data / file)
        if self.model.model_id != model_id:
            raise RuntimeError(f"model file {file} does not match the catalog (id {model_id})")
        self.index = None
        if self.index_path.exists():
            try:
                self.index = VectorIndex.load(self.index_path, dims)
            except Exception as exc:  # a torn or foreign index file: rebuild it
                log.warning("index file unreadable (%s); rebuilding from the catalog", exc)
        self._reconcile()

    def _reconcile(self) -> None:
        """Make the index hold exactly the catalog's indexed photos of this model."""
        assert self.model is not None
        want = self.catalog.indexed_ids(self.model.model_id)
        if self.index is None or self.index.dim != self.model.dims:
            self.index = VectorIndex(self.model.dims, capacity=len(want) + 1024)
        have = self.index.ids()
        extra, missing = have - want, want - have
        if extra:
            self.index.remove(extra)
        if missing:
            ids, vecs = self.catalog.vectors(self.model.model_id, sorted(missing))
            self.index.add(ids, vecs)
        if extra or missing:
            self.repaired = True
            log.info("index repaired: %d added, %d removed", len(missing), len(extra))

    def set_model(self, model: DescriptorModel) -> None:
        """Make a freshly fitted model the library's model (its vectors start empty)."""
        file = f"model-{model.model_id}.npz"
        model.save(self.paths.data / file)
        with self._state:
            with self.catalog.transaction():
                self.catalog.reset_vectors()
                self.catalog.register_model(model.model_id, file, model.describe(), model.dims)
            self.model = model
            self.index = VectorIndex(model.dims)
            self._augmented = None
            self.save_index()

    def store_results(self, results) -> None:
        """Store a chunk of encoded photos (library/encoding.py `Encoded`): vectors of the current
        model into the catalog (one transaction) and the index; failures as skipped with reasons."""
        indexed = [(int(e.key), e.vector, e.width, e.height, e.peaks) for e in results if e.error is None]
        skipped = [(int(e.key), e.error) for e in results if e.error is not None]
        with self._state:
            if indexed and self.model is None:
                raise RuntimeError("vectors stored before the library has a model")
            self.catalog.store_results(indexed, skipped, self.model.model_id if self.model else "")
            if indexed and self.index is not None:
                ids, vecs = np.array([r[0] for r in indexed], np.int64), np.stack([r[1] for r in indexed])
                self.index.add(ids, vecs)
                self._augmented = None  # new photos change their neighbours' neighbourhoods

    def unindex(self, ids) -> None:
        """Take photos out of the search index (deleted, changed, forgotten)."""
        ids = list(ids)
        with self._state:
            if self.index is not None and ids:
                self.index.remove(ids)
                self._augmented = None

    def save_index(self) -> None:
        with self._state:
            if self.index is not None:
                self.index.save(self.index_path)

    # ------------------------------------------------------------------ folders
    def add_folder(self, folder: str) -> str:
        folder = os.path.abspath(os.path.expanduser(folder))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"not a folder: {folder}")
        self.catalog.add_folder(folder)
        return folder

    def forget_folder(self, folder: str) -> int:
        folder = os.path.abspath(os.path.expanduser(folder))
        with self.writer_lock():
            ids = self.catalog.remove_folder(folder)
            self.unindex(ids)
            self.save_index()
        return len(ids)

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        c = self.catalog.counts()
        m = self.model
        return {"photos": c["photos"], "indexed": len(self.index) if self.index else 0,
                "pending": c["pending"], "skipped": c["skipped"],
                "model": m.describe() if m else "none (fitted at the first indexing)",
                "model_id": m.model_id if m else None, "dims": m.dims if m else None,
                "folders": self.catalog.folders(), "home": str(self.paths.data.parent)}

    # ------------------------------------------------------------------ search
    def photo_encoder(self, keep_maps: bool = False, workers: int | None = 1):
        """The one encoding pipeline (library/encoding.py) with this library's model; one decoder
        thread by default (a query), `workers=None` for one per core."""
        from ..engine.runtime import load_runtime
        from .encoding import PhotoEncoder

        if self.model is None:
            raise RuntimeError("the library has no photos indexed yet: add a folder and index it first")
        return PhotoEncoder(load_runtime(self.model.backbone), self.model.image_size, self.model, workers=workers,
                            keep_maps=keep_maps)

    def encode_query(self, image_path: str, region: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """The vector of a photo file (in the library or not), or of a region of it given in the
        photo's own pixels (after EXIF orientation): exactly what indexing stores for that photo."""
        from .encoding import Source

        return self.photo_encoder().encode_one(Source("query", path=image_path, region=region)).vector

    def encode_image(self, image, region=None) -> np.ndarray:
        """The vector of an image in memory (a pasted picture), or of a region of it."""
        from .encoding import Source

        return self.photo_encoder().encode_one(Source("query", image=image, region=region)).vector

    def encode_queries(self, sources):
        """Many queries at once (chunks of `Encoded`, failures with their reason): decoded on
        every core and forwarded in batches, as indexing does."""
        return self.photo_encoder(workers=None).encode(sources)

    def search_vector(self, q: np.ndarray, top: int = 20, expand: bool = True) -> list[SearchHit]:
        """The `top` photos most like vector q. expand=True (the default) searches with the
        neighbourhood (engine/neighbourhood.py); False is plain nearest-neighbour search."""
        with self._state:
            if self.index is None or len(self.index) == 0:
                return []
            if expand:
                if self._augmented is None:
                    self._augmented = AugmentedVectors(self.index)
                ids, scores = neighbourhood_search(q, self.index, top, self._augmented)
            else:
                found, sims = self.index.search(q, top)
                ids, scores = found[0], sims[0]
        paths = self.catalog.paths(ids.tolist())
        return [SearchHit(int(i), paths[int(i)], float(s)) for i, s in zip(ids, scores) if int(i) in paths]

    def search(self, image_path: str, top: int = 20, region=None, expand: bool = True) -> list[SearchHit]:
        return self.search_vector(self.encode_query(image_path, region), top, expand)

    def duplicates(self, threshold: float = 0.92, neighbours: int = 10) -> list[list[str]]:
        """Groups of near-duplicates: photos linked by similarity >= threshold (union-find)."""
        if self.model is None or self.index is None or len(self.index) < 2:
            return []
        ids, vecs = self.catalog.vectors(self.model.model_id)
        parent = {int(i): int(i) for i in ids}

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        nb, sc = self.index.search(vecs, min(neighbours + 1, len(self.index)))
        for row, i in enumerate(ids):
            for j, s in zip(nb[row], sc[row]):
                if int(j) != int(i) and s >= threshold and int(j) in parent:
                    parent[find(int(i))] = find(int(j))
        groups: dict[int, list[int]] = {}
        for i in parent:
            groups.setdefault(find(i), []).append(i)
        multi = [g for g in groups.values() if len(g) > 1]
        paths = self.catalog.paths([i for g in multi for i in g])
        return sorted((sorted(paths[i] for i in g) for g in multi), key=lambda g: g[0])
