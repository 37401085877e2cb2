"""The model follows the library: a model fitted on a small first folder is refitted in the
background once the library has grown, the old model serving searches until one switch."""
from __future__ import annotations

import os

import numpy as np

from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.library import Library
from tests.conftest import dataset, flowers_by_class, link_photos, ukbench_names


def test_a_small_first_folder_is_refitted_in_the_background_and_resumes(tmp_path):
    flowers = tmp_path / "flowers"
    by_class = flowers_by_class()
    link_photos(dataset("flowers17-dev") / "images", flowers, [n for c in sorted(by_class)[:3] for n in by_class[c][:20]])
    objects = tmp_path / "objects"
    names = ukbench_names(140)
    link_photos(dataset("ukbench-dev") / "images", objects, names)
    lib = Library.open()
    first = IndexJob(lib, [str(flowers)]).run()
    assert first.fitted and lib.model.fitted_on == 60 and not lib.refit_due()
    old = lib.model.model_id
    # the objects arrive: 200 photos, more than twice the 60 the model knows; a run with no time
    # to spare for refitting encodes them with the old model and stages only part of the refit
    # (the next model is fitted on a sample of 80: the other 120 photos are re-encoded)
    rep = IndexJob(lib, [str(objects)], refit_budget_s=0, fit_sample=80).run()
    assert rep.encoded == 140 and not rep.refitted and 0 < rep.refit_left < 120
    status = lib.status()
    assert status["refit"] and status["refit"]["staged"] == 200 - rep.refit_left
    assert lib.model.model_id == old and len(lib.index) == 200   # the old model serves meanwhile
    q = str(objects / names[8])
    hits = lib.search(q, top=4)
    assert {os.path.basename(h.path) for h in hits} >= set(names[8:10])
    lib.close()
    # a new process (as after a kill) continues the refit where it stopped, then switches once
    lib = Library.open()
    assert lib.refit_due()
    left = lib.status()["refit"]["total"] - lib.status()["refit"]["staged"]
    rep = IndexJob(lib).run()
    assert rep.refitted and rep.refit_left == 0 and rep.refit_encoded == left   # nothing twice
    assert lib.model.model_id != old and lib.model.fitted_on == 80 and not lib.refit_due()
    assert lib.status()["refit"] is None
    # the previous model's file is gone with it: one model file in the library's data folder
    assert [p.name for p in lib.paths.data.glob("model-*.npz")] == [lib.paths.model_file(lib.model.model_id).name]
    ids, vecs = lib.catalog.vectors(lib.model.model_id)
    assert len(ids) == 200 and lib.index.ids() == set(ids.tolist())
    # every stored vector is the new model's: what a search computes for the photo now
    paths = lib.catalog.paths(ids.tolist())
    for pid, v in list(zip(ids, vecs))[::25]:
        q_vec = lib.encode_query(paths[int(pid)])
        assert float(q_vec @ v) >= 0.9999
    hits = lib.search(q, top=4)
    assert {os.path.basename(h.path) for h in hits} == set(names[8:12])
    lib.close()
    # reopened: the index file is the new model's (its model id is written beside it)
    lib = Library.open()
    assert not lib.repaired and len(lib.index) == 200
    lib.close()


def test_an_index_file_of_the_previous_model_is_rebuilt_from_the_catalog(tmp_path):
    """Killed between the catalog's switch and the new index file: the file's model id says so."""
    link_photos(dataset("ukbench-dev") / "images", tmp_path / "p", ukbench_names(40))
    lib = Library.open()
    IndexJob(lib, [str(tmp_path / "p")]).run()
    lib.index_model_path.write_text("0123456789abcdef")   # as if the file held another model's vectors
    lib.close()
    lib = Library.open()
    assert lib.repaired and len(lib.index) == 40
    ids, vecs = lib.catalog.vectors(lib.model.model_id)
    np.testing.assert_allclose(lib.index.vectors(ids), vecs, atol=1e-6)
    lib.close()
