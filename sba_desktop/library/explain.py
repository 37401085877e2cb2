"""Why two photos match: detector contributions and heatmaps for a query and a result."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..engine.heatmaps import combined_heatmap, detector_heatmaps
from .decode import decode
from .library import Library

DISPLAY_SIZE = 512  # long side of the pictures shown side by side


@dataclass
class Explanation:
    query: Image.Image            # RGB, display size
    result: Image.Image
    channels: list[int]           # detector channel per position
    contributions: np.ndarray     # (N,) share of the similarity, same order as channels
    query_maps: np.ndarray        # (N, h, w) in [0, 1]
    result_maps: np.ndarray
    query_combined: np.ndarray    # contribution-weighted sum of the maps, in [0, 1]
    result_combined: np.ndarray

    def ranking(self) -> list[int]:
        """Positions of the detectors, largest contribution first."""
        return [int(i) for i in np.argsort(-self.contributions, kind="stable")]


def _display(img: Image.Image) -> Image.Image:
    img = img.copy()
    img.thumbnail((DISPLAY_SIZE, DISPLAY_SIZE))
    return img


def explain(lib: Library, query_rgb: Image.Image, result_path: str) -> Explanation:
    model = lib.model
    if model is None or model.spec.method != "sba":
        raise RuntimeError("explanations need an SBA model: index some photos first")
    enc = lib.encoder()
    fq = enc.feature_map(query_rgb, rgb_ready=True)
    result_rgb = decode(result_path, model.image_size).rgb
    fr = enc.feature_map(result_rgb, rgb_ready=True)
    contrib = model.detector_contributions(fq, fr)
    q_img, r_img = _display(query_rgb), _display(result_rgb)
    qm = detector_heatmaps(fq, model.detectors, q_img.size)
    rm = detector_heatmaps(fr, model.detectors, r_img.size)
    return Explanation(q_img, r_img, [int(c) for c in model.detectors], contrib, qm, rm,
                       combined_heatmap(qm, contrib), combined_heatmap(rm, contrib))
