"""`sba eval`: a photo set with ground truth, encoded exactly as the library encodes photos.

A set is DIR/groundtruth.json (`groups` and/or `labels`) + DIR/images/. Its photos go through the
product's one pipeline (library/encoding.py: the same decode, forward and SBA as `sba index` and
`sba search`); every method row is computed from the same feature maps (one forward per photo).
Distractor folders (`--distractors`) join the searched collection: never queries, never anyone's
positives; for tagging they are the library's other photos. Every model, the default's included,
is fitted as the product fits a library of that size and mix: on the same seeded sample of at most
FIT_SAMPLE photos. The protocols are engine/protocols.py; the text report eval_format.py.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from sba_desktop.lab import protocols
from sba_desktop.lab.classifier import DEFAULT_K
from sba_desktop.lab.metrics import retrieval_scores
from sba_desktop.engine.registry import DEFAULT_BACKBONE
from sba_desktop.engine.windows import WINDOW_SIDE
from sba_desktop.engine.sba import (DEFAULT_DIMS, DEFAULT_GLOBAL_WEIGHT, DEFAULT_IMAGE_SIZE, DescriptorModel,
                          DescriptorSpec, ReductionSpec)
from sba_desktop.library.decode import PHOTO_EXTENSIONS
from sba_desktop.library.encoding import PhotoEncoder, Source, fit_sample

log = logging.getLogger(__name__)

COMPARISONS = ("spoc", "mac", "gem", "crow")
DEFAULT_METHOD = "sba-pca"  # the product default for search and for tagging


@dataclass
class EvalOptions:
    backbone: str = DEFAULT_BACKBONE
    n_detectors: int = 25
    global_weight: float = DEFAULT_GLOBAL_WEIGHT  # the whole-photo region of the default descriptor
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
    small_library: bool = False  # open-set: ... and nothing else is in the library
    distractors: list[str] = field(default_factory=list)  # folders of other photos in the library
    library_shapes: tuple[str, ...] = ()  # open-set: run these library shapes (see library_shapes)
    small_kinds: tuple[str, ...] = ()     # ... the small shape's kinds: folders, then SMALL_OTHERS without
    look_inside: bool = False   # composites: also the band of photos found by their windows (library/inside.py)


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

    def paths(self) -> list[Path]:
        return [self.root / "images" / n for n in self.names]


def folder_photos(folder: str | Path) -> list[Path]:
    """The photos of a distractor folder (its images/ subfolder when it is a set), sorted."""
    folder = Path(folder)
    if (folder / "images").is_dir():
        folder = folder / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS)


def load_extractor(backbone: str, runtime: str = "onnx"):
    """The product's onnxruntime network, or the torch reference it is checked against."""
    if runtime == "torch":
        from sba_desktop.engine.torch_build.backbones import load_backbone

        return load_backbone(backbone)
    if runtime != "onnx":
        raise ValueError(f"unknown runtime '{runtime}' (onnx or torch)")
    from sba_desktop.engine.runtime import load_runtime

    return load_runtime(backbone)


def encode_maps(paths: Sequence[Path], encoder: PhotoEncoder,
                progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Feature maps (float16, as the library keeps them) of photos, in order, through the pipeline.
    A set's photo that cannot be decoded stops the evaluation: its ground truth would be wrong."""
    maps: list[np.ndarray | None] = [None] * len(paths)
    done = 0
    for chunk in encoder.encode(Source(i, str(p)) for i, p in enumerate(paths)):
        for e in chunk:
            if e.error:
                raise ValueError(f"{paths[e.key]}: {e.error}")
            maps[e.key] = e.map
        done += len(chunk)
        if progress:
            progress(done, len(paths))
    return maps  # type: ignore[return-value]


@dataclass
class EncodedSet:
    """A set and its distractors, encoded: maps of the set's photos first, then the distractors'."""
    photos: PhotoSet
    maps: list[np.ndarray]
    distractors: int
    backbone: object

    @property
    def n_set(self) -> int:
        return len(self.maps) - self.distractors


def encode_set(root: str | Path, opt: EvalOptions,
               progress: Callable[[int, int], None] | None = None) -> EncodedSet:
    ps = PhotoSet.open(root)
    extra = [p for d in opt.distractors for p in folder_photos(d)]
    bb = load_extractor(opt.backbone, opt.runtime)
    enc = PhotoEncoder(bb, opt.image_size, keep_maps=True)
    return EncodedSet(ps, encode_maps(ps.paths() + extra, enc, progress), len(extra), bb)


def fit(maps: Sequence[np.ndarray], bb, image_size: int, spec: DescriptorSpec, reduction: ReductionSpec,
        reduction_maps: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, DescriptorModel]:
    """A model fitted as the library fits one (on its seeded sample), and every photo's vector."""
    sample = fit_sample(range(len(maps)))
    model = DescriptorModel.fit([maps[i] for i in sample], bb.name, bb.version, image_size, spec, reduction,
                                reduction_maps=reduction_maps)
    return vectors_of(model, maps), model


def vectors_of(model: DescriptorModel, maps: Sequence[np.ndarray]) -> np.ndarray:
    """The model's vectors of these maps, 256 at a time (the library's chunks)."""
    from sba_desktop.library.encoding import vectors_from_maps

    return np.concatenate([vectors_from_maps(model, maps[i:i + 256])[0] for i in range(0, len(maps), 256)])


def default_vectors(es: EncodedSet, opt: EvalOptions) -> np.ndarray:
    """The product default's vectors (sba-pca), as a library of these photos would hold them."""
    return fit(es.maps, es.backbone, opt.image_size,
               DescriptorSpec("sba", opt.n_detectors, global_weight=opt.global_weight), ReductionSpec(opt.dims))[0]


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
    ours = DescriptorSpec("sba", opt.n_detectors, 2.0, "sum", opt.global_weight)
    pca = ReductionSpec(opt.dims, 0.0, 0.0)
    out = [Variant("sba", paper, ReductionSpec(None)),
           Variant(DEFAULT_METHOD, ours, pca, default=True)]
    if opt.global_weight:  # the default without the whole-photo region (0.3.0's default)
        out.append(Variant(DEFAULT_METHOD, replace(ours, global_weight=0.0), pca, extra={"global_weight": 0.0}))
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


LIBRARY_SHAPES = ("alone", "small", "among", "grown")
SMALL_FOLDERS, SMALL_OTHERS, SMALL_EXAMPLES, SMALL_UNSORTED = 5, 2, 20, 10


def _small_family(x: np.ndarray, labels: np.ndarray, rng) -> list[str]:
    """A family of look-alike kinds: a random kind and the SMALL_FOLDERS + SMALL_OTHERS - 1 kinds
    whose mean vectors are closest to its own (among kinds with enough photos)."""
    need = SMALL_EXAMPLES + SMALL_UNSORTED
    kinds = [k for k in sorted(set(labels)) if (labels == k).sum() >= need]
    if len(kinds) < SMALL_FOLDERS + SMALL_OTHERS:
        raise ValueError(f"the small-library protocol needs {SMALL_FOLDERS + SMALL_OTHERS} classes "
                         f"of at least {need} photos")
    centres = np.stack([x[labels == k].mean(0) for k in kinds])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    seed = int(rng.integers(len(kinds)))
    return [kinds[i] for i in np.argsort(-(centres @ centres[seed]))[:SMALL_FOLDERS + SMALL_OTHERS]]


def library_shapes(es: "EncodedSet", opt: EvalOptions, shapes: Sequence[str] = LIBRARY_SHAPES,
                   trials: int = protocols.OPEN_SET_TRIALS) -> list[dict]:
    """The tagger in each shape of library a person has, with the product default's model fitted
    as that library would fit it:
    alone: `open_categories` folders of `open_examples`, every other photo of the set unsorted,
      nothing else indexed (the model is the set's own);
    small: a few look-alike kinds: SMALL_FOLDERS folders of SMALL_EXAMPLES, SMALL_UNSORTED unsorted
      photos of each, and SMALL_OTHERS kinds with no folder (SMALL_EXAMPLES unsorted photos each);
      each draw's library is those photos alone, with its own model; the kinds are
      `opt.small_kinds` (folders first) or a family of kinds whose mean vectors are closest;
    among: alone, in a library that also holds the distractors (one model fitted on them all);
    grown: among, where the model was fitted on the distractors before the set's folders came
      (no refit: a library of that size keeps its model).
    Each row: precision, coverage, rejection, precision at >= 0.8 / 0.9, calibration error."""
    from sba_desktop.engine.open_set import OpenSetTagger

    ps, n_set = es.photos, es.n_set
    labels = ps.labels
    spec = DescriptorSpec("sba", opt.n_detectors, global_weight=opt.global_weight)

    def vectors(fit_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Vectors of `rows` from a model fitted as a library of the `fit_rows` photos fits one."""
        fitted, model = fit([es.maps[i] for i in fit_rows], es.backbone, opt.image_size, spec, ReductionSpec(opt.dims))
        return fitted if np.array_equal(fit_rows, rows) else vectors_of(model, [es.maps[i] for i in rows])

    set_rows, everything = np.arange(n_set), np.arange(len(es.maps))
    alone = vectors(set_rows, set_rows)
    rows_out = []
    for shape in shapes:
        x, background = alone, None
        if shape in ("among", "grown"):
            x = vectors(everything if shape == "among" else everything[n_set:], everything)
            background, x = _tagging_background(x[n_set:]), x[:n_set]
        tally = protocols.OpenSetTally()
        for t in range(trials):
            rng = np.random.default_rng(t)
            if shape == "small":
                kinds = list(opt.small_kinds) or _small_family(alone, labels, rng)
                known = kinds[:SMALL_FOLDERS] if not opt.small_kinds else kinds[:len(kinds) - SMALL_OTHERS]
                ex, rest = [], []
                for k in kinds:
                    idx = rng.permutation(np.flatnonzero(labels == k))
                    if k in known:
                        ex.append(idx[:SMALL_EXAMPLES])
                        rest.append(idx[SMALL_EXAMPLES:SMALL_EXAMPLES + SMALL_UNSORTED])
                    else:
                        rest.append(idx[:SMALL_EXAMPLES])
                ex, rest = np.concatenate(ex), np.concatenate(rest)
                rows = np.concatenate([ex, rest])
                fitted = vectors(rows, rows)
                xs = np.zeros((n_set, fitted.shape[1]), np.float32)
                xs[rows] = fitted
            else:
                known = sorted(rng.permutation(sorted(set(labels)))[:opt.open_categories].tolist())
                ex, rest = protocols._sample_split(labels, known, opt.open_examples, rng)
                xs = x
            tagger = OpenSetTagger(seed=t).fit(xs[ex], labels[ex])
            tally.add(tagger.propose(xs[rest], background), labels[rest], known, tagger.new_groups)
        rows_out.append({"library_shape": shape, "folders": len(known), "examples": int(len(ex) // len(known)),
                         "unsorted": int(len(rest)), "background": 0 if background is None else int(len(background)),
                         "trials": trials, **tally.summary()})
    return rows_out


def _tagging_background(library: np.ndarray) -> np.ndarray:
    """The library's other photos as `sba tag` takes them into its graph: a seeded sample of at
    most tagging.BACKGROUND."""
    import random

    from sba_desktop.jobs.tagging import BACKGROUND

    if len(library) <= BACKGROUND:
        return library
    return library[sorted(random.Random(0).sample(range(len(library)), BACKGROUND))]


SEARCH_PROTOCOLS = ("composites", "elsewhere")  # lab/composites.py


def _search_protocol(ps: PhotoSet, task: str, opt: EvalOptions, progress) -> dict:
    """Objects pasted into everyday photos, or queries from outside the library (lab/composites.py)."""
    from sba_desktop.lab import composites

    if ps.groups is None:
        raise ValueError(f"{ps.root}: groundtruth.json has no 'groups' for the {task} protocol")
    everyday = [p for d in opt.distractors for p in folder_photos(d)]
    if task == "composites" and not everyday:
        raise ValueError("the composites protocol needs --distractors (everyday photos to paste into)")
    bb = load_extractor(opt.backbone, opt.runtime)
    enc = PhotoEncoder(bb, opt.image_size, keep_maps=True)
    spec = DescriptorSpec("sba", opt.n_detectors, global_weight=opt.global_weight)

    def fit_library(maps):
        return fit(maps, bb, opt.image_size, spec, ReductionSpec(opt.dims))

    inside = None
    if opt.look_inside:  # the library photos read once more, as indexing does when it looks inside
        inside_enc = PhotoEncoder(bb, WINDOW_SIDE, keep_maps=True)
        inside = lambda paths: encode_maps(paths, inside_enc, progress)  # noqa: E731
    rows = composites.run(task, ps, everyday, lambda paths: encode_maps(paths, enc, progress),
                          fit_library, vectors_of, encode_inside=inside)
    return {"task": task, "backbone": bb.name, "runtime": bb.runtime, "image_size": opt.image_size,
            "look_inside": opt.look_inside, "photos": len(ps.names), "distractors": len(everyday),
            "distractor_folders": [str(d) for d in opt.distractors], "set": str(ps.root),
            "library_shapes": rows, "results": []}


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
        protocols.check_open_set(ps.labels, opt.open_categories, opt.open_examples)
    for d in opt.distractors:
        folder_photos(d)  # a wrong folder is refused before any photo is encoded
    if task in SEARCH_PROTOCOLS:
        return _search_protocol(ps, task, opt, progress)
    if task == "open-set" and opt.library_shapes:   # ... and so is a protocol the inputs cannot hold
        missing = sorted(set(opt.small_kinds) - set(ps.labels))
        if missing:
            raise ValueError(f"no such classes in {root}: {', '.join(missing)}")
        for shape in set(opt.library_shapes) & {"among", "grown"}:
            if not opt.distractors:
                raise ValueError(f"the '{shape}' protocol needs --distractors (the library's other photos)")
    es = encode_set(root, opt, progress)
    bb, n_set = es.backbone, es.n_set
    if task == "open-set" and opt.library_shapes:
        return {"task": task, "backbone": bb.name, "runtime": bb.runtime, "image_size": opt.image_size,
                "photos": n_set, "distractors": es.distractors,
                "distractor_folders": [str(d) for d in opt.distractors], "set": str(ps.root),
                "library_shapes": library_shapes(es, opt, opt.library_shapes), "results": []}
    other = None
    if opt.whiten_on:
        other = encode_maps(folder_photos(opt.whiten_on), PhotoEncoder(bb, opt.image_size, keep_maps=True))
    groups = None if ps.groups is None else np.concatenate([ps.groups, np.full(es.distractors, -1, np.int64)])
    queries = np.arange(n_set)
    results = []
    few_shot: list[dict] = []
    for v in variants(opt, other is not None):
        reduction_maps = other if v.whitening.startswith("independent") else None
        x, model = fit(es.maps, bb, opt.image_size, v.spec, v.reduction, reduction_maps)
        base = {"method": v.method, "dims": int(x.shape[1]), "default": v.default,
                "global_weight": v.spec.global_weight if v.spec.method == "sba" else None,
                "reduction": model.kind, "whitening": v.whitening,
                "n_detectors": int(len(model.detectors)) if v.spec.method == "sba" else None, **v.extra}
        if task == "retrieval":
            expansions = protocols.EXPANSIONS if opt.qe else protocols.EXPANSIONS[:2]
            for expansion in expansions:
                m_ap, ns = retrieval_scores(protocols.similarities(x, expansion, queries), groups, queries)
                results.append({**base, "expansion": expansion,
                                "default": v.default and expansion == protocols.DEFAULT_EXPANSION,
                                "mAP": round(m_ap, 4), "ns_score": round(ns, 4)})
        elif task == "open-set":
            if v.whitening == "none" and v.reduction.dims and "sweep" not in v.extra:
                # the small library fits its own model on its photos alone, as the product would
                refit = (lambda rows, v=v: fit([es.maps[i] for i in rows], bb, opt.image_size, v.spec,
                                                v.reduction)[0]) if opt.small_library else None
                results.append({**base, **protocols.open_set_protocol(
                    x[:n_set], ps.labels, opt.open_categories, opt.open_examples, protocols.OPEN_SET_TRIALS,
                    opt.unsorted_per_class, library=_tagging_background(x[n_set:]) if es.distractors else None,
                    rest_in_library=not opt.small_library, refit=refit)})
        else:
            xs = x[:n_set]
            mn, nn1 = protocols.cross_validated_accuracy(xs, ps.labels, opt.k, opt.folds)
            results.append({**base, "classifier": "mn", "accuracy": round(mn, 4)})
            results.append({**base, "classifier": "1nn", "default": False, "accuracy": round(nn1, 4)})
            if v.default:
                few_shot = protocols.few_shot_curve(xs, ps.labels, opt.k)
    return {"task": task, "backbone": bb.name, "runtime": bb.runtime, "image_size": opt.image_size,
            "photos": n_set, "distractors": es.distractors,
            "distractor_folders": [str(d) for d in opt.distractors],
            "set": str(ps.root), "results": results,
            **({"few_shot": few_shot} if task == "classification" else {})}
