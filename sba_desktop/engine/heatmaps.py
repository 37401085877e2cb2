"""Soft region proposals as pictures: each selected detector's map, upsampled."""
from __future__ import annotations

import numpy as np
from PIL import Image



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


# Inferno (matplotlib's perceptually uniform map), sampled at 9 points: dark purple -> orange -> pale
# yellow. Lightness rises steadily, so "more" reads as "brighter" in colour and in grey alike.
_INFERNO = np.array([[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
                     [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164]], np.float32)


def colorize(heat: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """(h, w) in [0, 1] -> (h, w, 4) uint8 RGBA overlay: inferno colours, transparent where the
    heat is low (the photo shows through where nothing matches)."""
    h = np.clip(heat, 0.0, 1.0)
    pos = h * (len(_INFERNO) - 1)
    lo = np.floor(pos).astype(np.int64).clip(0, len(_INFERNO) - 2)
    t = (pos - lo)[..., None]
    rgb = _INFERNO[lo] * (1 - t) + _INFERNO[lo + 1] * t
    a = np.clip(opacity, 0, 1) * 255 * np.clip(h * 1.5, 0, 1)
    return np.concatenate([rgb, a[..., None]], axis=-1).astype(np.uint8)


def share_heatmap(cells: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(height, width) in [0, 1]: the places' positive shares of a match, upsampled to the
    picture shown at `size` (the cells tile it evenly, as the regions are placed) and scaled by
    this photo's own strongest place (a weak map still shows)."""
    width, height = size
    up = np.asarray(Image.fromarray(np.maximum(np.asarray(cells, np.float32), 0), "F")
                    .resize((width, height), Image.Resampling.BILINEAR))
    peak = float(up.max(initial=0.0))
    return (up / peak).astype(np.float32) if peak > 0 else np.zeros((height, width), np.float32)
