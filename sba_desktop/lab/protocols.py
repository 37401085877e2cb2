"""Evaluation protocols on vectors (numpy only): retrieval with each search expansion, the
MN classifier's cross-validation and few-shot curve, and the open-set tagging protocol.

Loading sets and encoding them is library/evaluation.py (the product's own pipeline); printing
the report is eval_format.py.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from sba_desktop.lab.classifier import MNClassifier
from sba_desktop.lab.metrics import accuracy, calibration_error
from sba_desktop.engine.neighbourhood import AugmentedVectors, BruteForce, neighbourhood_search

EXPANSIONS = ("none", "adaptive", "aqe10")
DEFAULT_EXPANSION = "adaptive"  # what `sba search` and the app do unless told --plain


def similarities(x: np.ndarray, expansion: str, queries: np.ndarray | None = None) -> np.ndarray:
    """Photos `queries` (row numbers of x; default all) searched over the whole collection x:
    (len(queries), n) scores, higher first.

    "adaptive" runs neighbourhood_search itself (as `sba search --top N` does, on an exact
    index); "aqe10" is plain average query expansion with the top 10 (itself excluded)."""
    queries = np.arange(len(x)) if queries is None else np.asarray(queries, np.int64)
    if expansion == "none":
        return x[queries] @ x.T
    if expansion == "aqe10":
        sim = x[queries] @ x.T
        sim[np.arange(len(queries)), queries] = -np.inf
        nn = np.argsort(-sim, axis=1)[:, :10]
        q = x[queries] + x[nn].sum(axis=1)
        return (q / np.linalg.norm(q, axis=1, keepdims=True)) @ x.T
    source = BruteForce(x)
    augmented = AugmentedVectors(source, all_vectors=True)  # every query re-ranks the whole collection
    out = np.full((len(queries), len(x)), -np.inf, np.float32)
    for row, i in enumerate(queries):
        ids, scores = neighbourhood_search(x[i], source, len(x), augmented)
        out[row, ids] = scores
    return out


FEW_SHOTS = (1, 3, 5, 10, 20)
OPEN_SET_TRIALS = 10


def _smallest_class(labels: np.ndarray) -> int:
    return min(int((labels == c).sum()) for c in set(labels))


def _sample_split(labels: np.ndarray, classes: list[str], per_class: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` random examples of each of `classes`; every other photo is unsorted."""
    ex = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes])
    rest = np.setdiff1d(np.arange(len(labels)), ex)
    return ex, rest


def few_shot_curve(x: np.ndarray, labels: np.ndarray, k: int, shots=FEW_SHOTS, trials: int = 5) -> list[dict]:
    """Accuracy when each category folder holds only n examples (all categories known): the MN
    vote (K adapted to n, and fixed K), 1-NN, and the tagger's best guess (label spreading)."""
    from sba_desktop.engine.open_set import OpenSetTagger

    classes = sorted(set(labels))
    rows = []
    for n in shots:
        if n >= _smallest_class(labels):
            continue
        acc: dict[str, list[float]] = {"mn": [], "mn-fixed-k": [], "1nn": [], "spreading": []}
        for t in range(trials):
            ex, rest = _sample_split(labels, classes, n, np.random.default_rng(t))
            for name, clf in (("mn", MNClassifier(k)), ("mn-fixed-k", MNClassifier(k, adaptive=False)),
                              ("1nn", MNClassifier(1))):
                clf.fit(x[ex], labels[ex])
                acc[name].append(accuracy([p.category for p in clf.predict(x[rest])], labels[rest]))
            props = OpenSetTagger().fit(x[ex], labels[ex]).propose(x[rest])
            acc["spreading"].append(accuracy([p.closest for p in props], labels[rest]))
        rows.append({"examples": n, "k_adapted": MNClassifier(k).k_for([*classes] * n),
                     **{name: round(float(np.mean(v)), 4) for name, v in acc.items()}})
    return rows


def check_open_set(labels: np.ndarray, categories: int, examples: int) -> None:
    """Refuse a protocol the set cannot hold (before any photo is encoded)."""
    classes = set(labels)
    if len(classes) < categories:
        raise ValueError(f"the open-set protocol needs at least {categories} classes (found {len(classes)}; "
                         "see --categories)")
    smallest = _smallest_class(labels)
    if examples >= smallest:
        raise ValueError(f"--examples {examples}: the smallest class has {smallest} photos, "
                         "some must stay unsorted")


class OpenSetTally:
    """The outcome of tagging draws: each draw's precision, coverage and rejection, and, pooled
    over the draws, what accepting everything above 0.8 / 0.9 gives and the calibration error
    (10 bins) of the proposals' confidences and of every photo's best guess."""

    def __init__(self) -> None:
        self.per_draw: list[dict] = []
        self.pooled: dict[str, list] = {"conf": [], "right": [], "made": []}
        self.groups: dict[str, int] = {"offered": 0, "wrong": 0, "photos_of_no_folder": 0, "in_a_group": 0}

    def add(self, props, truth: np.ndarray, known, new_groups=()) -> None:
        """props: the tagger's proposals for photos whose true class is `truth`; known: the
        classes with a folder; new_groups: the tagger's look-alike groups (rows of props)."""
        made = np.array([p.category is not None for p in props])
        inside = np.isin(truth, list(known))
        right = np.array([p.closest == lab for p, lab in zip(props, truth)]) & inside
        conf = np.array([p.confidence for p in props])
        self.pooled["conf"].append(conf)
        self.pooled["right"].append(right)
        self.pooled["made"].append(made)
        self.per_draw.append({"precision": right[made].mean() if made.any() else 1.0,
                              "coverage": made[inside].mean(),
                              "rejection": (~made[~inside]).mean() if (~inside).any() else float("nan"),
                              "closed_accuracy": right[inside].mean(),
                              "confidence_of_proposals": conf[made].mean() if made.any() else float("nan")})
        # a group is a right suggestion when most of it (3 in 4) is of one class with no folder
        grouped = np.zeros(len(props), bool)
        for g in new_groups:
            grouped[g] = True
            kinds, counts = np.unique(truth[g], return_counts=True)
            top = kinds[counts.argmax()]
            self.groups["offered" if top not in known and counts.max() >= 0.75 * len(g) else "wrong"] += 1
        self.groups["photos_of_no_folder"] += int((~inside).sum())
        self.groups["in_a_group"] += int((grouped & ~inside).sum())

    def summary(self) -> dict:
        conf, right, made = (np.concatenate(self.pooled[k]) for k in ("conf", "right", "made"))
        draws = len(self.per_draw)
        out = {k: round(float(np.nanmean([r[k] for r in self.per_draw])), 4) for k in self.per_draw[0]}
        out.update({f"min_{k}": round(float(np.nanmin([r[k] for r in self.per_draw])), 4)
                    for k in ("precision", "coverage", "rejection")})
        for level in CONFIDENCE_LEVELS:
            sure = made & (conf >= level)
            out[f"precision_at_{level}"] = round(float(right[sure].mean()), 4) if sure.any() else None
            out[f"proposals_at_{level}"] = round(float(sure.sum()) / draws, 1)
        out["calibration_error"] = round(calibration_error(conf[made], right[made]), 4)
        out["calibration_error_all"] = round(calibration_error(conf, right), 4)
        g = self.groups
        out["new_categories"] = {"offered": round(g["offered"] / draws, 2), "wrong": round(g["wrong"] / draws, 2),
                                 "share_of_no_folder_photos": round(g["in_a_group"] / g["photos_of_no_folder"], 4)
                                 if g["photos_of_no_folder"] else None}
        return out


def open_set_protocol(x: np.ndarray, labels: np.ndarray, categories: int = 12, examples: int = 10,
                      trials: int = 10, unsorted_per_class: int | None = None,
                      library: np.ndarray | None = None, rest_in_library: bool = True,
                      refit: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """The user's situation: `categories` folders of `examples` photos; the unsorted folder holds
    the rest of those categories and every photo of the other categories (which should get none).
    Precision of the proposals made, coverage (in-category photos that get one), rejection
    (other photos that get none), and the mean confidence of the proposals against their precision.
    unsorted_per_class=n: the unsorted folder holds only n photos of each class, the rest of the
    set is the rest of the library (it joins the graph unlabelled, as `sba tag` does).
    library: vectors of the library's other photos (distractors), part of every draw's background.
    rest_in_library=False (with unsorted_per_class): the small library, where the photos of the set
    that are neither examples nor unsorted are not in the library at all.
    refit(rows) -> their vectors from a model fitted on those photos alone: each draw's library
    gets its own model, as a library of only those photos would (the small library)."""
    from sba_desktop.engine.open_set import OpenSetTagger

    classes = sorted(set(labels))
    check_open_set(labels, categories, examples)
    tally = OpenSetTally()
    draw_dims = []  # with refit: each draw's own model's dimensions
    for t in range(trials):
        rng = np.random.default_rng(t)
        known = sorted(rng.permutation(classes)[:categories].tolist())
        ex, rest = _sample_split(labels, known, examples, rng)
        background = np.zeros(0, np.int64)
        if unsorted_per_class:
            rest = np.concatenate([rng.permutation(rest[labels[rest] == c])[:unsorted_per_class]
                                   for c in classes])
            if rest_in_library:
                background = np.setdiff1d(np.setdiff1d(np.arange(len(labels)), ex), rest)
        xs = x
        if refit is not None:
            rows = np.concatenate([ex, rest, background])
            fitted = refit(rows)
            draw_dims.append(int(fitted.shape[1]))
            xs = np.zeros((len(x), fitted.shape[1]), np.float32)
            xs[rows] = fitted
        around = xs[background] if library is None else np.concatenate([xs[background], library])
        tagger = OpenSetTagger(seed=t).fit(xs[ex], labels[ex])
        tally.add(tagger.propose(xs[rest], around), labels[rest], known, tagger.new_groups)
    return {"categories": categories, "examples": examples, "trials": trials,
            "library": "small" if unsorted_per_class and not rest_in_library and library is None else
                       "around" if len(background) or library is not None else "empty",
            "unsorted": int(len(rest)), "background": int(len(background)) + (0 if library is None else len(library)),
            **tally.summary(),
            # each draw's own model (the small library): its dimensions, not the whole set's model's
            **({"dims": int(np.median(draw_dims))} if draw_dims else {})}


CONFIDENCE_LEVELS = (0.8, 0.9)


def cross_validated_accuracy(x: np.ndarray, labels: np.ndarray, k: int, folds: int) -> tuple[float, float]:
    """Stratified k-fold: labelled folds stand for category folders, the held-out fold for new photos."""
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    mn, nn1 = [], []
    for train, test in skf.split(x, labels):
        for kk, acc in ((k, mn), (1, nn1)):
            clf = MNClassifier(kk).fit(x[train], labels[train])
            acc.append(accuracy([p.category for p in clf.predict(x[test])], labels[test]))
    return float(np.mean(mn)), float(np.mean(nn1))
