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
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from sba_desktop.engine import copies
from sba_desktop.library.catalog import LooksRow
from sba_desktop.library.decode import DecodeError, decode
from sba_desktop.library.discover import raw_companions
from sba_desktop.library.encoding import Looks

log = logging.getLogger(__name__)

COPY_THRESHOLD = 0.84     # agreement of two grey pictures, tile by tile, to call them copies
                          # (chosen on scripts/duplicates_benchmark.py; docs/quality.md)
CANDIDATE_SIMILARITY = 0.6  # vectors closer than this are compared as pictures
NEIGHBOURS = 12           # nearest neighbours looked at per photo
SEARCH_EF = 32            # HNSW search breadth for them (copies are the very nearest: measured the same
                          # recall on the benchmark as the searches' 96)
TURNED_SIMILARITY = 0.85  # squeezed grey pictures this close, a quarter turn apart, are compared
TURNED_SIDE = 8           # (squeezed to 8 x 8)
COMPARE_VERSION = "4"     # of the comparison below: results stored under another are compared again
SAME_FRAME_THUMB = 0.85  # squeezed pictures this alike are first laid over each other whole
SURE_COPY = 0.95          # agreement laid over the whole photo that needs no crop search
CROP_BOX = 0.60           # a photo this close to a crop's place in another (copies.BOXES),
CROP_SIMILARITY = 0.70    # with vectors this close, is searched for as a crop of it
SIMILAR_SIMILARITY = 0.85  # vectors this close, taken within SIMILAR_SECONDS, are similar shots
SIMILAR_SECONDS = 3.0   # a burst or a series of one moment; UKBench's deliberate shots of one object
                        # from other sides are 5-10 s apart (median 10) and must stay apart
EDIT_TONE = 6.0           # grey levels (of 255) of mean brightness or contrast apart: re-toned. A re-save,
                          # resize or format change moves them by well under 1 (JPEG rounding)
NATIVE_FORMATS = ("raw", "jpeg", "heic", "avif")  # what cameras and phones write; PNG/WebP/TIFF/BMP/GIF
                                           # copies of a photo are exports


# Measured by scripts/duplicates_benchmark.py on the shared photos among the 5,895 distractors
# (docs/quality.md): threshold -> (share of grouped pairs that are copies, share of copies found)
MEASURED = {0.80: (0.9984, 0.9955), 0.84: (0.9984, 0.9929), 0.88: (0.9985, 0.9891), 0.90: (0.9985, 0.9872),
            0.92: (0.9985, 0.9821), 0.94: (0.9985, 0.9744)}


def saved_threshold(lib) -> float:
    """The person's threshold for copies (a library setting), or the default."""
    v = lib.catalog.get_meta("duplicates.threshold")
    return float(v) if v else COPY_THRESHOLD


def save_threshold(lib, value: float) -> None:
    lib.catalog.set_meta("duplicates.threshold", f"{value:.2f}")


def threshold_meaning(value: float) -> str:
    """What a threshold meant on the benchmark, in words (the nearest measured one)."""
    near = min(MEASURED, key=lambda t: abs(t - value))
    precision, recall = MEASURED[near]
    return (f"at {near:.2f} on real photos: {precision:.1%} of the photos grouped are copies, "
            f"{recall:.1%} of the copies are found" + (" (default)" if near == COPY_THRESHOLD else ""))


@dataclass
class Member:
    photo_id: int
    path: str
    width: int
    height: int
    size: int                 # bytes, when it was indexed
    mtime_ns: int             # modification time, when it was indexed
    format: str | None
    taken: float | None
    camera: str | None
    companions: list[str] = field(default_factory=list)  # RAW files of the same name beside it
    agreement: float = 1.0    # how surely it is a copy of (or, similar shots: how close to) the centre
    tone: tuple[float, float] | None = None  # mean and spread of its grey picture (0-255)
    edit: str | None = None   # "cropped", "re-toned", "cropped, re-toned": an edit, not a plain copy

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def changed(self) -> str | None:
        """Why this file is no longer the one compared (gone, or changed since), or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "no longer there (moved or deleted outside sba-desktop)"
        except OSError as exc:
            return f"cannot be read: {exc.strerror or exc}"
        if st.st_size != self.size or st.st_mtime_ns != self.mtime_ns:
            return "changed since it was compared (index again, then look again)"
        return None


@dataclass
class DuplicateGroup:
    kind: str                 # "copies" | "similar"
    members: list[Member]
    keeper: int | None        # index of the suggested copy to keep (copies only)

    def others(self) -> list[Member]:
        """The members the suggestion would move to the trash: never the keeper, never a photo
        with a RAW file beside it (one photo, two files), never an edit (a crop or a re-tone is
        work the person did: offered, not suggested)."""
        if self.keeper is None:
            return []
        return [m for i, m in enumerate(self.members) if i != self.keeper and not m.companions and not m.edit]


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
            -m.size, m.mtime_ns, len(m.path), m.path)


def _looks_of(path: str) -> Looks | None:
    """The looks of a photo indexed before they were stored (the one decoder, at a small size)."""
    try:
        photo = decode(path, 2 * copies.SIGNATURE_SIDE)
    except DecodeError as exc:
        log.info("duplicates: %s skipped (%s)", path, exc)
        return None
    return Looks.of(photo)


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
    rows: list[LooksRow]                        # the photos compared (their signatures dropped)
    agreements: dict[tuple[int, int], float]    # (row a, row b) -> agreement of their pictures
    close: dict[tuple[int, int], float]         # (row a, row b) -> similarity of their vectors
    seconds: float
    tones: list[tuple[float, float]] = field(default_factory=list)  # per row: grey mean and spread


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
    missing = [r for r in rows if r.signature is None]
    if missing:  # photos indexed before their looks were stored: once, then kept in the catalog
        filled = []
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            for k, (r, lk) in enumerate(zip(missing, pool.map(lambda r: _looks_of(r.path), missing))):
                if lk is not None:
                    filled.append((r.id, lk))
                if k % 64 == 0:
                    say("reading photos indexed before", k, len(missing))
                    if stop():
                        break
        with lib.catalog.transaction():
            lib.catalog.store_looks(filled)
        rows = list(lib.catalog.looks_of_indexed(model_id))
    rows = [r for r in rows if r.signature is not None]
    if len(rows) < 2 or stop():
        return None if stop() else Comparison(rows, {}, {}, time.perf_counter() - t0)
    ids = np.array([r.id for r in rows], np.int64)
    pos = {int(pid): k for k, pid in enumerate(ids)}
    sigs = [r.signature for r in rows]
    widths = [int(r.width or r.signature.shape[1]) for r in rows]
    heights = [int(r.height or r.signature.shape[0]) for r in rows]
    pixels = [w * h for w, h in zip(widths, heights)]

    # candidates: (a, b) -> quarter turns of b to try against a
    say("finding candidates", 0, len(rows))
    nb, sims = lib.neighbours_of(ids, NEIGHBOURS + 1, ef=SEARCH_EF)
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
    from sba_desktop.library.vindex import VectorIndex

    squeezed = copies.thumbs(sigs)
    thumbs = copies.unit(squeezed)
    small = copies.thumbs(sigs, TURNED_SIDE)  # the turned candidates' index: small and fast
    tindex = VectorIndex(TURNED_SIDE ** 2, capacity=len(ids), ef_construction=40)
    tindex.add(np.arange(len(ids)), copies.unit(small), threads=os.cpu_count() or 1)
    for turn in (1, 2, 3):
        nb2, sims2 = tindex.search(copies.unit(small, turn), 3, ef=SEARCH_EF)
        for a in range(len(ids)):
            for b, s in zip(nb2[a], sims2[a]):
                b = int(b)
                if b != a and s >= TURNED_SIMILARITY:
                    # b looks like a turned `turn` quarters: to compare, b is turned back
                    key = (min(a, b), max(a, b))
                    pairs.setdefault(key, set()).add((4 - turn) % 4 if key[0] == a else turn)
    if stop():
        return None

    keys = list(pairs)
    # pairs compared before are read back (a changed photo's pairs were forgotten with it);
    # new results are committed as they are final, so a stopped run keeps what it did
    cat = lib.catalog
    if cat.get_meta("duplicates.compare") != COMPARE_VERSION:
        with cat.transaction():
            cat.forget_compared()
            cat.set_meta("duplicates.compare", COMPARE_VERSION)
    known = cat.compared()
    agreements: dict[tuple[int, int], float] = {}
    todo = []
    for key in keys:
        done = known.get((int(ids[key[0]]), int(ids[key[1]])))
        if done is None:
            todo.append(key)
        else:
            agreements[key] = done
    fresh: list[tuple[int, int, float]] = []

    def commit() -> None:
        with cat.transaction():
            cat.store_compared(fresh)
        fresh.clear()

    # the cascade, cheapest first. 1. a copy that was not cropped lies over the whole photo
    say("comparing", 0, len(todo))
    first: dict[tuple[int, int], float] = {}
    for key in todo:
        a, b = key
        best = -1.0
        for turn in pairs[key]:
            tb = thumbs[b] if turn == 0 else copies.unit(squeezed[b:b + 1], turn)[0]
            if float(thumbs[a] @ tb) >= SAME_FRAME_THUMB and _same_aspect(sigs[a], sigs[b], turn):
                best = max(best, copies.same_frame(sigs[a], sigs[b], turn))
        first[key] = best
    # 2. a crop: worth a search when the other photo's picture is close to one of the places a
    # crop may take in the photo with more pixels (its BOXES, band-passed, vectorised per photo)
    frames = {}
    by_big: dict[int, list[tuple[tuple[int, int], int]]] = {}
    for key in todo:
        if first[key] >= SURE_COPY:
            continue
        a, b = key
        for turn in pairs[key]:
            if turn == 0 and close.get(key, 0.0) < CROP_SIMILARITY:
                continue
            big = a if pixels[a] >= pixels[b] else b
            by_big.setdefault(big, []).append((key, turn))
    searches = []
    for big, items in by_big.items():
        boxes = copies.box_thumbs(sigs[big])
        for key, turn in items:
            small = key[1] if key[0] == big else key[0]
            # the small photo as the big one sees it: turned back when the pair was found turned
            t = turn if small == key[1] else (4 - turn) % 4
            fk = (small, t)
            if fk not in frames:
                frames[fk] = copies.box_thumbs(np.ascontiguousarray(np.rot90(sigs[small], t)), whole_only=True)[0]
            fits = boxes @ frames[fk]
            if float(fits.max()) >= CROP_BOX:
                searches.append((key, turn, big, small, t, int(fits.argmax())))
    # 3. the search, for what is left (a scale and a place, finely)
    agreements.update(first)
    searched = {item[0] for item in searches}
    fresh += [(int(ids[a]), int(ids[b]), float(agreements[(a, b)])) for a, b in todo if (a, b) not in searched]
    commit()
    say("comparing crops", 0, len(searches))

    def search(item) -> tuple[tuple[int, int], float]:
        key, _turn, big, small, t, box = item
        small_width = widths[small] if t % 2 == 0 else heights[small]
        return key, copies.match_in_box(sigs[big], sigs[small], copies.BOXES[box], small_width / widths[big], t)

    left = Counter(item[0] for item in searches)  # turns of each pair still to search
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for k, (key, agree) in enumerate(pool.map(search, searches, chunksize=16)):
            agreements[key] = max(agreements[key], agree)
            left[key] -= 1
            if not left[key]:  # every turn of the pair searched
                fresh.append((int(ids[key[0]]), int(ids[key[1]]), float(agreements[key])))
            if k % 256 == 0:
                say("comparing crops", k, len(searches))
                commit()
                if stop():
                    return None
    commit()
    # the grey pictures are not needed to group (100k photos: ~300 MB a window would keep)
    tones = [tone_of(sig) for sig in sigs]
    rows = [r._replace(signature=None) for r in rows]
    return Comparison(rows, agreements, close, time.perf_counter() - t0, tones)


def tone_of(signature: np.ndarray) -> tuple[float, float]:
    """Mean brightness and contrast of a grey picture: what a re-tone changes and a re-save keeps."""
    g = signature.astype(np.float32)
    return float(g.mean()), float(g.std())


def edit_of(copy: Member, keeper: Member) -> str | None:
    """What was done to a copy beyond re-saving it, judged against the copy kept: a crop changes
    the shape by more than a resize's rounding to whole pixels can (1/width + 1/height of the
    smaller one; a turned copy has its sides swapped), a re-tone the brightness or contrast (a
    crop changes those too, so they are only read for a copy of the whole frame). A crop that
    keeps the shape exactly passes for a resized copy."""
    if copy.width and copy.height and keeper.width and keeper.height:
        a, b = copy.width / copy.height, keeper.width / keeper.height
        rounding = 1 / min(copy.width, keeper.width) + 1 / min(copy.height, keeper.height)
        if min(abs(np.log(a / b)), abs(np.log(a * b))) > rounding:
            return "cropped"
    if copy.tone is not None and keeper.tone is not None:
        if max(abs(copy.tone[0] - keeper.tone[0]), abs(copy.tone[1] - keeper.tone[1])) > EDIT_TONE:
            return "re-toned"
    return None


def _taken_apart(a: float | None, b: float | None) -> bool:
    """Two capture times that say two shots: a copy keeps its photo's time (when it keeps EXIF),
    the frames of a burst differ by a second or by their fraction of one."""
    if a is None or b is None:
        return False
    fractions = a != int(a) and b != int(b)
    return abs(a - b) >= 1.0 or fractions and abs(a - b) > 0.005


def _same_aspect(a: np.ndarray, b: np.ndarray, turn: int) -> bool:
    hb, wb = b.shape if turn % 2 == 0 else b.shape[::-1]
    return abs(np.log((a.shape[1] / a.shape[0]) / (wb / hb))) < 0.04


def group(comparison: Comparison, threshold: float = COPY_THRESHOLD,
          similar_seconds: float = SIMILAR_SECONDS) -> DuplicateReport:
    """Copies and similar shots from a comparison (see the module doc)."""
    t0 = time.perf_counter()
    rows = comparison.rows

    def member(k: int, agreement: float = 1.0) -> Member:
        r = rows[k]
        tone = comparison.tones[k] if k < len(comparison.tones) else None
        return Member(int(r.id), r.path, int(r.width or 0), int(r.height or 0), int(r.size), int(r.mtime_ns),
                      r.format, r.taken, r.camera, raw_companions(r.path), agreement, tone)

    copy_groups, hidden = [], set()  # hidden: copies that are not their group's keeper
    edges = {k: v for k, v in comparison.agreements.items()
             if v >= threshold and not _taken_apart(rows[k[0]][8], rows[k[1]][8])}
    for centre, members in _stars(edges):
        order = [centre] + sorted(members, key=lambda k: -members[k])
        group = [member(centre)] + [member(k, members[k]) for k in order[1:]]
        best = min(range(len(group)), key=lambda i: keeper_rank(group[i]))
        group.insert(0, group.pop(best))  # the suggested copy to keep comes first
        for m in group[1:]:
            m.edit = edit_of(m, group[0])
        copy_groups.append(DuplicateGroup("copies", group, 0))
        hidden.update(k for i, k in enumerate(order) if i != best)

    # similar shots: close vectors, taken seconds apart; of a group of copies only its keeper
    taken = [r.taken for r in rows]
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


def trash_selected(lib, selection: list[tuple[DuplicateGroup, list[Member]]]) -> tuple[list, list[str]]:
    """Move the chosen members of groups to the system trash (the caller has asked the person),
    after checking every file is still the one compared: a group keeps at least one member
    that is still there and unchanged, or nothing of it moves (its copies may be the last of that
    photo); a chosen file that is gone or changed stays. A photo with its RAW file beside it is
    never moved from here (one photo, two files), nor the group's copy to keep. An edit that stays
    (a crop, a re-tone) does not count as the photo kept. Returns (library.trash.Trashed of what
    was tried, one line per file or group left alone)."""
    paths, notes = [], []
    for g, chosen in selection:
        if g.keeper is not None and any(m is g.members[g.keeper] for m in chosen):
            notes.append(f"{g.members[g.keeper].path}: not moved, it is the copy to keep")
            chosen = [m for m in chosen if m is not g.members[g.keeper]]
        chosen_ids = {m.photo_id for m in chosen}
        kept = [m for m in g.members if m.photo_id not in chosen_ids]
        # what stays must hold the whole picture: the keeper, or a plain copy (not a crop or a re-tone)
        whole = [m for m in kept if not m.edit or (g.keeper is not None and m is g.members[g.keeper])]
        if not any(m.changed() is None for m in whole):
            first = kept[0].path if kept else g.members[0].path
            notes.append(f"{first}: no photo of this group that stays is still there unchanged; "
                         "nothing of the group was moved")
            continue
        for m in chosen:
            why = "has its RAW file beside it (one photo, two files)" if m.companions else m.changed()
            if why:
                notes.append(f"{m.path}: not moved, {why}")
            else:
                paths.append(m.path)
    done = lib.trash_photos(paths) if paths else []
    notes += [f"{t.path}: not moved, {t.error}" for t in done if not t.moved]
    return done, notes


def trash_others(lib, groups: list[DuplicateGroup]) -> tuple[list, list[str]]:
    """The suggestion: of every group of copies, all but the copy to keep (see trash_selected)."""
    return trash_selected(lib, [(g, g.others()) for g in groups if g.kind == "copies" and g.others()])
