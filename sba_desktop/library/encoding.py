"""One way to encode a photo, whoever asks: decode -> preprocess -> batched forward -> SBA + PCA.

Every caller goes through `PhotoEncoder`: the indexing job (fit sample and encoding), Ray actors,
query encoding (a file, a pasted image, a region of either), `sba eval` and `sba bench`. So the
vector a library stores for a photo is the vector a search computes for the same photo, and the
evaluation measures exactly what the product does.

The steps, each in one place:
- decode (library/decode.py): every format, EXIF orientation, JPEG draft at >= 2x the input size;
- a query region is given in the photo's own pixels (oriented, full size) and scaled to the
  decoded picture here, whatever size the decoder produced (draft JPEG, a HEIC thumbnail);
- preprocess (the backbone's resize + normalise);
- the forward in batches of one input shape (FORWARD_BATCH photos);
- feature maps are rounded to float16 once, for every caller: the fit keeps its sample in half
  precision (half the memory; maps are in [0, 6]), and with the same rounding everywhere the fit
  sample's vectors are bit for bit the ones any other path computes;
- SBA aggregation, the reduction (read once per chunk of photos: the PCA basis is 65 MB) and the
  detector peaks, from those maps (`vectors_from_maps`).
"""
from __future__ import annotations

import logging
import math
import os
import random
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from sba_desktop.engine.copies import signature
from sba_desktop.engine.imaging import Region, crop_region
from sba_desktop.engine.imaging import to_rgb
from sba_desktop.engine.sba import DescriptorModel, DescriptorSpec, ReductionSpec
from sba_desktop.library.decode import DecodeError, decode

log = logging.getLogger(__name__)

FORWARD_BATCH = 4    # photos of one shape per inference run (best in sba bench's batch sweep)
MAX_BUFFERED = 32    # decoded photos waiting for a full batch, at most (memory bound)
CHUNK = 64           # photos reduced together (one read of the PCA basis) and handed back at once
FIT_SAMPLE = 1000    # photos the detectors and PCA are learned on
MAP_DTYPE = np.float16


@dataclass
class Source:
    """One photo to encode: a file or an image already in memory, optionally a region of it."""
    key: object                      # the caller's id for it (a photo id, an index in a set)
    path: str | None = None
    image: Image.Image | None = None
    region: Region | None = None     # x, y, w, h in the photo's own pixels (after EXIF orientation)


@dataclass
class Looks:
    """What the duplicate finder knows of a photo besides its vector (library/duplicates.py)."""
    signature: np.ndarray            # its small grey picture, uint8 (engine/copies.py)
    taken: float | None              # EXIF capture time
    camera: str | None               # EXIF make and model
    fmt: str                         # the decoded format (jpeg, png, heic, ...)

    @classmethod
    def of(cls, photo) -> "Looks":
        """The looks of a decoded photo (library/decode.py DecodedPhoto)."""
        return cls(signature(photo.rgb), photo.taken, photo.camera, photo.fmt)


@dataclass
class Encoded:
    """The result for one source; `error` set (and nothing else) when it could not be used."""
    key: object
    width: int = 0                   # the photo's full size, after EXIF orientation
    height: int = 0
    map: np.ndarray | None = None    # C x h x w float16 (kept only when asked for)
    vector: np.ndarray | None = None
    peaks: np.ndarray | None = None  # (N, 3): each detector's peak response and place
    error: str | None = None
    picture: Image.Image | None = None  # the RGB picture the network saw, before resizing (on request)
    raw: np.ndarray | None = None    # the descriptor before reduction, until its chunk is reduced
    looks: Looks | None = None       # of a whole photo file (not of a region or a pasted image)


def fit_sample(keys: Sequence, n: int = FIT_SAMPLE) -> list:
    """The photos a model is fitted on: all of them, or a seeded random `n` (in key order)."""
    keys = list(keys)
    return keys if len(keys) <= n else sorted(random.Random(0).sample(keys, n))


def fit_model(maps: Sequence[np.ndarray], backbone, image_size: int, n_detectors: int, dims: int,
              global_weight: float) -> DescriptorModel:
    """The product's model on these maps: SBA of N detectors and the whole-photo region, PCA
    without whitening to `dims`."""
    return DescriptorModel.fit(maps, backbone.name, backbone.version, image_size,
                               DescriptorSpec("sba", n_detectors, global_weight=global_weight),
                               ReductionSpec(dims))


def vectors_from_maps(model: DescriptorModel, maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Final vectors (n, dims) and detector peaks (n, N, 3) of maps of any shapes, in order. The
    reduction reads the PCA basis once for all of them (65 MB: per photo it is memory-bound)."""
    raw, peaks = raw_and_peaks(model, maps)
    vecs = model.reduce(raw) if len(maps) else np.zeros((0, model.dims), np.float32)
    return vecs, peaks


def raw_and_peaks(model: DescriptorModel, maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors before reduction (n, D) and detector peaks (n, N, 3) of maps of any shapes."""
    n = len(maps)
    raw = np.empty((n, model.raw_dims), np.float32)
    peaks = np.zeros((n, len(model.detectors), 3), np.float32)
    if isinstance(maps, np.ndarray):  # a forward's own output: one shape, converted at once
        groups = [(list(range(n)), maps.astype(np.float32))]
    else:
        by_shape: dict[tuple, list[int]] = {}
        for i, f in enumerate(maps):
            by_shape.setdefault(tuple(f.shape), []).append(i)
        groups = [(idx, np.stack([np.asarray(maps[i], np.float32) for i in idx])) for idx in by_shape.values()]
    for idx, f in groups:
        raw[idx] = model.raw_vectors(f)
        if model.spec.method == "sba":
            peaks[idx] = model.detector_peaks(f)
    return raw, peaks


def _meets(region: tuple[float, float, float, float], width: int, height: int) -> bool:
    """Whether a region (x, y, w, h) covers some of a width x height photo."""
    x, y, w, h = region
    return all(map(math.isfinite, region)) and w > 0 and h > 0 and x < width and y < height and x + w > 0 and y + h > 0


def _box_text(region: tuple[float, float, float, float]) -> str:
    return ",".join(f"{v:g}" for v in region)


class PhotoEncoder:
    """Photos -> feature maps -> vectors, with one backbone at one image size.

    `model` None: maps only (the fit pass). Decoding runs in `workers` threads a bounded window
    ahead of the inference: Pillow and numpy release the GIL while decoding and resizing, so the
    threads overlap with the forward (processes measured no faster in sba bench, and would copy
    every array). A photo that fails costs that photo (its reason in `Encoded.error`), never the run.
    """

    def __init__(self, backbone, image_size: int, model: DescriptorModel | None = None,
                 workers: int | None = None, keep_maps: bool = False):
        if model is not None and (model.backbone_version != backbone.version or model.image_size != image_size):
            raise RuntimeError(f"model was fitted for {model.backbone_version} at {model.image_size}px, "
                               f"this network is {backbone.version} at {image_size}px: rebuild")
        self.backbone = backbone
        self.image_size = image_size
        self.model = model
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.keep_maps = keep_maps or model is None

    # ------------------------------------------------------------------ one photo
    def picture(self, src: Source) -> tuple[Image.Image, int, int, Looks | None]:
        """(the RGB picture the network sees before resizing, full width, full height, the
        photo's looks) of one source: decoded, oriented, cropped to its region. DecodeError when
        unusable."""
        looks = None
        if src.image is not None:
            rgb = to_rgb(src.image)
            width, height = rgb.size
        else:
            photo = decode(src.path, self.image_size, region=src.region)
            rgb, width, height = photo.rgb, photo.width, photo.height
            if src.region is None:
                looks = Looks.of(photo)
        region = src.region
        if region is not None and not _meets(region, width, height):
            raise DecodeError(f"the region {_box_text(region)} lies outside the photo ({width}x{height} pixels)")
        if region is not None and rgb.size != (width, height):
            # the decoder gave a reduced picture (JPEG draft, a thumbnail): bring the region to it
            sx, sy = rgb.width / width, rgb.height / height
            region = (region[0] * sx, region[1] * sy, region[2] * sx, region[3] * sy)
        return crop_region(rgb, region), width, height, looks

    def prepare(self, src: Source) -> tuple[np.ndarray, int, int, Looks | None]:
        """(network input 3xHxW, full width, full height, looks) of one source; DecodeError
        when unusable."""
        rgb, width, height, looks = self.picture(src)
        return self.backbone.preprocess(rgb, self.image_size), width, height, looks

    def encode_one(self, src: Source, with_picture: bool = False) -> Encoded:
        """One photo, on the calling thread (a query). Raises DecodeError for an unusable file."""
        rgb, w, h, looks = self.picture(src)
        out = self._reduce(self._finish([(src.key, self.backbone.preprocess(rgb, self.image_size), w, h, looks)]))[0]
        if with_picture:
            out.picture = rgb
        return out

    # ------------------------------------------------------------------ many photos
    def encode(self, sources: Iterable[Source], on_batch: Callable[[int], None] | None = None
               ) -> Iterator[list[Encoded]]:
        """Chunks of results (at most CHUNK each, failures included), in no promised order.
        `on_batch(k)` is called after every forward batch (k photos done, failures included):
        progress and cancellation points for the caller."""
        ready: list[Encoded] = []
        for batch, bad in self._forward_batches(iter(sources)):
            ready += bad
            if batch:
                ready += self._finish(batch)
            if on_batch:
                on_batch(len(batch) + len(bad))
            if len(ready) >= CHUNK:
                yield self._reduce(ready)
                ready = []
        if ready:
            yield self._reduce(ready)

    def _finish(self, batch: list[tuple]) -> list[Encoded]:
        """Forward one batch of one shape, then raw descriptors and peaks (when there is a model)."""
        maps = self.backbone.forward(np.stack([x for _, x, _, _, _ in batch])).astype(MAP_DTYPE)
        out = [Encoded(key, w, h, m if self.keep_maps else None, looks=looks)
               for (key, _, w, h, looks), m in zip(batch, maps)]
        if self.model is not None:
            raw, peaks = raw_and_peaks(self.model, maps)
            for e, r, p in zip(out, raw, peaks):
                e.raw, e.peaks = r, p
        return out

    def _reduce(self, chunk: list[Encoded]) -> list[Encoded]:
        """Final vectors of a chunk, reduced together: one read of the PCA basis for up to CHUNK
        photos (reduced four at a time, indexing measured 28 % slower)."""
        done = [e for e in chunk if e.raw is not None]
        if done and self.model is not None:
            for e, v in zip(done, self.model.reduce(np.stack([e.raw for e in done]))):
                e.vector, e.raw = v, None
        return chunk

    def _decoded(self, sources: Iterator[Source]) -> Iterator[tuple[Source, object]]:
        """(source, (x, w, h) or a reason) in order, decoded a bounded window ahead."""
        def work(src: Source):
            try:
                return src, self.prepare(src)
            except DecodeError as exc:
                return src, str(exc)
            except BaseException as exc:  # never let one photo stop the run (MemoryError included)
                log.exception("unexpected error decoding %s", src.path)
                return src, f"unexpected error: {exc.__class__.__name__}: {exc}"

        if self.workers == 1:
            yield from (work(s) for s in sources)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="decode") as pool:
            window: deque = deque()
            try:
                for src in sources:
                    window.append(pool.submit(work, src))
                    if len(window) >= self.workers * 8:
                        yield window.popleft().result()
                while window:
                    yield window.popleft().result()
            finally:
                for f in window:
                    f.cancel()

    def _forward_batches(self, sources: Iterator[Source]) -> Iterator[tuple[list[tuple], list[Encoded]]]:
        """Decoded photos grouped by input shape into batches of FORWARD_BATCH.

        A library has a handful of aspect ratios, so most batches fill; a shape that waits too
        long (more than MAX_BUFFERED photos held) and the rest at the end go as partial batches.
        Yields (batch of (key, x, w, h, looks), failed [Encoded with error])."""
        buckets: dict[tuple, list[tuple]] = {}
        held = 0
        for src, item in self._decoded(sources):
            if isinstance(item, str):
                yield [], [Encoded(src.key, error=item)]
                continue
            x, w, h, looks = item
            bucket = buckets.setdefault(x.shape, [])
            bucket.append((src.key, x, w, h, looks))
            held += 1
            if len(bucket) >= FORWARD_BATCH:
                held -= len(bucket)
                yield buckets.pop(x.shape), []
            elif held > MAX_BUFFERED:
                fullest = max(buckets, key=lambda k: len(buckets[k]))
                held -= len(buckets[fullest])
                yield buckets.pop(fullest), []
        for bucket in buckets.values():
            yield bucket, []
