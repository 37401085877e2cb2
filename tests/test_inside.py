"""Looking inside photos (issue 34): windows of a photo's map (engine/windows.py), kept in the catalog
and searched as the band "inside other photos" (library/inside.py), made by the indexing job."""
import json
import os
import sqlite3

import numpy as np
import pytest

from conftest import composites_folder, random_maps
from sba_desktop.engine.sba import DescriptorModel, DescriptorSpec, ReductionSpec
from sba_desktop.engine.windows import WINDOW_CELLS, WindowTable, photo_windows, quantize, window_places


def _model(maps):
    return DescriptorModel.fit(maps, "test", "test-1", 224, DescriptorSpec("sba", 4, global_weight=2.0),
                               ReductionSpec(16))


def test_window_places_cover_the_whole_map():
    for h, w in ((11, 14), (7, 6), (3, 3), (2, 5)):
        places = window_places(h, w)
        covered = np.zeros((h, w), bool)
        for y, x in places:
            assert 0 <= y and 0 <= x and y + min(WINDOW_CELLS, h) <= h and x + min(WINDOW_CELLS, w) <= w
            covered[y:y + WINDOW_CELLS, x:x + WINDOW_CELLS] = True
        assert covered.all(), (h, w)


def test_int8_windows_keep_the_similarity():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((50, 512)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q, s = quantize(v)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    back = q.astype(np.float32) * s[:, None]
    assert np.abs(back @ v[0] - v @ v[0]).max() < 0.01


def test_the_window_holding_a_pasted_object_is_found_where_it_was_pasted():
    """A 3 x 3-cell 'object' map pasted into a busy 11 x 14 map at cells (4, 6): the photo's best
    window against the object's own vector is that window, scores ~1, and its box says where."""
    fit_maps = random_maps(60, c=12, h=7, w=7, seed=2)
    model = _model(fit_maps)
    thing = random_maps(1, c=12, h=3, w=3, seed=9)[0] * 3.0       # strong: among the kept windows
    scene = random_maps(1, c=12, h=11, w=14, seed=5)[0]
    scene[:, 4:7, 6:9] = thing
    (pw,) = photo_windows(model, [scene])
    assert len(pw.scales) == 16 and pw.vectors.shape == (16, model.dims)
    table = WindowTable(np.zeros(16, np.int64), pw.vectors, pw.scales, pw.boxes)
    q = model.encode_map(thing)
    [(pid, score, box)] = table.best(q, 1)
    assert pid == 0 and score > 0.98
    assert np.allclose(box, (6 / 14, 4 / 11, 3 / 14, 3 / 11), atol=1e-6)
    assert (pw.vectors.astype(np.float32) * pw.scales[:, None] @ q).max() == pytest.approx(score, abs=1e-5)


def test_the_int8_scoring_graph_is_the_one_onnx_builds_and_scores_exactly():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from sba_desktop.engine import windows

    g = helper.make_graph([helper.make_node("MatMulInteger", ["windows", "query"], ["scores"])], "int8_scores",
                          [helper.make_tensor_value_info("windows", TensorProto.INT8, ["n", "dims"]),
                           helper.make_tensor_value_info("query", TensorProto.INT8, ["dims", 1])],
                          [helper.make_tensor_value_info("scores", TensorProto.INT32, ["n", 1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="sba-desktop")
    m.ir_version = 8
    onnx.checker.check_model(m)
    assert m.SerializeToString() == windows.INT8_SCORES_ONNX
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (1000, 512), dtype=np.int8)
    q = rng.integers(-127, 128, 512, dtype=np.int8)
    assert np.array_equal(windows._int8_scores(w, q), w.astype(np.int64) @ q.astype(np.int64))


def test_the_band_gives_distinct_photos_best_first_and_leaves_out_the_excluded():
    rng = np.random.default_rng(3)
    v = rng.standard_normal((40, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q8, s = quantize(v)
    ids = np.repeat(np.arange(10), 4)                 # 10 photos of 4 windows
    table = WindowTable(ids, q8, s, np.zeros((40, 4), np.float32))
    exact = (q8.astype(np.float32) * s[:, None]) @ v[7]
    best_of = {p: exact[ids == p].max() for p in range(10)}
    want = sorted(best_of, key=lambda p: -best_of[p])
    got = table.best(v[7], 5)
    assert [g[0] for g in got] == want[:5] and got[0][0] == 1   # window 7 is photo 1's
    assert [g[1] for g in got] == pytest.approx([best_of[p] for p in want[:5]])
    assert [g[0] for g in table.best(v[7], 3, exclude={1, want[1]})] == [p for p in want if p not in {1, want[1]}][:3]


def test_the_two_pass_search_of_a_large_table_gives_the_exhaustive_answer():
    """A table larger than its shortlist is read first by its strongest dims (PCA-like: variance
    falling with the dim); the band must be the one an exhaustive exact ranking gives."""
    rng = np.random.default_rng(5)
    n, dims = 8000 * 16, 256
    v = rng.standard_normal((n, dims)).astype(np.float32) * (1.0 / np.sqrt(1 + np.arange(dims)))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q8, s = quantize(v)
    table = WindowTable(np.repeat(np.arange(8000), 16), q8, s, np.zeros((n, 4), np.float32))
    assert len(table) > max(table.SHORTLIST, 8 * 2 * (10 + 5) * 16)        # the first pass is used
    for k in range(10):
        q = v[rng.integers(n)] + 0.6 * rng.standard_normal(dims).astype(np.float32) / np.sqrt(dims)
        q /= np.linalg.norm(q)
        exact = table.exact_scores(np.arange(n), q)
        best = {}
        for i in np.argsort(-exact, kind="stable"):
            if int(table.photo_ids[i]) not in best and table.photo_ids[i] >= 5:
                best[int(table.photo_ids[i])] = float(exact[i])
            if len(best) == 10:
                break
        got = table.best(q, 10, exclude=set(range(5)))
        assert [g[0] for g in got] == list(best) and [g[1] for g in got] == pytest.approx(list(best.values()))


@pytest.fixture
def inside_library(tmp_path):
    """A library of 3 UKBench objects pasted into everyday photos and 24 other everyday photos,
    indexed with looking inside on."""
    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import Library

    folder = tmp_path / "photos"
    cases = composites_folder(folder, [0, 1, 2], everyday_step=97, everyday_n=27, seed=1)
    lib = Library.open()
    s = lib.settings()
    s.inside = True
    lib.save_settings(s)
    report = IndexJob(lib, [str(folder)]).run()
    assert report.encoded == 27 and report.looked_inside == 27
    yield lib, folder, cases
    lib.close()


def test_indexing_that_looks_inside_finds_pasted_objects_in_the_band(inside_library):
    lib, folder, cases = inside_library
    assert lib.inside.count(lib.model.model_id) == 27
    for i, c in enumerate(cases):
        q = lib.encode_query(str(c.query))
        band = lib.inside.search(lib.model.model_id, q, top=3)
        assert band[0].path == str(folder / f"composite-{i}.jpg"), (i, [h.path for h in band])
        x, y, w, h = band[0].box
        cx, cy = x + w / 2, y + h / 2
        assert c.box[0] <= cx <= c.box[2] and c.box[1] <= cy <= c.box[3]   # the window is on the object
        assert band[0].size == (640, 480) and band[0].pixels()[2] > 100
        excluded = lib.inside.search(lib.model.model_id, q, top=3, exclude={band[0].photo_id})
        assert band[0].photo_id not in {h.photo_id for h in excluded}


def test_windows_follow_the_photos_and_the_setting(inside_library):
    from sba_desktop.jobs.index import IndexJob

    lib, folder, cases = inside_library
    model_id = lib.model.model_id
    changed = folder / "composite-0.jpg"
    st = changed.stat()
    changed.write_bytes(changed.read_bytes() + b"\0")                      # a changed file: its windows go
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    q = lib.encode_query(str(cases[0].query))
    IndexJob(lib).run()
    assert lib.inside.count(model_id) == 27                               # ... and come back
    assert lib.inside.search(model_id, q, top=1)[0].path == str(changed)
    s = lib.settings()
    s.n_detectors = 20
    lib.save_settings(s)
    IndexJob(lib, rebuild=True).run()                                     # a new model: windows made anew
    assert lib.model.model_id != model_id and lib.inside.count(model_id) == 0
    model_id = lib.model.model_id
    assert lib.inside.count(model_id) == 27
    q = lib.encode_query(str(cases[0].query))
    assert lib.inside.search(model_id, q, top=1)[0].path == str(changed)
    s = lib.settings()
    s.inside = False
    lib.save_settings(s)
    assert not lib.needs_rebuild()                                        # the search's model is kept
    IndexJob(lib).run()
    assert lib.inside.count(model_id) == 0 and lib.inside.search(model_id, q) == []


def test_a_damaged_window_row_is_left_out_not_a_crash(inside_library):
    lib, folder, cases = inside_library
    model_id = lib.model.model_id
    q = lib.encode_query(str(cases[1].query))
    target = lib.inside.search(model_id, q, top=1)[0]
    lib.catalog.db.execute("UPDATE windows SET vectors = ? WHERE photo_id = ?", (b"garbled", target.photo_id))
    band = lib.inside.search(model_id, q, top=5)
    assert band and target.photo_id not in {h.photo_id for h in band}
    other = band[0]
    nan_boxes = np.full((16, 4), np.nan, np.float32).tobytes()           # the right length, not numbers
    lib.catalog.db.execute("UPDATE windows SET boxes = ? WHERE photo_id = ?", (nan_boxes, other.photo_id))
    band = lib.inside.search(model_id, q, top=5)
    assert band and other.photo_id not in {h.photo_id for h in band}
    assert lib.inside.best_window(model_id, other.photo_id, q) is None
    assert lib.inside.missing(model_id) == []   # the row is there; a rebuild of the windows would replace it


def test_cli_index_look_inside_status_and_search_band(tmp_path, capsys):
    from sba_desktop.cli import main

    folder = tmp_path / "photos"
    (case,) = composites_folder(folder, [5], everyday_step=211, everyday_n=12, seed=2)
    assert main(["index", str(folder), "--look-inside", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["looked_inside"] == 12
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["looked_inside"] == 12
    assert main(["search", str(case.query), "--top", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)["queries"][0]
    shown = {r["path"] for r in answer["results"]}
    assert len(answer["inside"]) == 9 and not shown & {r["path"] for r in answer["inside"]}
    assert str(folder / "composite-0.jpg") in shown | {r["path"] for r in answer["inside"][:1]}
    assert main(["search", str(case.query), "--top", "3"]) == 0
    assert "inside other photos" in capsys.readouterr().out
    assert main(["index", "--no-look-inside"]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["looked_inside"] is None
