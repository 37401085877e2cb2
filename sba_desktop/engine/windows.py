"""Windows of a photo's feature map: parts of the photo with their own vector (issue 34).

A photo's whole-photo vector is mostly its background when the object searched for fills a fifth
of it. Its windows are squares of WINDOW_CELLS x WINDOW_CELLS cells of the map of the photo read
at WINDOW_SIDE px (twice the search's side), each described as the model describes a whole photo
(the library's own model: the same SBA aggregation and the same PCA as its 224 px vectors), so a
window holding the object matches the query's ordinary vector. Measured (docs/quality.md, "Looking
inside photos"): UKBench objects pasted at ~280 x 210 px into 640 x 480 everyday photos, among
5,895 everyday photos, are in the search's top 10 or the band of best windows for 91 % of the
queries (the search alone: 7 %).

A photo keeps its WINDOWS_KEPT most active windows (the largest sum of the map inside: chosen
without any query) as int8 vectors with one scale each: 8.3 KB a photo at 512 dims.
"""
from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sba_desktop.engine.sba import DescriptorModel

WINDOW_SIDE = 448    # the long side the library photo is read at for its windows
WINDOW_CELLS = 3     # a window is this many cells square (at 448 px a cell is ~32 px)
WINDOW_STRIDE = 2    # cells between windows
WINDOWS_KEPT = 16    # the most active windows a photo keeps


@dataclass
class PhotoWindows:
    """One photo's kept windows: int8 vectors (n, dims), their scales (n,) (vector ~= int8 x
    scale, unit length), and their places (n, 4) as x, y, w, h fractions of the photo."""
    vectors: np.ndarray
    scales: np.ndarray
    boxes: np.ndarray


def window_places(h: int, w: int, cells: int = WINDOW_CELLS, stride: int = WINDOW_STRIDE) -> list[tuple[int, int]]:
    """Top-left cells (y, x) of the windows of an h x w map: every `stride` cells, and the last
    row and column flush with the edge (so no part of the photo is left out)."""
    ys = sorted(set(range(0, max(h - cells + 1, 1), stride)) | {max(h - cells, 0)})
    xs = sorted(set(range(0, max(w - cells + 1, 1), stride)) | {max(w - cells, 0)})
    return [(y, x) for y in ys for x in xs]


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float vectors (n, d) -> int8 (n, d) and a scale per vector (n,): v ~= q x scale."""
    v = np.asarray(vectors, np.float32)
    scales = np.abs(v).max(axis=1) / 127.0
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    return np.round(v / scales[:, None]).astype(np.int8), scales


def photo_windows(model: DescriptorModel, maps: Sequence[np.ndarray], kept: int = WINDOWS_KEPT) -> list[PhotoWindows]:
    """The kept windows of each map (C, H, W), of any shapes, in order."""
    out: list[PhotoWindows | None] = [None] * len(maps)
    by_shape: dict[tuple, list[int]] = {}
    for i, f in enumerate(maps):
        by_shape.setdefault(tuple(f.shape), []).append(i)
    for idx in by_shape.values():
        for j in range(0, len(idx), 64):  # 64 photos x 16 windows x 32,000 raw dims: 130 MB at once
            part = idx[j:j + 64]
            for i, w in zip(part, _windows_of_batch(model, np.stack([np.asarray(maps[i], np.float32) for i in part]), kept)):
                out[i] = w
    return out


def _windows_of_batch(model: DescriptorModel, f: np.ndarray, kept: int) -> list[PhotoWindows]:
    """photo_windows of a batch of one shape (B, C, H, W) float32."""
    b, _, h, w = f.shape
    places = window_places(h, w)
    energy = f.sum(axis=1)                                            # (B, H, W)
    activity = np.stack([energy[:, y:y + WINDOW_CELLS, x:x + WINDOW_CELLS].sum(axis=(1, 2)) for y, x in places], 1)
    keep = np.argsort(-activity, axis=1, kind="stable")[:, :kept]     # (B, k)
    crops = np.stack([f[i, :, y:y + WINDOW_CELLS, x:x + WINDOW_CELLS]
                      for i in range(b) for y, x in (places[j] for j in keep[i])])
    vectors = model.reduce(model.raw_vectors(crops)).reshape(b, keep.shape[1], -1)
    out = []
    for i in range(b):
        q, s = quantize(vectors[i])
        boxes = np.array([(x / w, y / h, min(WINDOW_CELLS, w - x) / w, min(WINDOW_CELLS, h - y) / h)
                          for y, x in (places[j] for j in keep[i])], np.float32)
        out.append(PhotoWindows(q, s, boxes))
    return out


# MatMulInteger(windows int8 (n, dims), query int8 (dims, 1)) -> int32 (n, 1), as onnx.helper makes it
# (tests/test_inside.py builds it again and compares): onnxruntime's int8 kernels read a table of
# windows ~4x faster than numpy converting it to float (160,000 windows: 36 vs 147 ms, measured).
INT8_SCORES_ONNX = base64.b64decode(
    "CAgSC3NiYS1kZXNrdG9wOo4BCicKB3dpbmRvd3MKBXF1ZXJ5EgZzY29yZXMiDU1hdE11bEludGVnZXISC2ludDhfc2NvcmVzWh4KB3dpbmRv"
    "d3MSEwoRCAMSDQoDEgFuCgYSBGRpbXNaGwoFcXVlcnkSEgoQCAMSDAoGEgRkaW1zCgIIAWIZCgZzY29yZXMSDwoNCAYSCQoDEgFuCgIIAUIE"
    "CgAQDQ==")
_scorer = None
_scorer_lock = threading.Lock()


def _int8_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """int32 dot products of int8 rows with an int8 query (n,), by onnxruntime."""
    global _scorer
    with _scorer_lock:
        if _scorer is None:
            import onnxruntime as ort

            _scorer = ort.InferenceSession(INT8_SCORES_ONNX, providers=["CPUExecutionProvider"])
    return _scorer.run(None, {"windows": vectors, "query": query.reshape(-1, 1)})[0][:, 0]


class WindowTable:
    """Every window of a library in int8, searched for the best window of each photo against a
    query vector. A large table is read in two passes: the first FIRST_PASS_DIMS dims of every
    window (the PCA's strongest: a quarter of the bytes) with the query rounded to int8 (int8
    kernels), then the whole vector of the SHORTLIST windows that lead; the candidates that can
    make the answer are scored exactly, so the scores returned and their order are the exact ones.
    The vectors are kept as those two blocks of columns (`head`, `tail`), each one array."""

    FIRST_PASS_DIMS = 128
    SHORTLIST = 32768  # windows read whole after the first pass (at least)

    def __init__(self, photo_ids: np.ndarray, vectors: np.ndarray, scales: np.ndarray, boxes: np.ndarray):
        self.photo_ids = np.asarray(photo_ids, np.int64)   # (n windows,) the photo of each window
        v = np.asarray(vectors, np.int8)
        self.head = np.ascontiguousarray(v[:, :self.FIRST_PASS_DIMS])
        self.tail = np.ascontiguousarray(v[:, self.FIRST_PASS_DIMS:])
        self.scales = np.asarray(scales, np.float32)
        self.boxes = np.asarray(boxes, np.float32)

    @classmethod
    def of(cls, photo_ids: Sequence[int], windows: Sequence[PhotoWindows], dims: int) -> "WindowTable":
        """The table of photos' windows (one PhotoWindows per photo id), its two blocks of columns
        gathered straight from them: no whole copy of the table on the way (800 MB at 100,000)."""
        k = cls.FIRST_PASS_DIMS
        table = cls.__new__(cls)
        table.photo_ids = np.concatenate([np.full(len(w.scales), p, np.int64) for p, w in zip(photo_ids, windows)]
                                         + [np.zeros(0, np.int64)])
        table.head = np.concatenate([w.vectors[:, :k] for w in windows] + [np.zeros((0, min(k, dims)), np.int8)])
        table.tail = np.concatenate([w.vectors[:, k:] for w in windows] + [np.zeros((0, max(dims - k, 0)), np.int8)])
        table.scales = np.concatenate([w.scales for w in windows] + [np.zeros(0, np.float32)]).astype(np.float32)
        table.boxes = np.concatenate([w.boxes for w in windows] + [np.zeros((0, 4), np.float32)]).astype(np.float32)
        return table

    def __len__(self) -> int:
        return len(self.photo_ids)

    def exact_scores(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """These windows' similarities to the query (float)."""
        q = np.asarray(query, np.float32)
        k = self.head.shape[1]
        return (self.head[rows].astype(np.float32) @ q[:k] + self.tail[rows].astype(np.float32) @ q[k:]) \
            * self.scales[rows]

    def _rough(self, rows: np.ndarray | None, q8: np.ndarray, part: str) -> np.ndarray:
        """int8 scores of windows (all when rows is None) with the int8 query, over the head's
        dims or the whole vector; not yet scaled."""
        k = self.head.shape[1]
        head = self.head if rows is None else self.head[rows]
        out = _int8_scores(head, q8[:k]).astype(np.float32)
        if part == "whole" and self.tail.shape[1]:
            out += _int8_scores(self.tail if rows is None else self.tail[rows], q8[k:])
        return out

    def best(self, query: np.ndarray, top: int, exclude: set[int] = frozenset()
             ) -> list[tuple[int, float, tuple[float, float, float, float]]]:
        """The `top` photos whose best window is most like the query: (photo id, score, the
        window's x, y, w, h as fractions of the photo), best first; `exclude` photo ids left out."""
        if len(self) == 0 or top <= 0:
            return []
        q8 = quantize(np.asarray(query, np.float32)[None])[0][0]
        # enough windows to hold `top` photos besides the excluded ones even if every one of them
        # has all its windows first, and a margin for the query's rounding
        m = 2 * (top + len(exclude)) * WINDOWS_KEPT
        shortlist = max(self.SHORTLIST, 8 * m)
        if len(self) > shortlist:  # the first pass: a quarter of the bytes of every window
            first = self._rough(None, q8, "head") * self.scales
            rows = np.argpartition(-first, shortlist - 1)[:shortlist]
        else:
            rows = np.arange(len(self))
        rough = self._rough(rows, q8, "whole") * self.scales[rows]
        if m < len(rows):
            rows = rows[np.argpartition(-rough, m - 1)[:m]]
        exact = self.exact_scores(rows, query)
        order = np.argsort(-exact, kind="stable")
        out, seen = [], set(exclude)
        for k in order:  # windows best first: a photo's first window is its best
            i = rows[k]
            pid = int(self.photo_ids[i])
            if pid in seen:
                continue
            seen.add(pid)
            out.append((pid, float(exact[k]), tuple(float(v) for v in self.boxes[i])))
            if len(out) >= top:
                break
        return out
