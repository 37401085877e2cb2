"""The fitted descriptor model: SBA (and comparisons) + dimension reduction.

A `DescriptorModel` is frozen once fitted: backbone name and version, image
size, aggregation settings, the selected detectors and the reduction. Its
`model_id` (a hash of all of that) is stored with every vector, so vectors of
two different models are never compared.

Reduction policy (chosen from measurements, see docs/quality.md):
- default: PCA *without* whitening (centre + rotate + truncate to M dims),
  learned on the library itself. Whitening learned on the searched set
  collapses retrieval (Paris 0.91 -> 0.47 mAP), learned on other photos it
  lowers it; whitening stays available as an option (`whiten` power, `shrink`).
- bootstrap: with fewer than MIN_PCA_PHOTOS photos there is no meaningful PCA;
  a fixed, seeded random orthonormal-ish projection (Johnson-Lindenstrauss)
  to M dims keeps the stored size bounded and needs no data.
- detectors: the N channels of largest variance over the fit photos (mean
  response with a single photo).
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from sba_desktop.engine import pooling
from sba_desktop.errors import SbaError
from sba_desktop.files import write_bytes

FORMAT_VERSION = 1
MIN_PCA_PHOTOS = 33  # PCA to >= 32 dims needs at least 33 photos
DEFAULT_DIMS = 512
# The whole photo as one more soft region, uniformly weighted, twice a uniform detector's weight.
# Measured (docs/quality.md): among 5,895 other photos paris-dev 0.845 -> 0.922 mAP and ukbench-dev
# 3.840 -> 3.986 N-S; on the sets alone paris 0.952 -> 0.948, ukbench 3.978 -> 3.976. When a
# library's fitted detectors respond to what most of its photos show, the photos they say little
# about are still described.
DEFAULT_GLOBAL_WEIGHT = 2.0
DEFAULT_IMAGE_SIZE = 224
METHODS = ("sba", "spoc", "mac", "gem", "crow")


class ModelMismatchError(SbaError):
    """Vectors or a file that belong to another fitted model."""


@dataclass(frozen=True)
class DescriptorSpec:
    """How one feature map becomes a vector, before reduction."""
    method: str = "sba"
    n_detectors: int = 25
    beta: float = 2.0          # region weights (v/||v||)^(1/beta); 2 = paper
    region_pool: str = "sum"   # "sum" = paper; "gem" = weighted GeM per region
    global_weight: float = 0.0   # > 0: one more region, the whole photo, uniformly weighted (x this)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.n_detectors < 1:
            raise ValueError("N (detectors) must be at least 1")


@dataclass(frozen=True)
class ReductionSpec:
    dims: int | None = DEFAULT_DIMS  # None: keep the raw vector (evaluation only)
    whiten: float = 0.0              # 0 = no whitening, 1 = full, 0.5 = partial
    shrink: float = 0.0              # added to eigenvalues, as a multiple of their mean


@dataclass
class DescriptorModel:
    backbone: str
    backbone_version: str
    image_size: int
    spec: DescriptorSpec
    reduction: ReductionSpec
    detectors: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    channels: int = 0
    fitted_on: int = 0
    mean: np.ndarray | None = None          # (D,)
    components: np.ndarray | None = None    # (k, D)
    scales: np.ndarray | None = None        # (k,) divisors applied after projection
    projection_seed: int | None = None      # bootstrap random projection
    _proj_cache: np.ndarray | None = field(default=None, repr=False, compare=False)
    _id_cache: tuple | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ identity
    @property
    def raw_dims(self) -> int:
        if self.spec.method == "sba":
            return (int(len(self.detectors)) + int(self.spec.global_weight > 0)) * self.channels
        return self.channels

    @property
    def dims(self) -> int:
        if self.components is not None:
            return int(self.components.shape[0])
        if self.projection_seed is not None:
            return min(self.reduction.dims or self.raw_dims, self.raw_dims)
        return self.raw_dims

    @property
    def kind(self) -> str:
        if self.components is not None:
            return "pca-whiten" if self.reduction.whiten > 0 else "pca"
        if self.projection_seed is not None:
            return "random-projection"
        return "raw"

    @property
    def model_id(self) -> str:
        meta = json.dumps(self._meta(), sort_keys=True)
        arrays = (self.detectors, self.mean, self.components, self.scales)
        cached = self._id_cache
        if cached and cached[0] == meta and all(a is b for a, b in zip(cached[1], arrays)):
            return cached[2]  # hashing the 65 MB PCA basis costs ~40 ms: not once per stored batch
        h = hashlib.sha256()
        h.update(meta.encode())
        for arr in arrays:
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        self._id_cache = (meta, arrays, h.hexdigest()[:16])
        return self._id_cache[2]

    def describe(self) -> str:
        s = self.spec
        name = s.method if s.method != "sba" else f"sba N={len(self.detectors)}"
        if s.method == "sba" and s.global_weight:
            name += f" + whole photo x{s.global_weight:g}"
        return (f"{self.backbone} {self.image_size}px {name} -> {self.dims}d {self.kind} "
                f"(fitted on {self.fitted_on} photos, id {self.model_id})")

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, maps: Sequence[np.ndarray], backbone: str, backbone_version: str,
            image_size: int, spec: DescriptorSpec = DescriptorSpec(),
            reduction: ReductionSpec = ReductionSpec(),
            reduction_maps: Sequence[np.ndarray] | None = None) -> "DescriptorModel":
        """Fit detectors and reduction on feature maps (CxHxW each, any float dtype).

        `reduction_maps`, when given, are the photos the PCA is learned on
        (e.g. an independent set for whitening); otherwise `maps`.
        """
        if len(maps) == 0:
            raise ValueError("cannot fit a model on zero photos")
        channels = int(maps[0].shape[0])
        model = cls(backbone, backbone_version, image_size, spec, reduction,
                    channels=channels, fitted_on=len(maps))
        if spec.method == "sba":
            g = np.stack([pooling.spoc(np.asarray(f, np.float32)) for f in maps])
            model.detectors = pooling.select_detectors(g, spec.n_detectors)
        if reduction.dims is None:
            return model
        pca_maps = maps if reduction_maps is None else reduction_maps
        if len(pca_maps) >= MIN_PCA_PHOTOS:
            model._fit_pca(model.raw_vectors_of(pca_maps))
        elif model.raw_dims > reduction.dims:
            model.projection_seed = 20240611
        return model

    def _fit_pca(self, raw: np.ndarray) -> None:
        """PCA by the Gram-matrix trick (n photos << D dims): the n x n matrix is decomposed.

        Works in place on `raw` (float32, n x D) so the fit holds that matrix and little more:
        1,000 photos x 32,000 dims is 128 MB."""
        red = self.reduction
        n = len(raw)
        mean = raw.mean(axis=0, dtype=np.float64).astype(np.float32)
        raw -= mean
        gram = (raw @ raw.T).astype(np.float64)
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1]
        evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
        k = int(min(red.dims, n - 1, np.count_nonzero(evals > 1e-10 * max(evals[0], 1e-30))))
        k = max(k, 1)
        basis = (evecs[:, :k] / np.sqrt(evals[:k])[None, :]).astype(np.float32)
        self.components = basis.T @ raw  # (k, D), made contiguous directly: no transposed copy
        var = evals[:k] / n
        if red.whiten > 0:
            self.scales = ((var + red.shrink * var.mean()) ** (red.whiten / 2)).astype(np.float32)
        self.mean = mean

    # ------------------------------------------------------------------ encoding
    def raw_vectors(self, batch: np.ndarray) -> np.ndarray:
        """L2-normalised descriptors before reduction of a batch (B, C, H, W) -> (B, D) float32."""
        f = np.asarray(batch, np.float32)
        m = self.spec.method
        if m == "sba":
            v = pooling.sba_regions(f, self.detectors, self.spec.beta, self.spec.region_pool,
                                    self.spec.global_weight)
            v = v.reshape(len(f), -1)
        else:
            v = np.stack([getattr(pooling, m)(x) for x in f])
        return pooling.l2n(v).astype(np.float32, copy=False)

    def raw_vector(self, f: np.ndarray) -> np.ndarray:
        """One map's (C, H, W) raw descriptor (D,)."""
        return self.raw_vectors(np.asarray(f)[None])[0]

    def raw_vectors_of(self, maps: Sequence[np.ndarray], batch: int = 64) -> np.ndarray:
        """Raw descriptors of maps of any shapes, in order, into one (n, D) float32 matrix."""
        out = np.empty((len(maps), self.raw_dims), np.float32)
        for idx in _same_shape_runs(maps, batch):
            out[idx] = self.raw_vectors(np.stack([np.asarray(maps[i], np.float32) for i in idx]))
        return out

    def projection(self) -> np.ndarray:
        """The random projection that stands in for PCA before a model has seen enough photos
        (raw dims x dims; fixed by the model's seed)."""
        if self._proj_cache is None:
            rng = np.random.default_rng(self.projection_seed)
            d = self.dims
            p = rng.standard_normal((self.raw_dims, d), dtype=np.float32) / np.sqrt(d)
            self._proj_cache = p
        return self._proj_cache

    def reduce(self, raw: np.ndarray) -> np.ndarray:
        """Raw descriptor(s) -> final L2-normalised vector(s), float32. A batch (B, D) reads the
        PCA basis once (per photo the product is memory-bound: 32,000 x 512 floats = 65 MB)."""
        x = np.atleast_2d(raw).astype(np.float32, copy=False)
        if self.components is not None:
            x = (x - self.mean) @ self.components.T
            if self.scales is not None:
                x = x / self.scales
        elif self.projection_seed is not None:
            x = x @ self.projection()
        out = pooling.l2n(x).astype(np.float32, copy=False)
        return out[0] if np.ndim(raw) == 1 else out

    def detector_peaks(self, batch: np.ndarray) -> np.ndarray:
        """Where each selected detector fires most in each map: (B, N, 3) float32 of
        (peak response, y, x), y and x the peak cell's centre as fractions of the map
        (= of the photo). The response is the 3x3 mean around a cell (zero beyond the edge):
        ReLU6 backbones saturate at 6.0 in many photos, a neighbourhood still ranks them.
        The library keeps the peaks to show each detector's gallery."""
        f = np.asarray(batch, np.float32)[:, self.detectors]          # (B, N, H, W)
        b, n, h, w = f.shape
        padded = np.pad(f, ((0, 0), (0, 0), (1, 1), (1, 1)))
        f = sum(padded[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0
        flat = f.reshape(b, n, h * w)
        at = flat.argmax(axis=2)
        out = np.empty((b, n, 3), np.float32)
        out[..., 0] = np.take_along_axis(flat, at[..., None], 2)[..., 0]
        out[..., 1] = (at // w + 0.5) / h
        out[..., 2] = (at % w + 0.5) / w
        return out

    def encode_batch(self, batch: np.ndarray) -> np.ndarray:
        """Final vectors of a batch of maps of one shape (B, C, H, W) -> (B, dims)."""
        return self.reduce(self.raw_vectors(batch))

    def encode_map(self, f: np.ndarray) -> np.ndarray:
        """One photo's final vector."""
        return self.encode_batch(np.asarray(f)[None])[0]

    def encode_maps(self, maps: Sequence[np.ndarray], batch: int = 64) -> np.ndarray:
        if len(maps) == 0:
            return np.zeros((0, self.dims), np.float32)
        out = np.empty((len(maps), self.dims), np.float32)
        for idx in _same_shape_runs(maps, batch):
            out[idx] = self.encode_batch(np.stack([np.asarray(maps[i], np.float32) for i in idx]))
        return out

    # ------------------------------------------------------------------ persistence
    def _meta(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "backbone": self.backbone,
            "backbone_version": self.backbone_version,
            "image_size": self.image_size,
            # a field added later is left out at its default: older models keep their ids
            "spec": {k: v for k, v in asdict(self.spec).items() if k != "global_weight" or v},
            "reduction": asdict(self.reduction),
            "channels": self.channels,
            "fitted_on": self.fitted_on,
            "projection_seed": self.projection_seed,
        }

    def save(self, path: str | Path) -> None:
        """Write the model to one .npz file (a fresh temporary file renamed over it; none is left
        behind when the disk refuses: sba_desktop/files.py)."""
        path = Path(path)
        arrays = {"meta": np.frombuffer(json.dumps(self._meta()).encode(), dtype=np.uint8),
                  "detectors": self.detectors}
        for name in ("mean", "components", "scales"):
            arr = getattr(self, name)
            if arr is not None:
                arrays[name] = arr
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_bytes(path, buf.getvalue(), "the fitted model")

    @classmethod
    def load(cls, path: str | Path) -> "DescriptorModel":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") != FORMAT_VERSION:
                raise ModelMismatchError(f"{path}: model format {meta.get('format')} is not supported")
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            return cls(meta["backbone"], meta["backbone_version"], meta["image_size"],
                       DescriptorSpec(**meta["spec"]), ReductionSpec(**meta["reduction"]),
                       detectors=z["detectors"].astype(np.int64), channels=meta["channels"],
                       fitted_on=meta["fitted_on"], mean=get("mean"), components=get("components"),
                       scales=get("scales"), projection_seed=meta["projection_seed"])

    def check_vectors(self, vectors_model_id: str) -> None:
        """Refuse vectors that another model produced."""
        if vectors_model_id != self.model_id:
            raise ModelMismatchError(
                f"vectors come from model {vectors_model_id}, not from {self.model_id}: "
                "re-encode them (sba rebuild) instead of mixing models")


def _same_shape_runs(maps: Sequence[np.ndarray], batch: int) -> list[list[int]]:
    """Indices of `maps` grouped by shape, in chunks of at most `batch` (maps of one shape stack)."""
    by_shape: dict[tuple, list[int]] = {}
    for i, f in enumerate(maps):
        by_shape.setdefault(tuple(f.shape), []).append(i)
    return [idx[j:j + batch] for idx in by_shape.values() for j in range(0, len(idx), batch)]
