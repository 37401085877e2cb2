#!/usr/bin/env python3
"""Retrieval on the shared sets stored as a phone or a camera stores them (issue 19).

Each photo of the sets is written as (sba_desktop/lab/camera_files.py, in a temporary folder, the
shared photos are only read):
- HEIC with a stored thumbnail of 320 px (what iPhones write) and of 224 px (the network's size);
- DNG with a 1024 px preview JPEG and DNG with none (LibRaw's demosaic);
and searched exactly as the product does (the one pipeline, the default descriptor fitted as a
library of them would fit it, the default search), beside the original JPEGs. Rows:
  heic-320           as the product reads them (the thumbnail stands in: 320 >= 1.4 x 224)
  heic-320-full      the same files decoded in full
  heic-224-thumbnail the 224 px thumbnails used (forced; the product's 1.4x rule decodes in full) --distractors keeps the 5,895 Caltech JPEGs
around them too. Prints mAP per set and format (alone, and among the distractors), and the
difference to the JPEGs. SBA_HEIC_QUALITY (default 90) is the HEIC encoder's quality.

    .venv/bin/python scripts/camera_formats_benchmark.py [--sets paris-dev,ukbench-dev]
        [--distractors] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sba_desktop.lab.datasets import datasets_root  # noqa: E402

DATA = datasets_root()

from sba_desktop.lab import camera_files  # noqa: E402
from sba_desktop.lab import protocols  # noqa: E402
from sba_desktop.lab.metrics import retrieval_scores  # noqa: E402
from sba_desktop.library import decode as decode_module  # noqa: E402
from sba_desktop.library.encoding import PhotoEncoder  # noqa: E402
from sba_desktop.lab.evaluation import (EncodedSet, EvalOptions, PhotoSet, default_vectors,  # noqa: E402
                                            encode_maps, folder_photos, load_extractor)

# format name -> (file suffix, maker); "heic-320-full" reads the "heic-320" files in full
HEIC_QUALITY = int(os.environ.get("SBA_HEIC_QUALITY", "90"))
FORMATS = {
    "heic-320": (".heic", lambda img, p: camera_files.heic(img, p, thumbnail=320, quality=HEIC_QUALITY)),
    "heic-224": (".heic", lambda img, p: camera_files.heic(img, p, thumbnail=224, quality=HEIC_QUALITY)),
    "dng-preview": (".dng", lambda img, p: camera_files.dng(img, p, preview=1024)),
    "dng-no-preview": (".dng", lambda img, p: camera_files.dng(img, p, preview=None)),
}


def _convert(job: tuple[str, str, str]) -> None:
    fmt, src, dst = job
    with Image.open(src) as im:
        FORMATS[fmt][1](ImageOps.exif_transpose(im).convert("RGB"), Path(dst))


def converted_set(ps: PhotoSet, fmt: str, tmp: Path) -> PhotoSet:
    """The set's photos written in `fmt` (same names but the suffix, same ground truth)."""
    folder = tmp / f"{ps.root.name}-{fmt}" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = FORMATS[fmt][0]
    names = [Path(n).stem + suffix for n in ps.names]
    with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(_convert, [(fmt, str(p), str(folder / n)) for p, n in zip(ps.paths(), names)], chunksize=8))
    return PhotoSet(folder.parent, names, ps.groups, ps.labels)


def mean_ap(ps: PhotoSet, maps: list, distractor_maps: list, bb, opt: EvalOptions) -> tuple[float, float | None]:
    """(mAP of the set alone, mAP among the distractors or None)."""
    alone = _mean_ap(ps, maps, [], bb, opt)
    return alone, (_mean_ap(ps, maps, distractor_maps, bb, opt) if distractor_maps else None)


def _mean_ap(ps: PhotoSet, maps: list, distractor_maps: list, bb, opt: EvalOptions) -> float:
    es = EncodedSet(ps, maps + distractor_maps, len(distractor_maps), bb)
    x = default_vectors(es, opt)
    groups = np.concatenate([ps.groups, np.full(len(distractor_maps), -1, np.int64)])
    queries = np.arange(len(ps.names))
    return retrieval_scores(protocols.similarities(x, protocols.DEFAULT_EXPANSION, queries), groups, queries)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="paris-dev,ukbench-dev")
    ap.add_argument("--distractors", action="store_true")
    ap.add_argument("--formats", default=",".join(FORMATS), help="which of " + ", ".join(FORMATS))
    ap.add_argument("--cache", help="keep the distractors' maps in this .npy file (they take minutes)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not camera_files.heif_enc_available():
        sys.exit("needs libheif's heif-enc to write HEIC thumbnails (apt-get install libheif-examples)")
    opt = EvalOptions()
    bb = load_extractor(opt.backbone)
    encoder = PhotoEncoder(bb, opt.image_size, keep_maps=True)
    distractor_maps: list = []
    if args.distractors:
        t = time.perf_counter()
        if args.cache and Path(args.cache).is_file():
            distractor_maps = list(np.load(args.cache, allow_pickle=True))
        else:
            distractor_maps = encode_maps(folder_photos(DATA / "caltech101-distractors"), encoder)
            if args.cache:
                kept = np.empty(len(distractor_maps), dtype=object)
                for i, m in enumerate(distractor_maps):
                    kept[i] = m
                np.save(args.cache, kept, allow_pickle=True)
        print(f"{len(distractor_maps)} distractors encoded in {time.perf_counter() - t:.0f} s", flush=True)
    report = {"distractors": len(distractor_maps), "sets": {}}
    with tempfile.TemporaryDirectory(prefix="sba-formats-") as tmp:
        for name in args.sets.split(","):
            ps = PhotoSet.open(DATA / name)
            rows = {"jpeg": mean_ap(ps, encode_maps(ps.paths(), encoder), distractor_maps, bb, opt)}
            for fmt in args.formats.split(","):
                t = time.perf_counter()
                conv = converted_set(ps, fmt, Path(tmp))
                made = time.perf_counter() - t
                forced = {"heic-320": [("heic-320", None), ("heic-320-full", 1e6)],
                          "heic-224": [("heic-224-thumbnail", 1.0)]}.get(fmt, [(fmt, None)])
                for row, stand_in_min in forced:
                    kept = decode_module.STAND_IN_MIN
                    decode_module.STAND_IN_MIN = stand_in_min or kept
                    try:
                        rows[row] = mean_ap(conv, encode_maps(conv.paths(), encoder), distractor_maps, bb, opt)
                    finally:
                        decode_module.STAND_IN_MIN = kept
                print(f"{name} {fmt}: written in {made:.0f} s", flush=True)
            report["sets"][name] = {k: {"alone": round(a, 4), "distractors": d if d is None else round(d, 4)}
                                    for k, (a, d) in rows.items()}
            print(f"\n{name} ({len(ps.names)} photos; HEIC quality {HEIC_QUALITY}): mAP alone"
                  + (f" | among {len(distractor_maps)} distractors" if distractor_maps else ""))
            for k, (a, d) in rows.items():
                print(f"  {k:<20} {a:.4f} {a - rows['jpeg'][0]:+.4f} vs JPEG"
                      + (f" | {d:.4f} {d - rows['jpeg'][1]:+.4f}" if d is not None else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
