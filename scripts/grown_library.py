#!/usr/bin/env python3
"""Search quality in a library that grew folder by folder, against the same photos indexed at once.

Measured through the product itself: `sba index` folder by folder (each run as a user would run it,
the automatic refit included), then `sba search` with every photo of each evaluation set as a query
(one call, --json). Prints paris-dev mAP@100 and ukbench-dev N-S (4 = perfect) for:
  at-once  - the first folder and the sets indexed in one run
  grown    - the first folder alone, then the sets added in a later run
Usage: scripts/grown_library.py [--first DIR] [--distractors DIR] [--json]
(default first folder: 300 photos of flowers17-dev; the sets: paris-dev and ukbench-dev from
../shared/datasets). Photos are linked, never copied; the libraries live in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without install
from sba_desktop.lab.datasets import datasets_root  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATASETS = datasets_root()


def sba(home: Path, *args: str) -> str:
    env = {**os.environ, "SBA_DESKTOP_HOME": str(home)}
    p = subprocess.run([sys.executable, "-m", "sba_desktop.cli", *args], env=env, capture_output=True,
                       text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"sba {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout


def link(names: list[Path], dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for p in names:
        os.symlink(p, dst / p.name)
    return dst


def groups(set_dir: Path) -> dict[str, int]:
    gt = json.loads((set_dir / "groundtruth.json").read_text())
    return {name: g for g, members in enumerate(gt["groups"]) for name in members}


def scores(home: Path, folder: Path, group_of: dict[str, int]) -> tuple[float, float]:
    """(mAP over the top 100, N-S) of every photo of `folder` searched in the library."""
    answers = json.loads(sba(home, "search", str(folder), "--top", "100", "--json"))["queries"]
    aps, ns = [], []
    for a in answers:
        q = Path(a["query"]).name
        ranked = [Path(r["path"]).name for r in a["results"]]
        rel = [group_of.get(n) == group_of[q] for n in ranked]
        ns.append(sum(rel[:4]))
        rel_wo = [r for n, r in zip(ranked, rel) if n != q]
        positives = sum(1 for n, g in group_of.items() if g == group_of[q] and n != q)
        hits, ap = 0, 0.0
        for rank, r in enumerate(rel_wo, 1):
            if r:
                hits += 1
                ap += hits / rank
        aps.append(ap / positives if positives else 0.0)
    return sum(aps) / len(aps), sum(ns) / len(ns)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=Path, help="the first folder (default: 300 flowers17-dev photos)")
    ap.add_argument("--distractors", type=Path, help="a folder of other photos, added after the sets")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sba-grown-"))
    first = args.first or link(sorted((DATASETS / "flowers17-dev" / "images").iterdir())[:300], tmp / "first")
    sets = {s: link(sorted((DATASETS / s / "images").iterdir()), tmp / s) for s in ("paris-dev", "ukbench-dev")}
    later = list(sets.values()) + ([args.distractors] if args.distractors else [])
    out: dict[str, dict] = {}
    for kind in ("at-once", "grown"):
        home = tmp / f"home-{kind}"
        if kind == "at-once":
            runs = [sba(home, "index", str(first), *map(str, later), "--json")]
        else:
            runs = [sba(home, "index", str(first), "--json")] + [sba(home, "index", str(f), "--json") for f in later]
        reports = [json.loads(r) for r in runs]
        paris = scores(home, sets["paris-dev"], groups(DATASETS / "paris-dev"))
        ukb = scores(home, sets["ukbench-dev"], groups(DATASETS / "ukbench-dev"))
        out[kind] = {"paris_map_at_100": round(paris[0], 4), "ukbench_ns": round(ukb[1], 3),
                     "model": reports[-1]["model"], "refitted": any(r.get("refitted") for r in reports),
                     "seconds": round(sum(r["seconds"] for r in reports), 1)}
    if args.json:
        print(json.dumps(out))
    else:
        for kind, r in out.items():
            print(f"{kind:8} paris mAP@100 {r['paris_map_at_100']:.3f}  ukbench N-S {r['ukbench_ns']:.3f}  "
                  f"refitted {r['refitted']}  {r['seconds']:.0f} s  model: {r['model']}")
        print(f"difference (grown - at once): paris {out['grown']['paris_map_at_100'] - out['at-once']['paris_map_at_100']:+.3f}, "
              f"ukbench {out['grown']['ukbench_ns'] - out['at-once']['ukbench_ns']:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
