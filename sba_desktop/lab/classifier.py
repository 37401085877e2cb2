"""Multi-neighbour (MN) classifier: the K nearest labelled photos vote for their categories.

Vote weighting (the TIP paper's Algorithm 1 text is not available, so this is our
documented choice): the neighbour at rank r (1 = nearest, by squared L2
distance) adds 1/r to its own category's score. Closer ranks count more, and a
single very close neighbour cannot be outvoted by a crowd of far ones unless the
crowd is large. Confidences are the scores divided by their sum (they add to 1);
1-NN is the special case K = 1.

K adapts to the examples: K = min(K, KPER x the median examples per category),
since with 10 examples per category the 40th neighbour is far outside any
category and only adds noise (measured: `sba eval --task classification`,
few-shot table). The product's tagger is engine/open_set.py; this vote is the
paper's classifier, kept for evaluation and as the comparison.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_K = 40
KPER = 2


@dataclass
class Prediction:
    category: str
    confidence: float
    scores: dict[str, float]


class MNClassifier:
    def __init__(self, k: int = DEFAULT_K, adaptive: bool = True):
        if k < 1:
            raise ValueError("K must be at least 1")
        self.k = k
        self.adaptive = adaptive
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self.categories: list[str] = []

    def fit(self, vectors: np.ndarray, labels: list[str] | np.ndarray) -> "MNClassifier":
        x = np.asarray(vectors, dtype=np.float32)
        if len(x) == 0:
            raise ValueError("no labelled photos to learn from")
        self.categories = sorted(set(map(str, labels)))
        index = {c: i for i, c in enumerate(self.categories)}
        self._y = np.array([index[str(c)] for c in labels], dtype=np.int64)
        self._x = x
        self.k_used = self.k_for(labels)
        return self

    def k_for(self, labels) -> int:
        """The K used with these labelled examples."""
        if not self.adaptive:
            return self.k
        _, counts = np.unique(np.asarray([str(c) for c in labels]), return_counts=True)
        return int(max(1, min(self.k, KPER * np.median(counts))))

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_categories) normalised vote scores (rows sum to 1)."""
        assert self._x is not None and self._y is not None, "fit first"
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        # squared L2 via the expansion; exact ordering for any vectors
        d2 = (q * q).sum(1)[:, None] - 2.0 * q @ self._x.T + (self._x * self._x).sum(1)[None]
        k = min(self.k_used, self._x.shape[0])
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
        votes = 1.0 / np.arange(1, k + 1, dtype=np.float64)
        out = np.zeros((q.shape[0], len(self.categories)), dtype=np.float64)
        for row, nb in enumerate(nearest):
            np.add.at(out[row], self._y[nb], votes)
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, queries: np.ndarray) -> list[Prediction]:
        s = self.scores(queries)
        result = []
        for row in s:
            best = int(np.argmax(row))
            result.append(Prediction(self.categories[best], float(row[best]),
                                     {c: float(v) for c, v in zip(self.categories, row) if v > 0}))
        return result
