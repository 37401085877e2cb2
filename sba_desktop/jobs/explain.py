"""Why two photos match: the exact split of the similarity over places in the two photos (the
regions that carry it, and which part of the query matches which part of the result), and each
detector's share with its heatmaps."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from PIL import Image

from sba_desktop.engine.detector_names import detector_label
from sba_desktop.engine.heatmaps import combined_heatmap, detector_heatmaps
from sba_desktop.engine.match_map import Region, decompose, region_pairs, regions
from sba_desktop.engine.neighbourhood import QUERY, SearchSplit
from sba_desktop.engine.sba import DescriptorModel
from sba_desktop.library.decode import DecodeError, decode
from sba_desktop.library.encoding import Encoded, Source
from sba_desktop.library.library import Library
from sba_desktop.library.lock import LibraryBusyError

DISPLAY_SIZE = 512  # long side of the pictures shown side by side
GALLERY_SIZE = 12   # patches per detector gallery
PATCH_SHARE = 0.45  # a patch is this share of the photo's short side, centred on the peak


@dataclass
class SearchShares:
    """The result's score in the default search (with close matches), split exactly over the
    photos it is made of (engine/neighbourhood.split_search_score)."""
    score: float                          # the default search's score
    these_two: float                      # the query's and the result's own part
    close_matches: list[tuple[str, float]]  # (path, part) of the other photos, largest first


@dataclass
class Explanation:
    query: Image.Image            # RGB, display size
    result: Image.Image
    channels: list[int]           # detector channel per position
    names: list[str]              # what each detector responds to (ImageNet head), same order
    contributions: np.ndarray     # (N,) share of the similarity, same order as channels (exact:
                                  # with the whole photo's and the centring's they sum to 1)
    query_maps: np.ndarray        # (N, h, w) in [0, 1]
    result_maps: np.ndarray
    query_combined: np.ndarray    # contribution-weighted sum of the maps, in [0, 1]
    result_combined: np.ndarray
    score: float = 0.0            # the plain similarity (cosine of the two vectors)
    query_shares: np.ndarray | None = None   # (h, w) each place's share of the score
    result_shares: np.ndarray | None = None
    centring: tuple[float, float] = (0.0, 0.0)  # the PCA centring's share, query side and result side
    query_regions: list[Region] | None = None   # the places that carry the match, strongest first
    result_regions: list[Region] | None = None
    links: list[tuple[int, int, float]] | None = None  # (query region, result region, share)
    query_box: tuple[float, float, float, float] = (0, 0, 0, 0)  # what the network saw, photo pixels
    result_box: tuple[float, float, float, float] = (0, 0, 0, 0)
    search: SearchShares | None = None  # None: the result is not in the library (or out of reach)
    # looking inside photos: the result's window most like the whole query (score, x0, y0, x1, y1
    # in the result's pixels), the evidence of the band "inside other photos"; None: no windows
    inside: tuple[float, tuple[float, float, float, float]] | None = None

    def ranking(self) -> list[int]:
        """Positions of the detectors, largest contribution first."""
        return [int(i) for i in np.argsort(-self.contributions, kind="stable")]


def _display(img: Image.Image) -> Image.Image:
    img = img.copy()
    img.thumbnail((DISPLAY_SIZE, DISPLAY_SIZE))
    return img


def explain(lib: Library, query: Source, result_path: str) -> Explanation:
    """Why `query` (a file or an image, optionally a region of it) matches a library photo: the
    maps come from the same encoding the search used."""
    model = lib.model
    if model is None or model.spec.method != "sba":
        raise RuntimeError("explanations need an SBA model: index some photos first")
    enc = lib.photo_encoder(keep_maps=True)
    q = enc.encode_one(query, with_picture=True)
    r = enc.encode_one(Source("result", path=result_path), with_picture=True)
    ex = explanation_of(model, q, r, query.region, getattr(enc.backbone, "channel_names", None),
                        named_detectors(lib), search_shares(lib, q.vector, result_path))
    ex.inside = inside_part(lib, q.vector, result_path, r.width, r.height)
    return ex


def inside_part(lib: Library, query_vector: np.ndarray, result_path: str, width: int, height: int
                ) -> tuple[float, tuple[float, float, float, float]] | None:
    """The result's window most like the query (score, box in the result's pixels), when the
    library looks inside its photos and has the result's windows."""
    pid = lib.catalog.photo_id(result_path)
    if pid is None or lib.model is None or not lib.settings().inside:
        return None
    best = lib.inside.best_window(lib.model.model_id, pid, query_vector)
    if best is None:
        return None
    score, (x, y, w, h) = best
    return score, (x * width, y * height, (x + w) * width, (y + h) * height)


def explanation_of(model: DescriptorModel, q: Encoded, r: Encoded, region: tuple[float, float, float, float] | None,
                   names: list[str] | None, named: set[int], search: SearchShares | None) -> Explanation:
    """The explanation of two encoded photos (with their maps and pictures): the exact split,
    regions and pairs, detector heatmaps and labels (words only for the `named` positions)."""
    fq, fr = q.map.astype(np.float32), r.map.astype(np.float32)
    d = decompose(model, fq, fr)
    scale = d.score if d.score else 1.0
    contrib = d.per_region[:len(model.detectors)] / scale  # exact shares of the score (query side)
    q_img, r_img = _display(q.picture), _display(r.picture)
    qm = detector_heatmaps(fq, model.detectors, q_img.size)
    rm = detector_heatmaps(fr, model.detectors, r_img.size)
    channels = [int(c) for c in model.detectors]
    q_box = (region[0], region[1], region[0] + region[2], region[1] + region[3]) if region else (0, 0, q.width, q.height)
    r_box = (0, 0, r.width, r.height)
    # a score <= 0 is no more than two photos picked at random share (the vectors are centred on
    # the library's mean): there is no match to point at, and shares of it would be meaningless
    matched = d.score > 0
    q_regions = regions(d.query_cells, d.score, q_box) if matched else []
    r_regions = regions(d.result_cells, d.score, r_box) if matched else []
    labels = [detector_label(c, names if pos in named else None) for pos, c in enumerate(channels)]
    return Explanation(q_img, r_img, channels, labels, contrib, qm, rm,
                       combined_heatmap(qm, contrib), combined_heatmap(rm, contrib), d.score,
                       d.query_cells / scale, d.result_cells / scale,
                       (d.query_centring / scale, d.result_centring / scale), q_regions, r_regions,
                       region_pairs(d.pairs, d.score, q_regions, r_regions), q_box, r_box, search)


def search_shares(lib: Library, query_vector: np.ndarray, result_path: str) -> SearchShares | None:
    """The default search's score of the result, split over the query, the result and the close
    matches the search brought in (the re-ranking explained on top of the plain split)."""
    split = lib.split_search(query_vector, result_path)
    if split is None:
        return None
    return shares_of(split, lib.catalog.paths([k for k in split.parts if k not in (QUERY, split.result)]))


def shares_of(split: SearchSplit, paths: dict[int, str]) -> SearchShares:
    """A split of the default search's score in the view's terms: these two photos, and each
    close match by its path."""
    others = {k: v for k, v in split.parts.items() if k not in (QUERY, split.result)}
    return SearchShares(split.score, split.score - sum(others.values()),
                        sorted(((paths.get(k, f"photo {k}"), v) for k, v in others.items()), key=lambda t: -t[1]))


def explanation_json(ex: Explanation) -> dict:
    """`sba explain --json`: the score, the detectors with their shares, the regions of each
    photo (boxes in that photo's own oriented pixels, strongest first) and the pairs linking them."""
    def region_list(rs: list[Region]) -> list[dict]:
        return [{"box": list(r.box), "share": round(r.share, 4), "point": list(r.point)} for r in rs]

    return {"score": round(ex.score, 5), "matched": ex.score > 0,
            "centring_share": {"query": round(ex.centring[0], 4), "result": round(ex.centring[1], 4)},
            "query_regions": region_list(ex.query_regions or []),
            "result_regions": region_list(ex.result_regions or []),
            "pairs": [{"query_region": i, "result_region": j, "share": round(s, 4)} for i, j, s in ex.links or []],
            "inside": None if ex.inside is None else {"score": round(ex.inside[0], 5),
                                                      "box": [round(v) for v in ex.inside[1]]},
            "search": None if ex.search is None else {
                "score": round(ex.search.score, 5), "these_two": round(ex.search.these_two, 5),
                "close_matches": [{"path": p, "part": round(v, 5)} for p, v in ex.search.close_matches]},
            "detectors": [{"channel": ex.channels[i], "name": ex.names[i], "share": round(float(ex.contributions[i]), 4)}
                          for i in ex.ranking()]}


NAME_CHECK_PATCHES = 8  # gallery patches a detector's name is checked on
NAME_CHECK_AGREE = 0.5  # ... and the share of them the head must see one of the named classes in


def named_detectors(lib: Library) -> set[int]:
    """Positions of the detectors whose words mean something in this library: the ImageNet head,
    run on the detector's own gallery patches (where it fires most here), puts one of the
    detector's named classes in its top 5 for at least half of them. The others are shown as
    "detector N". Checked once per model (a few seconds) and kept in the catalog."""
    model = lib.model
    if model is None or model.spec.method != "sba":
        return set()
    key = f"named_detectors:{model.model_id}"
    kept = lib.catalog.get_meta(key)
    if kept is not None:
        return set(json.loads(kept))
    enc = lib.photo_encoder(keep_maps=True)
    head = getattr(enc.backbone, "imagenet_head", None)
    if head is None:
        return set()
    galleries = detector_galleries(lib, range(len(model.detectors)), NAME_CHECK_PATCHES)
    sources = [Source((pos, i), image=p.image) for pos, ps in galleries.items() for i, p in enumerate(ps)]
    agree: dict[int, int] = {}
    for chunk in enc.encode(sources):
        for e in chunk:
            if e.map is None:
                continue
            pos = e.key[0]
            wanted = set(head.channel_classes(int(model.detectors[pos])))
            agree[pos] = agree.get(pos, 0) + bool(wanted & set(head.top_classes(e.map)))
    named = sorted(pos for pos, ps in galleries.items()
                   if len(ps) >= 3 and agree.get(pos, 0) >= NAME_CHECK_AGREE * len(ps))
    try:
        with lib.writer_lock():
            lib.catalog.set_meta(key, json.dumps(named))
    except LibraryBusyError:
        pass  # another job writes now: checked again next time
    return set(named)


@dataclass
class Patch:
    photo_id: int
    path: str
    response: float               # the detector's peak response in this photo
    box: tuple[int, int, int, int]  # left, top, right, bottom in the decoded photo's pixels
    image: Image.Image            # the crop


def detector_gallery(lib: Library, position: int, top: int = GALLERY_SIZE) -> list[Patch]:
    """The library patches where detector `position` (of the model's N) fires most: a square
    crop around each photo's peak, strongest first. Photos that cannot be read now are left out."""
    return detector_galleries(lib, [position], top)[position]


def detector_galleries(lib: Library, positions: Iterable[int], top: int = GALLERY_SIZE) -> dict[int, list[Patch]]:
    """detector_gallery for several detectors, from one pass over the catalog."""
    positions = list(positions)
    model = lib.model
    if model is None or model.spec.method != "sba":
        return {pos: [] for pos in positions}
    out: dict[int, list[Patch]] = {}
    for pos, peaks in lib.catalog.strongest_peaks(model.model_id, positions, top).items():
        out[pos] = []
        for pid, path, response, y, x in peaks:
            try:
                rgb = decode(path, DISPLAY_SIZE).rgb
            except (DecodeError, OSError):
                continue
            w, h = rgb.size
            side = max(8, int(PATCH_SHARE * min(w, h)))
            left = int(min(max(0, x * w - side / 2), w - side))
            upper = int(min(max(0, y * h - side / 2), h - side))
            box = (left, upper, left + side, upper + side)
            out[pos].append(Patch(pid, path, response, box, rgb.crop(box)))
    return out
