"""What the benchmarks share: photos to run on (the shared sets, or made here), timing, vectors."""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

from sba_desktop.lab.datasets import dataset_images, datasets_root


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sample_photos(n: int, tmp: Path) -> list[str]:
    shared = datasets_root() / "ukbench-dev" / "images"
    folder = tmp / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    if shared.is_dir():  # real photos, linked (not copied) into a folder of their own
        out = []
        for p in sorted(shared.iterdir())[:n]:
            os.symlink(p, folder / p.name)
            out.append(str(folder / p.name))
        return out
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):  # smooth synthetic photos, 640x480 JPEG
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        p = folder / f"synthetic_{i:04d}.jpg"
        Image.fromarray(small).resize((640, 480), Image.Resampling.BICUBIC).save(p, quality=90)
        out.append(str(p))
    return out




def camera_photos(n: int, tmp: Path, kind: str = "jpeg") -> list[str]:
    """n camera-sized files (camera_files.py) made from shared photos: decode cost follows pixels.
    kind: jpeg (12 MP, quality 92), heic (with the 320 px thumbnail an iPhone stores),
    heic-no-thumbnail, dng (Bayer mosaic with a 1024 px preview, Adobe DNG Converter's default
    "medium" preview), dng-no-preview. HEIC and DNG are slow to write: 8 distinct photos, the rest
    copies (decoding does not care)."""
    import shutil

    from PIL import Image

    from sba_desktop.lab import camera_files as cf

    folder = tmp / f"camera-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    src = dataset_images("paris-dev") or dataset_images("ukbench-dev")
    distinct = n if kind == "jpeg" else min(n, 8)
    suffix = {"jpeg": ".jpg", "heic": ".heic", "heic-no-thumbnail": ".heic"}.get(kind, ".dng")
    out = []
    for i in range(n):
        p = folder / f"camera_{i:03d}{suffix}"
        if i >= distinct:
            shutil.copyfile(out[i % distinct], p)
        else:
            with Image.open(src[i % len(src)]) as im:
                big = cf.upscaled(im)
            if kind == "jpeg":
                cf.camera_jpeg(big, p)
            elif kind.startswith("heic"):
                cf.heic(big, p, thumbnail=None if kind == "heic-no-thumbnail" else cf.IPHONE_THUMBNAIL)
            else:
                cf.dng(big, p, preview=None if kind == "dng-no-preview" else 1024)
        out.append(str(p))
    return out


def clustered_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors shaped like PCA-reduced photo descriptors: clusters (similar photos) and a
    power-law variance spectrum over the dimensions (PCA components decay), not uniform noise."""
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** -0.5)
    centres = rng.standard_normal((5000, dim)).astype(np.float32) * scale
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        v = centres[rng.integers(0, 5000, m)] + 0.5 * rng.standard_normal((m, dim)).astype(np.float32) * scale
        out[start:start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def decode_one(path: str, image_size: int, backbone: str) -> tuple:
    """The pipeline's decode + preprocess of one photo (library/encoding.py)."""
    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.library.encoding import PhotoEncoder, Source

    return PhotoEncoder(load_runtime(backbone), image_size).prepare(Source(0, path))[0].shape
