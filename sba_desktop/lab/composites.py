"""Two search protocols where a person's photos differ from the query (issue 34).

- **composites**: another shot of an object or landmark (a set's group) pasted, at ~280 x 210 px,
  into a 640 x 480 everyday photo; the query is a shot of the same group that is *not* in the
  library. Found: the composite among the first 10 results. Pointed at: the explanation's
  strongest place in the composite (engine/match_map.py, what `sba explain` and the Why view show)
  lies inside the pasted box. The library is the composites and 300 everyday photos ("alone"),
  every everyday photo but the backgrounds ("among"), or those where the model was fitted on the
  everyday photos before the composites came ("grown": a library of that size keeps its model).
- **elsewhere**: queries from outside the library. Each group's photos are split: 40 % are
  queries, never indexed, the rest are in the library ("alone"), or with every everyday photo
  ("among"), or with every everyday photo fitted before the set's photos came ("grown"); the model
  never sees the queries. Precision at 10 (over min(10, positives))
  and mAP, positives being the library's photos of the query's group.

Everything is measured through the product's pipeline (the same encoding, fit, default search and
plain search as `sba search`); photos are read from the shared sets, composites are written into a
temporary folder and removed afterwards. Seeded: one seed, one draw.
"""
from __future__ import annotations

import math
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps

from sba_desktop.engine.match_map import decompose, regions
from sba_desktop.engine.neighbourhood import AugmentedVectors, BruteForce, neighbourhood_search
from sba_desktop.engine.windows import WindowTable, photo_windows
from sba_desktop.library.inside import INSIDE_RESULTS

COMPOSITE_SIZE = (640, 480)
PASTE_LONG_SIDE = (250, 310)   # px of the pasted shot's long side: ~280 x 210 on average
CASES = 100                    # composites per set, at least one per group
ALONE_EVERYDAY = 300           # everyday photos beside the composites in the "alone" library
QUERY_SHARE = 0.4              # elsewhere: share of each group's photos that are queries
TOP = 10


@dataclass
class Composite:
    query: Path                                  # the shot searched with (not in the library)
    pasted: Path                                 # the shot pasted
    background: Path                             # the everyday photo it was pasted into
    group: int
    box: tuple[float, float, float, float]       # the pasted part, fractions of the composite


def _upright(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def draw_composites(members: Sequence[Sequence[Path]], everyday: Sequence[Path], seed: int = 0,
                    cases: int = CASES) -> list[Composite]:
    """At least one case per group (of >= 2 photos), `cases` in all: a query and another shot of
    its group, each pasted into an everyday photo of its own (no background is used twice)."""
    rng = random.Random(seed)
    groups = [i for i, g in enumerate(members) if len(g) >= 2]
    per_group = max(1, math.ceil(cases / max(len(groups), 1)))
    picks = [(g, *rng.sample(list(members[g]), 2)) for g in groups for _ in range(per_group)]
    if len(picks) > len(everyday):
        raise ValueError(f"{len(picks)} composites need as many everyday photos; {len(everyday)} given")
    backgrounds = rng.sample(list(everyday), len(picks))
    out = []
    for (g, query, pasted), bg in zip(picks, backgrounds):
        long_side = rng.uniform(*PASTE_LONG_SIDE)
        with Image.open(pasted) as im:
            w, h = ImageOps.exif_transpose(im).size
        scale = long_side / max(w, h)
        pw, ph = round(w * scale), round(h * scale)
        x = rng.randint(0, COMPOSITE_SIZE[0] - pw)
        y = rng.randint(0, COMPOSITE_SIZE[1] - ph)
        W, H = COMPOSITE_SIZE
        out.append(Composite(query, pasted, bg, g, (x / W, y / H, (x + pw) / W, (y + ph) / H)))
    return out


def write_composite(c: Composite, path: Path) -> Path:
    """The composite as a JPEG file (quality 90): the background stretched to 640 x 480, the
    pasted shot scaled into its box."""
    W, H = COMPOSITE_SIZE
    picture = _upright(c.background).resize(COMPOSITE_SIZE, Image.Resampling.LANCZOS)
    x0, y0, x1, y1 = (round(c.box[0] * W), round(c.box[1] * H), round(c.box[2] * W), round(c.box[3] * H))
    picture.paste(_upright(c.pasted).resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS), (x0, y0))
    picture.save(path, quality=90)
    return path


def rank_of(ids: np.ndarray, target: int) -> int:
    """The target's place among result ids (best first); len(ids) when it is not among them."""
    hit = np.flatnonzero(ids == target)
    return int(hit[0]) if len(hit) else len(ids)


def searched(x: np.ndarray, queries: np.ndarray, top: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The default search's and plain search's first `top` result ids of each query vector over
    the library x (an exact index; the same neighbourhood search as `sba search`)."""
    source = BruteForce(x)
    # a search that ranks the whole library needs every photo's augmented vector: made once
    augmented = AugmentedVectors(source, all_vectors=top >= len(x))
    default, plain = [], []
    for q in queries:
        default.append(neighbourhood_search(q, source, top, augmented)[0])
        plain.append(source.search(q[None], top)[0][0])
    return default, plain


def pointed_at(model, query_map: np.ndarray, composite_map: np.ndarray, box) -> bool:
    """Whether the explanation's strongest place in the composite is inside the pasted box
    (a pair that does not match, score <= 0, has no place: a miss)."""
    d = decompose(model, np.asarray(query_map, np.float32), np.asarray(composite_map, np.float32))
    if d.score <= 0:
        return False
    found = regions(d.result_cells, d.score, (0.0, 0.0, 1.0, 1.0))
    if not found:
        return False
    px, py = found[0].point
    return box[0] <= px <= box[2] and box[1] <= py <= box[3]


def found_inside(model, window_maps: Sequence[np.ndarray], queries: np.ndarray, default: list[np.ndarray],
                 boxes: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(whether composite i is in the band of photos found inside (library/inside.py) for query i:
    the INSIDE_RESULTS photos whose best window matches best, the default search's first TOP
    results left out (they are shown above the band); whether its best window, the part Why
    outlines, has its centre in the pasted box). `window_maps`: the library photos read at
    WINDOW_SIDE, in library order (the composites first)."""
    windows = photo_windows(model, window_maps)
    table = WindowTable.of(range(len(windows)), windows, model.dims)
    found = np.array([i in {pid for pid, _, _ in table.best(q, INSIDE_RESULTS, set(default[i][:TOP].tolist()))}
                      for i, q in enumerate(queries)])
    pointed = []
    for i, (q, b) in enumerate(zip(queries, boxes)):
        x, y, w, h = windows[i].boxes[int(np.argmax(table.exact_scores(np.flatnonzero(table.photo_ids == i), q)))]
        pointed.append(b[0] <= x + w / 2 <= b[2] and b[1] <= y + h / 2 <= b[3])
    return found, np.array(pointed)


def composite_protocol(query_maps: Sequence[np.ndarray], composite_maps: Sequence[np.ndarray],
                       boxes: Sequence[tuple], everyday_maps: Sequence[np.ndarray],
                       fit: Callable[[Sequence[np.ndarray]], tuple[np.ndarray, object]],
                       vectors: Callable[[object, Sequence[np.ndarray]], np.ndarray],
                       window_maps: Sequence[np.ndarray] | None = None, grown: bool = False) -> dict:
    """Composite i is query i's target; the library is the composites then `everyday_maps`.
    `fit(maps) -> (vectors, model)` fits as the product fits a library (`grown`: on the everyday
    photos, the composites added afterwards). With `window_maps` (the library at WINDOW_SIDE, same
    order) also the band found inside photos."""
    library = list(composite_maps) + list(everyday_maps)
    x, model = _fitted(fit, vectors, list(composite_maps), list(everyday_maps), grown)
    q = vectors(model, query_maps)
    default, plain = searched(x, q, TOP)
    found = np.array([rank_of(ids, i) < TOP for i, ids in enumerate(default)])
    found_plain = np.array([rank_of(ids, i) < TOP for i, ids in enumerate(plain)])
    sims = q @ x.T
    plain_rank = (sims > np.diag(sims)[:, None]).sum(axis=1)  # photos above composite i for query i
    pointed = np.array([pointed_at(model, qm, cm, b) for qm, cm, b in zip(query_maps, composite_maps, boxes)])
    band = {}
    if window_maps is not None:
        inside, pointed_inside = found_inside(model, window_maps, q, default, boxes)
        band = {"found_inside_band": round(float(inside.mean()), 3),
                "found_top10_or_inside": round(float((found | inside).mean()), 3),
                "pointed_inside": round(float(pointed_inside.mean()), 3)}
    return {"cases": len(q), "library": len(library), **band,
            "found_top10": round(float(found.mean()), 3),
            "found_top10_plain": round(float(found_plain.mean()), 3),
            "median_plain_rank": float(np.median(plain_rank)),
            "pointed": round(float(pointed.mean()), 3),
            "pointed_found": round(float(pointed[found].mean()), 3) if found.any() else None}


def _fitted(fit: Callable, vectors: Callable, added: list, around: list, grown: bool) -> tuple[np.ndarray, object]:
    """(vectors of `added` then `around`, the model): fitted on them all, or, `grown`, on `around`
    alone with `added` encoded by that model (photos that came after the fit)."""
    if not grown:
        return fit(added + around)
    x_around, model = fit(around)
    return np.concatenate([vectors(model, added), x_around]), model


def split_queries(groups: np.ndarray, seed: int = 0, share: float = QUERY_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(queries, library rows) of a set: `share` of each group's photos (at least one, leaving at
    least one) are queries; photos of no group stay in the library."""
    rng = np.random.default_rng(seed)
    queries = []
    for g in np.unique(groups[groups >= 0]):
        rows = rng.permutation(np.flatnonzero(groups == g))
        if len(rows) >= 2:
            queries.extend(rows[:min(len(rows) - 1, max(1, round(share * len(rows))))])
    queries = np.sort(np.asarray(queries, np.int64))
    return queries, np.setdiff1d(np.arange(len(groups)), queries)


def elsewhere_protocol(query_maps: Sequence[np.ndarray], query_groups: np.ndarray,
                       library_maps: Sequence[np.ndarray], library_groups: np.ndarray,
                       fit: Callable, vectors: Callable, around_maps: Sequence[np.ndarray] = (),
                       grown: bool = False) -> dict:
    """Queries from outside the library: precision at 10 (hits / min(10, positives)) and mAP of
    the default and the plain search, positives the library photos of the query's group. The
    library is `library_maps` then `around_maps` (`grown`: the model fitted on `around_maps`)."""
    from sba_desktop.lab.metrics import average_precision

    x, model = _fitted(fit, vectors, list(library_maps), list(around_maps), grown)
    q = vectors(model, query_maps)
    default, plain = searched(x, q, len(x))
    out = {"queries": len(q), "library": len(x)}
    for name, results in (("default", default), ("plain", plain)):
        p10, aps = [], []
        for g, ids in zip(query_groups, results):
            rel = library_groups[ids] == g
            positives = int((library_groups == g).sum())
            p10.append(rel[:TOP].sum() / min(TOP, positives))
            aps.append(average_precision(rel, positives))
        out[f"precision_at_10_{name}"] = round(float(np.mean(p10)), 4)
        out[f"mAP_{name}"] = round(float(np.mean(aps)), 4)
    return out


def run(task: str, ps, everyday: list[Path], encode: Callable[[list[Path]], list[np.ndarray]],
        fit: Callable, vectors: Callable, seed: int = 0,
        encode_inside: Callable[[list[Path]], list[np.ndarray]] | None = None) -> list[dict]:
    """The library shapes of one protocol on one set (`ps`: lab.evaluation.PhotoSet) with the
    everyday photos of the distractor folders, one row per shape ("among" only with everyday
    photos; composites need them as backgrounds). `encode_inside`: the library photos' maps for
    their windows (composites: the band found inside photos is measured too)."""
    paths = ps.paths()  # the set has groups: checked by lab.evaluation before any photo is encoded
    if task == "composites":
        members = [[paths[i] for i in np.flatnonzero(ps.groups == g)] for g in range(int(ps.groups.max()) + 1)]
        cases = draw_composites(members, everyday, seed)
        used = {c.background for c in cases}
        others = [p for p in everyday if p not in used]   # the backgrounds themselves are not indexed
        random.Random(seed).shuffle(others)               # "alone": 300 of every kind, not the first folder's
        with tempfile.TemporaryDirectory(prefix="sba-composites-") as tmp:
            files = [write_composite(c, Path(tmp) / f"composite-{i:04d}.jpg") for i, c in enumerate(cases)]
            query_maps = encode([c.query for c in cases])
            composite_maps = encode(files)
            inside_maps = encode_inside(files + others) if encode_inside else None
        everyday_maps = encode(others)
        rows = []
        for shape, around in (("alone", everyday_maps[:ALONE_EVERYDAY]), ("among", everyday_maps),
                              ("grown", everyday_maps)):
            windows = inside_maps[:len(files) + len(around)] if inside_maps is not None else None
            rows.append({"library_shape": shape, **composite_protocol(
                query_maps, composite_maps, [c.box for c in cases], around, fit, vectors, windows,
                grown=shape == "grown")})
        return rows
    if task != "elsewhere":
        raise ValueError(f"unknown protocol '{task}'")
    queries, kept = split_queries(ps.groups, seed)
    maps = encode(paths)
    everyday_maps = encode(everyday)
    lib_groups = ps.groups[kept]
    rows = []
    for shape, around in (("alone", []), ("among", everyday_maps), ("grown", everyday_maps))[:3 if everyday else 1]:
        rows.append({"library_shape": shape, **elsewhere_protocol(
            [maps[i] for i in queries], ps.groups[queries], [maps[i] for i in kept],
            np.concatenate([lib_groups, np.full(len(around), -1, np.int64)]), fit, vectors, around,
            grown=shape == "grown")})
    return rows
