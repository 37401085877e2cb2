"""Encoding on a (local) Ray cluster gives the single machine's vectors, search and resumption."""
from __future__ import annotations

import numpy as np
import pytest

from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.library import Library
from tests.conftest import dataset, link_photos, ukbench_names

ray = pytest.importorskip("ray", reason="the optional 'cluster' extra (ray[data]) is not installed")

FIT = 120  # fitted locally on 120 photos (no auto-refit at 200); the other 80 are encoded by Ray actors


@pytest.fixture(scope="module")
def local_ray():
    from sba_desktop.jobs.cluster import connect

    connect("local", num_cpus=2)
    yield
    ray.shutdown()


def vectors_by_path(lib: Library) -> dict[str, np.ndarray]:
    ids, vecs = lib.catalog.vectors(lib.model.model_id)
    paths = lib.catalog.paths(ids.tolist())
    return {paths[int(i)]: v.astype(np.float32) for i, v in zip(ids, vecs)}


def test_ray_vectors_and_search_equal_the_single_machine(local_ray, tmp_path):
    from sba_desktop.jobs.cluster import RayIndexJob

    photos = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", photos, ukbench_names(200))
    remote = Library.open(tmp_path / "remote")
    rep = RayIndexJob(remote, [str(photos)], fit_sample=FIT).run()
    assert rep.encoded == 200 and len(remote.index) == 200 and not rep.skipped
    local = Library.open(tmp_path / "local")
    IndexJob(local, [str(photos)], fit_sample=FIT).run()
    assert local.model.model_id == remote.model.model_id  # the same fit on the same sample
    a, b = vectors_by_path(remote), vectors_by_path(local)
    assert set(a) == set(b)
    cos = [float(a[p] @ b[p] / np.linalg.norm(a[p]) / np.linalg.norm(b[p])) for p in a]
    assert min(cos) >= 0.9999
    for q in ukbench_names(200)[::25]:
        hits_r = [h.path for h in remote.search(str(photos / q), top=4)]
        hits_l = [h.path for h in local.search(str(photos / q), top=4)]
        assert hits_r == hits_l
    # detector galleries come out the same (the actors keep each photo's peaks too)
    from sba_desktop.jobs.explain import detector_gallery

    for position in (0, 12):
        assert [p.path for p in detector_gallery(remote, position, 6)] == \
            [p.path for p in detector_gallery(local, position, 6)]
    # and the duplicate finder's looks of every photo (its grey picture, capture time, camera)
    looks = {lib: {r[1]: (r[6].tobytes(), r[8], r[9], r[10]) for r in lib.catalog.looks_of_indexed(lib.model.model_id)}
             for lib in (remote, local)}
    assert looks[remote] == looks[local] and all(v[0] for v in looks[local].values())


def test_a_killed_ray_run_resumes_without_duplicates(local_ray, tmp_path):
    from sba_desktop.jobs.cluster import RayIndexJob

    photos = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", photos, ukbench_names(200))
    lib = Library.open(tmp_path / "home")
    holder = {}

    def stop_after_first_ray_batch(p):
        if p.phase == "encoding" and p.done > 0:
            holder["job"].cancel()

    holder["job"] = job = RayIndexJob(lib, [str(photos)], stop_after_first_ray_batch, fit_sample=FIT)
    first = job.run()
    assert first.cancelled and FIT < len(lib.index) < 200
    assert lib.index.ids() == lib.catalog.indexed_ids(lib.model.model_id)
    again = RayIndexJob(lib, fit_sample=FIT).run()
    assert not again.cancelled and again.encoded == 200 - len(first.indexed_ids)
    rows = lib.catalog.db.execute("SELECT path, state FROM photos").fetchall()
    assert len(rows) == 200 and len({r[0] for r in rows}) == 200 and all(s == "indexed" for _, s in rows)
    assert len(lib.index) == 200
