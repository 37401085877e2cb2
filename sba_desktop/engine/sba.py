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
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from . import pooling

FORMAT_VERSION = 1
MIN_PCA_PHOTOS = 33  # PCA to >= 32 dims needs at least 33 photos
DEFAULT_DIMS = 512
DEFAULT_IMAGE_SIZE = 224
METHODS = ("sba", "spoc", "mac", "gem", "crow")


class ModelMismatchError(RuntimeError):
    """Vectors or a file that belong to another fitted model."""


@dataclass(frozen=True)
class DescriptorSpec:
    """How one feature map becomes a vector, before reduction."""
    method: str = "sba"
    n_detectors: int = 25
    beta: float = 2.0          # region weights (v/||v||)^(1/beta); 2 = paper
    region_pool: str = "sum"   # "sum" = paper; "gem" = weighted GeM per region

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
    _torch_cache: tuple | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ identity
    @property
    def raw_dims(self) -> int:
        if self.spec.method == "sba":
            return int(len(self.detectors)) * self.channels
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
        h = hashlib.sha256()
        h.update(json.dumps(self._meta(), sort_keys=True).encode())
        for arr in (self.detectors, self.mean, self.components, self.scales):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        s = self.spec
        name = s.method if s.method != "sba" else f"sba N={len(self.detectors)}"
        return (f"{self.backbone} {self.image_size}px {name} -> {self.dims}d {self.kind} "
                f"(fitted on {self.fitted_on} photos, id {self.model_id})")

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, maps: Sequence[torch.Tensor], backbone: str, backbone_version: str,
            image_size: int, spec: DescriptorSpec = DescriptorSpec(),
            reduction: ReductionSpec = ReductionSpec(),
            reduction_maps: Sequence[torch.Tensor] | None = None) -> "DescriptorModel":
        """Fit detectors and reduction on feature maps (CxHxW each).

        `reduction_maps`, when given, are the photos the PCA is learned on
        (e.g. an independent set for whitening); otherwise `maps`.
        """
        if len(maps) == 0:
            raise ValueError("cannot fit a model on zero photos")
        channels = int(maps[0].shape[0])
        model = cls(backbone, backbone_version, image_size, spec, reduction,
                    channels=channels, fitted_on=len(maps))
        if spec.method == "sba":
            g = np.stack([pooling.spoc(f.float()).numpy() for f in maps])
            model.detectors = pooling.select_detectors(g, spec.n_detectors)
        if reduction.dims is None:
            return model
        pca_maps = maps if reduction_maps is None else reduction_maps
        if len(pca_maps) >= MIN_PCA_PHOTOS:
            raw = np.stack([model.raw_vector(f) for f in pca_maps])
            model._fit_pca(raw)
        elif model.raw_dims > reduction.dims:
            model.projection_seed = 20240611
        return model

    def _fit_pca(self, raw: np.ndarray) -> None:
        red = self.reduction
        x = raw.astype(np.float64)
        self.mean = x.mean(axis=0)
        xc = x - self.mean
        # Gram-matrix trick: n photos << D dims, so decompose the n x n matrix.
        gram = xc @ xc.T
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1]
        evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
        k = int(min(red.dims, len(x) - 1, np.count_nonzero(evals > 1e-10 * max(evals[0], 1e-30))))
        k = max(k, 1)
        comps = (xc.T @ evecs[:, :k]) / np.sqrt(evals[:k])[None, :]
        self.components = comps.T.astype(np.float32)
        var = evals[:k] / len(x)
        if red.whiten > 0:
            self.scales = ((var + red.shrink * var.mean()) ** (red.whiten / 2)).astype(np.float32)
        self.mean = self.mean.astype(np.float32)

    # ------------------------------------------------------------------ encoding
    def raw_vector(self, f: torch.Tensor) -> np.ndarray:
        """L2-normalised descriptor before reduction (float32)."""
        f = f.float()
        m = self.spec.method
        if m == "sba":
            det = torch.from_numpy(self.detectors)
            v = pooling.sba_regions(f, det, self.spec.beta, self.spec.region_pool).flatten()
        else:
            v = getattr(pooling, m)(f)
        return pooling.l2n(v).numpy().astype(np.float32)

    def _projection(self) -> np.ndarray:
        if self._proj_cache is None:
            rng = np.random.default_rng(self.projection_seed)
            d = self.dims
            p = rng.standard_normal((self.raw_dims, d), dtype=np.float32) / np.sqrt(d)
            self._proj_cache = p
        return self._proj_cache

    def reduce(self, raw: np.ndarray) -> np.ndarray:
        """Raw descriptor(s) -> final L2-normalised vector(s), float32."""
        x = np.atleast_2d(raw).astype(np.float32)
        if self.components is not None:
            x = (x - self.mean) @ self.components.T
            if self.scales is not None:
                x = x / self.scales
        elif self.projection_seed is not None:
            x = x @ self._projection()
        out = pooling.l2n(x).astype(np.float32)
        return out[0] if np.ndim(raw) == 1 else out

    def _torch_reduction(self) -> tuple:
        if self._torch_cache is None:
            self._torch_cache = (torch.from_numpy(self.detectors),
                                 None if self.mean is None else torch.from_numpy(self.mean),
                                 None if self.components is None else torch.from_numpy(
                                     np.ascontiguousarray(self.components.T)),
                                 None if self.scales is None else torch.from_numpy(self.scales))
        return self._torch_cache

    def raw_torch(self, f: torch.Tensor) -> torch.Tensor:
        """raw_vector in torch (for the indexing pipeline: no numpy between forwards)."""
        if self.spec.method != "sba":
            return torch.from_numpy(self.raw_vector(f))
        det = self._torch_reduction()[0]
        with torch.inference_mode():
            return pooling.l2n(pooling.sba_regions(f.float(), det, self.spec.beta, self.spec.region_pool).flatten())

    def reduce_torch(self, raw: torch.Tensor) -> np.ndarray:
        """Reduce a batch (B, D) at once: one matrix product reads the PCA basis once per batch
        (per photo it is memory-bound: 32,000 x 512 floats = 65 MB)."""
        _, mean, comps_t, scales = self._torch_reduction()
        if comps_t is None:
            return self.reduce(raw.numpy())
        with torch.inference_mode():
            x = (raw - mean) @ comps_t
            if scales is not None:
                x = x / scales
            return pooling.l2n(x).numpy().astype(np.float32, copy=False)

    def encode_map(self, f: torch.Tensor) -> np.ndarray:
        """One photo's final vector."""
        return self.reduce_torch(self.raw_torch(f)[None])[0]

    def encode_maps(self, maps: Iterable[torch.Tensor], batch: int = 64) -> np.ndarray:
        maps = list(maps)
        if not maps:
            return np.zeros((0, self.dims), np.float32)
        out = []
        for i in range(0, len(maps), batch):
            out.append(self.reduce_torch(torch.stack([self.raw_torch(f) for f in maps[i:i + batch]])))
        return np.concatenate(out)

    # ------------------------------------------------------------------ explanation
    def detector_contributions(self, fa: torch.Tensor, fb: torch.Tensor) -> np.ndarray:
        """Each detector's share of the similarity of two photos, shape (N,).

        Computed in the raw SBA space, centred by the fitted PCA mean when there
        is one (that is what the default PCA keeps): the terms add up to the
        centred cosine similarity of the two raw descriptors.
        """
        if self.spec.method != "sba":
            raise ValueError("detector contributions exist only for SBA descriptors")
        a, b = self.raw_vector(fa), self.raw_vector(fb)
        if self.mean is not None:
            a, b = a - self.mean, b - self.mean
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        n = len(self.detectors)
        terms = (a.reshape(n, -1) * b.reshape(n, -1)).sum(axis=1)
        return (terms / max(na * nb, 1e-12)).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def _meta(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "backbone": self.backbone,
            "backbone_version": self.backbone_version,
            "image_size": self.image_size,
            "spec": asdict(self.spec),
            "reduction": asdict(self.reduction),
            "channels": self.channels,
            "fitted_on": self.fitted_on,
            "projection_seed": self.projection_seed,
        }

    def save(self, path: str | Path) -> None:
        """Write the model to one .npz file (atomically: temp file then rename)."""
        path = Path(path)
        arrays = {"meta": np.frombuffer(json.dumps(self._meta()).encode(), dtype=np.uint8),
                  "detectors": self.detectors}
        for name in ("mean", "components", "scales"):
            arr = getattr(self, name)
            if arr is not None:
                arrays[name] = arr
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

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


def average_query_expansion(query: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """q' = L2(q + sum of the top results' vectors) (average query expansion)."""
    q = np.asarray(query, np.float32) + np.asarray(neighbours, np.float32).reshape(-1, len(query)).sum(0)
    return pooling.l2n(q).astype(np.float32)
