"""Where the matches end (engine/match_cut.py), measured: every photo of a set (or every EVERY-th)
searches a library the way the window does, and the photos above the cut are scored against the
set's ground truth (its groups, or its labels): mean precision, recall and F1 per query.

    python scripts/match_cut_benchmark.py HOME ukbench-dev paris-dev [--every 10]

HOME is a library (SBA_DESKTOP_HOME) that holds the sets' photos (e.g. indexed from symlinks to
../shared/datasets/SET/images, alone or among caltech101-distractors); nothing is written to it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

DATASETS = Path(os.environ.get("SBA_DESKTOP_DATASETS") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


def groups_of(name: str) -> list[list[str]]:
    g = json.loads((DATASETS / name / "groundtruth.json").read_text())
    if "groups" in g:
        return g["groups"]
    by: dict[str, list[str]] = {}
    for photo, label in g["labels"].items():
        by.setdefault(label, []).append(photo)
    return list(by.values())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("home")
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--every", type=int, default=1)
    a = ap.parse_args(argv)
    os.environ["SBA_DESKTOP_HOME"] = a.home
    from sba_desktop.engine.match_cut import match_cut
    from sba_desktop.library.library import SHOWN_RESULTS, Library

    lib = Library.open()
    try:
        rows = list(lib.catalog.looks_of_indexed(lib.model.model_id))
        print(f"library: {len(rows)} photos")
        for name in a.sets:
            groups = groups_of(name)
            group_of = {p: k for k, grp in enumerate(groups) for p in grp}
            ids = {os.path.basename(r.path): r.id for r in rows if f"/{name}/" in r.path}
            out = []
            for photo in sorted(ids)[::a.every]:
                q = lib.index.vectors(np.array([ids[photo]], np.int64))[0]
                hits = lib.search_vector(q, SHOWN_RESULTS)
                cut = match_cut([h.score for h in hits])
                above = [h for h in hits[:cut.count] if os.path.basename(h.path) != photo or f"/{name}/" not in h.path]
                good = sum(1 for h in above if f"/{name}/" in h.path
                           and group_of.get(os.path.basename(h.path)) == group_of[photo])
                positives = len(groups[group_of[photo]]) - 1
                p = good / len(above) if above else 1.0
                r = good / positives if positives else 1.0
                out.append((p, r, 2 * p * r / (p + r) if p + r else 0.0, len(above)))
            m = np.array(out)
            print(f"{name}: {len(out)} queries, precision {m[:, 0].mean():.3f} recall {m[:, 1].mean():.3f} "
                  f"F1 {m[:, 2].mean():.3f}, median {int(np.median(m[:, 3]))} matches shown")
    finally:
        lib.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
