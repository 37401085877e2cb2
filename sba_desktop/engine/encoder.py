"""What a backbone offers the encoding pipeline, and the query rectangle of a picture.

The pipeline itself (decode -> preprocess -> batched forward -> SBA + PCA) is
library/encoding.py: one way to encode a photo, for every caller.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image

Region = tuple[float, float, float, float]  # x, y, width, height in the photo's own pixels


class FeatureExtractor(Protocol):
    """What runtime.OnnxBackbone and backbones.Backbone (torch) both offer."""
    name: str
    version: str
    channels: int

    def preprocess(self, rgb: Image.Image, long_side: int | None) -> np.ndarray: ...

    def forward(self, batch: np.ndarray) -> np.ndarray: ...


def crop_region(rgb: Image.Image, region: Region | None) -> Image.Image:
    """The query rectangle of a picture, in its pixels (clamped to the picture; at least 1x1)."""
    if region is None:
        return rgb
    x, y, w, h = (int(round(v)) for v in region)
    x0 = min(max(0, x), rgb.width - 1)
    y0 = min(max(0, y), rgb.height - 1)
    x1 = min(rgb.width, max(x0 + 1, x + w))
    y1 = min(rgb.height, max(y0 + 1, y + h))
    return rgb.crop((x0, y0, x1, y1))
