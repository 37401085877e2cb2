"""Retrieval quality on real photos (paris-dev): the floor our measurements justify."""
from sba_desktop.lab.evaluation import EvalOptions, evaluate
from tests.conftest import dataset


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
    0.814 at 0.865. Measured now: 0.765 at 0.875, coverage 0.845, rejection 0.903; right at >= 0.9:
    0.959. A regression of this shape (the known part of the mixture moves towards the many photos
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
    20 dandelions with no folder), each draw's own model. Measured: alone 0.968 / 0.849 / 0.962,
    calibration error 0.012, 2.6 right new categories per draw, none wrong; small 0.935 / 0.884 /
    0.927, calibration error 0.042."""
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
    assert small["new_categories"]["wrong"] <= 0.2
