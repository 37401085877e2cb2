"""The photo library on real and hostile files: incremental, consistent, never crashing."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.library import Library
from sba_desktop.library.lock import LibraryBusyError
from tests.conftest import dataset, flowers_by_class, link_photos, ukbench_names
from tests.hostile import make_hostile_corpus


def test_hostile_corpus_is_indexed_without_a_crash(tmp_path, monkeypatch):
    root = tmp_path / "hostile"
    kinds = make_hostile_corpus(root)
    assert len(kinds) >= 25
    vanish = root / "vanish.jpg"
    shutil.copy(root / "good.jpg", vanish)

    from sba_desktop.jobs import index as indexer

    real_fingerprint = indexer.fingerprint

    def fingerprint_then_delete(path, size):
        fp = real_fingerprint(path, size)
        if path == str(vanish):
            vanish.unlink()  # the file disappears after the scan saw it, before it is decoded
        return fp

    monkeypatch.setattr(indexer, "fingerprint", fingerprint_then_delete)
    lib = Library.open()
    report = IndexJob(lib, [str(root)]).run()
    skipped = {os.path.relpath(p, root): why for p, why in report.skipped}
    for name, kind in kinds.items():
        if kind == "bad":
            assert name in skipped, f"{name} should be skipped with a reason"
            assert skipped[name]
    assert "vanish.jpg" in skipped
    assert "decompression bomb" in skipped["bomb.png"] or "too large" in skipped["bomb.png"]
    assert skipped["zero.jpg"] == "empty file (0 bytes)"
    assert "not a photo" in skipped["text.jpg"]
    indexed = {os.path.relpath(p, root) for p in lib.catalog.photos_under(str(root))} - set(skipped)
    for name, kind in kinds.items():
        if kind == "good":
            assert name in indexed, f"{name} is a readable photo and should be indexed"
    assert not any(".hidden" in p for p in indexed)
    assert len(lib.index) == len(indexed)
    # a second run decodes nothing again
    again = IndexJob(lib).run()
    assert again.encoded == 0 and again.new == 0 and again.changed == 0


def test_ukbench_search_finds_the_group_and_incremental_updates(tmp_path):
    src = dataset("ukbench-dev") / "images"
    names = ukbench_names(80)
    folder = tmp_path / "photos"
    link_photos(src, folder, names)
    lib = Library.open()
    r = IndexJob(lib, [str(folder)]).run()
    assert r.encoded == 80 and r.fitted and len(lib.index) == 80
    hits = lib.search(str(src / names[4]), top=4)
    # ukbench00004..7 are one object; the query itself first, then the other three
    assert {Path(h.path).name for h in hits} == set(names[4:8])
    assert Path(hits[0].path).name == names[4]
    assert {Path(h.path).name for h in lib.search(str(src / names[4]), top=4, expand=False)} == set(names[4:8])
    # the default search is exactly what `sba eval` measures (exact search over the same vectors)
    from sba_desktop.engine.neighbourhood import BruteForce, neighbourhood_search

    ids = np.array(sorted(lib.index.ids()))
    vecs = lib.index.vectors(ids)
    q = lib.encode_query(str(src / names[9]))
    rows, scores = neighbourhood_search(q, BruteForce(vecs), 20)
    hits = lib.search(str(src / names[9]), top=20)
    assert [h.photo_id for h in hits] == [int(ids[r]) for r in rows]
    np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-5)
    # a region of the query (the object's centre) still finds its group near the top
    hits = lib.search(str(src / names[4]), top=6, region=(120, 90, 400, 300))
    assert len({Path(h.path).name for h in hits} & set(names[4:8])) >= 3
    # moved file: recognised by fingerprint, not re-encoded
    os.rename(folder / names[0], folder / ("renamed_" + names[0]))
    os.unlink(folder / names[1])
    r2 = IndexJob(lib).run()
    assert (r2.moved, r2.removed, r2.encoded) == (1, 1, 0)
    assert len(lib.index) == 79
    assert lib.status()["indexed"] == 79


def test_second_writer_gets_a_clear_message(tmp_path):
    lib = Library.open()
    with lib.writer_lock():
        other = Library.open()
        with pytest.raises(LibraryBusyError, match="being changed"):
            other.writer_lock().acquire()


def test_index_repaired_when_it_disagrees_with_catalog(tmp_path):
    folder = tmp_path / "p"
    link_photos(dataset("ukbench-dev") / "images", folder, ukbench_names(12))
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    # simulate a crash after a catalog commit but before the index file was saved
    lib.index.remove([min(lib.index.ids())])
    lib.save_index()
    lib.close()
    again = Library.open()
    assert again.repaired and len(again.index) == 12


def _index_cmd(home: str, folder: str) -> list[str]:
    return [sys.executable, "-m", "sba_desktop.cli", "--home", home, "index", folder, "--json"]


@pytest.mark.slow
def test_killed_indexing_stays_consistent(tmp_path):
    """SIGKILL an indexing process 10 times; every time the library must be consistent."""
    src = dataset("ukbench-dev") / "images"
    names = ukbench_names(500)
    home = str(tmp_path / "home")
    first, rest = tmp_path / "first", tmp_path / "rest"
    link_photos(src, first, names[:40])
    link_photos(src, rest, names[40:])
    lib = Library.open(home)
    IndexJob(lib, [str(first)]).run()
    ids = sorted(lib.index.ids())[:5]
    for pid in ids:
        lib.catalog.set_label(pid, "kept", "user", 1.0, accepted=True)
    lib.close()
    rng = random.Random(7)
    kills = 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for attempt in range(10):
        proc = subprocess.Popen(_index_cmd(home, str(rest)), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.0))  # start-up ~0.7 s, then ~50-70 photos/s
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        lib = Library.open(home)
        if lib.model is not None:
            want = lib.catalog.indexed_ids(lib.model.model_id)
            assert lib.index.ids() == want
        accepted = [r[0] for r in lib.catalog.labels(source="user", accepted=True)]
        assert sorted(accepted) == ids
        lib.close()
    assert kills >= 8
    out = subprocess.run(_index_cmd(home, str(rest)), env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["indexed"] == 500
    lib = Library.open(home)
    rows = lib.catalog.db.execute("SELECT path, state FROM photos").fetchall()
    assert len(rows) == 500 and len({r[0] for r in rows}) == 500
    assert all(state == "indexed" for _, state in rows)
    assert len(lib.index) == 500


def test_categories_from_folders_and_tagging_accuracy(tmp_path):
    """flowers17-dev arranged as category folders: held-out photos get the right labels."""
    src = dataset("flowers17-dev")
    by_class = flowers_by_class()
    cats, unsorted = tmp_path / "categories", tmp_path / "unsorted"
    truth = {}
    for cls, files in by_class.items():
        link_photos(src / "images", cats / cls, files[:30])  # 30 labelled per category
        link_photos(src / "images", unsorted, files[30:])    # 10 held out per category
        truth.update({f: cls for f in files[30:]})
    from sba_desktop.jobs import tagging
    from sba_desktop.library.xmp import read_keywords

    lib = Library.open()
    IndexJob(lib, [str(cats), str(unsorted)]).run()
    counts = tagging.label_from_folders(lib, str(cats))
    assert set(counts) == set(by_class) and all(n == 30 for n in counts.values())
    props = tagging.propose(lib, str(unsorted))
    assert len(props) == len(truth)
    right = np.array([truth[Path(p.path).name] == p.closest for p in props])
    made = np.array([p.category is not None for p in props])
    assert right.mean() >= 0.88  # best guesses; every unsorted photo here belongs to a category
    assert right[made].mean() >= 0.95 and made.mean() >= 0.65  # proposals made: precise, most photos
    assert all(0 < p.confidence <= 1 for p in props)
    before = {p: os.stat(p).st_mtime_ns for p in (src / "images").iterdir()}
    n = tagging.accept(lib, min_confidence=0.5)
    assert n == sum(p.confidence >= 0.5 and p.category is not None for p in props)
    assert tagging.write_xmp(lib) == n
    one = next(p for p in props if p.confidence >= 0.5)
    assert read_keywords(one.path) == [one.category]
    assert {p: os.stat(p).st_mtime_ns for p in (src / "images").iterdir()} == before


def test_photos_of_no_category_get_none(tmp_path, capsys):
    """The open-set protocol through `sba tag --json`: 12 category folders of 10 examples; the unsorted
    folder holds the other 30 photos of those classes and all 40 of 5 other classes."""
    from sba_desktop.cli import main

    src = dataset("flowers17-dev") / "images"
    by_class = flowers_by_class()
    known = sorted(by_class)[::3][:5]
    known = [c for c in sorted(by_class) if c not in known][:12]
    cats, unsorted = tmp_path / "Sorted", tmp_path / "Unsorted"
    truth = {}
    for cls, files in by_class.items():
        if cls in known:
            link_photos(src, cats / cls, files[:10])
            link_photos(src, unsorted, files[10:])
            truth.update({f: cls for f in files[10:]})
        else:
            link_photos(src, unsorted, files)
            truth.update({f: None for f in files})
    assert main(["index", str(cats)]) == 0 and main(["categories", "set", str(cats)]) == 0
    capsys.readouterr()
    assert main(["tag", str(unsorted), "--json"]) == 0
    props = json.loads(capsys.readouterr().out)["proposals"]
    assert len(props) == len(truth) == 560
    name = {p["path"]: Path(p["path"]).name for p in props}
    made = [p for p in props if p["category"] is not None]
    precision = np.mean([truth[name[p["path"]]] == p["category"] for p in made])
    inside = [p for p in props if truth[name[p["path"]]] is not None]
    coverage = np.mean([p["category"] is not None for p in inside])
    outside = [p for p in props if truth[name[p["path"]]] is None]
    rejection = np.mean([p["category"] is None for p in outside])
    # measured over 10 draws on this set: 0.986 / 0.805 / 0.986 (sba eval --task open-set --library-shapes alone)
    assert precision >= 0.93 and coverage >= 0.65 and rejection >= 0.9, (precision, coverage, rejection)
    assert all(p["closest"] in known for p in outside)
    # the confidence estimates how often a proposal is right; in this draw it is shy (measured
    # 0.906 at a precision of 0.989: right more often than said), never the other way round
    confidence = np.mean([p["confidence"] for p in made])
    assert precision - 0.1 <= confidence <= precision + 0.03, (confidence, precision)


def test_look_alike_photos_of_no_folder_are_offered_as_a_new_category(tmp_path, capsys):
    """The small library of look-alike flowers (issue 32): folders of bluebell, buttercup,
    colts_foot, cowslip and crocus (20 examples each), 10 unsorted photos of each and 20 daisies and
    20 dandelions with no folder; nothing else indexed. 0.7.0 put 26 daisies and dandelions into
    colts_foot at >= 0.8; now they are offered as new categories instead."""
    from sba_desktop.cli import main

    src = dataset("flowers17-dev") / "images"
    by_class = flowers_by_class()
    folders, others = ["bluebell", "buttercup", "colts_foot", "cowslip", "crocus"], ["daisy", "dandelion"]
    cats, unsorted = tmp_path / "Sorted", tmp_path / "Unsorted"
    truth = {}
    for cls in folders:
        link_photos(src, cats / cls, by_class[cls][:20])
        link_photos(src, unsorted, by_class[cls][20:30])
        truth.update({f: cls for f in by_class[cls][20:30]})
    for cls in others:
        link_photos(src, unsorted, by_class[cls][:20])
        truth.update({f: None for f in by_class[cls][:20]})
    listing = sorted([*cats.rglob("*"), *unsorted.rglob("*")])
    assert main(["index", str(cats)]) == 0 and main(["categories", "set", str(cats)]) == 0
    capsys.readouterr()
    assert main(["tag", str(unsorted), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    kind = {p["path"]: truth[Path(p["path"]).name] for p in out["proposals"]}
    sure = [p for p in out["proposals"] if p["category"] is not None and p["confidence"] >= 0.8]
    assert np.mean([kind[p["path"]] == p["category"] for p in sure]) >= 0.9 and len(sure) >= 15
    groups = out["new_categories"]
    assert groups, "no new category offered"
    for g in groups:   # each group is of one kind with no folder (3 in 4 photos at least)
        kinds = [kind[p] for p in g["photos"]]
        assert kinds.count(None) >= 0.75 * len(kinds) and g["count"] == len(kinds) >= 5
    grouped = {p for g in groups for p in g["photos"]}
    assert not any(p["category"] is not None for p in out["proposals"] if p["path"] in grouped)
    # naming a group makes the category, with those photos as its examples; no file moves
    assert main(["categories", "new", "--group", "1", "--name", "Meadow"]) == 0
    capsys.readouterr()
    assert main(["categories", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["categories"]["Meadow"] == groups[0]["count"]
    assert sorted([*cats.rglob("*"), *unsorted.rglob("*")]) == listing
    assert main(["tag", "--json"]) == 0   # the named group is no longer offered
    assert len(json.loads(capsys.readouterr().out)["new_categories"]) == len(groups) - 1
    assert main(["categories", "new", "--group", "9", "--name", "x"]) == 1
    assert "no group 9" in capsys.readouterr().err


def test_a_few_unsorted_photos_of_an_unknown_kind_get_none_with_the_library_around(tmp_path):
    """An inbox-sized unsorted folder (3 photos of each of the 17 classes, 5 classes with no
    folder); the rest of the photos sit elsewhere in the library, unlabelled."""
    from sba_desktop.jobs import tagging

    src = dataset("flowers17-dev") / "images"
    by_class = flowers_by_class()
    known = sorted(by_class)[1::2] + sorted(by_class)[::2][:4]   # 12 categories
    cats, unsorted, archive = tmp_path / "Sorted", tmp_path / "Unsorted", tmp_path / "Archive"
    truth = {}
    for cls, files in by_class.items():
        start = 0
        if cls in known:
            link_photos(src, cats / cls, files[:10])
            start = 10
        link_photos(src, unsorted, files[start:start + 3])
        truth.update({f: cls if cls in known else None for f in files[start:start + 3]})
        link_photos(src, archive, files[start + 3:])
    lib = Library.open()
    IndexJob(lib, [str(cats), str(unsorted), str(archive)]).run()
    tagging.label_from_folders(lib, str(cats))
    props = tagging.propose(lib, str(unsorted))
    assert len(props) == 51
    made = [p for p in props if p.category is not None]
    precision = np.mean([truth[Path(p.path).name] == p.category for p in made])
    rejection = np.mean([p.category is None for p in props if truth[Path(p.path).name] is None])
    coverage = np.mean([p.category is not None for p in props if truth[Path(p.path).name] is not None])
    # without the library in the graph: rejection 0.72 on average at this size (docs/quality.md)
    assert precision >= 0.9 and rejection >= 0.8 and coverage >= 0.6, (precision, rejection, coverage)


def test_batched_pipeline_loses_nothing_and_matches_one_photo_at_a_time(tmp_path, monkeypatch):
    """Mixed shapes (landscape, portrait, square) go through shape buckets and partial batches; a file
    whose worker fails unexpectedly costs that file only; every photo is stored exactly once and its
    vector is the one a single-photo encoding gives."""
    from PIL import Image

    from sba_desktop.library import encoding

    folder = tmp_path / "mixed"
    folder.mkdir()
    src = sorted((dataset("paris-dev") / "images").iterdir())[:30]
    for i, p in enumerate(src):
        with Image.open(p) as im:
            im = im.convert("RGB")
            if i % 3 == 1:
                im = im.transpose(Image.Transpose.ROTATE_90)
            elif i % 3 == 2:
                im = im.crop((0, 0, min(im.size), min(im.size)))
            im.save(folder / f"p{i:02d}.jpg", quality=90)
    real_decode = encoding.decode

    def poisonous(path, size, region=None):
        if path.endswith(("p05.jpg", "p17.jpg")):
            raise MemoryError("decoder blew up")
        return real_decode(path, size, region=region)

    monkeypatch.setattr(encoding, "decode", poisonous)
    monkeypatch.setattr(encoding, "FORWARD_BATCH", 4)  # several full and partial batches from 30 photos
    lib = Library.open()
    rep = IndexJob(lib, [str(folder)]).run()
    skipped = dict(lib.catalog.skipped())
    assert sorted(os.path.basename(p) for p in skipped) == ["p05.jpg", "p17.jpg"]
    assert all("MemoryError" in why for why in skipped.values())
    assert rep.encoded == 28 and len(lib.index) == 28
    rows = lib.catalog.db.execute("SELECT path, state FROM photos").fetchall()
    assert len(rows) == 30 and len({r[0] for r in rows}) == 30
    ids, vecs = lib.catalog.vectors(lib.model.model_id)
    paths = lib.catalog.paths(ids.tolist())
    for pid, v in zip(ids, vecs):
        single = lib.encode_query(paths[int(pid)])
        # one pipeline: the stored vector is the query's (the catalog keeps float16 vectors)
        assert float(single @ v) > 0.99999, paths[int(pid)]


def test_detector_gallery_shows_crops_at_each_photos_peak(tmp_path):
    from sba_desktop.jobs.explain import detector_galleries, detector_gallery

    src = dataset("ukbench-dev") / "images"
    names = ukbench_names(40)
    link_photos(src, tmp_path / "p", names)
    lib = Library.open()
    IndexJob(lib, [str(tmp_path / "p")]).run()
    model, enc = lib.model, lib.photo_encoder(keep_maps=True)
    from sba_desktop.library.decode import decode
    from sba_desktop.library.encoding import Source

    from scipy.ndimage import uniform_filter

    maps = {n: enc.encode_one(Source(n, str(src / n))).map.astype(np.float32) for n in names}
    together = detector_galleries(lib, (0, 7), top=5)  # one pass over the catalog for both
    for position in (0, 7):
        channel = int(model.detectors[position])
        # the response: 3x3 mean of the detector's map (ReLU6 saturates single cells at 6.0)
        smooth = {n: uniform_filter(maps[n][channel], 3, mode="constant") for n in names}
        best = sorted(names, key=lambda n: -float(smooth[n].max()))[:5]
        patches = detector_gallery(lib, position, top=5)
        assert [Path(p.path).name for p in patches] == best  # strongest first, from the library
        assert [Path(p.path).name for p in together[position]] == best
        for p in patches:
            fmap = smooth[Path(p.path).name]
            y, x = np.unravel_index(int(fmap.argmax()), fmap.shape)
            w, h = decode(p.path, 512).rgb.size
            px, py = (x + 0.5) / fmap.shape[1] * w, (y + 0.5) / fmap.shape[0] * h
            left, top, right, bottom = p.box
            assert left <= px <= right and top <= py <= bottom  # the crop holds the peak
            assert p.image.size == (right - left, bottom - top)
            assert p.response == pytest.approx(float(fmap.max()), rel=0.01)


def test_a_new_catalog_opened_by_several_threads_at_once_is_migrated_once(tmp_path):
    """The window and its loader thread may both open a new library: one migrates, none fails
    (before: 'table folders already exists' in most trials with 4 openers)."""
    import threading

    from sba_desktop.library.catalog import Catalog
    from sba_desktop.library.schema import SCHEMA_VERSION

    for trial in range(10):
        path = tmp_path / f"c{trial}.sqlite"
        errors = []

        def open_it():
            try:
                Catalog(path).close()
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)
        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        cat = Catalog(path)
        assert cat.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "abstained" in [r[1] for r in cat.db.execute("PRAGMA table_info(labels)")]
        cat.close()
