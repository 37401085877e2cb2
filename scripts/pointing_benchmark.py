#!/usr/bin/env python3
"""Does "why it matches" point at the thing that matches? (issue 22)

A crop of an object or landmark photo is pasted into an unrelated everyday photo (Caltech) at a
known place; the query is another shot of that object or landmark (UKBench: the same object;
Paris: the same landmark). The explanation of the composite as a result must put its strongest
place inside the pasted box. Reported for the exact regions (engine/match_map.py: the centre of
the strongest result region's strongest window) and for the 0.3.0 view's combined detector
heatmap (its maximum), on the same cases.

The library: the sets' photos, 2,000 Caltech photos and the composites themselves (linked or
written into a temporary folder, indexed by the product's own job). Each case is reported among
all cases and among those where the search with the query finds the composite: it is among the
results the window shows (library.SHOWN_RESULTS, default search) - the pairs a user can open
"why it matches" on. A case whose similarity is <= 0 has no region (nothing matches) and counts
as a miss. The pasted box holds the photo's centre in about half the cases (it covers ~19 % of
the photo), so a point at the centre is reported as the baseline, and the regions also on the
cases whose box does not hold the centre. Shared photos only; nothing is written beside them.

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
from sba_desktop.lab.datasets import datasets_root  # noqa: E402

DATA = datasets_root()


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
    from sba_desktop.jobs.explain import explain, named_detectors
    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import SHOWN_RESULTS, Library

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
    backgrounds = [p for p in caltech if p not in in_library]  # photos the library has not seen
    (library / "pasted").mkdir()
    cases = []  # (set, query, composite, pasted box)
    for name in ("ukbench-dev", "paris-dev"):
        groups = groups_of(name)
        for case in range(args.cases):
            query, pasted = rng.sample(rng.choice(groups), 2)
            picture, box = composite(upright(pasted), upright(rng.choice(backgrounds)), rng)
            path = library / "pasted" / f"{name}-{case:03d}.jpg"
            picture.save(path, quality=92)
            cases.append((name, query, path, box))
    lib = Library.open()
    t = time.perf_counter()
    IndexJob(lib, [str(library)]).run()
    print(f"library of {len(lib.index)} photos indexed in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    named = named_detectors(lib)
    names = lib.photo_encoder().backbone.channel_names or []
    print(f"detector names that survive their own gallery: {len(named)} of {len(lib.model.detectors)} "
          f"(checked in {time.perf_counter() - t:.1f} s): "
          + "; ".join(names[int(lib.model.detectors[p])] for p in sorted(named)), flush=True)
    report: dict = {"cases_per_set": args.cases, "seed": args.seed, "shown_results": SHOWN_RESULTS, "sets": {},
                    "named_detectors": len(named), "detectors": len(lib.model.detectors)}
    for name in ("ukbench-dev", "paris-dev"):
        hits: dict[str, list[bool]] = {"regions": [], "combined_heatmap": [], "centre_point": [], "found": [],
                                        "off_centre": []}
        seconds = []
        for set_name, query, path, box in cases:
            if set_name != name:
                continue
            shown = {os.path.realpath(h.path) for h in lib.search(str(query), top=SHOWN_RESULTS)}
            hits["found"].append(os.path.realpath(path) in shown)
            t = time.perf_counter()
            ex = explain(lib, Source("q", path=str(query)), str(path))
            seconds.append(time.perf_counter() - t)
            hits["regions"].append(bool(ex.result_regions) and inside(ex.result_regions[0].point, box))
            heat = ex.result_combined
            y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
            sx, sy = ex.result_box[2] / heat.shape[1], ex.result_box[3] / heat.shape[0]
            hits["combined_heatmap"].append(inside(((x + 0.5) * sx, (y + 0.5) * sy), box))
            centre = (ex.result_box[2] / 2, ex.result_box[3] / 2)
            hits["centre_point"].append(inside(centre, box))
            hits["off_centre"].append(not inside(centre, box))
        found = np.asarray(hits["found"])
        off = found & np.asarray(hits["off_centre"])
        row = {"found": round(float(found.mean()), 3)}
        for k in ("regions", "combined_heatmap", "centre_point"):
            v = np.asarray(hits[k])
            row[k] = round(float(v.mean()), 3)
            row[k + "_found"] = round(float(v[found].mean()), 3) if found.any() else None
        row["regions_found_off_centre"] = round(float(np.asarray(hits["regions"])[off].mean()), 3) if off.any() else None
        row["found_off_centre_cases"] = int(off.sum())
        row["explain_s_median"] = round(float(np.median(seconds)), 3)
        report["sets"][name] = row
        print(f"{name}: the search shows the composite in {row['found']:.0%} of cases; strongest place inside "
              f"the pasted box, all cases / found ones: exact regions {row['regions']:.3f} / {row['regions_found']}, "
              f"combined heatmap (0.3.0 view) {row['combined_heatmap']:.3f} / {row['combined_heatmap_found']}, "
              f"a point at the centre {row['centre_point']:.3f} / {row['centre_point_found']}; exact regions on the "
              f"{row['found_off_centre_cases']} found cases whose box misses the centre {row['regions_found_off_centre']}; "
              f"explanation {row['explain_s_median']} s (median)", flush=True)
    report["overall"] = {k: round(float(np.mean([r[k] for r in report["sets"].values() if r[k] is not None])), 3)
                         for k in ("found", "regions", "regions_found", "regions_found_off_centre", "combined_heatmap",
                                   "combined_heatmap_found", "centre_point", "centre_point_found")}
    o = report["overall"]
    print(f"overall (mean of the two sets): exact regions {o['regions']:.3f} all, {o['regions_found']:.3f} found, "
          f"{o['regions_found_off_centre']:.3f} found off-centre; combined heatmap {o['combined_heatmap']:.3f} all, "
          f"{o['combined_heatmap_found']:.3f} found; a point at the centre {o['centre_point']:.3f} all, "
          f"{o['centre_point_found']:.3f} found")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
