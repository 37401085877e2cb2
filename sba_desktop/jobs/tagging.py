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

    def decide(self, accepted: bool) -> None:
        """A person's decision on this proposal: accepting a "none" puts the photo in its closest
        category (what the review shows next to it); declining leaves it without one."""
        self.accepted = accepted
        if accepted:
            self.category = self.closest


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


def index_folder(lib: Library, folder: str, progress=None):
    """Add and index a folder before its photos are labelled or tagged (example folders, an
    unsorted folder): what `sba categories set`, `sba tag FOLDER` and the Categories panel start."""
    from sba_desktop.jobs.index import IndexJob

    return IndexJob(lib, [folder], progress).run()


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
    with lib.writer_lock(), lib.catalog.transaction():
        for p in out:
            lib.catalog.set_label(p.photo_id, p.closest, "auto", p.confidence, accepted=False,
                                  abstained=p.category is None)
    return out


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
