#!/usr/bin/env python3
"""Does matching the query against parts of each photo find objects inside other photos? (issue 34)

A study, not the product: the product's search is unchanged by it. For every library photo the
SBA descriptor of each 2 x 2-cell window of its feature map (stride 2, the last row and column
included: ~13 windows of a 7 x 6 map) goes through the library's own PCA; the query is encoded a
second time at a small scale (96 px long side, so an object that fills the query is about the size
of a pasted object in a 224 px library photo). A photo's region score is its best window's cosine
with the small query; it is fused with the default search's score over its 200-photo shortlist as
max(default, region - offset), the offset the shortlist's median region score minus its median
default score (a per-query scale) or a fixed one.

`--size` encodes the library photos and the query's main scale at another long side (320: the
map of a 640 x 480 photo is 10 x 8 cells), `--small` sets the small query's side and `--window`
the window's cells on a side (`--size 448 --small 224 --window 3`: the library at 448 px, 3 x 3
windows against the query at its usual 224 px); the row "windows alone" ranks the whole library
by the best window only (what an index of windows would give).

Measured on the composites of `sba eval --task composites` (lab/composites.py, seed 0: UKBench
objects, chosen on) and on Paris landmarks: composites and the plain retrieval protocol (paris-dev,
every photo a query), which must not lose. Alone (the composites + 300 everyday photos; paris-dev
alone) and among the 5,895 everyday photos.

    .venv/bin/python scripts/region_study.py [--sets ukbench-dev,paris-dev] [--size 224] [--small 96]
        [--window 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sba_desktop.lab import composites  # noqa: E402
from sba_desktop.lab.datasets import datasets_root  # noqa: E402
from sba_desktop.lab.evaluation import PhotoSet, encode_maps, fit, folder_photos, load_extractor  # noqa: E402
from sba_desktop.lab.metrics import retrieval_scores  # noqa: E402
from sba_desktop.engine.neighbourhood import AugmentedVectors, BruteForce, neighbourhood_search  # noqa: E402
from sba_desktop.engine.sba import DescriptorSpec, ReductionSpec  # noqa: E402
from sba_desktop.library.encoding import PhotoEncoder  # noqa: E402

DATA = datasets_root()
SHORTLIST = 200


def windows(h: int, w: int, k: int = 2) -> list[tuple[int, int]]:
    """Top-left cells of the k x k windows of an h x w map, stride 2, the last row and column in."""
    ys = sorted(set(range(0, max(h - k + 1, 1), 2)) | {max(h - k, 0)})
    xs = sorted(set(range(0, max(w - k + 1, 1), 2)) | {max(w - k, 0)})
    return [(y, x) for y in ys for x in xs]


def region_best(model, maps, small_queries: np.ndarray, k: int = 2) -> np.ndarray:
    """(queries, photos): each photo's best k x k window against each small-scale query."""
    out = np.empty((len(small_queries), len(maps)), np.float32)
    for i, f in enumerate(maps):
        f = np.asarray(f, np.float32)
        b = np.stack([f[:, y:y + k, x:x + k] for y, x in windows(*f.shape[1:], k)])
        out[:, i] = (small_queries @ model.reduce(model.raw_vectors(b)).T).max(axis=1)
    return out


def default_scores(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    source = BruteForce(x)
    augmented = AugmentedVectors(source)
    out = np.full((len(q), len(x)), -np.inf, np.float32)
    for row, v in enumerate(q):
        ids, scores = neighbourhood_search(v, source, SHORTLIST, augmented)
        out[row, ids] = scores
    return out


def fusions(d: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    shortlisted = np.isfinite(d)
    out = {"default": d}
    for offset in (0.1, 0.2):
        out[f"max(default, region - {offset})"] = np.where(shortlisted, np.maximum(d, r - offset), -np.inf)
    scaled = d.copy()
    for i in range(len(d)):
        m = shortlisted[i]
        off = np.median(r[i, m]) - np.median(d[i, m])
        scaled[i, m] = np.maximum(d[i, m], r[i, m] - off)
    out["max(default, region - median gap)"] = scaled
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="ukbench-dev,paris-dev")
    ap.add_argument("--size", type=int, default=224, help="long side of the library photos and the query")
    ap.add_argument("--small", type=int, default=96, help="long side of the small query")
    ap.add_argument("--window", type=int, default=2, help="cells on a side of a window")
    ap.add_argument("--json")
    args = ap.parse_args()
    bb = load_extractor("efficientnet_lite0")
    enc, small = PhotoEncoder(bb, args.size, keep_maps=True), PhotoEncoder(bb, args.small, keep_maps=True)
    spec, red = DescriptorSpec("sba", 25, global_weight=2.0), ReductionSpec(512)
    everyday = folder_photos(DATA / "caltech101-distractors")
    report: dict = {}
    for name in args.sets.split(","):
        ps = PhotoSet.open(DATA / name)
        paths = ps.paths()
        members = [[paths[i] for i in np.flatnonzero(ps.groups == g)] for g in range(int(ps.groups.max()) + 1)]
        cases = composites.draw_composites(members, everyday, 0)
        used = {c.background for c in cases}
        others = [p for p in everyday if p not in used]
        random.Random(0).shuffle(others)
        with tempfile.TemporaryDirectory() as tmp:
            files = [composites.write_composite(c, Path(tmp) / f"{i}.jpg") for i, c in enumerate(cases)]
            comp_maps = encode_maps(files, enc)
        q_maps, q_small = encode_maps([c.query for c in cases], enc), encode_maps([c.query for c in cases], small)
        other_maps = encode_maps(others, enc)
        set_maps, set_small = encode_maps(paths, enc), encode_maps(paths, small)
        for shape, around in (("alone", other_maps[:composites.ALONE_EVERYDAY]), ("among", other_maps)):
            library = comp_maps + around
            x, model = fit(library, bb, args.size, spec, red)
            q = model.encode_maps(q_maps)
            d, r = default_scores(x, q), region_best(model, library, model.encode_maps(q_small), args.window)
            for fusion, s in (fusions(d, r) | {"windows alone": r}).items():
                target = s[np.arange(len(q)), np.arange(len(q))]
                rank = np.where(np.isfinite(target), (s > target[:, None]).sum(axis=1), len(x))
                key = f"{name} composites {shape} {fusion}: found in top 10"
                report[key] = round(float(np.mean(rank < 10)), 3)
                print(key, report[key], flush=True)
            library = set_maps + ([] if shape == "alone" else other_maps)
            x, model = fit(library, bb, args.size, spec, red)
            n = len(set_maps)
            d = default_scores(x, x[:n])
            r = region_best(model, library, model.encode_maps(set_small), args.window)
            groups = np.concatenate([ps.groups, np.full(len(x) - n, -1)])
            for fusion, s in fusions(d, r).items():
                s = s.copy()
                s[np.arange(n), np.arange(n)] = np.inf   # the query photo itself, as the search ranks it
                key = f"{name} retrieval {shape} {fusion}: mAP"
                report[key] = round(retrieval_scores(s, groups, np.arange(n))[0], 4)
                print(key, report[key], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
