#!/usr/bin/env python3
"""Does "why it matches" point at the thing that matches? (issue 22)

A crop of an object or landmark photo is pasted into an unrelated everyday photo (Caltech) at a
known place; the query is another shot of that object or landmark (UKBench: the same object;
Paris: the same landmark). The explanation of the composite as a result must put its strongest
place inside the pasted box. Reported for the exact regions (engine/match_map.py: the centre of
the strongest result region's strongest cell) and for the 0.3.0 view's combined detector heatmap
(its maximum), on the same cases.

The library the model is fitted on: the sets' photos and 2,000 Caltech photos (linked into a
temporary folder, indexed by the product's own job). Shared photos only; nothing is written
beside them.

    .venv/bin/python scripts/pointing_benchmark.py [--cases 100] [--seed 0] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("SBA_DATASETS", ROOT.parent / "shared" / "datasets"))


def groups_of(name: str) -> list[list[Path]]:
    gt = json.loads((DATA / name / "groundtruth.json").read_text())
    images = DATA / name / "images"
    return [[images / m for m in g] for g in gt["groups"] if len(g) >= 2]


def upright(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def composite(obj: Image.Image, background: Image.Image, rng: random.Random) -> tuple[Image.Image, tuple]:
    """The object's central part pasted into the background (scaled to 640 px) at a random
    place: (picture, pasted box x0, y0, x1, y1)."""
    bg = background.copy()
    bg.thumbnail((640, 640))
    keep = rng.uniform(0.6, 0.85)  # the central part of the object photo
    w, h = obj.size
    crop = obj.crop((round(w * (1 - keep) / 2), round(h * (1 - keep) / 2),
                     round(w * (1 + keep) / 2), round(h * (1 + keep) / 2)))
    side = rng.uniform(0.35, 0.5) * max(bg.size)  # the pasted part's long side
    scale = side / max(crop.size)
    crop = crop.resize((max(8, round(crop.width * scale)), max(8, round(crop.height * scale))), Image.Resampling.LANCZOS)
    crop = crop.resize((min(crop.width, bg.width), min(crop.height, bg.height)))
    x = rng.randint(0, bg.width - crop.width)
    y = rng.randint(0, bg.height - crop.height)
    bg.paste(crop, (x, y))
    return bg, (x, y, x + crop.width, y + crop.height)


def inside(point: tuple[float, float], box: tuple) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100, help="cases per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sba-pointing-"))
    os.environ["SBA_DESKTOP_HOME"] = str(tmp / "home")
    from sba_desktop.library.encoding import Source
    from sba_desktop.library.explain import explain, named_detectors
    from sba_desktop.library.indexer import IndexJob
    from sba_desktop.library.library import Library

    rng = random.Random(args.seed)
    caltech = sorted((DATA / "caltech101-distractors" / "images").rglob("*.jpg"))
    library = tmp / "library"
    for name in ("ukbench-dev", "paris-dev"):
        (library / name).mkdir(parents=True)
        for p in sorted((DATA / name / "images").iterdir()):
            os.symlink(p, library / name / p.name)
    (library / "everyday").mkdir()
    in_library = set(rng.sample(caltech, 2000))
    for p in sorted(in_library):
        os.symlink(p, library / "everyday" / p.name)
    lib = Library.open()
    t = time.perf_counter()
    IndexJob(lib, [str(library)]).run()
    print(f"library of {len(lib.index)} photos indexed in {time.perf_counter() - t:.0f} s", flush=True)
    backgrounds = [p for p in caltech if p not in in_library]  # photos the library has not seen
    t = time.perf_counter()
    named = named_detectors(lib)
    names = lib.photo_encoder().backbone.channel_names or []
    print(f"detector names that survive their own gallery: {len(named)} of {len(lib.model.detectors)} "
          f"(checked in {time.perf_counter() - t:.1f} s): "
          + "; ".join(names[int(lib.model.detectors[p])] for p in sorted(named)), flush=True)
    report: dict = {"cases_per_set": args.cases, "seed": args.seed, "sets": {},
                    "named_detectors": len(named), "detectors": len(lib.model.detectors)}
    for name in ("ukbench-dev", "paris-dev"):
        groups = groups_of(name)
        hits = {"regions": 0, "combined_heatmap": 0}
        seconds = []
        for case in range(args.cases):
            group = rng.choice(groups)
            query, pasted = rng.sample(group, 2)
            picture, box = composite(upright(pasted), upright(rng.choice(backgrounds)), rng)
            path = tmp / f"{name}-{case:03d}.jpg"
            picture.save(path, quality=92)
            t = time.perf_counter()
            ex = explain(lib, Source("q", path=str(query)), str(path))
            seconds.append(time.perf_counter() - t)
            if ex.result_regions and inside(ex.result_regions[0].point, box):
                hits["regions"] += 1
            heat = ex.result_combined
            y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
            sx, sy = picture.width / heat.shape[1], picture.height / heat.shape[0]
            if inside(((x + 0.5) * sx, (y + 0.5) * sy), box):
                hits["combined_heatmap"] += 1
        row = {k: round(v / args.cases, 3) for k, v in hits.items()}
        row["explain_s_median"] = round(float(np.median(seconds)), 3)
        report["sets"][name] = row
        print(f"{name}: strongest place inside the pasted box: exact regions {row['regions']:.3f}, "
              f"combined heatmap (0.3.0 view) {row['combined_heatmap']:.3f}; explanation "
              f"{row['explain_s_median']} s (median)", flush=True)
    both = {k: round(np.mean([r[k] for r in report["sets"].values()]), 3) for k in ("regions", "combined_heatmap")}
    report["overall"] = both
    print(f"overall: exact regions {both['regions']:.3f}, combined heatmap {both['combined_heatmap']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
