"""Search that uses the library's neighbourhood: adaptive database-side augmentation + alpha-QE.

Plain nearest-neighbour search ranks photos by q . x. Averaging each vector with
its nearest neighbours (database-side augmentation, DBA) and the query with its
own (query expansion, QE) pulls views of one place or object together, but a
fixed number of neighbours drags unrelated photos into small groups (a pair of
photos has one true neighbour, not ten). So the expansion is adaptive:

- at most NEIGHBOURS (2) other photos are used, and only those whose similarity
  is at least RELATIVE (0.7) times that of the nearest one: a clear match is used
  alone, a crowd of near-equals is used together;
- each is weighted by similarity ** ALPHA (0.5), the vector itself by 1;
- a vector equal to the query (similarity >= SAME_PHOTO: the photo itself, or
  a byte-identical copy) is never its own neighbour, and always the first result.

The same rule makes every database photo's augmented vector and, applied twice,
the query's: once against the plain vectors (the query's own augmented vector),
then against the augmented vectors of the candidates (alpha-QE on a DBA
database). Augmented vectors are made at search time for a shortlist of
candidates only, so the index keeps plain vectors and adding a photo changes
nothing stored. Measured in docs/quality.md (paris-dev 0.912 -> 0.952 mAP,
ukbench-dev N-S 3.914 -> 3.978, pairs not hurt).

Numpy only: the index behind `VectorSource` is hnswlib in the library and
brute force in `sba eval`, which therefore measures exactly what `sba search` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

NEIGHBOURS = 2
RELATIVE = 0.7
ALPHA = 0.5
SAME_PHOTO = 0.9999
SHORTLIST = 200     # candidates re-ranked per search (at least the number of results asked for)


class VectorSource(Protocol):
    """What the expansion needs from an index of L2-normalised vectors."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, similarities), best first, shape (n_queries, <= k); ids < 0 pad."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids`, (len(ids), dims)."""
        ...


def expand(vectors: np.ndarray, neighbours: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """L2(x + sum_j w_j n_j) for each row; `neighbours` (n, k, d) and `sims` (n, k) best first,
    the photo itself already left out (-inf pads missing neighbours)."""
    x = np.atleast_2d(np.asarray(vectors, np.float32))
    s = np.asarray(sims, np.float64)
    if s.shape[1] == 0:
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    w = expansion_weights(s)
    out = x + np.einsum("nk,nkd->nd", w, np.asarray(neighbours, np.float32))
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def expansion_weights(sims: np.ndarray) -> np.ndarray:
    """Each neighbour's weight in the expanded vector (0 for those the adaptive rule leaves out),
    (n, k) from similarities (n, k) best first."""
    s = np.asarray(sims, np.float64)
    use = np.isfinite(s) & (s > 0) & (s >= RELATIVE * s[:, :1])
    return np.where(use, np.clip(s, 0, None) ** ALPHA, 0.0).astype(np.float32)


def _others(ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k results that are neither padding nor the photo itself, per row."""
    sims = np.where((ids < 0) | (sims >= SAME_PHOTO), -np.inf, sims.astype(np.float64))
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(sims, order, 1)


def augment(vectors: np.ndarray, source: VectorSource) -> np.ndarray:
    """Each vector expanded with its nearest other photos in `source` (the adaptive rule)."""
    x = np.atleast_2d(np.asarray(vectors, np.float32))
    ids, sims = source.search(x, NEIGHBOURS + 2)  # +2: the photo itself and one identical copy
    return _augment_found(x, ids, sims, source)


def _augment_found(x: np.ndarray, ids: np.ndarray, sims: np.ndarray, source: VectorSource) -> np.ndarray:
    """augment() once the nearest photos of x are known."""
    ids, sims = _others(ids, sims, NEIGHBOURS)
    found = np.isfinite(sims)
    nb = np.zeros((*ids.shape, x.shape[1]), np.float32)
    if found.any():
        nb[found] = source.vectors(ids[found])
    return expand(x, nb, sims)


class AugmentedVectors:
    """Augmented vectors of database photos, made on demand from each photo's nearest photos,
    which are kept between searches while the database is unchanged: ids and similarities only
    (~50 bytes a photo; the vectors are read from the index each time), so a library keeps them
    for every photo a search has touched. A new photo can be a kept photo's new nearest one without
    that photo being among the new one's nearest (neighbourhoods are not symmetric), so a changed
    database starts a new cache (the library drops it). Past `limit` photos it starts again too."""

    def __init__(self, source: VectorSource, limit: int = 500_000, all_vectors: bool = False):
        """all_vectors: make every photo's augmented vector once and keep them (sba eval, which
        re-ranks the whole collection for every query: n x dims floats held)."""
        self.source = source
        self.limit = limit
        self._near: dict[int, tuple[np.ndarray, np.ndarray]] = {}   # id -> (ids, sims), best first
        self._all: np.ndarray | None = None
        if all_vectors:
            n = len(source)  # type: ignore[arg-type]
            self._all = np.concatenate([augment(source.vectors(np.arange(i, min(n, i + 1024))), source)
                                        for i in range(0, n, 1024)])

    def __len__(self) -> int:
        return len(self._near)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        if self._all is not None:
            return self._all[ids]
        return self._make(ids)

    def _make(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros((0, 0), np.float32)
        x = self.source.vectors(ids)
        near_ids, near_sims = self.nearest(ids, x)
        return _augment_found(x, near_ids, near_sims, self.source)

    def nearest(self, ids: np.ndarray, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The nearest photos of each of `ids` the augmented vectors are made of (kept), as
        source.search would give them: (ids, sims), best first."""
        ids = np.asarray(ids, np.int64)
        x = self.source.vectors(ids) if x is None else x
        missing = [k for k, i in enumerate(ids) if int(i) not in self._near]
        if missing:
            if len(self._near) + len(missing) > self.limit:
                self._near.clear()
            found, sims = self.source.search(x[missing], NEIGHBOURS + 2)  # +2: itself and one copy
            for k, f, s in zip(missing, found, sims):
                self._near[int(ids[k])] = (f.astype(np.int64), s.astype(np.float32))
        width = NEIGHBOURS + 2
        near_ids = np.full((len(ids), width), -1, np.int64)
        near_sims = np.full((len(ids), width), -np.inf, np.float32)
        for row, i in enumerate(ids):
            f, s = self._near[int(i)]
            near_ids[row, :len(f)], near_sims[row, :len(s)] = f, s
        return near_ids, near_sims


@dataclass
class _Expansion:
    """What the default search decided for one query: its nearest photos, the shortlist with
    their augmented vectors, and the candidates it expanded with a second time."""
    q: np.ndarray            # (1, d) the plain query vector
    near: np.ndarray         # the query's nearest photos (ids, sims as searched)
    near_sims: np.ndarray
    q1: np.ndarray           # (1, d) the query's own augmented vector
    cand: np.ndarray         # shortlist ids
    xa: np.ndarray           # their augmented vectors
    nb: np.ndarray           # (1, k) positions in cand of the candidates q2 is expanded with
    nb_sims: np.ndarray
    q2: np.ndarray           # (1, d) the final query
    itself: np.ndarray       # ids of the query photo itself or identical copies


def _expand_query(query: np.ndarray, source: VectorSource, top: int, augmented: AugmentedVectors,
                  shortlist: int) -> _Expansion | None:
    q = np.atleast_2d(np.asarray(query, np.float32))
    near, near_sims = source.search(q, NEIGHBOURS + 2)
    itself = near[0][(near[0] >= 0) & (near_sims[0] >= SAME_PHOTO)]  # the query photo, identical copies
    q1 = _augment_found(q, near, near_sims, source)   # the query's own augmented vector
    ids, _ = source.search(q1, max(top, shortlist))
    cand = ids[0][ids[0] >= 0]
    if len(cand) == 0:
        return None
    xa = augmented(cand)
    sims = xa @ q1[0]
    nb, nb_sims = _others(np.arange(len(cand))[None], sims[None], NEIGHBOURS)
    q2 = expand(q1, xa[np.clip(nb, 0, None)], nb_sims)  # alpha-QE on the augmented database
    return _Expansion(q, near, near_sims, q1, cand, xa, nb, nb_sims, q2, itself)


def neighbourhood_search(query: np.ndarray, source: VectorSource, top: int,
                         augmented: AugmentedVectors | None = None,
                         shortlist: int = SHORTLIST) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of the `top` best photos for one query vector, best first."""
    augmented = AugmentedVectors(source) if augmented is None else augmented
    e = _expand_query(query, source, top, augmented, shortlist)
    if e is None:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = e.xa @ e.q2[0]
    # the query photo itself (or an identical copy) is its best match, whatever the expansion did
    same = np.isin(e.cand, e.itself)
    scores = np.where(same, 1.0, scores)
    order = np.lexsort((-scores, ~same))[:top]
    return e.cand[order].astype(np.int64), scores[order].astype(np.float32)


QUERY = -1  # the query's key among the photos a search score is split over (library ids are >= 0)


@dataclass
class SearchSplit:
    """A result's score in the default search split exactly over the photos it is made of: the
    final query and the result's augmented vector are each a weighted sum of plain vectors (the
    query's, the result's, their close matches'), so the score is a sum of weighted plain
    similarities over pairs of those photos; each pair's term is given half to each photo."""
    score: float                 # the default search's score of the result
    plain: float                 # the plain similarity of query and result
    result: int                  # the result's id
    parts: dict[int, float]      # photo id (QUERY for the query and its identical copies) -> its
                                 # part; the parts sum to score


def split_search_score(query: np.ndarray, result_id: int, source: VectorSource,
                       augmented: AugmentedVectors | None = None,
                       shortlist: int = SHORTLIST) -> SearchSplit | None:
    """How much of `result_id`'s default-search score each photo carries (None when the search
    would not reach it: it is not on the shortlist)."""
    augmented = AugmentedVectors(source) if augmented is None else augmented
    e = _expand_query(query, source, 1, augmented, shortlist)
    if e is None or result_id not in e.cand:
        return None

    vectors: dict[int, np.ndarray] = {QUERY: e.q[0]}  # each plain vector read once

    def vector(k: int) -> np.ndarray:
        if k not in vectors:
            vectors[k] = source.vectors(np.asarray([k]))[0]
        return vectors[k]

    plain = float(e.q[0] @ vector(result_id))
    if result_id in e.itself:
        return SearchSplit(1.0, plain, result_id, {QUERY: 0.5, result_id: 0.5})

    def members(key: int, near: np.ndarray, near_sims: np.ndarray) -> dict[int, float]:
        """An augmented vector as coefficients of plain vectors: L2(x + sum_j w_j n_j), the rule
        of _augment_found."""
        ids, sims = _others(near[None], near_sims[None], NEIGHBOURS)
        coef = {key: 1.0}
        for i, wi in zip(ids[0], expansion_weights(sims)[0]):
            if wi > 0:
                coef[int(i)] = coef.get(int(i), 0.0) + float(wi)
        n = float(np.linalg.norm(sum(c * vector(k) for k, c in coef.items())))
        return {k: c / n for k, c in coef.items()}

    q1 = members(QUERY, e.near[0], e.near_sims[0])
    used = e.nb[0][np.isfinite(e.nb_sims[0])]  # the candidates q2 was expanded with (best first)
    near_ids, near_sims = augmented.nearest(e.cand[used])
    q2_raw: dict[int, float] = dict(q1)
    for row, (pos, wk) in enumerate(zip(used, expansion_weights(e.nb_sims)[0])):
        if wk <= 0:
            continue
        cid = int(e.cand[pos])
        for k, c in members(cid, near_ids[row], near_sims[row]).items():
            q2_raw[k] = q2_raw.get(k, 0.0) + float(wk) * c
    r_ids, r_sims = augmented.nearest(np.asarray([result_id]))
    result = members(result_id, r_ids[0], r_sims[0])
    q2_norm = float(np.linalg.norm(sum(c * vector(k) for k, c in q2_raw.items())))
    same = {int(i) for i in e.itself}  # the query photo in the library is the query
    parts: dict[int, float] = {}
    for a, ca in q2_raw.items():
        for b, cb in result.items():
            term = ca * cb * float(vector(a) @ vector(b)) / q2_norm
            for k in (a, b):
                k = QUERY if k in same else k
                parts[k] = parts.get(k, 0.0) + term / 2
    return SearchSplit(float(sum(parts.values())), plain, result_id, parts)


class BruteForce:
    """An exact `VectorSource` over an in-memory matrix (ids are row numbers): `sba eval`."""

    def __init__(self, x: np.ndarray):
        self.x = np.asarray(x, np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sim = np.atleast_2d(queries) @ self.x.T
        k = min(k, len(self.x))
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(sim, idx, 1)
        order = np.argsort(-part, axis=1, kind="stable")
        return np.take_along_axis(idx, order, 1), np.take_along_axis(part, order, 1)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return self.x[np.asarray(ids, np.int64)]
