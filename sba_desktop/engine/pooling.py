"""Aggregations of one CxHxW feature map into vectors (torch, float32).

SBA (semantic-based aggregation) and the classic comparisons SPoC, MAC, GeM
and CroW, all computed from the same map. Each function takes a single map
f of shape (C, H, W), non-negative, and returns unnormalised vectors; the
callers L2-normalise.
"""
from __future__ import annotations

import numpy as np
import torch

_EPS = 1e-12


def spoc(f: torch.Tensor) -> torch.Tensor:
    """Sum pooling (C,)."""
    return f.sum(dim=(1, 2))


def mac(f: torch.Tensor) -> torch.Tensor:
    """Max pooling (C,)."""
    return f.amax(dim=(1, 2))


def gem(f: torch.Tensor, p: float = 3.0) -> torch.Tensor:
    """Generalised-mean pooling (C,), p=3 as in Radenovic et al."""
    return f.clamp(min=1e-6).pow(p).mean(dim=(1, 2)).pow(1.0 / p)


def crow(f: torch.Tensor, a: float = 2.0, b: float = 2.0) -> torch.Tensor:
    """Cross-dimensional weighting (Kalantidis et al. 2016): spatial x channel weights."""
    s = f.sum(dim=0)
    norm = s.pow(a).sum().pow(1.0 / a)
    s = (s / norm.clamp(min=_EPS)).pow(1.0 / b)
    c, h, w = f.shape
    nonzero = (f > 0).float().sum(dim=(1, 2)) / float(h * w)
    total = nonzero.sum()
    omega = torch.where(nonzero > 0, torch.log(total / (nonzero + _EPS)), torch.zeros_like(nonzero))
    return omega * (f * s).sum(dim=(1, 2))


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


def region_weights(f: torch.Tensor, detectors: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Soft region proposals: w_n = (v_n / ||v_n||_2)^(1/beta), shape (N, H*W).

    beta=2 is the paper (alpha=2, beta=2). A zero map gives zero weights, never NaN.
    """
    v = f.index_select(0, detectors).flatten(1)
    norm = v.norm(dim=1, keepdim=True)
    v = v / norm.clamp(min=_EPS)
    if beta != 1.0:
        v = v.pow(1.0 / beta)
    return v


def sba_regions(f: torch.Tensor, detectors: torch.Tensor, beta: float = 2.0,
                region_pool: str = "sum", p: float = 3.0) -> torch.Tensor:
    """Regional vectors psi_n (N, C): each detector's soft region pools the map.

    region_pool="sum" is the paper: psi_n = sum_xy w_n(x,y) f(:,x,y), one
    matrix product (N x HW)(HW x C). "gem" is a weighted generalised mean in
    each region: (sum w f^p / sum w)^(1/p).
    """
    w = region_weights(f, detectors, beta)
    x = f.flatten(1).t()  # (HW, C)
    if region_pool == "sum":
        return w @ x
    if region_pool == "gem":
        mass = w.sum(dim=1, keepdim=True).clamp(min=_EPS)
        return ((w @ x.clamp(min=1e-6).pow(p)) / mass).pow(1.0 / p)
    raise ValueError(f"unknown region pooling '{region_pool}'")


def l2n(x: torch.Tensor | np.ndarray, axis: int = -1):
    """L2-normalise along `axis`; zero vectors stay zero."""
    if isinstance(x, torch.Tensor):
        return x / x.norm(dim=axis, keepdim=True).clamp(min=_EPS)
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(n, _EPS)
