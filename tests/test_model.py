"""Fitted model: small libraries (1, 2, 10 photos), PCA, persistence, refusal to mix models."""
import numpy as np
import pytest

from sba_desktop.engine.sba import (MIN_PCA_PHOTOS, DescriptorModel, DescriptorSpec, ModelMismatchError,
                                    ReductionSpec)
from tests.conftest import random_maps


def fit(n, dims=64, seed=0, **spec):
    maps = list(random_maps(n, c=40, seed=seed))
    return maps, DescriptorModel.fit(maps, "t", "t@v", 224, DescriptorSpec("sba", 25, **spec), ReductionSpec(dims))


@pytest.mark.parametrize("n", [1, 2, 10])
def test_works_from_the_first_photo(n):
    maps, model = fit(n)
    assert model.kind == "random-projection"  # too few photos for PCA: data-free projection
    assert len(model.detectors) == 25
    x = model.encode_maps(maps)
    assert x.shape == (n, 64) and np.isfinite(x).all()
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    # each photo is its own best match
    assert (np.argmax(x @ x.T, axis=1) == np.arange(n)).all()


def test_single_photo_picks_detectors_by_mean_response():
    maps, model = fit(1)
    means = maps[0].sum(axis=(1, 2))
    assert set(model.detectors) == set(np.argsort(-means)[:25])


def test_pca_once_enough_photos_and_never_more_dims_than_photos():
    maps, model = fit(MIN_PCA_PHOTOS + 7, dims=512)
    assert model.kind == "pca"
    assert model.dims == MIN_PCA_PHOTOS + 6  # n - 1 components at most
    x = model.encode_maps(maps)
    # with every component kept, PCA without whitening keeps the centred geometry exactly
    raw = np.stack([model.raw_vector(m) for m in maps]) - model.mean
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(x @ x.T, raw @ raw.T, atol=1e-4)


def test_save_load_round_trip(tmp_path):
    maps, model = fit(50, dims=16)
    model.save(tmp_path / "m.npz")
    back = DescriptorModel.load(tmp_path / "m.npz")
    assert back.model_id == model.model_id
    np.testing.assert_array_equal(back.encode_maps(maps), model.encode_maps(maps))
    _, small = fit(3, dims=16)
    small.save(tmp_path / "s.npz")
    np.testing.assert_array_equal(DescriptorModel.load(tmp_path / "s.npz").encode_maps(maps),
                                  small.encode_maps(maps))


def test_refuses_vectors_of_another_model():
    _, a = fit(50, seed=1)
    _, b = fit(50, seed=2)
    assert a.model_id != b.model_id
    a.check_vectors(a.model_id)
    with pytest.raises(ModelMismatchError):
        a.check_vectors(b.model_id)


def test_whitening_option_scales_components():
    maps = list(random_maps(60, c=40))
    w = DescriptorModel.fit(maps, "t", "t@v", 224, DescriptorSpec("sba", 10), ReductionSpec(20, whiten=1.0))
    assert w.kind == "pca-whiten" and w.scales is not None
    x = w.encode_maps(maps)
    assert x.shape == (60, 20)


def test_model_id_is_the_hash_existing_libraries_were_stored_under():
    """sha256 of the sorted meta JSON then the arrays' bytes: a library's vectors are keyed by it."""
    import hashlib
    import json

    maps, model = fit(50, dims=16)
    h = hashlib.sha256(json.dumps(model._meta(), sort_keys=True).encode())
    for arr in (model.detectors, model.mean, model.components, model.scales):
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    assert model.model_id == h.hexdigest()[:16]
    model.fitted_on += 1  # any change of what defines the model changes its id (no stale cache)
    assert model.model_id != h.hexdigest()[:16]
