"""The issue-34 protocols on real photos: objects pasted into everyday photos, queries from outside
the library (sba_desktop/lab/composites.py)."""
import json

import numpy as np
from PIL import Image

from conftest import dataset
from sba_desktop.engine.sba import DescriptorSpec, ReductionSpec
from sba_desktop.engine.windows import WINDOW_SIDE
from sba_desktop.lab import composites
from sba_desktop.lab.evaluation import (EvalOptions, PhotoSet, encode_maps, evaluate, fit, load_extractor,
                                        vectors_of)
from sba_desktop.library.encoding import PhotoEncoder


def _ukbench_groups(n):
    ps = PhotoSet.open(dataset("ukbench-dev"))
    paths = ps.paths()
    return [[paths[i] for i in np.flatnonzero(ps.groups == g)] for g in range(n)]


def _everyday(n):
    return sorted((dataset("caltech101-distractors") / "images").rglob("*.jpg"))[::40][:n]


def test_composites_paste_another_shot_of_the_group_where_the_box_says(tmp_path):
    groups, everyday = _ukbench_groups(6), _everyday(20)
    cases = composites.draw_composites(groups, everyday, seed=3, cases=12)
    assert len(cases) == 12 and len({c.background for c in cases}) == 12   # no background twice
    for c in cases:
        assert c.query != c.pasted and c.query in groups[c.group] and c.pasted in groups[c.group]
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert 0.3 < (x1 - x0) < 0.55           # ~280 px of 640
    c = cases[0]
    picture = np.asarray(Image.open(composites.write_composite(c, tmp_path / "c.jpg")), np.float32)
    assert picture.shape == (480, 640, 3)
    x0, y0, x1, y1 = (round(c.box[0] * 640), round(c.box[1] * 480), round(c.box[2] * 640), round(c.box[3] * 480))
    pasted = np.asarray(Image.open(c.pasted).convert("RGB").resize((x1 - x0, y1 - y0)), np.float32)
    background = np.asarray(Image.open(c.background).convert("RGB").resize((640, 480)), np.float32)
    assert np.abs(picture[y0:y1, x0:x1] - pasted).mean() < 12            # the shot is there ...
    assert np.abs(picture[y0:y1, x0:x1] - background[y0:y1, x0:x1]).mean() > 25   # ... over the background
    outside = np.ones(picture.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.abs(picture[outside] - background[outside]).mean() < 8


def test_composite_protocol_finds_and_points_at_pasted_objects(tmp_path):
    """12 UKBench objects pasted into everyday photos, among 60 other everyday photos: the search
    with another shot finds most of them in its top 10 (chance: 10 of 72) and the explanation
    points inside the pasted box for most (the box is ~19 % of the photo)."""
    groups, everyday = _ukbench_groups(12), _everyday(72)
    cases = composites.draw_composites(groups, everyday[:12], seed=0, cases=12)
    enc = PhotoEncoder(load_extractor("efficientnet_lite0"), 224, keep_maps=True)
    files = [composites.write_composite(c, tmp_path / f"{i}.jpg") for i, c in enumerate(cases)]
    spec = DescriptorSpec("sba", 25, global_weight=2.0)
    inside = PhotoEncoder(enc.backbone, WINDOW_SIDE, keep_maps=True)   # the library as looking inside reads it
    fitted_on = []

    def fit_library(maps):
        fitted_on.append(len(maps))
        return fit(maps, enc.backbone, 224, spec, ReductionSpec(512))

    query_maps, composite_maps, around = (encode_maps([c.query for c in cases], enc), encode_maps(files, enc),
                                          encode_maps(everyday[12:], enc))
    window_maps = encode_maps(files + everyday[12:], inside)
    row = composites.composite_protocol(query_maps, composite_maps, [c.box for c in cases], around,
                                        fit_library, vectors_of, window_maps)
    # grown: the model was fitted on the 60 everyday photos before the composites came
    grown = composites.composite_protocol(query_maps, composite_maps, [c.box for c in cases], around,
                                          fit_library, vectors_of, window_maps, grown=True)
    assert fitted_on == [72, 60] and grown["library"] == 72
    assert grown["found_top10_or_inside"] >= 0.8, grown
    assert row["cases"] == 12 and row["library"] == 72
    assert row["found_top10"] >= 0.5, row
    assert row["pointed"] >= 0.5, row
    assert row["median_plain_rank"] < 20, row
    # the band inside other photos finds what the search does not frame, and its part is on the object
    assert row["found_top10_or_inside"] >= max(row["found_top10"], 0.8), row
    assert row["pointed_inside"] >= 0.75, row


def test_queries_from_elsewhere_are_never_in_the_library():
    groups = np.array([0] * 25 + [1] * 25 + [2] * 4 + [-1] * 3)
    queries, library = composites.split_queries(groups, seed=1)
    assert not set(queries) & set(library) and len(queries) + len(library) == len(groups)
    assert [int((groups[queries] == g).sum()) for g in (0, 1, 2)] == [10, 10, 2]
    assert set(np.flatnonzero(groups < 0)) <= set(library)


def test_elsewhere_protocol_through_sba_eval():
    report = evaluate(dataset("paris-dev"), "elsewhere", EvalOptions())
    (row,) = report["library_shapes"]                 # no everyday photos: the library alone
    assert row["queries"] == 50 and row["library"] == 75
    assert row["precision_at_10_default"] > 0.9 and row["mAP_default"] > 0.85, row
    json.dumps(report)
