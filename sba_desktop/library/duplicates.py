"""Duplicates a person can act on: copies of one photo, and similar shots of one moment.

Copies are the same picture as different files (re-saved, resized, another format, turned,
re-toned, cropped, watermarked). Candidates come from the library's own vectors (the SBA index:
a copy is among a photo's nearest neighbours) and, for copies turned in their pixels, from the
small grey pictures turned a quarter at a time; every candidate pair is then *verified* on those
grey pictures (engine/copies.py), because a vector cannot tell a copy from another shot of the
same thing. Similar shots are photos taken seconds apart (EXIF capture time) that look alike.

Groups never chain: a group is a centre and photos each verified against that centre (a star),
so two photos of a group are at most "both copies of the centre", never linked through a
chain of merely similar neighbours.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..engine import copies
from .decode import DecodeError, decode
from .encoding import Looks

log = logging.getLogger(__name__)

COPY_THRESHOLD = 0.88     # agreement of two grey pictures, tile by tile, to call them copies
                          # (chosen on scripts/duplicates_benchmark.py; docs/quality.md)
CANDIDATE_SIMILARITY = 0.6  # vectors closer than this are compared as pictures
NEIGHBOURS = 12           # nearest neighbours looked at per photo
TURNED_SIMILARITY = 0.85  # squeezed grey pictures this close, a quarter turn apart, are compared
SIMILAR_SIMILARITY = 0.80  # vectors this close, taken within SIMILAR_SECONDS, are similar shots
SIMILAR_SECONDS = 10.0
RAW_EXTENSIONS = (".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
                  ".rw2", ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".erf", ".kdc", ".mrw", ".rwl")
NATIVE_FORMATS = ("jpeg", "heic", "avif")  # what cameras and phones write; PNG/WebP/TIFF/BMP/GIF
                                           # copies of a photo are exports


@dataclass
class Member:
    photo_id: int
    path: str
    width: int
    height: int
    size: int                 # bytes
    mtime: float
    format: str | None
    taken: float | None
    camera: str | None
    companions: list[str] = field(default_factory=list)  # RAW files of the same name beside it
    agreement: float = 1.0    # how surely it is a copy of (or, similar shots: how close to) the centre

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass
class DuplicateGroup:
    kind: str                 # "copies" | "similar"
    members: list[Member]
    keeper: int | None        # index of the suggested copy to keep (copies only)

    def others(self) -> list[Member]:
        """The members the suggestion would move to the trash: never the keeper, never a photo
        with a RAW file beside it (one photo, two files)."""
        if self.keeper is None:
            return []
        return [m for i, m in enumerate(self.members) if i != self.keeper and not m.companions]


@dataclass
class DuplicateReport:
    copies: list[DuplicateGroup]
    similar: list[DuplicateGroup]
    photos: int               # photos looked at
    without_time: int         # of them, without an EXIF capture time (not in similar shots)
    candidates: int           # pairs compared as pictures
    seconds: float
    threshold: float


def keeper_rank(m: Member) -> tuple:
    """The suggested copy to keep, best first: the photo with its RAW file beside it, then the
    most pixels, then the one with camera EXIF (originals carry it; many exports drop it), then
    a camera format (JPEG/HEIC) over an export format (PNG/WebP/...), then the larger file (less
    compressed), then the oldest file, then the shorter path."""
    return (not m.companions, -m.pixels, m.camera is None, (m.format or "") not in NATIVE_FORMATS,
            -m.size, m.mtime, len(m.path), m.path)


def raw_companions(path: str) -> list[str]:
    """RAW files with this photo's name in its folder (IMG_0001.CR2 beside IMG_0001.JPG)."""
    folder, name = os.path.split(path)
    stem = os.path.splitext(name)[0]
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    return sorted(os.path.join(folder, n) for n in names
                  if n != name and os.path.splitext(n)[0] == stem and os.path.splitext(n)[1].lower() in RAW_EXTENSIONS)


def _looks_of(path: str) -> Looks | None:
    """The looks of a photo indexed before they were stored (the one decoder, at a small size)."""
    try:
        photo = decode(path, 2 * copies.SIGNATURE_SIDE)
    except DecodeError as exc:
        log.info("duplicates: %s skipped (%s)", path, exc)
        return None
    return Looks(copies.signature(photo.rgb), photo.taken, photo.camera, photo.fmt)


def _stars(edges: dict[tuple[int, int], float]) -> list[tuple[int, dict[int, float]]]:
    """Groups without chains: photos in order of their links (most first) become centres, each
    with its linked photos not yet in a group. Returns (centre, {member: weight})."""
    links: dict[int, dict[int, float]] = {}
    for (i, j), w in edges.items():
        links.setdefault(i, {})[j] = w
        links.setdefault(j, {})[i] = w
    grouped: set[int] = set()
    out = []
    for i in sorted(links, key=lambda i: (-len(links[i]), -sum(links[i].values()), i)):
        if i in grouped:
            continue
        members = {j: w for j, w in links[i].items() if j not in grouped}
        if members:
            grouped.add(i)
            grouped.update(members)
            out.append((i, members))
    return out


@dataclass
class Comparison:
    """The expensive part of finding duplicates, kept so a new threshold only regroups."""
    rows: list[tuple]                           # catalog.looks_of_indexed rows with a signature
    agreements: dict[tuple[int, int], float]    # (row a, row b) -> agreement of their pictures
    close: dict[tuple[int, int], float]         # (row a, row b) -> similarity of their vectors
    seconds: float


def compare(lib, progress: Callable[[str, int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Comparison | None:
    """Candidate pairs of the library's indexed photos, compared as pictures. None when stopped."""
    t0 = time.perf_counter()
    say = progress or (lambda phase, done, total: None)
    stop = should_stop or (lambda: False)
    if lib.model is None or lib.index is None or len(lib.index) < 2:
        return Comparison([], {}, {}, 0.0)
    model_id = lib.model.model_id
    rows = list(lib.catalog.looks_of_indexed(model_id))
    missing = [r for r in rows if r[6] is None]
    if missing:  # photos indexed before their looks were stored: once, then kept in the catalog
        filled = []
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            for k, (r, lk) in enumerate(zip(missing, pool.map(lambda r: _looks_of(r[1]), missing))):
                if lk is not None:
                    filled.append((r[0], lk))
                if k % 64 == 0:
                    say("reading photos indexed before", k, len(missing))
                    if stop():
                        break
        with lib.catalog.transaction():
            lib.catalog.store_looks(filled)
        rows = list(lib.catalog.looks_of_indexed(model_id))
    rows = [r for r in rows if r[6] is not None]
    if len(rows) < 2 or stop():
        return None if stop() else Comparison(rows, {}, {}, time.perf_counter() - t0)
    ids = np.array([r[0] for r in rows], np.int64)
    pos = {int(pid): k for k, pid in enumerate(ids)}
    sigs = [r[6] for r in rows]
    widths = [int(r[4] or r[6].shape[1]) for r in rows]

    # candidates: (a, b) -> quarter turns of b to try against a
    say("finding candidates", 0, len(rows))
    with lib._state:
        vecs = lib.index.vectors(ids)
        nb, sims = lib.index.search(vecs, min(NEIGHBOURS + 1, len(lib.index)))
    pairs: dict[tuple[int, int], set[int]] = {}
    close: dict[tuple[int, int], float] = {}
    for a in range(len(ids)):
        for j, s in zip(nb[a], sims[a]):
            b = pos.get(int(j))
            if b is None or b == a or s < min(CANDIDATE_SIMILARITY, SIMILAR_SIMILARITY):
                continue
            key = (min(a, b), max(a, b))
            close[key] = max(close.get(key, 0.0), float(s))
            if s >= CANDIDATE_SIMILARITY:
                pairs.setdefault(key, set()).add(0)
    from .vindex import VectorIndex

    thumbs = np.stack([copies.thumb(s) for s in sigs])
    tindex = VectorIndex(thumbs.shape[1], capacity=len(ids))
    tindex.add(np.arange(len(ids)), thumbs, threads=os.cpu_count() or 1)
    for turn in (1, 2, 3):
        nb2, sims2 = tindex.search(np.stack([copies.thumb(s, turn) for s in sigs]), 3)
        for a in range(len(ids)):
            for b, s in zip(nb2[a], sims2[a]):
                b = int(b)
                if b != a and s >= TURNED_SIMILARITY:
                    # b looks like a turned `turn` quarters: to compare, b is turned back
                    key = (min(a, b), max(a, b))
                    pairs.setdefault(key, set()).add((4 - turn) % 4 if key[0] == a else turn)
    if stop():
        return None

    say("comparing", 0, len(pairs))
    keys = list(pairs)

    def verify(key):
        a, b = key
        return copies.match(sigs[a], sigs[b], widths[a], widths[b], tuple(sorted(pairs[key])))[1]

    agreements: dict[tuple[int, int], float] = {}
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for k, (key, agree) in enumerate(zip(keys, pool.map(verify, keys, chunksize=16))):
            agreements[key] = agree
            if k % 256 == 0:
                say("comparing", k, len(keys))
                if stop():
                    return None
    return Comparison(rows, agreements, close, time.perf_counter() - t0)


def group(comparison: Comparison, threshold: float = COPY_THRESHOLD,
          similar_seconds: float = SIMILAR_SECONDS) -> DuplicateReport:
    """Copies and similar shots from a comparison (see the module doc)."""
    t0 = time.perf_counter()
    rows = comparison.rows

    def member(k: int, agreement: float = 1.0) -> Member:
        r = rows[k]
        return Member(int(r[0]), r[1], int(r[4] or 0), int(r[5] or 0), int(r[2]), r[3] / 1e9, r[10], r[8], r[9],
                      raw_companions(r[1]), agreement)

    copy_groups, hidden = [], set()  # hidden: copies that are not their group's keeper
    for centre, members in _stars({k: v for k, v in comparison.agreements.items() if v >= threshold}):
        order = [centre] + sorted(members, key=lambda k: -members[k])
        group = [member(centre)] + [member(k, members[k]) for k in order[1:]]
        best = min(range(len(group)), key=lambda i: keeper_rank(group[i]))
        copy_groups.append(DuplicateGroup("copies", group, best))
        hidden.update(k for i, k in enumerate(order) if i != best)

    # similar shots: close vectors, taken seconds apart; of a group of copies only its keeper
    taken = [r[8] for r in rows]
    similar_edges = {}
    for (a, b), s in comparison.close.items():
        if s < SIMILAR_SIMILARITY or taken[a] is None or taken[b] is None or a in hidden or b in hidden:
            continue
        if abs(taken[a] - taken[b]) <= similar_seconds:
            similar_edges[(a, b)] = s
    similar_groups = []
    for centre, members in _stars(similar_edges):
        group = [member(centre)] + [member(k, w) for k, w in members.items()]
        group.sort(key=lambda m: (m.taken or 0.0, m.path))
        similar_groups.append(DuplicateGroup("similar", group, None))
    order = lambda g: (-len(g.members), g.members[0].path)  # noqa: E731
    return DuplicateReport(sorted(copy_groups, key=order), sorted(similar_groups, key=order), len(rows),
                           sum(1 for t in taken if t is None), len(comparison.agreements),
                           comparison.seconds + time.perf_counter() - t0, threshold)


def find_duplicates(lib, threshold: float = COPY_THRESHOLD, similar_seconds: float = SIMILAR_SECONDS,
                    progress: Callable[[str, int, int], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> DuplicateReport | None:
    """Copies and similar shots among the library's indexed photos; None when stopped."""
    comparison = compare(lib, progress, should_stop)
    return None if comparison is None else group(comparison, threshold, similar_seconds)
