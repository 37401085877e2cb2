"""Soft region proposals as pictures: each selected detector's map, upsampled."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .sba import DescriptorModel


def detector_heatmaps(f: torch.Tensor, detectors: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, height, width) float32 arrays in [0, 1], one per detector.

    f: CxHxW feature map; size: (width, height) of the photo as shown. Each map
    is scaled by its own maximum (a detector that does not fire stays all zero).
    """
    width, height = size
    v = f.float().index_select(0, torch.as_tensor(detectors, dtype=torch.long))[None]
    up = F.interpolate(v, size=(height, width), mode="bilinear", align_corners=False)[0]
    up = up.clamp(min=0)
    peak = up.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
    return (up / peak).clamp(0, 1).numpy().astype(np.float32)


def combined_heatmap(maps: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted sum of detector heatmaps (weights e.g. their contributions), in [0, 1]."""
    w = np.ones(len(maps), np.float32) if weights is None else np.clip(np.asarray(weights, np.float32), 0, None)
    out = np.tensordot(w, maps, axes=1)
    peak = float(out.max())
    return (out / peak).astype(np.float32) if peak > 0 else out.astype(np.float32)


def ranked_contributions(model: DescriptorModel, fa: torch.Tensor, fb: torch.Tensor) -> list[tuple[int, int, float]]:
    """[(position in detector list, channel index, contribution)] largest first."""
    c = model.detector_contributions(fa, fb)
    order = np.argsort(-c, kind="stable")
    return [(int(i), int(model.detectors[i]), float(c[i])) for i in order]


def colorize(heat: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """(h, w) in [0, 1] -> (h, w, 4) uint8 RGBA overlay (blue -> red, alpha grows with heat)."""
    h = np.clip(heat, 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4 * h - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * h - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * h - 1), 0, 1)
    a = np.clip(opacity, 0, 1) * np.sqrt(h)
    return (np.stack([r, g, b, a], axis=-1) * 255).astype(np.uint8)
