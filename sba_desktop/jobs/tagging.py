"""Categories: folders of examples, proposals (or none) for unsorted photos, acceptance, XMP."""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sba_desktop.engine.open_set import OpenSetTagger
from sba_desktop.errors import UserError
from sba_desktop.library.library import Library
from sba_desktop.library.discover import raw_companions
from sba_desktop.library.xmp import SidecarError, add_keywords


@dataclass
class Proposal:
    photo_id: int
    path: str
    category: str | None      # None: fits none of the categories
    closest: str              # the closest category (what accepting a "none" proposal assigns)
    confidence: float         # estimated probability that `closest` is right
    accepted: bool = False
    group: int | None = None  # the look-alike group it belongs to (see LookAlikeGroup), if any

    def decide(self, accepted: bool) -> None:
        """A person's decision on this proposal: accepting a "none" puts the photo in its closest
        category (what the review shows next to it); declining leaves it without one."""
        self.accepted = accepted
        if accepted:
            self.category = self.closest


@dataclass
class LookAlikeGroup:
    """Unsorted photos that look alike and fit none of the categories: a new category to suggest."""
    photo_ids: list[int]
    paths: list[str]
    closest: str              # the category they are closest to (what they would have been put in)


GROUPS_KEY = "look_alike_groups"   # catalog meta: the last proposals' groups, as photo ids


def category_folders(root: str) -> dict[str, str]:
    """Subfolders of root (not hidden) -> category name = folder name."""
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"not a folder: {root}")
    return {e.name: e.path for e in sorted(os.scandir(root), key=lambda e: e.name)
            if e.is_dir() and not e.name.startswith(".")}


def label_from_folders(lib: Library, root: str) -> dict[str, int]:
    """Each subfolder's indexed photos become accepted examples of that category."""
    counts: dict[str, int] = {}
    cat = lib.catalog
    with lib.writer_lock(), cat.transaction():
        for name, folder in category_folders(root).items():
            cat.category_id(name, folder)
            rows = cat.photos_under(folder)
            for row in rows.values():
                if row.state == "indexed":
                    cat.set_label(row.id, name, "folder", 1.0, accepted=True)
            counts[name] = sum(1 for r in rows.values() if r.state == "indexed")
    return counts


def _vectors(lib: Library, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    assert lib.model is not None
    return lib.catalog.vectors(lib.model.model_id, ids)


def hnsw_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours for large unsorted sets: a temporary HNSW index instead of brute force."""
    from sba_desktop.library.vindex import VectorIndex

    idx = VectorIndex(x.shape[1], capacity=len(x))
    idx.add(np.arange(len(x)), x, threads=os.cpu_count() or 1)
    ids, sims = idx.search(x, k + 1)
    return ids[:, 1:], sims[:, 1:]   # the first is the photo itself


BACKGROUND = 3000  # other library photos that join the tagging graph, unlabelled


def _background(lib: Library, exclude: set[int]) -> np.ndarray:
    """A seeded sample of the library's other photos. Photos of a kind with no category folder
    usually have look-alikes elsewhere in the library; with them in the graph, even a few such
    photos in the unsorted folder are recognised as none of the categories (flowers17-dev, 5
    unsorted photos per class: rejection 0.72 -> 0.96, precision 0.85 -> 0.97)."""
    assert lib.model is not None
    others = sorted(lib.catalog.indexed_ids(lib.model.model_id) - exclude)
    if len(others) > BACKGROUND:
        others = sorted(random.Random(0).sample(others, BACKGROUND))
    return _vectors(lib, others)[1] if others else np.zeros((0, lib.model.dims), np.float32)


TAG_REFIT_GROWTH = 1.25   # before tagging, a model with room to learn is refitted at this growth


def index_folder(lib: Library, folder: str, progress=None):
    """Add and index a folder before its photos are labelled or tagged (example folders, an
    unsorted folder): what `sba categories set`, `sba tag FOLDER` and the Categories panel start.
    A model fitted on fewer photos than it learns from (a small library) is refitted first when the
    library has grown by a quarter since: fitted on the category folders alone, it has no
    directions for kinds with no folder and they look like one of the folders (Caltech-101
    look-alike families, model of the examples only vs of the whole small library: precision
    0.925 vs 0.972, rejection 0.950 vs 0.994)."""
    from sba_desktop.jobs.index import IndexJob

    report = IndexJob(lib, [folder], progress).run()
    if lib.refit_due(TAG_REFIT_GROWTH) and not report.cancelled:
        IndexJob(lib, None, progress, rebuild=True).run()
    return report


def propose(lib: Library, folder: str, progress: Callable[[int, int], None] | None = None) -> list[Proposal]:
    """Proposals for photos under `folder` that have no accepted category yet: a category,
    or none when the photo fits none of them (engine/open_set.py; threshold and confidence
    calibrated on the category folders' own examples)."""
    if lib.model is None:
        raise UserError("nothing is indexed yet: index the folders first")
    examples = lib.catalog.examples()
    if not examples:
        raise UserError("no categories yet: use 'sba categories set ROOT' (subfolders = categories)")
    ex_ids, ex_vecs = _vectors(lib, [i for i, _ in examples])
    label_of = dict(examples)
    tagger = OpenSetTagger(knn=hnsw_knn).fit(ex_vecs, [label_of[int(i)] for i in ex_ids])
    folder = os.path.abspath(os.path.expanduser(folder))
    labelled = set(label_of)
    rows = [r for r in lib.catalog.photos_under(folder).values()
            if r.state == "indexed" and r.id not in labelled]
    if not rows:
        return []
    ids, vecs = _vectors(lib, [r.id for r in rows])
    path_of = {r.id: r.path for r in rows}
    out = [Proposal(int(i), path_of[int(i)], p.category, p.closest, p.confidence)
           for i, p in zip(ids, tagger.propose(vecs, _background(lib, labelled | set(path_of)), progress))]
    for g, members in enumerate(tagger.new_groups):
        for row in members:
            out[int(row)].group = g
    with lib.writer_lock(), lib.catalog.transaction():
        for p in out:
            lib.catalog.set_label(p.photo_id, p.closest, "auto", p.confidence, accepted=False,
                                  abstained=p.category is None)
        lib.catalog.set_meta(GROUPS_KEY, json.dumps([[out[int(r)].photo_id for r in members]
                                                     for members in tagger.new_groups]))
    return out


def look_alike_groups(lib: Library) -> list[LookAlikeGroup]:
    """The last proposals' groups of look-alike photos that fit none of the categories, without
    the photos that have since been given a category (a group shrunk below the smallest one a
    suggestion is made for is dropped)."""
    from sba_desktop.engine.look_alike import GROUP_MIN_PHOTOS

    raw = lib.catalog.get_meta(GROUPS_KEY)
    if not raw:
        return []
    pending = {r.photo_id: r for r in lib.catalog.labels(source="auto") if not r.accepted}
    decided = {pid for pid, _ in lib.catalog.examples()}
    out = []
    for members in json.loads(raw):
        ids = [int(i) for i in members if i in pending and i not in decided]
        paths = lib.catalog.paths(ids)
        ids = [i for i in ids if i in paths]
        if len(ids) >= GROUP_MIN_PHOTOS:
            names = [pending[i].category for i in ids]
            out.append(LookAlikeGroup(ids, [paths[i] for i in ids], max(set(names), key=names.count)))
    return out


def make_category(lib: Library, name: str, photo_ids: list[int]) -> int:
    """The user names a suggested group: a category of that name is made and these photos become
    its first examples (the user's own labels). No file is moved or written."""
    name = name.strip()
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"'{name}' cannot be a category name (not empty, no '/', not starting with '.')")
    with lib.writer_lock(), lib.catalog.transaction():
        lib.catalog.category_id(name)
        for pid in photo_ids:
            lib.catalog.set_label(pid, name, "user", 1.0, accepted=True)
            lib.catalog.accept_label(pid, False)   # the proposal it replaces
    return len(photo_ids)


def proposals(lib: Library) -> list[Proposal]:
    rows = lib.catalog.labels(source="auto")
    paths = lib.catalog.paths([r.photo_id for r in rows])
    return [Proposal(pid, paths[pid], None if none and not acc else name, name, conf or 0.0, acc)
            for pid, name, _s, conf, acc, none in rows if pid in paths]


def accept(lib: Library, min_confidence: float = 0.0) -> int:
    """Accept the category proposals at least this confident. A "none" proposal (the photo fits
    no category) is never accepted in bulk: only a person's own click puts it in its closest
    category (set_accepted)."""
    with lib.writer_lock():
        return lib.catalog.accept_labels(min_confidence)


def set_accepted(lib: Library, photo_id: int, accepted: bool) -> None:
    with lib.writer_lock():
        lib.catalog.accept_label(photo_id, accepted)


def assign(lib: Library, photo_id: int, category: str) -> None:
    """The user puts a photo in a category (whatever was proposed): an accepted label of theirs."""
    with lib.writer_lock(), lib.catalog.transaction():
        lib.catalog.set_label(photo_id, category, "user", 1.0, accepted=True)
        lib.catalog.accept_label(photo_id, False)  # the proposal it replaces


def write_xmp(lib: Library, problems: list[tuple[str, str]] | None = None) -> int:
    """Write accepted auto/user labels into XMP sidecars; returns sidecars changed. A RAW + JPEG
    pair is one photo: both files get the keyword, each in its own `<file name>.xmp` (digiKam
    and darktable read a RAW file's keywords there, beside the RAW). A sidecar that is left alone
    (a link, not readable XMP: library/xmp.py) is put in `problems` as (photo, reason) and the
    others are still written."""
    rows = [r for r in lib.catalog.labels(accepted=True) if r.source in ("auto", "user")]
    paths = lib.catalog.paths([r.photo_id for r in rows])
    changed = 0
    for pid, name, *_ in rows:
        for p in [paths[pid], *raw_companions(paths[pid])] if pid in paths else []:
            try:
                changed += add_keywords(p, [name])
            except SidecarError as exc:
                if problems is not None:
                    problems.append((p, str(exc)))
    return changed


INBOX_KEY = "inbox_folders"


def inbox_folders(lib: Library) -> list[str]:
    """Folders whose arriving photos get category proposals automatically (live folders)."""
    raw = lib.catalog.get_meta(INBOX_KEY)
    return json.loads(raw) if raw else []


def set_inbox(lib: Library, folder: str, on: bool = True) -> list[str]:
    folder = os.path.abspath(os.path.expanduser(folder))
    current = [f for f in inbox_folders(lib) if f != folder] + ([folder] if on else [])
    with lib.writer_lock():
        lib.catalog.set_meta(INBOX_KEY, json.dumps(sorted(current)))
    return sorted(current)
