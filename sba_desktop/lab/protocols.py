"""Evaluation protocols on vectors (numpy only): retrieval with each search expansion, the
MN classifier's cross-validation and few-shot curve, and the open-set tagging protocol.

Loading sets and encoding them is library/evaluation.py (the product's own pipeline); printing
the report is eval_format.py.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from sba_desktop.lab.classifier import MNClassifier
from sba_desktop.lab.metrics import accuracy
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
    per_trial = []
    draw_dims = []  # with refit: each draw's own model's dimensions
    confident = {t: [0, 0] for t in CONFIDENCE_LEVELS}   # level -> [right, made], pooled over draws
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
        props = OpenSetTagger(seed=t).fit(xs[ex], labels[ex]).propose(xs[rest], around)
        made = np.array([p.category is not None for p in props])
        right = np.array([p.closest == lab for p, lab in zip(props, labels[rest])])
        inside = np.isin(labels[rest], known)
        conf = np.array([p.confidence for p in props])
        for level, counts in confident.items():
            sure = made & (conf >= level)
            counts[0] += int((right & inside)[sure].sum())
            counts[1] += int(sure.sum())
        per_trial.append({"precision": right[made].mean() if made.any() else 1.0,
                          "coverage": made[inside].mean(),
                          "rejection": (~made[~inside]).mean() if (~inside).any() else float("nan"),
                          "closed_accuracy": right[inside].mean(),
                          "confidence_of_proposals": conf[made].mean() if made.any() else float("nan"),
                          "calibration_error": float(np.abs(conf - (right & inside)).mean())})
    keys = per_trial[0].keys()
    return {"categories": categories, "examples": examples, "trials": trials,
            "library": "small" if unsorted_per_class and not rest_in_library and library is None else
                       "around" if len(background) or library is not None else "empty",
            "unsorted": int(len(rest)), "background": int(len(background)) + (0 if library is None else len(library)),
            **{k: round(float(np.mean([r[k] for r in per_trial])), 4) for k in keys},
            **{f"min_{k}": round(float(np.min([r[k] for r in per_trial])), 4)
               for k in ("precision", "coverage", "rejection")},
            # what a person who accepts "everything above 0.8 / 0.9" gets, pooled over the draws
            **{f"precision_at_{level}": round(right / made, 4) if made else None
               for level, (right, made) in confident.items()},
            **{f"proposals_at_{level}": round(made / trials, 1) for level, (_, made) in confident.items()},
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
