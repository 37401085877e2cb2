"""Retrieval and classification metrics (numpy only)."""
from __future__ import annotations

import numpy as np


def average_precision(ranked_relevance: np.ndarray, n_positives: int) -> float:
    """AP of one ranking: relevance flags in rank order, query already removed."""
    if n_positives == 0:
        return 0.0
    hits = np.cumsum(ranked_relevance)
    ranks = np.flatnonzero(ranked_relevance) + 1
    return float((hits[ranks - 1] / ranks).sum() / n_positives)


def retrieval_scores(sim: np.ndarray, groups: np.ndarray, queries: np.ndarray | None = None) -> tuple[float, float]:
    """(mAP, N-S score) of queries searched over a collection.

    sim: (len(queries), n) similarities of each query to every item; groups: (n,) group id per
    item (-1: no group: distractors, searched over but never a query or a positive); queries:
    the item each row is (default: row i is item i, every item with a group queries). mAP removes
    the query from its own ranking; the N-S score counts group members among the top 4 with
    the query included (4.0 is perfect for groups of four).
    """
    queries = np.arange(sim.shape[0]) if queries is None else np.asarray(queries)
    aps, ns = [], []
    for row, q in enumerate(queries):
        if groups[q] < 0:
            continue
        order = np.argsort(-sim[row], kind="stable")
        same = groups[order] == groups[q]
        # N-S: ranking with the query in it (it is normally first).
        ns.append(float(same[:4].sum()))
        keep = order != q
        rel = same[keep]
        aps.append(average_precision(rel, int(rel.sum())))
    return float(np.mean(aps)), float(np.mean(ns))


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(truth)))


def calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean confidence - share right| in each of `bins` equal-width
    confidence bins, weighted by the bin's share of the photos (nan when there are none)."""
    confidence, right = np.asarray(confidence, np.float64), np.asarray(right, np.float64)
    if len(confidence) == 0:
        return float("nan")
    b = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(confidence[b == i].mean() - right[b == i].mean()) * (b == i).sum()
                     for i in range(bins) if (b == i).any()) / len(confidence))
