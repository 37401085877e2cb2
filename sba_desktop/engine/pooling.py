"""Aggregations of CxHxW feature maps into vectors (numpy, float32; no torch).

SBA (semantic-based aggregation) and the classic comparisons SPoC, MAC, GeM
and CroW, all computed from the same map. Each function takes a map f of shape
(C, H, W), non-negative; `sba_regions` also takes a batch (B, C, H, W) of maps
of one shape. They return unnormalised vectors; the callers L2-normalise.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def spoc(f: np.ndarray) -> np.ndarray:
    """Sum pooling (C,) - or (B, C) for a batch."""
    return f.sum(axis=(-2, -1), dtype=np.float32)


def mac(f: np.ndarray) -> np.ndarray:
    """Max pooling (C,)."""
    return f.max(axis=(-2, -1))


def gem(f: np.ndarray, p: float = 3.0) -> np.ndarray:
    """Generalised-mean pooling (C,), p=3 as in Radenovic et al."""
    return np.power(np.power(np.maximum(f, 1e-6), p).mean(axis=(-2, -1)), 1.0 / p).astype(np.float32)


def crow(f: np.ndarray, a: float = 2.0, b: float = 2.0) -> np.ndarray:
    """Cross-dimensional weighting (Kalantidis et al. 2016): spatial x channel weights."""
    s = f.sum(axis=0)
    norm = np.power(np.power(s, a).sum(), 1.0 / a)
    s = np.power(s / max(norm, _EPS), 1.0 / b)
    c, h, w = f.shape
    nonzero = (f > 0).sum(axis=(1, 2)) / float(h * w)
    total = nonzero.sum()
    with np.errstate(divide="ignore"):
        omega = np.where(nonzero > 0, np.log(total / (nonzero + _EPS)), 0.0)
    return (omega * (f * s).sum(axis=(1, 2))).astype(np.float32)


def select_detectors(sum_pooled: np.ndarray, n_detectors: int) -> np.ndarray:
    """Indices of the N channels of largest variance of the sum-pooled vectors.

    sum_pooled: (n_images, C). Returned in channel-index order, as the paper
    concatenates them. With a single image the variance is undefined, so the
    channels of largest mean response stand in (documented bootstrap rule).
    """
    g = np.asarray(sum_pooled, dtype=np.float64)
    n_detectors = min(n_detectors, g.shape[1])
    score = g.var(axis=0) if g.shape[0] >= 2 else g.mean(axis=0)
    # stable argsort: ties break towards the lower channel index, deterministically
    top = np.argsort(-score, kind="stable")[:n_detectors]
    return np.sort(top).astype(np.int64)


def region_weights(f: np.ndarray, detectors: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """Soft region proposals: w_n = (v_n / ||v_n||_2)^(1/beta), shape (N, H*W) or (B, N, H*W).

    beta=2 is the paper (alpha=2, beta=2). A zero map gives zero weights, never NaN.
    """
    v = np.take(f, detectors, axis=-3)
    v = v.reshape(*v.shape[:-2], -1).astype(np.float32)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    v = v / np.maximum(norm, _EPS)
    if beta == 2.0:
        return np.sqrt(v)
    return v if beta == 1.0 else np.power(v, 1.0 / beta)


def region_weight_matrix(f: np.ndarray, detectors: np.ndarray, beta: float = 2.0,
                         global_weight: float = 0.0) -> np.ndarray:
    """Every region's weights over the places, (R, H*W) or (B, R, H*W): the detectors' soft regions,
    then the whole photo when global_weight > 0 (uniform, as a detector firing everywhere alike
    would weigh it, times global_weight)."""
    w = region_weights(f, detectors, beta)
    if global_weight > 0:
        hw = f.shape[-2] * f.shape[-1]
        flat = np.full((*w.shape[:-2], 1, hw), global_weight * (1.0 / np.sqrt(hw)) ** (1.0 / beta), np.float32)
        w = np.concatenate([w, flat], axis=-2)
    return w


def sba_regions(f: np.ndarray, detectors: np.ndarray, beta: float = 2.0,
                region_pool: str = "sum", global_weight: float = 0.0, p: float = 3.0) -> np.ndarray:
    """Regional vectors psi_n (N, C) - or (B, N, C) for a batch: each detector's soft region pools the map.

    region_pool="sum" is the paper: psi_n = sum_xy w_n(x,y) f(:,x,y), one
    matrix product (N x HW)(HW x C). "gem" is a weighted generalised mean in
    each region: (sum w f^p / sum w)^(1/p). global_weight > 0 adds one more region after the
    detectors': the whole photo, weighted uniformly as a detector firing everywhere alike would
    be, times global_weight.
    """
    w = region_weight_matrix(f, detectors, beta, global_weight)
    x = f.reshape(*f.shape[:-2], -1).astype(np.float32, copy=False)
    x = np.swapaxes(x, -1, -2)  # (..., HW, C)
    if region_pool == "sum":
        return w @ x
    if region_pool == "gem":
        mass = np.maximum(w.sum(axis=-1, keepdims=True), _EPS)
        return np.power((w @ np.power(np.maximum(x, 1e-6), p)) / mass, 1.0 / p)
    raise ValueError(f"unknown region pooling '{region_pool}'")


def l2n(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """L2-normalise along `axis`; zero vectors stay zero."""
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(n, _EPS)
