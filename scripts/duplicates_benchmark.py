#!/usr/bin/env python3
"""Copies benchmark on the shared photo sets: how sure is `sba duplicates` (issue 20)?

Builds a library in a temporary folder (the shared photos are linked, never copied into the
project): every photo of the chosen sets, plus copies of some of them made with each
transformation a person's library holds (re-encoded, resized, other formats, turned by EXIF or
in pixels, exposure, contrast, a crop, a watermark, an export), at varied strengths. Indexes it
with the product's own job, runs the product's duplicate finder, and reports per
transformation and overall:
- recall: copies found in the same copy group as their original;
- precision: pairs inside copy groups that really are copies of one photo;
- different shots put together: pairs of other photos of the same UKBench object, the same
  Paris landmark, the same flower species that share a copy group (must stay apart);
- the largest copy group against the most copies made of one photo;
at several thresholds from one comparison. --distractors adds the Caltech photos around them.

    .venv/bin/python scripts/duplicates_benchmark.py [--sets ukbench,paris,flowers]
        [--per-set 40] [--distractors] [--seed 0] [--json out.json]
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sba_desktop.lab.datasets import datasets_root  # noqa: E402

DATA = datasets_root()
THRESHOLDS = (0.80, 0.84, 0.88, 0.90, 0.92, 0.94)


# ---------------------------------------------------------------------------- transformations
def _jpeg(img: Image.Image, q: int, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, "JPEG", quality=q, **kw)
    return b.getvalue()


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def _scaled(img: Image.Image, f: float) -> Image.Image:
    return img.resize((max(16, round(img.width * f)), max(16, round(img.height * f))), Image.Resampling.LANCZOS)


def _watermark(img: Image.Image, rng: random.Random) -> Image.Image:
    out = img.copy()
    d = ImageDraw.Draw(out, "RGBA")
    size = max(10, int(img.height * rng.uniform(0.04, 0.08)))
    try:
        font = ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    text = rng.choice(["(c) Jane Doe 2026", "© photo studio", "JD photography"])
    box = d.textbbox((0, 0), text, font=font)
    tw, th = box[2] - box[0] + 12, box[3] - box[1] + 8
    x = rng.choice([8, img.width - tw - 8])
    y = rng.choice([8, img.height - th - 8])
    d.rectangle((x, y, x + tw, y + th), fill=(255, 255, 255, rng.randint(60, 140)))
    d.text((x + 6, y + 2), text, fill=(0, 0, 0, rng.randint(150, 230)), font=font)
    return out


def _crop(img: Image.Image, rng: random.Random) -> Image.Image:
    """Up to ~20 % of the photo cut away (width and height each keep 80-97 %)."""
    w, h = img.size
    cw, ch = round(w * rng.uniform(0.80, 0.97)), round(h * rng.uniform(0.80, 0.97))
    x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def transformations(img: Image.Image, rng: random.Random) -> dict[str, tuple[str, bytes]]:
    """name -> (file extension, bytes) of each kind of copy, at a random strength."""
    exif = Image.Exif()
    orientation = rng.choice([3, 6, 8])
    exif[0x0112] = orientation
    stored = img.transpose({3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
                            8: Image.Transpose.ROTATE_270}[orientation])
    export = ImageEnhance.Color(ImageEnhance.Contrast(img).enhance(rng.uniform(1.05, 1.25))).enhance(
        rng.uniform(1.0, 1.3)).filter(ImageFilter.UnsharpMask(2, 60, 2))
    return {
        "re-encoded JPEG": (".jpg", _jpeg(img, rng.randint(30, 95))),
        "resized": (".jpg", _jpeg(_scaled(img, rng.uniform(0.25, 0.9)), rng.randint(70, 95))),
        "PNG": (".png", _save(img, "PNG")),
        "WebP": (".webp", _save(img, "WEBP", quality=rng.randint(50, 90))),
        "HEIC": (".heic", _save(img, "HEIF", quality=rng.randint(50, 90))),
        "turned by EXIF": (".jpg", _jpeg(stored, 90, exif=exif)),
        "turned in pixels": (".jpg", _jpeg(img.rotate(rng.choice([90, 180, 270]), expand=True), 90)),
        "exposure": (".jpg", _jpeg(ImageEnhance.Brightness(img).enhance(rng.choice([0.6, 0.75, 1.25, 1.4])), 90)),
        "contrast": (".jpg", _jpeg(ImageEnhance.Contrast(img).enhance(rng.choice([0.6, 0.75, 1.3, 1.5])), 90)),
        "cropped": (".jpg", _jpeg(_crop(img, rng), 90)),
        "watermarked": (".jpg", _jpeg(_watermark(img, rng), 90)),
        "exported (tone, sharpen, resize)": (".jpg", _jpeg(_scaled(export, rng.uniform(0.5, 0.9)), 92)),
        "resized + re-encoded + exposure": (".jpg", _jpeg(_scaled(ImageEnhance.Brightness(img).enhance(
            rng.uniform(0.8, 1.2)), rng.uniform(0.4, 0.8)), rng.randint(50, 85))),
    }


# ---------------------------------------------------------------------------- the sets
def load_sets(names: list[str]) -> tuple[list[Path], list[tuple[Path, ...]]]:
    """All photos of the sets and their groups of *different* shots that must stay apart."""
    photos, groups = [], []
    for name in names:
        folder = DATA / {"ukbench": "ukbench-dev", "paris": "paris-dev", "flowers": "flowers17-dev"}[name]
        gt = json.loads((folder / "groundtruth.json").read_text())
        if "groups" in gt:
            sets = [[folder / "images" / f for f in g] for g in gt["groups"]]
        else:
            by: dict[str, list[Path]] = {}
            for f, label in sorted(gt["labels"].items()):
                by.setdefault(label, []).append(folder / "images" / f)
            sets = list(by.values())
        for g in sets:
            photos += g
            groups.append(tuple(g))
    return photos, groups


def build(workdir: Path, names: list[str], per_set: int, distractors: bool, seed: int):
    """The library's folders: links to the originals, and the copies made of `per_set` of each set."""
    rng = random.Random(seed)
    photos, groups = load_sets(names)
    originals = workdir / "photos"
    made = workdir / "copies"
    originals.mkdir()
    made.mkdir()
    link_of = {}
    for k, p in enumerate(photos):
        link = originals / f"{k:05d}_{p.name}"
        os.symlink(p, link)
        link_of[p] = str(link)
    if distractors:
        d = workdir / "distractors"
        d.mkdir()
        for p in sorted((DATA / "caltech101-distractors" / "images").iterdir()):
            os.symlink(p, d / p.name)
    copies: dict[str, list[tuple[str, str]]] = {}  # original link -> [(transformation, copy path)]
    for name in names:
        in_set = [p for p in photos if name[:4] in str(p)]
        for p in sorted(rng.sample(in_set, min(per_set, len(in_set)))):
            with Image.open(p) as im:
                img = im.convert("RGB")
            for t, (ext, data) in transformations(img, rng).items():
                f = made / f"{p.stem}_{len(copies.get(link_of[p], []))}{ext}"
                f.write_bytes(data)
                copies.setdefault(link_of[p], []).append((t, str(f)))
    apart = [tuple(link_of[p] for p in g) for g in groups]
    return copies, apart


# ---------------------------------------------------------------------------- measuring
def measure(report, copies: dict, apart: list[tuple[str, ...]]) -> dict:
    """Figures against what the benchmark knows: its originals, their copies and the sets' other
    photos. Groups made only of distractors are counted apart (the Caltech set holds copies of
    its own: re-used clip art, edited versions) - nobody knows their truth."""
    known = {p for g in apart for p in g} | {p for made in copies.values() for _, p in made}
    group_of = {}
    for gi, g in enumerate(report.copies):
        for m in g.members:
            group_of[m.path] = gi
    per_t: dict[str, list[bool]] = {}
    true_pairs = set()
    for orig, made in copies.items():
        fam = [orig] + [p for _, p in made]
        for a, b in itertools.combinations(sorted(fam), 2):
            true_pairs.add((a, b))
        for t, p in made:
            per_t.setdefault(t, []).append(orig in group_of and group_of.get(p) == group_of[orig])
    in_groups = right = unknown_groups = 0
    for g in report.copies:
        paths = sorted(m.path for m in g.members)
        if not any(p in known for p in paths):
            unknown_groups += 1
            continue
        for a, b in itertools.combinations(paths, 2):
            if a in known or b in known:
                in_groups += 1
                right += (a, b) in true_pairs
    shots = [(a, b) for g in apart for a, b in itertools.combinations(g, 2)]
    together = sum(1 for a, b in shots if a in group_of and group_of.get(b) == group_of[a])
    similar_of = {m.path: gi for gi, g in enumerate(report.similar) for m in g.members}
    similar_together = sum(1 for a, b in shots if a in similar_of and similar_of.get(b) == similar_of[a])
    found = sum(sum(v) for v in per_t.values())
    total = sum(len(v) for v in per_t.values())
    return {
        "threshold": report.threshold,
        "recall": found / max(total, 1),
        "precision": right / in_groups if in_groups else 1.0,
        "per_transformation": {t: sum(v) / len(v) for t, v in per_t.items()},
        "different_shots_pairs": len(shots),
        "different_shots_together": together / max(len(shots), 1),
        "different_shots_similar": similar_together / max(len(shots), 1),
        "groups": len(report.copies),
        "groups_of_distractors_only": unknown_groups,
        "similar_groups": len(report.similar),
        "largest_group": max((len(g.members) for g in report.copies), default=0),
        "most_files_of_one_photo": 1 + max(len(v) for v in copies.values()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="ukbench,paris,flowers")
    ap.add_argument("--per-set", type=int, default=40, help="photos of each set copied (default 40)")
    ap.add_argument("--distractors", action="store_true", help="add the 5,895 Caltech photos around them")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()

    from sba_desktop.library.decode import heif_available
    from sba_desktop.jobs.duplicates import compare, group
    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import Library

    heif_available()  # registers pillow-heif's HEIC writer too
    with tempfile.TemporaryDirectory(prefix="sba-dups-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        copies, apart = build(work, args.sets.split(","), args.per_set, args.distractors, args.seed)
        lib = Library.open(work / "home")
        for folder in ("photos", "copies", "distractors"):
            if (work / folder).exists():
                lib.add_folder(str(work / folder))
        job = IndexJob(lib)
        job.run()
        print(f"library: {len(lib.index)} photos ({sum(len(v) for v in copies.values())} copies of "
              f"{len(copies)} photos), built and indexed in {time.perf_counter() - t0:.0f} s", flush=True)
        comparison = compare(lib)
        print(f"compared {len(comparison.agreements)} candidate pairs in {comparison.seconds:.1f} s")
        results = [measure(group(comparison, t), copies, apart) for t in THRESHOLDS]
        names = list(results[0]["per_transformation"])
        print(f"\n{'threshold':>9} {'precision':>9} {'recall':>7} {'apart':>7} {'groups':>6} {'largest':>7} "
              f"{'distractor groups':>17}")
        for r in results:
            print(f"{r['threshold']:9.2f} {r['precision']:9.4f} {r['recall']:7.4f} "
                  f"{r['different_shots_together']:7.4f} {r['groups']:6d} {r['largest_group']:7d} "
                  f"{r['groups_of_distractors_only']:17d}")
        print(f"(apart: share of the {results[0]['different_shots_pairs']} pairs of different shots of one "
              f"object/landmark/species put in one copy group; most files of one photo: "
              f"{results[0]['most_files_of_one_photo']}; distractor groups: copy groups made only of "
              "Caltech photos, whose truth nobody knows)")
        print(f"similar shots: {results[0]['similar_groups']} groups; pairs of different shots put in one: "
              f"{results[0]['different_shots_similar']:.4f} (UKBench's shots carry their real capture "
              "times, 5-10 s apart)")
        again = compare(lib)
        print(f"looking again (comparisons kept in the catalog): {again.seconds:.1f} s")
        print("\nrecall per transformation:")
        print(f"{'':34s}" + "".join(f"{r['threshold']:>7.2f}" for r in results))
        for n in names:
            print(f"{n:34s}" + "".join(f"{r['per_transformation'][n]:7.3f}" for r in results))
        lib.close()
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
