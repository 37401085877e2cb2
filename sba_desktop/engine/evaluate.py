"""`sba eval`: retrieval and classification quality on a photo set with ground truth.

A set is DIR/groundtruth.json (`groups` and/or `labels`) + DIR/images/.
Every method is computed from the same feature maps (one forward per photo).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .registry import DEFAULT_BACKBONE
from .classifier import DEFAULT_K, MNClassifier
from .encoder import Encoder
from .imaging import draft_box
from .metrics import accuracy, retrieval_scores
from .neighbourhood import AugmentedVectors, BruteForce, neighbourhood_search
from .sba import DEFAULT_DIMS, DEFAULT_IMAGE_SIZE, DescriptorModel, DescriptorSpec, ReductionSpec

log = logging.getLogger(__name__)

COMPARISONS = ("spoc", "mac", "gem", "crow")
DEFAULT_METHOD = "sba-pca"  # the product default for search and for tagging


@dataclass
class EvalOptions:
    backbone: str = DEFAULT_BACKBONE
    n_detectors: int = 25
    dims: int = DEFAULT_DIMS
    image_size: int = DEFAULT_IMAGE_SIZE
    whiten_on: str | None = None
    qe: bool = False            # also report plain average query expansion (top 10)
    k: int = DEFAULT_K
    folds: int = 5
    sweep: bool = False
    runtime: str = "onnx"       # "onnx" (the product) or "torch" (the reference)
    open_categories: int = 12   # open-set protocol: category folders ...
    open_examples: int = 10     # ... of this many examples each
    unsorted_per_class: int | None = None  # open-set: a small unsorted folder, the rest is library


@dataclass
class PhotoSet:
    root: Path
    names: list[str]
    groups: np.ndarray | None       # group id per photo, -1 if none
    labels: np.ndarray | None       # class name per photo

    @classmethod
    def open(cls, root: str | Path) -> "PhotoSet":
        root = Path(root)
        gt_path = root / "groundtruth.json"
        if not gt_path.is_file():
            raise FileNotFoundError(f"{gt_path} not found (a set needs groundtruth.json and images/)")
        gt = json.loads(gt_path.read_text())
        images = root / "images"
        names = sorted(p.name for p in images.iterdir() if p.is_file())
        index = {n: i for i, n in enumerate(names)}
        groups = None
        if gt.get("groups"):
            groups = np.full(len(names), -1, np.int64)
            for gid, members in enumerate(gt["groups"]):
                for m in members:
                    if m in index:
                        groups[index[m]] = gid
        labels = None
        if gt.get("labels"):
            names = [n for n in names if n in gt["labels"]] if groups is None else names
            labels = np.array([gt["labels"].get(n, "") for n in names])
        return cls(root, names, groups, labels)


def extract_maps(paths: list[Path], encoder: Encoder,
                 progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    maps = []
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            if im.format == "JPEG" and im.mode in ("RGB", "L", "CMYK", "YCbCr"):
                im.draft(im.mode, draft_box(encoder.image_size, *im.size))  # as the library decodes
            maps.append(encoder.feature_map(im))
        if progress:
            progress(i + 1, len(paths))
    return maps


def load_extractor(backbone: str, runtime: str = "onnx"):
    """The product's onnxruntime network, or the torch reference it is checked against."""
    if runtime == "torch":
        from .backbones import load_backbone

        return load_backbone(backbone)
    if runtime != "onnx":
        raise ValueError(f"unknown runtime '{runtime}' (onnx or torch)")
    from .runtime import load_runtime

    return load_runtime(backbone)


@dataclass
class Variant:
    method: str                 # row name: sba, sba-pca, spoc, ...
    spec: DescriptorSpec
    reduction: ReductionSpec
    default: bool = False
    whitening: str = "none"     # none | self | shrunk | <dir name>
    extra: dict = field(default_factory=dict)


def variants(opt: EvalOptions, has_independent: bool) -> list[Variant]:
    paper = DescriptorSpec("sba", 25, 2.0, "sum")
    ours = DescriptorSpec("sba", opt.n_detectors, 2.0, "sum")
    pca = ReductionSpec(opt.dims, 0.0, 0.0)
    out = [Variant("sba", paper, ReductionSpec(None)),
           Variant(DEFAULT_METHOD, ours, pca, default=True)]
    for m in COMPARISONS:
        out.append(Variant(m, DescriptorSpec(m), ReductionSpec(None)))
        out.append(Variant(m, DescriptorSpec(m), pca))
    # whitening policy rows: learned on the set itself, shrunk/partial, independent set
    out.append(Variant("sba", paper, ReductionSpec(opt.dims, 1.0, 0.0), whitening="self"))
    out.append(Variant("sba", paper, ReductionSpec(opt.dims, 0.5, 0.1), whitening="self-partial"))
    if has_independent:
        out.append(Variant("sba", paper, ReductionSpec(opt.dims, 1.0, 0.0), whitening="independent"))
        out.append(Variant("sba", paper, ReductionSpec(opt.dims, 0.5, 0.1), whitening="independent-partial"))
        out.append(Variant(DEFAULT_METHOD, ours, pca, whitening="independent-pca"))
    if opt.sweep:
        for n in (10, 25, 50, 100):
            if n != opt.n_detectors:
                out.append(Variant(DEFAULT_METHOD, replace(ours, n_detectors=n), pca, extra={"sweep": "N"}))
        for m in (32, 64, 128, 256, 1024, 2048):
            if m != opt.dims:
                out.append(Variant(DEFAULT_METHOD, ours, replace(pca, dims=m), extra={"sweep": "M"}))
        out.append(Variant("sba-b1", replace(ours, beta=1.0), pca, extra={"sweep": "beta"}))
        out.append(Variant("sba-gem", replace(ours, region_pool="gem"), pca, extra={"sweep": "region"}))
    return out


def _vectors(v: Variant, maps, other_maps, backbone_name, version, size) -> tuple[np.ndarray, DescriptorModel]:
    reduction_maps = other_maps if v.whitening.startswith("independent") else None
    model = DescriptorModel.fit(maps, backbone_name, version, size, v.spec, v.reduction,
                                reduction_maps=reduction_maps)
    return model.encode_maps(maps), model


EXPANSIONS = ("none", "adaptive", "aqe10")
DEFAULT_EXPANSION = "adaptive"  # what `sba search` and the app do unless told --plain


def similarities(x: np.ndarray, expansion: str) -> np.ndarray:
    """Every photo as a query over the whole set: (n, n) scores, higher first.

    "adaptive" runs neighbourhood_search itself (as `sba search --top N` does, on an exact
    index); "aqe10" is plain average query expansion with the top 10 (itself excluded)."""
    if expansion == "none":
        return x @ x.T
    if expansion == "aqe10":
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        nn = np.argsort(-sim, axis=1)[:, :10]
        q = x + x[nn].sum(axis=1)
        return (q / np.linalg.norm(q, axis=1, keepdims=True)) @ x.T
    source = BruteForce(x)
    augmented = AugmentedVectors(source)
    out = np.full((len(x), len(x)), -np.inf, np.float32)
    for i in range(len(x)):
        ids, scores = neighbourhood_search(x[i], source, len(x), augmented)
        out[i, ids] = scores
    return out


def evaluate(root: str | Path, task: str | None = None, opt: EvalOptions = EvalOptions(),
             progress: Callable[[int, int], None] | None = None) -> dict:
    ps = PhotoSet.open(root)
    if task is None:
        task = "retrieval" if ps.groups is not None else "classification"
    if task == "retrieval" and ps.groups is None:
        raise ValueError(f"{root}: groundtruth.json has no 'groups' for retrieval")
    if task in ("classification", "open-set") and ps.labels is None:
        raise ValueError(f"{root}: groundtruth.json has no 'labels' for classification")
    if task == "open-set":
        check_open_set(ps.labels, opt.open_categories, opt.open_examples)
    bb = load_extractor(opt.backbone, opt.runtime)
    enc = Encoder(bb, opt.image_size)
    maps = extract_maps([ps.root / "images" / n for n in ps.names], enc, progress)
    other = None
    if opt.whiten_on:
        other_set = Path(opt.whiten_on)
        img_dir = other_set / "images" if (other_set / "images").is_dir() else other_set
        other = extract_maps(sorted(p for p in img_dir.iterdir() if p.is_file()), enc)
    results = []
    few_shot: list[dict] = []
    for v in variants(opt, other is not None):
        x, model = _vectors(v, maps, other, bb.name, bb.version, opt.image_size)
        base = {"method": v.method, "dims": int(x.shape[1]), "default": v.default,
                "reduction": model.kind, "whitening": v.whitening,
                "n_detectors": int(len(model.detectors)) if v.spec.method == "sba" else None, **v.extra}
        if task == "retrieval":
            for expansion in EXPANSIONS if opt.qe else EXPANSIONS[:2]:
                m_ap, ns = retrieval_scores(similarities(x, expansion), ps.groups)
                results.append({**base, "expansion": expansion,
                                "default": v.default and expansion == DEFAULT_EXPANSION,
                                "mAP": round(m_ap, 4), "ns_score": round(ns, 4)})
        elif task == "open-set":
            if v.whitening == "none" and v.reduction.dims and "sweep" not in v.extra:
                results.append({**base, **open_set_protocol(x, ps.labels, opt.open_categories,
                                                            opt.open_examples, OPEN_SET_TRIALS,
                                                            opt.unsorted_per_class)})
        else:
            mn, nn1 = cross_validated_accuracy(x, ps.labels, opt.k, opt.folds)
            results.append({**base, "classifier": "mn", "accuracy": round(mn, 4)})
            results.append({**base, "classifier": "1nn", "default": False, "accuracy": round(nn1, 4)})
            if v.default:
                few_shot = few_shot_curve(x, ps.labels, opt.k)
    return {"task": task, "backbone": bb.name, "runtime": bb.runtime, "image_size": opt.image_size,
            "photos": len(ps.names), "set": str(ps.root), "results": results,
            **({"few_shot": few_shot} if task == "classification" else {})}


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
    from .open_set import OpenSetTagger

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
                      trials: int = 10, unsorted_per_class: int | None = None) -> dict:
    """The user's situation: `categories` folders of `examples` photos; the unsorted folder holds
    the rest of those categories and every photo of the other categories (which should get none).
    Precision of the proposals made, coverage (in-category photos that get one), rejection
    (other photos that get none), and the mean confidence of the proposals against their precision.
    unsorted_per_class=n: the unsorted folder holds only n photos of each class, the rest of the
    set is the rest of the library (it joins the graph unlabelled, as `sba tag` does)."""
    from .open_set import OpenSetTagger

    classes = sorted(set(labels))
    check_open_set(labels, categories, examples)
    per_trial = []
    for t in range(trials):
        rng = np.random.default_rng(t)
        known = sorted(rng.permutation(classes)[:categories].tolist())
        ex, rest = _sample_split(labels, known, examples, rng)
        background = np.zeros(0, np.int64)
        if unsorted_per_class:
            rest = np.concatenate([rng.permutation(rest[labels[rest] == c])[:unsorted_per_class]
                                   for c in classes])
            background = np.setdiff1d(np.setdiff1d(np.arange(len(labels)), ex), rest)
        props = OpenSetTagger(seed=t).fit(x[ex], labels[ex]).propose(x[rest], x[background])
        made = np.array([p.category is not None for p in props])
        right = np.array([p.closest == lab for p, lab in zip(props, labels[rest])])
        inside = np.isin(labels[rest], known)
        conf = np.array([p.confidence for p in props])
        per_trial.append({"precision": right[made].mean() if made.any() else 1.0,
                          "coverage": made[inside].mean(),
                          "rejection": (~made[~inside]).mean() if (~inside).any() else float("nan"),
                          "closed_accuracy": right[inside].mean(),
                          "confidence_of_proposals": conf[made].mean() if made.any() else float("nan"),
                          "calibration_error": float(np.abs(conf - (right & inside)).mean())})
    keys = per_trial[0].keys()
    return {"categories": categories, "examples": examples, "trials": trials,
            "unsorted": int(len(rest)), "background": int(len(background)),
            **{k: round(float(np.mean([r[k] for r in per_trial])), 4) for k in keys},
            **{f"min_{k}": round(float(np.min([r[k] for r in per_trial])), 4)
               for k in ("precision", "coverage", "rejection")}}


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


def format_table(report: dict) -> str:
    rows = report["results"]
    lines = [f"{report['task']} on {report['set']} ({report['photos']} photos), "
             f"{report['backbone']} at {report['image_size']}px"]
    if report["task"] == "retrieval":
        lines.append(f"{'method':<10} {'N':>4} {'dims':>6} {'reduction':<18} {'whitening':<20} {'expansion':<9} {'mAP':>6} {'N-S':>6}")
        for r in rows:
            lines.append(f"{r['method']:<10} {r['n_detectors'] or '':>4} {r['dims']:>6} {r['reduction']:<18} "
                         f"{r['whitening']:<20} {r['expansion']:<9} {r['mAP']:>6.3f} "
                         f"{r['ns_score']:>6.3f}{'  <- default' if r['default'] else ''}")
    elif report["task"] == "open-set":
        lines.append(f"{'method':<10} {'N':>4} {'dims':>6} {'precision':>9} {'coverage':>8} {'rejection':>9} "
                     f"{'closed acc':>10} {'conf. of proposals':>18}   (min precision/coverage/rejection)")
        for r in rows:
            lines.append(f"{r['method']:<10} {r['n_detectors'] or '':>4} {r['dims']:>6} {r['precision']:>9.3f} "
                         f"{r['coverage']:>8.3f} {r['rejection']:>9.3f} {r['closed_accuracy']:>10.3f} "
                         f"{r['confidence_of_proposals']:>18.3f}   ({r['min_precision']:.3f}/{r['min_coverage']:.3f}/"
                         f"{r['min_rejection']:.3f}){'  <- default' if r['default'] else ''}")
    else:
        lines.append(f"{'method':<10} {'N':>4} {'dims':>6} {'reduction':<18} {'whitening':<20} {'clf':<4} {'accuracy':>8}")
        for r in rows:
            lines.append(f"{r['method']:<10} {r['n_detectors'] or '':>4} {r['dims']:>6} {r['reduction']:<18} "
                         f"{r['whitening']:<20} {r['classifier']:<4} {r['accuracy']:>8.3f}"
                         f"{'  <- default' if r['default'] else ''}")
        if report.get("few_shot"):
            lines.append("few-shot (default descriptor; accuracy with n examples per category, 5 draws)")
            lines.append(f"{'n':>3} {'K':>3} {'MN':>6} {'MN K=40':>8} {'1-NN':>6} {'spreading':>9}")
            for r in report["few_shot"]:
                lines.append(f"{r['examples']:>3} {r['k_adapted']:>3} {r['mn']:>6.3f} {r['mn-fixed-k']:>8.3f} "
                             f"{r['1nn']:>6.3f} {r['spreading']:>9.3f}")
    return "\n".join(lines)
