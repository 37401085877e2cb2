"""Why two photos match: detector contributions and heatmaps for a query and a result."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..engine.detector_names import detector_label
from ..engine.heatmaps import combined_heatmap, detector_heatmaps
from .decode import DecodeError, decode
from .encoding import Source
from .library import Library

DISPLAY_SIZE = 512  # long side of the pictures shown side by side
GALLERY_SIZE = 12   # patches per detector gallery
PATCH_SHARE = 0.45  # a patch is this share of the photo's short side, centred on the peak


@dataclass
class Explanation:
    query: Image.Image            # RGB, display size
    result: Image.Image
    channels: list[int]           # detector channel per position
    names: list[str]              # what each detector responds to (ImageNet head), same order
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


def explain(lib: Library, query: Source, result_path: str) -> Explanation:
    """Why `query` (a file or an image, optionally a region of it) matches a library photo: the
    maps come from the same encoding the search used."""
    model = lib.model
    if model is None or model.spec.method != "sba":
        raise RuntimeError("explanations need an SBA model: index some photos first")
    enc = lib.photo_encoder(keep_maps=True)
    q = enc.encode_one(query, with_picture=True)
    r = enc.encode_one(Source("result", path=result_path), with_picture=True)
    fq, fr = q.map.astype(np.float32), r.map.astype(np.float32)
    query_rgb, result_rgb = q.picture, r.picture
    contrib = model.detector_contributions(fq, fr)
    q_img, r_img = _display(query_rgb), _display(result_rgb)
    qm = detector_heatmaps(fq, model.detectors, q_img.size)
    rm = detector_heatmaps(fr, model.detectors, r_img.size)
    names = getattr(enc.backbone, "channel_names", None)
    channels = [int(c) for c in model.detectors]
    return Explanation(q_img, r_img, channels, [detector_label(c, names) for c in channels], contrib, qm, rm,
                       combined_heatmap(qm, contrib), combined_heatmap(rm, contrib))


@dataclass
class Patch:
    photo_id: int
    path: str
    response: float               # the detector's peak response in this photo
    box: tuple[int, int, int, int]  # left, top, right, bottom in the decoded photo's pixels
    image: Image.Image            # the crop


def detector_gallery(lib: Library, position: int, top: int = GALLERY_SIZE) -> list[Patch]:
    """The library patches where detector `position` (of the model's N) fires most: a square
    crop around each photo's peak, strongest first. Photos that cannot be read now are left out."""
    model = lib.model
    if model is None or model.spec.method != "sba":
        return []
    out = []
    for pid, path, response, y, x in lib.catalog.strongest_peaks(model.model_id, position, top):
        try:
            rgb = decode(path, DISPLAY_SIZE).rgb
        except (DecodeError, OSError):
            continue
        w, h = rgb.size
        side = max(8, int(PATCH_SHARE * min(w, h)))
        left = int(min(max(0, x * w - side / 2), w - side))
        upper = int(min(max(0, y * h - side / 2), h - side))
        box = (left, upper, left + side, upper + side)
        out.append(Patch(pid, path, response, box, rgb.crop(box)))
    return out
