"""The SQLite catalog: folders, photos and their vectors, models, categories, labels.

Paths are stored as bytes (os.fsencode) so any file name the file system
allows round-trips, including names that are not valid UTF-8. Vectors are
stored here (float16) so the HNSW index can always be rebuilt from them.
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from sba_desktop.library.schema import MIGRATIONS, SCHEMA_VERSION, statements

def enc(path: str) -> bytes:
    return os.fsencode(path)


def dec(blob: bytes) -> str:
    return os.fsdecode(blob)


class ModelRecord(NamedTuple):
    """A fitted model the catalog knows: its file (in the library's data folder) and size."""
    id: str
    file: str
    description: str
    dims: int


class LooksRow(NamedTuple):
    """What the duplicate finder reads of an indexed photo besides its vector."""
    id: int
    path: str
    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    signature: np.ndarray | None   # the small grey picture (engine/copies.py), rows x signature_width
    signature_width: int | None
    taken: float | None            # EXIF capture time
    camera: str | None
    format: str | None


class LabelRow(NamedTuple):
    photo_id: int
    category: str
    source: str                    # folder | auto | user
    confidence: float | None
    accepted: bool
    abstained: bool                # the photo fits none: `category` is only the closest


@dataclass
class PhotoRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    fingerprint: str | None
    state: str
    reason: str | None
    model_id: str | None


class Catalog:
    def __init__(self, path: str | Path, read_only: bool = False):
        """read_only: a library on a read-only disk or folder; it answers, never changes (a
        write fails with SQLite's "readonly database", which errors.py puts in words)."""
        self.path = Path(path)
        self.read_only = read_only
        # the GUI hands one library between its worker threads (one at a time)
        if read_only:
            self.db = _connect_read_only(self.path)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise RuntimeError(f"the library's catalog {self.path} is read-only and from another version of "
                                   f"sba-desktop (schema {version}): open it once where it can be written")
            return
        self.db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._set_wal()
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _set_wal(self) -> None:
        """WAL mode; switching a new file needs it to itself, and SQLite's busy timeout does not
        cover that switch, so another connection opening it at the same moment is waited for here."""
        deadline = time.monotonic() + 30.0
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"catalog {self.path} is from a newer sba-desktop (schema {version})")
        if version == SCHEMA_VERSION:
            return
        # Two connections may open a new catalog at once (the window and its loader thread): the
        # version is read again under the write lock, so only one of them migrates. One
        # transaction for all steps: a killed migration leaves the old schema.
        with self.transaction():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in statements(MIGRATIONS[v]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={v}")

    def transaction(self):
        return _Tx(self.db)

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key=?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ folders
    def folders(self) -> list[str]:
        return [dec(r[0]) for r in self.db.execute("SELECT path FROM folders ORDER BY path")]

    def add_folder(self, path: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO folders(path, added) VALUES (?, ?)", (enc(path), time.time()))

    def remove_folder(self, path: str) -> list[int]:
        """Forget a folder and its photos; returns the removed photo ids. Photos another library
        folder still holds (a watched parent of a category folder) stay, with their labels."""
        prefix = enc(path.rstrip(os.sep) + os.sep)
        holders = [enc(f.rstrip(os.sep) + os.sep) for f in self.folders()
                   if f != path and (path + os.sep).startswith(f.rstrip(os.sep) + os.sep)]
        ids = [pid for pid, p in self.db.execute(
            "SELECT id, path FROM photos WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))
            if not any(p.startswith(h) for h in holders)]
        with self.transaction():
            self.db.execute("DELETE FROM folders WHERE path=?", (enc(path),))
            self._delete_ids(ids)
        return ids

    def _delete_ids(self, ids: list[int]) -> None:
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM photos WHERE id IN ({marks})", chunk)

    # ------------------------------------------------------------------ photos
    def photos_under(self, folder: str) -> dict[str, PhotoRow]:
        prefix = enc(folder.rstrip(os.sep) + os.sep)
        cur = self.db.execute(
            "SELECT id, path, size, mtime_ns, fingerprint, state, reason, model_id FROM photos "
            "WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))
        return {dec(r[1]): PhotoRow(r[0], dec(r[1]), *r[2:]) for r in cur}

    def photo(self, photo_id: int) -> PhotoRow | None:
        r = self.db.execute("SELECT id, path, size, mtime_ns, fingerprint, state, reason, model_id "
                            "FROM photos WHERE id=?", (photo_id,)).fetchone()
        return PhotoRow(r[0], dec(r[1]), *r[2:]) if r else None

    def photo_id(self, path: str) -> int | None:
        r = self.db.execute("SELECT id FROM photos WHERE path=?", (enc(path),)).fetchone()
        return r[0] if r else None

    def taken(self, ids: Iterable[int]) -> dict[int, float]:
        """EXIF capture times of these photos (those that have one)."""
        out: dict[int, float] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(f"SELECT id, taken FROM photos WHERE taken IS NOT NULL AND id IN ({marks})",
                                       chunk).fetchall())
        return out

    def paths(self, ids: Iterable[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            for i, p in self.db.execute(f"SELECT id, path FROM photos WHERE id IN ({marks})", chunk):
                out[i] = dec(p)
        return out

    def upsert_pending(self, path: str, size: int, mtime_ns: int, fp: str | None) -> int:
        now = time.time()
        cur = self.db.execute(
            "INSERT INTO photos(path, size, mtime_ns, fingerprint, state, updated) VALUES (?,?,?,?, 'pending', ?) "
            "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
            "fingerprint=excluded.fingerprint, state='pending', reason=NULL, vector=NULL, model_id=NULL, "
            "signature=NULL, taken=NULL, camera=NULL, format=NULL, updated=excluded.updated RETURNING id", (enc(path), size, mtime_ns, fp, now))
        pid = cur.fetchone()[0]
        self.db.execute("DELETE FROM staged WHERE photo_id=?", (pid,))  # its content changed
        self.db.execute("DELETE FROM windows WHERE photo_id=?", (pid,))
        self.db.execute("DELETE FROM compared WHERE a=? OR b=?", (pid, pid))
        return pid

    def move_photo(self, photo_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        self.db.execute("UPDATE photos SET path=?, size=?, mtime_ns=?, updated=? WHERE id=?",
                        (enc(new_path), size, mtime_ns, time.time(), photo_id))

    def delete_photos(self, ids: list[int]) -> None:
        self._delete_ids(ids)

    def usable_ids(self) -> list[int]:
        """Photos that are or can be encoded (everything not skipped)."""
        return [r[0] for r in self.db.execute("SELECT id FROM photos WHERE state != 'skipped' ORDER BY id")]

    def pending_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM photos WHERE state='pending' ORDER BY id")]

    def store_results(self, indexed: list[tuple], skipped: list[tuple[int, str]], model_id: str,
                      looks: list[tuple] = ()) -> None:
        """One transaction for a batch: (id, vector, width, height[, detector peaks]) stored as
        float16, skip reasons, and the photos' looks (library/encoding.py `Looks`)."""
        now = time.time()

        def peaks(row: tuple):
            return row[4].astype(np.float16).tobytes() if len(row) > 4 and row[4] is not None else None
        with self.transaction():
            self.store_looks(looks)
            self.db.executemany(
                "UPDATE photos SET state='indexed', reason=NULL, model_id=?, vector=?, width=?, height=?, "
                "peaks=?, updated=? WHERE id=?",
                [(model_id, r[1].astype(np.float16).tobytes(), r[2], r[3], peaks(r), now, r[0]) for r in indexed])
            self.db.executemany(
                "UPDATE photos SET state='skipped', reason=?, model_id=NULL, vector=NULL, updated=? WHERE id=?",
                [(reason, now, i) for i, reason in skipped])

    def store_looks(self, looks: Iterable[tuple]) -> None:
        """(photo id, Looks) pairs: the duplicate finder's facts of each photo."""
        self.db.executemany(
            "UPDATE photos SET signature=?, signature_width=?, taken=?, camera=?, format=? WHERE id=?",
            [(lk.signature.tobytes(), lk.signature.shape[1], lk.taken, lk.camera, lk.fmt, pid) for pid, lk in looks])

    def compared(self) -> dict[tuple[int, int], float]:
        """Pairs of photos already compared as pictures (photo ids, smaller first) -> agreement."""
        return {(a, b): v for a, b, v in self.db.execute("SELECT a, b, agreement FROM compared")}

    def store_compared(self, rows: Iterable[tuple[int, int, float]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO compared(a, b, agreement) VALUES (?, ?, ?)", rows)

    def forget_compared(self) -> None:
        self.db.execute("DELETE FROM compared")

    def looks_of_indexed(self, model_id: str) -> Iterator[LooksRow]:
        """Every indexed photo of this model, with its looks (signature None when not read yet)."""
        for r in self.db.execute(
                "SELECT id, path, size, mtime_ns, width, height, signature, signature_width, taken, camera, format "
                "FROM photos WHERE state='indexed' AND model_id=? ORDER BY id", (model_id,)):
            sig = None
            if r[6] is not None and r[7]:
                sig = np.frombuffer(r[6], np.uint8).reshape(-1, r[7])
            yield LooksRow(r[0], dec(r[1]), *r[2:6], sig, *r[7:])

    def reset_vectors(self) -> None:
        """Every photo back to pending (a new model will encode them)."""
        self.db.execute("UPDATE photos SET state='pending', vector=NULL, model_id=NULL, peaks=NULL "
                        "WHERE state IN ('indexed', 'pending')")

    def strongest_peaks(self, model_id: str, detectors: Sequence[int], top: int
                        ) -> dict[int, list[tuple[int, str, float, float, float]]]:
        """For each detector position, the `top` photos where it fires most: (id, path, response,
        y, x), strongest first. One pass over every indexed photo's peaks (about 0.15 KB each)
        serves all the detectors asked for."""
        ids, paths, peaks = [], [], []
        for pid, path, blob in self.db.execute(
                "SELECT id, path, peaks FROM photos WHERE state='indexed' AND model_id=? AND peaks IS NOT NULL",
                (model_id,)):
            ids.append(pid)
            paths.append(path)
            peaks.append(blob)
        out: dict[int, list[tuple[int, str, float, float, float]]] = {d: [] for d in detectors}
        if not ids:
            return out
        width = min(len(b) for b in peaks) // 6  # detectors per photo (3 float16 each)
        table = np.frombuffer(b"".join(b[:width * 6] for b in peaks), np.float16).reshape(len(ids), width, 3)
        for d in detectors:
            if d >= width:
                continue
            response = table[:, d, 0].astype(np.float32)
            best = np.argsort(-response, kind="stable")[:top]
            out[d] = [(int(ids[i]), dec(paths[i]), float(response[i]), float(table[i, d, 1]), float(table[i, d, 2]))
                      for i in best]
        return out

    def vectors(self, model_id: str, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, float32 vectors) of the indexed photos of one model, unit length again (they are
        kept as float16, whose rounding leaves norms up to ~3e-5 off 1: scores would be too)."""
        if ids is None:
            rows = self.db.execute("SELECT id, vector FROM photos WHERE state='indexed' AND model_id=? "
                                   "ORDER BY id", (model_id,)).fetchall()
        else:
            rows = []
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                rows += self.db.execute(f"SELECT id, vector FROM photos WHERE state='indexed' AND model_id=? "
                                        f"AND id IN ({marks})", (model_id, *chunk)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        out_ids = np.array([r[0] for r in rows], np.int64)
        vecs = np.stack([np.frombuffer(r[1], np.float16) for r in rows]).astype(np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return out_ids, vecs / np.where(norms > 0, norms, 1.0)

    def indexed_ids(self, model_id: str) -> set[int]:
        return {r[0] for r in self.db.execute(
            "SELECT id FROM photos WHERE state='indexed' AND model_id=?", (model_id,))}

    def skipped(self) -> list[tuple[str, str]]:
        return [(dec(p), r) for p, r in self.db.execute(
            "SELECT path, reason FROM photos WHERE state='skipped' ORDER BY path")]

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "indexed": 0, "skipped": 0}
        for state, n in self.db.execute("SELECT state, count(*) FROM photos GROUP BY state"):
            out[state] = n
        out["photos"] = sum(out.values())
        return out

    # ------------------------------------------------------------------ staged (a refit in progress)
    def stage_results(self, indexed: list[tuple], skipped: list[tuple[int, str]], model_id: str) -> None:
        """Vectors of the model being prepared, (id, vector, width, height, peaks); photos that
        fail now are skipped as in any indexing (they leave the active index at the switch)."""
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO staged(photo_id, model_id, vector, peaks, width, height) VALUES (?,?,?,?,?,?)",
                [(r[0], model_id, r[1].astype(np.float16).tobytes(),
                  None if r[4] is None else r[4].astype(np.float16).tobytes(), r[2], r[3]) for r in indexed])
            self.db.executemany(
                "UPDATE photos SET state='skipped', reason=?, model_id=NULL, vector=NULL, updated=? WHERE id=?",
                [(reason, time.time(), i) for i, reason in skipped])

    def unstaged_ids(self, model_id: str) -> list[int]:
        """Photos with a vector of the active model but none yet of `model_id`, or still pending."""
        return [r[0] for r in self.db.execute(
            "SELECT p.id FROM photos p LEFT JOIN staged s ON s.photo_id = p.id AND s.model_id = ? "
            "WHERE p.state IN ('indexed', 'pending') AND s.photo_id IS NULL ORDER BY p.id", (model_id,))]

    def staged_count(self, model_id: str) -> int:
        return self.db.execute("SELECT count(*) FROM staged WHERE model_id=?", (model_id,)).fetchone()[0]

    def promote_staged(self, model_id: str, file: str, description: str, dims: int) -> None:
        """The switch, in one transaction: staged vectors become the photos' vectors and the
        staged model the active one (photos left without one go back to pending)."""
        with self.transaction():
            self.db.execute(
                "UPDATE photos SET state='indexed', reason=NULL, model_id=s.model_id, vector=s.vector, "
                "peaks=s.peaks, width=s.width, height=s.height, updated=? FROM staged s "
                "WHERE s.photo_id = photos.id AND s.model_id = ?", (time.time(), model_id))
            self.db.execute("UPDATE photos SET state='pending', vector=NULL, model_id=NULL, peaks=NULL "
                            "WHERE state='indexed' AND model_id IS NOT ?", (model_id,))
            self.register_model(model_id, file, description, dims)
            self.drop_staged()

    def drop_staged(self) -> None:
        """No refit in progress any more: its staged vectors go."""
        with self.transaction():
            self.db.execute("DELETE FROM staged")
            self.set_meta("staged_model", None)

    # ------------------------------------------------------------------ models
    def register_model(self, model_id: str, file: str, description: str, dims: int,
                       active: bool = True) -> None:
        self.db.execute("INSERT OR REPLACE INTO models(id, file, description, dims, created) VALUES (?,?,?,?,?)",
                        (model_id, file, description, dims, time.time()))
        self.set_meta("active_model" if active else "staged_model", model_id)

    def staged_model(self) -> ModelRecord | None:
        """The model a refit in progress is preparing, or None."""
        return self._model_row("staged_model")

    def active_model(self) -> ModelRecord | None:
        return self._model_row("active_model")

    def _model_row(self, key: str) -> ModelRecord | None:
        """The model the meta key names, or None."""
        mid = self.get_meta(key)
        if not mid:
            return None
        r = self.db.execute("SELECT id, file, description, dims FROM models WHERE id=?", (mid,)).fetchone()
        return ModelRecord(*r) if r else None

    # ------------------------------------------------------------------ categories and labels
    def category_id(self, name: str, root: str | None = None) -> int:
        self.db.execute("INSERT OR IGNORE INTO categories(name, root) VALUES (?, ?)",
                        (name, enc(root) if root else None))
        return self.db.execute("SELECT id FROM categories WHERE name=?", (name,)).fetchone()[0]

    def categories(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM categories ORDER BY name")]

    def set_label(self, photo_id: int, category: str, source: str, confidence: float | None,
                  accepted: bool, abstained: bool = False) -> None:
        """abstained: the photo fits none of the categories; `category` is only the closest one."""
        cid = self.category_id(category)
        self.db.execute(
            "INSERT INTO labels(photo_id, category_id, source, confidence, accepted, updated, abstained) "
            "VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(photo_id, source) DO UPDATE SET category_id=excluded.category_id, "
            "confidence=excluded.confidence, accepted=excluded.accepted, updated=excluded.updated, "
            "abstained=excluded.abstained",
            (photo_id, cid, source, confidence, int(accepted), time.time(), int(abstained)))

    def examples(self) -> list[tuple[int, str]]:
        """Labelled examples the classifier learns from: folder labels and accepted labels."""
        return [(pid, name) for pid, name in self.db.execute(
            "SELECT l.photo_id, c.name FROM labels l JOIN categories c ON c.id=l.category_id "
            "WHERE l.accepted=1 AND l.source IN ('folder', 'user', 'auto') ORDER BY l.photo_id")]

    def labels(self, source: str | None = None, accepted: bool | None = None
               ) -> list[LabelRow]:
        q = ("SELECT l.photo_id, c.name, l.source, l.confidence, l.accepted, l.abstained FROM labels l "
             "JOIN categories c ON c.id=l.category_id WHERE 1=1")
        args: list = []
        if source:
            q += " AND l.source=?"
            args.append(source)
        if accepted is not None:
            q += " AND l.accepted=?"
            args.append(int(accepted))
        return [LabelRow(a, b, c, d, bool(e), bool(f))
                for a, b, c, d, e, f in self.db.execute(q + " ORDER BY l.photo_id", args)]

    def accept_labels(self, min_confidence: float) -> int:
        cur = self.db.execute("UPDATE labels SET accepted=1, updated=? WHERE source='auto' AND accepted=0 "
                              "AND abstained=0 AND confidence>=?", (time.time(), min_confidence))
        return cur.rowcount

    def accept_label(self, photo_id: int, accepted: bool) -> None:
        if accepted:
            # accepting a "none of these" proposal means the user chose its closest category
            self.db.execute("UPDATE labels SET accepted=1, abstained=0, updated=? WHERE photo_id=? AND source='auto'",
                            (time.time(), photo_id))
        else:
            self.db.execute("DELETE FROM labels WHERE photo_id=? AND source='auto'", (photo_id,))


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (nestable: inner ones are no-ops)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.outer = False

    def __enter__(self):
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if self.outer:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A catalog that cannot be written: read as it is (mode=ro uses its WAL when SQLite can;
    on a read-only disk without its -shm file only `immutable` opens it)."""
    uri = Path(path).resolve().as_uri()
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:  # changes not yet in the file: SQLite must read the WAL
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30.0, isolation_level=None,
                                 check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            pass
    # nothing can write it: read as it is, and write nothing (not even SQLite's -shm file)
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=30.0, isolation_level=None,
                           check_same_thread=False)


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
