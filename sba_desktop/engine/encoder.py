"""Photo -> feature map -> vector: a backbone (onnxruntime or the torch reference) and a fitted model."""
from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image

from .imaging import to_rgb
from .sba import DescriptorModel, ModelMismatchError

Region = tuple[int, int, int, int]  # x, y, width, height in the photo's own pixels


class FeatureExtractor(Protocol):
    """What runtime.OnnxBackbone and backbones.Backbone (torch) both offer."""
    name: str
    version: str
    channels: int

    def preprocess(self, rgb: Image.Image, long_side: int | None) -> np.ndarray: ...

    def forward(self, batch: np.ndarray) -> np.ndarray: ...


def crop_region(rgb: Image.Image, region: Region | None) -> Image.Image:
    """The query rectangle of a photo (clamped to the photo; at least 1x1)."""
    if region is None:
        return rgb
    x, y, w, h = (int(round(v)) for v in region)
    x0 = min(max(0, x), rgb.width - 1)
    y0 = min(max(0, y), rgb.height - 1)
    x1 = min(rgb.width, max(x0 + 1, x + w))
    y1 = min(rgb.height, max(y0 + 1, y + h))
    return rgb.crop((x0, y0, x1, y1))


class Encoder:
    """Encodes photos with one backbone at one image size."""

    def __init__(self, backbone: FeatureExtractor, image_size: int):
        self.backbone = backbone
        self.image_size = image_size

    def feature_map(self, image: Image.Image, region: Region | None = None,
                    rgb_ready: bool = False) -> np.ndarray:
        """CxHxW float32 map of one photo (or of a rectangle of it)."""
        rgb = image if rgb_ready else to_rgb(image)
        rgb = crop_region(rgb, region)
        x = self.backbone.preprocess(rgb, self.image_size)
        return self.backbone.forward(x[None])[0]

    def encode(self, model: DescriptorModel, image: Image.Image,
               region: Region | None = None) -> np.ndarray:
        if model.backbone_version != self.backbone.version or model.image_size != self.image_size:
            raise ModelMismatchError(
                f"model was fitted for {model.backbone_version} at {model.image_size}px, "
                f"this encoder runs {self.backbone.version} at {self.image_size}px")
        return model.encode_map(self.feature_map(image, region))
