"""Soft region proposals as pictures: each selected detector's map, upsampled."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .sba import DescriptorModel


def detector_heatmaps(f: np.ndarray, detectors: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, height, width) float32 arrays in [0, 1], one per detector.

    f: CxHxW feature map; size: (width, height) of the photo as shown. Each map
    is scaled by its own maximum (a detector that does not fire stays all zero).
    """
    width, height = size
    v = np.take(np.asarray(f, np.float32), np.asarray(detectors, np.int64), axis=0)
    # bilinear on pixel centres (Pillow's "F" images are float32 and keep the values)
    up = np.stack([np.asarray(Image.fromarray(m, "F").resize((width, height), Image.Resampling.BILINEAR))
                   for m in v]) if len(v) else np.zeros((0, height, width), np.float32)
    up = np.maximum(up, 0)
    peak = np.maximum(up.reshape(len(up), -1).max(axis=1, initial=0), 1e-12)[:, None, None]
    return np.clip(up / peak, 0, 1).astype(np.float32)


def combined_heatmap(maps: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted sum of detector heatmaps (weights e.g. their contributions), in [0, 1]."""
    w = np.ones(len(maps), np.float32) if weights is None else np.clip(np.asarray(weights, np.float32), 0, None)
    out = np.tensordot(w, maps, axes=1)
    peak = float(out.max())
    return (out / peak).astype(np.float32) if peak > 0 else out.astype(np.float32)


def ranked_contributions(model: DescriptorModel, fa: np.ndarray, fb: np.ndarray) -> list[tuple[int, int, float]]:
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
