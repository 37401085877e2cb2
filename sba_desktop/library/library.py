"""A photo library on disk: catalog + fitted model + HNSW index, kept consistent.

No Qt here (only the trash borrows QtCore's QFile.moveToTrash: trash.py). The GUI and the CLI
both drive this class.
"""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sba_desktop.engine.neighbourhood import AugmentedVectors, SearchSplit, neighbourhood_search, split_search_score
from sba_desktop.engine.sba import DEFAULT_DIMS, DEFAULT_GLOBAL_WEIGHT, DEFAULT_IMAGE_SIZE, DescriptorModel
from sba_desktop.errors import SbaError, UserError, one_line as _one_line
from sba_desktop.files import remove_stale_temps, write_bytes
from sba_desktop.paths import AppPaths, app_paths, model_file_name
from sba_desktop.library.catalog import Catalog
from sba_desktop.library.health import health_check, open_catalog, save_backup
from sba_desktop.library.discover import check_photo_folder
from sba_desktop.library.encoding import FIT_SAMPLE
from sba_desktop.library.inside import InsideStore
from sba_desktop.library.lock import WriterLock
from sba_desktop.library.trash import Trashed, move_to_trash
from sba_desktop.library.vindex import EF_SEARCH, IndexFileError, VectorIndex

log = logging.getLogger(__name__)

SHOWN_RESULTS = 200  # results the window shows for a search (the pointing benchmark counts on it too)
REFIT_GROWTH = 2.0  # a model fitted on fewer than FIT_SAMPLE photos is refitted once the library is
                    # this many times larger (it then describes the whole library, not its first folder)


@dataclass
class Settings:
    backbone: str = "efficientnet_lite0"
    image_size: int = DEFAULT_IMAGE_SIZE
    n_detectors: int = 25
    dims: int = DEFAULT_DIMS
    k: int = 40
    global_weight: float = DEFAULT_GLOBAL_WEIGHT
    inside: bool = False  # look inside photos (library/inside.py): finds small objects, ~3.5x the indexing time


SETTING_FIELDS = ("backbone", "image_size", "n_detectors", "dims", "k", "global_weight", "inside")


@dataclass
class SearchHit:
    photo_id: int
    path: str
    score: float


def _writable(paths: AppPaths) -> bool:
    """Whether the library's data folder (and its catalog) can be written; a new library's is made."""
    catalog = paths.catalog_file
    if not paths.data.exists():
        try:
            paths.data.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
    return os.access(paths.data, os.W_OK) and (not catalog.exists() or os.access(catalog, os.W_OK))


class Library:
    """Open with `Library.open()`; everything lives under `paths.data`.

    The library owns its model and its vector index: jobs hand it their results
    (`store_results`, `unindex`, `set_model`) and never write those fields themselves. One lock
    orders those changes against searches, so a search never reads an index being changed."""

    def __init__(self, paths: AppPaths):
        """Every file is checked as it opens (library/health.py for the catalog, vindex.py for
        the index, the model's own load): a damaged one is rebuilt from what is intact, with one
        line in `repairs`. A library that cannot be written (a read-only disk or folder) opens
        read-only and still answers searches."""
        self.paths = paths
        self.writable = _writable(paths)
        if self.writable:
            paths.ensure()
        elif not paths.catalog_file.exists():
            raise UserError(f"no library in {paths.data}, and none can be made there (the folder cannot be "
                            "written): choose another with --home or SBA_DESKTOP_HOME")
        self.catalog, self.repairs = open_catalog(paths, read_only=not self.writable)
        self.writable = not self.catalog.read_only
        self.inside = InsideStore(self.catalog)
        self.model: DescriptorModel | None = None
        self.index: VectorIndex | None = None
        self.repaired = False
        self._state = threading.RLock()
        self._augmented: AugmentedVectors | None = None  # the default search's cache, kept between searches
        self._load_model_and_index()
        if self.writable:
            self._remove_stale_temps()
        self.backup_user_data()

    def _remove_stale_temps(self) -> None:
        """Temporary files left by a killed or older writer: the fixed names older versions used
        (model-*.npz.tmp kept a full disk full), and this version's own unique ones once a day old
        (a younger one may be another writer's save in progress)."""
        day_ago = time.time() - 86400

        def stale(name: str) -> bool:
            if not name.startswith("."):
                return True
            try:
                return os.lstat(self.paths.data / name).st_mtime < day_ago
            except OSError:
                return False
        removed = remove_stale_temps(self.paths.data, stale)
        if removed:
            log.info("removed temporary files left behind: %s", ", ".join(removed))

    @classmethod
    def open(cls, home: str | os.PathLike | None = None) -> "Library":
        return cls(app_paths(home))

    def close(self) -> None:
        self.backup_user_data()
        self.catalog.close()

    def backup_user_data(self) -> None:
        """The copy of what only the user made, beside the catalog (library/health.py), when it
        changed; a disk that refuses it is logged, never in the way of the command."""
        if not self.writable:
            return
        try:
            save_backup(self.catalog, self.paths.data)
        except (OSError, sqlite3.Error, SbaError) as exc:
            log.warning("the backup of the user's data was not written: %s", exc)

    def health(self) -> list[str]:
        """What `sba status` says of the library's files: the repairs made when it opened, and
        SQLite's full check of the catalog (empty: all sound)."""
        out = list(self.repairs)
        trouble = health_check(self.catalog)
        if trouble:
            out.append(f"the catalog is damaged ({trouble}): the next command that can write the library repairs it")
        if not self.writable:
            full = shutil.disk_usage(self.paths.data).free < 1 << 20
            out.append(f"{'the disk holding the library is full' if full else 'the library is read-only'} "
                       f"({self.paths.data}): searches work, nothing can be changed"
                       + (" until space is freed" if full else ""))
        return out

    # ------------------------------------------------------------------ settings
    def settings(self) -> Settings:
        s = Settings()
        for field in SETTING_FIELDS:
            v = self.catalog.get_meta(f"setting.{field}")
            if v:
                setattr(s, field, v == "True" if field == "inside" else type(getattr(s, field))(v))
        return s

    def save_settings(self, s: Settings) -> bool:
        """Store settings; True when they differ from the model in use (a rebuild is needed)."""
        for field in SETTING_FIELDS:
            self.catalog.set_meta(f"setting.{field}", str(getattr(s, field)))
        return self.needs_rebuild()

    def needs_rebuild(self) -> bool:
        if self.model is None:
            return False
        s = self.settings()
        return (self.model.backbone != s.backbone or self.model.image_size != s.image_size
                or self.model.spec.n_detectors != s.n_detectors or self.model.reduction.dims != s.dims
                or self.model.spec.global_weight != s.global_weight)

    # ------------------------------------------------------------------ model + index
    @property
    def index_path(self) -> Path:
        return self.paths.index_file

    def writer_lock(self) -> WriterLock:
        return WriterLock(self.paths.data / "writer.lock")

    @property
    def index_model_path(self) -> Path:
        """Which model's vectors the index file holds (written after the file: a refit killed
        between the catalog's switch and the new index leaves the old id here, and the index is
        rebuilt from the catalog)."""
        return self.paths.index_model_file

    def _load_model_and_index(self) -> None:
        active = self.catalog.active_model()
        if not active:
            self.model, self.index = None, None
            return
        model_id, file, dims = active.id, active.file, active.dims
        try:
            self.model = self._load_model_file(file, model_id)
        except Exception as exc:  # missing, torn, garbled, foreign (zip, numpy, json and our own errors)
            self._model_lost(file, exc)
            return
        self.index = None
        held, checksum = self._index_record(model_id)
        if self.index_path.exists() and held == model_id:
            try:
                self.index = VectorIndex.load(self.index_path, dims, checksum)
            except (IndexFileError, OSError, RuntimeError) as exc:  # torn, garbled, foreign: rebuild it
                self.repairs.append(f"the search index {self.index_path} was damaged ({exc}): "
                                    "rebuilt from the catalog's vectors")
                log.warning("index file refused (%s); rebuilding from the catalog", exc)
        elif self.index_path.exists():
            log.warning("index file holds another model's vectors (%s); rebuilding from the catalog", held)
        self._reconcile()
        if self.repairs and self.writable:
            self.save_index()

    def _index_record(self, model_id: str) -> tuple[str, tuple[int, int] | None]:
        """(model id, (size, crc32) or None) the index file was saved with: its record file holds
        "<model id> <size> <crc32>" (older libraries: the id alone, checked without a sum)."""
        try:
            parts = self.index_model_path.read_text().split()
        except FileNotFoundError:
            return model_id, None
        except (OSError, UnicodeDecodeError):
            return "", None
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            return parts[0], (int(parts[1]), int(parts[2]))
        return (parts[0] if parts else ""), None

    def _model_lost(self, file: str, exc: BaseException) -> None:
        """The model file cannot be read: its vectors cannot be searched (a query cannot be
        encoded like them), so the photos go back to pending and the next indexing fits a new
        model from the photos. Categories and accepted tags are kept."""
        log.warning("model file %s unusable: %r", file, exc)
        self.model, self.index = None, None
        what = "missing" if isinstance(exc, FileNotFoundError) else f"damaged ({_one_line(exc)})"
        if not self.writable:
            self.repairs.append(f"the model file {file} is {what}, and the library is read-only: searches need a "
                                "writable library where 'sba index' can fit a new model")
            return
        with self.catalog.transaction():
            self.catalog.reset_vectors()
            self.catalog.drop_staged()
            self.catalog.set_meta("active_model", None)
        self.repairs.append(f"the model file {file} was {what}: its photos are pending again, and the next "
                            "'sba index' fits a new model from them (categories and accepted tags are kept)")

    def _load_model_file(self, file: str, model_id: str) -> DescriptorModel:
        model = DescriptorModel.load(self.paths.data / file)
        if model.model_id != model_id:
            raise RuntimeError(f"model file {file} does not match the catalog (id {model_id})")
        return model

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
        file = model_file_name(model.model_id)
        model.save(self.paths.data / file)
        with self._state:
            with self.catalog.transaction():
                self.catalog.reset_vectors()
                self.catalog.register_model(model.model_id, file, model.describe(), model.dims)
                self._remember_library_size(model)
            self.model = model
            self.index = VectorIndex(model.dims)
            self._augmented = None
            self.save_index()

    @staticmethod
    def _rows(results) -> tuple[list[tuple], list[tuple[int, str]]]:
        """Encoded photos as the catalog stores them: (id, vector, width, height, peaks) rows and
        (id, reason) rows of the photos that could not be used."""
        indexed = [(int(e.key), e.vector, e.width, e.height, e.peaks) for e in results if e.error is None]
        skipped = [(int(e.key), e.error) for e in results if e.error is not None]
        return indexed, skipped

    def store_results(self, results) -> None:
        """Store a chunk of encoded photos (library/encoding.py `Encoded`): vectors of the current
        model into the catalog (one transaction) and the index; failures as skipped with reasons."""
        indexed, skipped = self._rows(results)
        looks = [(int(e.key), e.looks) for e in results if e.error is None and e.looks is not None]
        with self._state:
            if indexed and self.model is None:
                raise RuntimeError("vectors stored before the library has a model")
            self.catalog.store_results(indexed, skipped, self.model.model_id if self.model else "", looks)
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
        """The index file (checked before it replaces the old one: vindex.py), then its record:
        a save killed between the two leaves a sum that does not match, and the index is rebuilt
        from the catalog at the next open."""
        with self._state:
            if self.index is not None and self.model is not None:
                size, crc = self.index.save(self.index_path)
                write_bytes(self.index_model_path, f"{self.model.model_id} {size} {crc}\n".encode(),
                            "the search index's checksum")

    # ------------------------------------------------------------------ refit (the next model)
    def staged_model(self) -> DescriptorModel | None:
        """The model a refit in progress is preparing (it serves nothing until the switch)."""
        staged = self.catalog.staged_model()
        return self._load_model_file(staged.file, staged.id) if staged else None

    def begin_refit(self, model: DescriptorModel) -> None:
        """A freshly fitted next model: its vectors are staged while the active model serves."""
        file = model_file_name(model.model_id)
        model.save(self.paths.data / file)
        with self.catalog.transaction():
            self.catalog.drop_staged()  # a refit of another model, abandoned
            self.catalog.register_model(model.model_id, file, model.describe(), model.dims, active=False)
            self._remember_library_size(model)

    def stage_results(self, model: DescriptorModel, results) -> None:
        """Encoded photos (library/encoding.py `Encoded`) of the staged model."""
        indexed, skipped = self._rows(results)
        with self._state:
            self.catalog.stage_results(indexed, skipped, model.model_id)
            self.catalog.store_looks([(int(e.key), e.looks) for e in results if e.error is None and e.looks is not None])
            if skipped:
                self.unindex([i for i, _ in skipped])

    def switch_to_staged(self, model: DescriptorModel) -> None:
        """One atomic switch: the staged vectors and model become the library's, and the index is
        made anew from them (searches wait for it under the lock, then see the new model)."""
        with self._state:
            previous = self.model.model_id if self.model is not None else None
            self.catalog.promote_staged(model.model_id, model_file_name(model.model_id), model.describe(),
                                        model.dims)
            ids, vecs = self.catalog.vectors(model.model_id)
            index = VectorIndex(model.dims, capacity=len(ids) + 1024)
            index.add(ids, vecs, threads=os.cpu_count() or 1)
            self.model, self.index, self._augmented = model, index, None
            self.save_index()
            if previous is not None and previous != model.model_id:
                # never read again (only the active and a staged model are loaded); a small
                # library refitted as it grows would otherwise keep one basis per refit
                self.paths.model_file(previous).unlink(missing_ok=True)

    # ------------------------------------------------------------------ folders
    def add_folder(self, folder: str) -> str:
        folder = os.path.abspath(os.path.expanduser(folder))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"not a folder: {folder}")
        check_photo_folder(folder)
        self.catalog.add_folder(folder)
        return folder

    def forget_folder(self, folder: str) -> int:
        folder = os.path.abspath(os.path.expanduser(folder))
        with self.writer_lock():
            ids = self.catalog.remove_folder(folder)
            self.unindex(ids)
            self.save_index()
        return len(ids)

    # ------------------------------------------------------------------ the trash
    def trash_photos(self, paths: list[str]) -> list[Trashed]:
        """Move photos to the system trash (the caller has asked the person) and forget them at
        once; a photo that could not be moved stays in the library."""
        with self.writer_lock():
            done = move_to_trash(paths)
            ids = [pid for t in done if t.moved and (pid := self.catalog.photo_id(t.path)) is not None]
            with self.catalog.transaction():
                self.catalog.delete_photos(ids)
            self.unindex(ids)
            self.save_index()
        return done

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        c = self.catalog.counts()
        m = self.model
        staged = self.catalog.staged_model()
        refit = None
        if staged:
            refit = {"model": staged.description, "staged": self.catalog.staged_count(staged.id),
                     "total": c["indexed"] + c["pending"]}
        return {"photos": c["photos"], "indexed": len(self.index) if self.index else 0,
                "pending": c["pending"], "skipped": c["skipped"],
                "model": m.describe() if m else "none (fitted at the first indexing)",
                "model_id": m.model_id if m else None, "dims": m.dims if m else None,
                "refit": refit, "refit_due": self.refit_due(),
                "folders": self.catalog.folders(), "home": str(self.paths.data.parent)}

    def refit_due(self, growth: float = REFIT_GROWTH) -> bool:
        """Whether the model no longer fits the library (see REFIT_GROWTH): the next indexing
        run refits it in the background, or continues the refit in progress."""
        m = self.model
        if m is None:
            return False
        if self.catalog.staged_model() is not None or self.needs_rebuild():
            return True
        counts = self.catalog.counts()
        n = counts["indexed"] + counts["pending"]
        at_fit = int(self.catalog.get_meta(f"library_at_fit.{m.model_id}") or m.fitted_on)
        return m.fitted_on < FIT_SAMPLE and n >= growth * at_fit

    def _remember_library_size(self, model: DescriptorModel) -> None:
        counts = self.catalog.counts()
        self.catalog.set_meta(f"library_at_fit.{model.model_id}", str(counts["indexed"] + counts["pending"]))

    # ------------------------------------------------------------------ search
    def photo_encoder(self, keep_maps: bool = False, workers: int | None = 1):
        """The one encoding pipeline (library/encoding.py) with this library's model; one decoder
        thread by default (a query), `workers=None` for one per core."""
        from sba_desktop.engine.runtime import load_runtime
        from sba_desktop.library.encoding import PhotoEncoder

        if self.model is None:
            raise RuntimeError("the library has no photos indexed yet: add a folder and index it first")
        return PhotoEncoder(load_runtime(self.model.backbone), self.model.image_size, self.model, workers=workers,
                            keep_maps=keep_maps)

    def encode_query(self, image_path: str, region: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """The vector of a photo file (in the library or not), or of a region of it given in the
        photo's own pixels (after EXIF orientation): exactly what indexing stores for that photo."""
        from sba_desktop.library.encoding import Source

        return self.photo_encoder().encode_one(Source("query", path=image_path, region=region)).vector

    def encode_image(self, image, region=None) -> np.ndarray:
        """The vector of an image in memory (a pasted picture), or of a region of it."""
        from sba_desktop.library.encoding import Source

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

    def neighbours_of(self, ids: np.ndarray, k: int, ef: int = EF_SEARCH) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest library photos (ids, similarities) of each of these library photos, by
        their stored vectors (plain nearest neighbours; each photo is usually its own first)."""
        with self._state:
            vecs = self.index.vectors(ids)
            return self.index.search(vecs, min(k, len(self.index)), ef=ef)

    def split_search(self, q: np.ndarray, result_path: str) -> SearchSplit | None:
        """The default search's score of a library photo for vector q, split over the photos it is
        made of (engine/neighbourhood.py); None when the photo is not in the library's index or the
        search would not reach it."""
        with self._state:
            pid = self.catalog.photo_id(result_path)
            if self.index is None or pid is None or pid not in self.index:
                return None
            if self._augmented is None:
                self._augmented = AugmentedVectors(self.index)
            return split_search_score(q, pid, self.index, self._augmented)

    def search(self, image_path: str, top: int = 20, region=None, expand: bool = True) -> list[SearchHit]:
        return self.search_vector(self.encode_query(image_path, region), top, expand)
