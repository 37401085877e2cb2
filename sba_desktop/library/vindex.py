"""The HNSW vector index (hnswlib): ids are photo ids, inner product on L2-normalised vectors.

The module comes from chroma-hnswlib's binary wheels (Python 3.11/3.12) or nmslib's hnswlib
(3.13): the API used here is common to both; their files differ, and a file the installed build
cannot read is rebuilt from the catalog like any torn file (Library._open_index).

The index is a derived file: the catalog holds every vector, so the index can
always be rebuilt. hnswlib's own loader checks only the file's size and its native code crashes
on damaged link lists, so every file is read here first (`check_file`: the header, every link
list, every level) and refused with a reason before hnswlib sees it; the library also compares
it with the checksum written at the save, and with the catalog. A save goes into a fresh
temporary file, is checked the same way (hnswlib does not report write errors: a full disk
leaves a short file) and only then replaces the old index.
"""
from __future__ import annotations

import errno
import math
import mmap
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import hnswlib
import numpy as np

from sba_desktop.errors import disk_error_line
from sba_desktop.files import DiskError, replace_file

# Build/search parameters: measured in `sba bench` (recall@10 >= 0.98 at 1M vectors).
HNSW_M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 96

# hnswlib's saveIndex: 6 size_t, int maxlevel, uint32 entry point, 3 size_t, double mult, size_t ef
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")
_DELETE_MARK = 0x01  # in the third byte of an element's level-0 list header
_MAX_LEVEL = 64      # mult = 1/ln(M) gives levels far below this for any count of photos


def _lengths_block() -> bool:
    """Whether the installed hnswlib writes a float per element after level 0 (chroma's fork
    does, nmslib's does not): each build reads only its own layout."""
    from importlib import metadata

    try:
        files = metadata.distribution("chroma-hnswlib").files or []
    except metadata.PackageNotFoundError:
        return False
    return any(str(f).startswith("hnswlib.") for f in files)


_LENGTHS = _lengths_block()


class IndexFileError(ValueError):
    """An index file that must not be handed to hnswlib (torn, garbled, foreign); str() says why."""


@dataclass(frozen=True)
class IndexFileFacts:
    count: int            # elements in the file (live and deleted)
    live: frozenset[int]  # labels not marked deleted
    size: int             # bytes
    crc: int              # zlib.crc32 of the whole file


def file_checksum(path: str | Path) -> tuple[int, int]:
    """(size, crc32) of a file, read in pieces."""
    crc, size = 0, 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return size, crc


def check_file(path: str | Path, dim: int) -> IndexFileFacts:
    """Read an index file through and refuse (IndexFileError) anything hnswlib could crash on:
    a header that does not fit `dim` and M, a size other than the lists it declares, a link to an
    element that does not exist or to one without that level, an entry point off its level."""
    with open(path, "rb") as fh:  # mapped, not read: a million photos' index is gigabytes
        size = os.fstat(fh.fileno()).st_size
        if size < _HEADER.size:
            raise IndexFileError(f"{size} bytes: shorter than an index header")
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    (offset0, max_elements, count, per_element, label_offset, offset_data, max_level, entry,
     max_m, max_m0, m, mult, _ef) = _HEADER.unpack_from(data, 0)
    links0 = max_m0 * 4 + 4
    if (offset0 != 0 or not 0 < m <= 1024 or max_m != m or max_m0 != 2 * m or offset_data != links0
            or label_offset != links0 + dim * 4 or per_element != label_offset + 8 or count > max_elements
            or not -1 <= max_level <= _MAX_LEVEL or not math.isfinite(mult)):
        raise IndexFileError("its header does not describe an index of these vectors")
    body = _HEADER.size + count * per_element + (4 * count if _LENGTHS else 0)
    if len(data) < body + 4 * count:
        raise IndexFileError(f"{len(data)} bytes: the file ends inside its elements")
    if count == 0:
        if len(data) != body:
            raise IndexFileError("an empty index with bytes after its header")
        return IndexFileFacts(0, frozenset(), len(data), zlib.crc32(data))
    if not 0 <= entry < count or max_level < 0:
        raise IndexFileError("its entry point is not one of its elements")
    rows = np.frombuffer(data, np.uint8, count * per_element, _HEADER.size).reshape(count, per_element)
    head0 = np.ascontiguousarray(rows[:, :4])
    n0 = head0[:, :2].copy().view("<u2")[:, 0].astype(np.int64)
    deleted = (head0[:, 2] & _DELETE_MARK).astype(bool)
    if (n0 > max_m0).any():
        raise IndexFileError("an element has more neighbours than the index allows")
    ids0 = np.ascontiguousarray(rows[:, 4:links0]).view("<u4").reshape(count, max_m0)
    used0 = np.arange(max_m0)[None, :] < n0[:, None]
    if (ids0[used0] >= count).any():
        raise IndexFileError("a link points past the last element")
    labels = np.ascontiguousarray(rows[:, label_offset:label_offset + 8]).view("<u8")[:, 0]
    # the upper levels: one size and that many bytes per element, in element order
    per_level = max_m * 4 + 4
    levels = np.zeros(count, np.int64)
    upper: list[tuple[int, int, int]] = []  # (element, level, offset of its list)
    pos = body
    unpack = struct.Struct("<I").unpack_from
    for i in range(count):
        if pos + 4 > len(data):
            raise IndexFileError(f"{len(data)} bytes: the file ends inside its upper levels")
        nbytes = unpack(data, pos)[0]
        pos += 4
        if nbytes:
            if nbytes % per_level or nbytes // per_level > max_level or pos + nbytes > len(data):
                raise IndexFileError("an element's upper levels do not fit the file")
            levels[i] = nbytes // per_level
            upper.extend((i, lv, pos + (lv - 1) * per_level) for lv in range(1, levels[i] + 1))
            pos += nbytes
    if pos != len(data):
        raise IndexFileError(f"{len(data) - pos} bytes after its last element")
    if levels[entry] != max_level:
        raise IndexFileError("its entry point is not on the top level")
    for i, lv, at in upper:
        n = unpack(data, at)[0] & 0xFFFF
        if n > max_m:
            raise IndexFileError("an element has more neighbours than the index allows")
        ids = np.frombuffer(data, "<u4", n, at + 4).astype(np.int64)
        if n and ((ids >= count).any() or (levels[ids] < lv).any()):
            raise IndexFileError("a link points to an element without that level")
    if len(np.unique(labels)) != count:
        raise IndexFileError("two elements carry one photo id")
    live = frozenset(int(v) for v in labels[~deleted])
    return IndexFileFacts(count, live, len(data), zlib.crc32(data))


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
    def load(cls, path: str | Path, dim: int, checksum: tuple[int, int] | None = None) -> "VectorIndex":
        """The index in `path`, read through first (check_file) and compared with the (size,
        crc32) written at its save when given; IndexFileError says what is wrong with it."""
        facts = check_file(path, dim)
        if checksum is not None and (facts.size, facts.crc) != tuple(checksum):
            raise IndexFileError("its bytes differ from the checksum saved with it")
        self = cls.__new__(cls)
        self.dim = dim
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.load_index(str(path), max_elements=0)
        self._index.set_ef(EF_SEARCH)
        self._live = set(facts.live)
        return self

    def save(self, path: str | Path) -> tuple[int, int]:
        """Save into a fresh temporary file, check it through (check_file: a short or torn write
        is refused, the old file stays) and only then replace `path`; returns its (size, crc32)."""
        facts: list[IndexFileFacts] = []

        def verify(tmp: str) -> None:
            f = check_file(tmp, self.dim)
            if f.live != frozenset(self._live):
                raise IndexFileError("the saved file does not hold the index's photos")
            facts.append(f)
        path = Path(path)
        need = self._index.get_current_count() * (self.dim * 4 + 8 + HNSW_M * 8 + 8) + 4096
        try:
            replace_file(path, lambda tmp: self._index.save_index(tmp), "the search index", verify, need)
        except IndexFileError:
            free = _free_bytes(path.parent)
            if free is not None and free < need:  # hnswlib wrote a short file without a word
                raise DiskError(disk_error_line(OSError(errno.ENOSPC, "No space left on device"), path.parent,
                                                "the search index", need)) from None
            raise
        return facts[0].size, facts[0].crc

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


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
