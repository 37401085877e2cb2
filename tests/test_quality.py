"""Retrieval and tagging quality on real photos: the floor our measurements justify."""
import numpy as np

from sba_desktop.lab.evaluation import EvalOptions, evaluate
from tests.conftest import dataset


def _caltech_photos():
    """The everyday set: its folder, photo names (sorted) and their categories."""
    import json

    root = dataset("caltech101-distractors")
    labels_of = json.loads((root / "groundtruth.json").read_text())["labels"]
    names = np.array(sorted(labels_of))
    return root, names, np.array([labels_of[n] for n in names])


def _product_model(paths):
    """The product default's model fitted on these photos, as a library of them fits one:
    (their vectors, the model, the encoder for other photos)."""
    from sba_desktop.engine.registry import DEFAULT_BACKBONE
    from sba_desktop.engine.sba import DEFAULT_DIMS, DEFAULT_GLOBAL_WEIGHT, DescriptorSpec, ReductionSpec
    from sba_desktop.lab.evaluation import encode_maps, fit, load_extractor
    from sba_desktop.library.encoding import PhotoEncoder

    bb = load_extractor(DEFAULT_BACKBONE)
    encoder = PhotoEncoder(bb, 224, keep_maps=True)
    x, model = fit(encode_maps(paths, encoder), bb, 224,
                   DescriptorSpec("sba", 25, global_weight=DEFAULT_GLOBAL_WEIGHT), ReductionSpec(DEFAULT_DIMS))
    return x, model, encoder


def test_paris_default_beats_comparisons_and_floor():
    report = evaluate(dataset("paris-dev"), "retrieval", EvalOptions())
    rows = report["results"]
    default = next(r for r in rows if r["default"])
    assert default["method"] == "sba-pca" and default["dims"] <= 2048
    assert default["expansion"] == "adaptive" and sum(r["default"] for r in rows) == 1
    # measured 0.952 with the neighbourhood, 0.912 plain (README)
    assert default["mAP"] >= 0.945
    plain = next(r for r in rows if r["method"] == "sba-pca" and r["whitening"] == "none"
                 and r["expansion"] == "none")
    assert plain["mAP"] >= 0.90 and default["mAP"] > plain["mAP"] + 0.02
    for expansion, ours in (("adaptive", default), ("none", plain)):
        best = max(r["mAP"] for r in rows if r["method"] in ("spoc", "mac", "gem", "crow")
                   and r["expansion"] == expansion)
        assert ours["mAP"] > best, expansion
    # whitening learned on the searched set collapses (measured 0.25-0.33)
    self_whitened = next(r for r in rows if r["whitening"] == "self" and r["expansion"] == "none")
    assert self_whitened["mAP"] < default["mAP"] - 0.2
    paper = next(r for r in rows if r["method"] == "sba" and r["reduction"] == "raw" and r["expansion"] == "none")
    assert paper["mAP"] >= 0.85  # paper-exact SBA, raw 32,000 dims (measured 0.889)


def test_tagging_in_a_small_library_mostly_of_kinds_with_no_folder():
    """flowers17-dev small library (4 categories x 15 examples, 5 unsorted photos of each of the
    17 kinds, so 65 of the 85 of kinds with no folder, nothing else indexed, each draw's own
    model). Until 0.7.0 proposals were right 70 % of the time at a mean confidence of 0.98; 0.7.0:
    0.814 at 0.865. Measured now: 0.757 at 0.858, coverage 0.820, rejection 0.889; right at >= 0.9:
    0.979. A regression of this shape (the known part of the mixture moves towards the many photos
    of other kinds: docs/quality.md, what is still open); this test keeps it from getting worse."""
    opt = EvalOptions(open_categories=4, open_examples=15, unsorted_per_class=5, small_library=True)
    rows = evaluate(dataset("flowers17-dev"), "open-set", opt)["results"]
    default = next(r for r in rows if r["default"])
    assert default["library"] == "small" and default["unsorted"] == 85
    assert abs(default["confidence_of_proposals"] - default["precision"]) <= 0.14
    assert default["precision"] >= 0.72 and default["rejection"] >= 0.87 and default["coverage"] >= 0.75
    assert default["precision_at_0.9"] >= 0.92


def test_tagging_confidence_holds_alone_and_in_a_small_library_of_look_alikes():
    """Two shapes of library on flowers17-dev (a set nothing was chosen on: the tagger's settings
    were chosen on Caltech-101 categories), 10 draws each. alone: 12 folders x 10, the other 560
    photos unsorted (200 of 5 kinds with no folder); small: the issue's look-alike library
    (bluebell, buttercup, colts_foot, cowslip, crocus x 20; 10 unsorted of each, 20 daisies and
    20 dandelions with no folder), each draw's own model. Measured: alone 0.992 / 0.761 / 0.992,
    calibration error 0.021, 3.5 right new categories per draw, 0.1 wrong; small 0.978 / 0.816 /
    0.975, calibration error 0.030, a look-alike kind offered as a new category in 1.0 per draw
    (0.4 before a failed candidate was tried again with its photos that stand apart)."""
    kinds = ("bluebell", "buttercup", "colts_foot", "cowslip", "crocus", "daisy", "dandelion")
    opt = EvalOptions(library_shapes=("alone", "small"), small_kinds=kinds)
    alone, small = evaluate(dataset("flowers17-dev"), "open-set", opt)["library_shapes"]
    assert alone["precision"] >= 0.95 and alone["coverage"] >= 0.75 and alone["rejection"] >= 0.93
    assert alone["calibration_error"] <= 0.03 and alone["precision_at_0.8"] >= 0.95
    assert alone["new_categories"]["offered"] >= 1.5 and alone["new_categories"]["wrong"] <= 0.2
    assert abs(alone["confidence_of_proposals"] - alone["precision"]) <= 0.03
    assert small["unsorted"] == 90 and small["folders"] == 5
    assert small["calibration_error"] <= 0.07 and small["precision"] >= 0.9 and small["rejection"] >= 0.88
    assert abs(small["confidence_of_proposals"] - small["precision"]) <= 0.06
    assert small["new_categories"]["wrong"] <= 0.2 and small["new_categories"]["offered"] >= 0.8


def test_tagging_an_unsorted_folder_mostly_of_other_kinds():
    """12 folders of 10 Caltech-101 photos; the unsorted folder holds the rest of those 12 kinds and
    1,500 photos of 89 other kinds (72 % of it; the library's model fitted on these photos, as the
    product fits one). Caltech-101 is the set the tagger was chosen on: this guards the choice.
    With the known part of the confidence's mixture moved by its mean and spread, a long tail of
    other kinds dragged it down: this draw measured precision 0.813, rejection 0.922; with the
    quantile moves 0.882 / 0.959 (what is left is mostly look-alike kinds: electric guitars put
    into mandolin, ketches into schooner)."""
    from sba_desktop.engine.open_set import OpenSetTagger

    root, names, labels = _caltech_photos()
    big = sorted(k for k in set(labels) if (labels == k).sum() >= 40)
    rng = np.random.default_rng(3)
    known = sorted(rng.permutation(big)[:12].tolist())
    other = rng.permutation(np.flatnonzero(~np.isin(labels, known)))[:1500]
    rows = np.concatenate([np.flatnonzero(np.isin(labels, known)), other])
    x, _, _ = _product_model([root / "images" / n for n in names[rows]])
    lab = labels[rows]
    ex = np.concatenate([rng.permutation(np.flatnonzero(lab == k))[:10] for k in known])
    rest = np.setdiff1d(np.arange(len(rows)), ex)
    tagger = OpenSetTagger(seed=3).fit(x[ex], lab[ex])
    props = tagger.propose(x[rest])
    truth = lab[rest]
    inside = np.isin(truth, known)
    made = np.array([p.category is not None for p in props])
    right = np.array([p.closest == t for p, t in zip(props, truth)]) & inside
    assert right[made].mean() >= 0.86 and (~made[~inside]).mean() >= 0.95 and made[inside].mean() >= 0.7
    # the share of photos of other kinds is read off the unsorted photos' own scores
    assert abs(tagger.calibration.unknown_share - (~inside).mean()) <= 0.12


def test_tagging_flowers_in_a_library_model_fitted_on_everyday_photos(monkeypatch):
    """The grown library: the model was fitted on everyday photos (800 Caltech-101 photos, which
    also join the graph) before the 17 flower kinds of flowers17-dev came, with no refit; 12 folders
    x 10, the other 560 flowers unsorted, 10 draws. Every flower then shares a large part of its
    vector that no folder owns; taken out (engine/open_set.py `_centred`) the folders stop
    reaching kinds with no folder. Measured: precision 0.966 / coverage 0.753 / rejection 0.958;
    with the shared part left in 0.921 / 0.791 / 0.880."""
    from sba_desktop.engine import open_set
    from sba_desktop.lab.evaluation import PhotoSet, encode_maps, vectors_of
    from sba_desktop.lab.protocols import OpenSetTally, _sample_split

    everyday, names, _ = _caltech_photos()
    sample = np.random.default_rng(0).permutation(len(names))[:800]
    library, model, encoder = _product_model([everyday / "images" / names[i] for i in sample])
    flowers = PhotoSet.open(dataset("flowers17-dev"))
    x, labels = vectors_of(model, encode_maps(flowers.paths(), encoder)), flowers.labels
    kinds = sorted(set(labels))

    def tally() -> dict:
        out = OpenSetTally()
        for t in range(10):
            rng = np.random.default_rng(t)
            known = sorted(rng.permutation(kinds)[:12].tolist())
            ex, rest = _sample_split(labels, known, 10, rng)
            tagger = open_set.OpenSetTagger(seed=t).fit(x[ex], labels[ex])
            out.add(tagger.propose(x[rest], library), labels[rest], known, tagger.new_groups)
        return out.summary()

    centred = tally()
    assert centred["precision"] >= 0.95 and centred["rejection"] >= 0.93 and centred["coverage"] >= 0.7
    assert centred["calibration_error"] <= 0.05
    monkeypatch.setattr(open_set, "CENTRE_MIN_PHOTOS", 10 ** 9)
    shared_left_in = tally()
    assert shared_left_in["precision"] < centred["precision"] - 0.02
