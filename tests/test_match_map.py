"""The exact split of a similarity over places (issue 22): it adds up, on every reduction and on
real photos, and the regions it finds are where the match is."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sba_desktop.engine.match_map import decompose, region_pairs, regions, window_sums
from sba_desktop.engine.sba import DescriptorModel, DescriptorSpec, ReductionSpec
from tests.conftest import dataset, random_maps


@pytest.mark.parametrize("reduction", [ReductionSpec(16), ReductionSpec(16, whiten=0.5, shrink=0.1),
                                       ReductionSpec(None)])
@pytest.mark.parametrize("global_weight", [0.0, 2.0])
def test_every_split_adds_up_to_the_score(reduction, global_weight):
    maps = list(random_maps(50, c=24, h=5, w=7))
    model = DescriptorModel.fit(maps, "t", "t@v", 224, DescriptorSpec("sba", 6, global_weight=global_weight), reduction)
    d = decompose(model, maps[0], maps[1])
    score = float(model.encode_map(maps[0]) @ model.encode_map(maps[1]))
    assert d.score == pytest.approx(score, abs=1e-5)
    assert d.query_cells.sum() + d.query_centring == pytest.approx(score, abs=1e-5)
    assert d.result_cells.sum() + d.result_centring == pytest.approx(score, abs=1e-5)
    assert d.pairs.sum() + d.pairs_centring == pytest.approx(score, abs=1e-5)
    assert d.per_region.sum() + d.query_centring == pytest.approx(score, abs=1e-5)
    assert len(d.per_region) == 6 + (global_weight > 0)


def test_the_random_projection_of_a_small_library_splits_too():
    maps = list(random_maps(10, c=24, h=4, w=4))  # < 33 photos: a seeded projection, no centring
    model = DescriptorModel.fit(maps, "t", "t@v", 224, DescriptorSpec("sba", 4), ReductionSpec(8))
    assert model.kind == "random-projection"
    d = decompose(model, maps[2], maps[3])
    assert d.query_cells.sum() == pytest.approx(float(model.encode_map(maps[2]) @ model.encode_map(maps[3])), abs=1e-5)
    assert d.query_centring == 0.0


def test_regions_are_places_of_a_few_cells_in_the_photos_pixels():
    cells = np.zeros((6, 10), np.float32)
    cells[2:4, 2:4] = 0.2                                      # an object: four touching cells
    cells[4, 8] = 0.5                                          # one cell stronger than any of them, alone
    cells[0, 9] = -0.05                                        # places can count against the match
    rs = regions(cells, 1.3, (100, 50, 100 + 3200, 50 + 1920), level=0.3)
    assert len(rs) == 2
    group, single = rs                                         # the object's 3 x 3 window (0.8) beats 0.5
    assert {22, 23, 32, 33} <= set(group.cells) and 48 in single.cells
    assert group.share == pytest.approx(cells.reshape(-1)[group.cells].sum() / 1.3)  # exact, its own cells
    x0, y0, x1, y1 = group.box
    assert x0 <= 100 + 2 * 320 and x1 >= 100 + 4 * 320 and y0 <= 50 + 2 * 320 and y1 >= 50 + 4 * 320
    # the point is where the strongest window's match is centred: the middle of the 2 x 2 object,
    # between cells, not the middle of one of them
    assert group.point == (100 + 3 * 320, 50 + 3 * 320)
    assert single.point == (100 + 8.5 * 320, 50 + 4.5 * 320)
    assert single.box == (100 + 7 * 320, 50 + 3 * 320, 100 + 3200, 50 + 1920)  # the last cells reach the edge
    assert window_sums(cells)[2, 2] == pytest.approx(0.8) and window_sums(cells)[0, 0] == 0.0
    pairs = np.zeros((60, 60), np.float32)
    pairs[22, 48] = 0.4
    assert region_pairs(pairs, 1.3, rs, rs) == [(0, 1, pytest.approx(0.4 / 1.3))]


@pytest.mark.slow
def test_on_real_photos_the_split_adds_up_to_the_library_search_score(tmp_path, capsys):
    """A library of 40 UKBench photos: `sba explain` of one object's two shots gives the plain
    search's score, regions in the photos' pixels, and the shares add up within 1e-4."""
    from sba_desktop.cli import main
    from sba_desktop.jobs.explain import explain
    from sba_desktop.library.encoding import Source
    from sba_desktop.library.library import Library
    from tests.conftest import link_photos, ukbench_names

    photos = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", photos, ukbench_names(40))
    assert main(["index", str(photos)]) == 0
    capsys.readouterr()
    query, result = photos / ukbench_names(40)[8], photos / ukbench_names(40)[9]
    assert main(["explain", str(query), str(result), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lib = Library.open()
    hits = {h.path: h.score for h in lib.search(str(query), top=10, expand=False)}
    assert out["score"] == pytest.approx(hits[str(result)], abs=2e-3)  # the catalog keeps float16 vectors
    # the default search's re-ranking on top: its score, split over these two and the close matches
    default = {h.path: h.score for h in lib.search(str(query), top=10)}
    assert out["search"]["score"] == pytest.approx(default[str(result)], abs=1e-4)
    parts = out["search"]["these_two"] + sum(m["part"] for m in out["search"]["close_matches"])
    assert parts == pytest.approx(out["search"]["score"], abs=1e-4)
    assert out["search"]["close_matches"] and all(m["path"] != str(result) for m in out["search"]["close_matches"])
    ex = explain(lib, Source("q", path=str(query)), str(result))
    assert ex.query_shares.sum() + ex.centring[0] == pytest.approx(1.0, abs=1e-4)
    assert ex.result_shares.sum() + ex.centring[1] == pytest.approx(1.0, abs=1e-4)
    with Image.open(result) as im:
        w, h = im.size
    for r in out["result_regions"]:
        x0, y0, x1, y1 = r["box"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and 0 < r["share"] <= 1.0
    assert out["query_regions"] and out["pairs"] and out["pairs"][0]["share"] > 0
    assert [d["share"] for d in out["detectors"]] == sorted((d["share"] for d in out["detectors"]), reverse=True)
    # names only where the head, run on the detector's own gallery, agrees with them
    from sba_desktop.jobs.explain import named_detectors

    named = named_detectors(lib)
    channels = [int(c) for c in lib.model.detectors]
    for pos, (channel, label) in enumerate(zip(ex.channels, ex.names)):
        assert (label == f"detector {channel}") == (pos not in named), (pos, label)
    assert lib.catalog.get_meta(f"named_detectors:{lib.model.model_id}") == json.dumps(sorted(named))
    assert channels == ex.channels
    # the least alike pair of the library is no match: nothing is pointed at, and it says so
    ids, vecs = lib.catalog.vectors(lib.model.model_id)
    sims = vecs @ vecs.T
    a, b = np.unravel_index(int(np.argmin(sims)), sims.shape)
    paths = lib.catalog.paths([int(ids[a]), int(ids[b])])
    assert sims[a, b] < 0  # centred on the library's mean, unrelated photos score below 0
    assert main(["explain", paths[int(ids[a])], paths[int(ids[b])], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["score"] < 0 and not out["matched"]
    assert out["query_regions"] == [] and out["result_regions"] == [] and out["pairs"] == []
    assert main(["explain", paths[int(ids[a])], paths[int(ids[b])]]) == 0
    assert "no match to point at" in capsys.readouterr().out
