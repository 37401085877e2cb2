"""SBA math against a plain loop implementation of the paper's formulas."""
import numpy as np
import pytest

from sba_desktop.engine import pooling
from sba_desktop.engine.sba import DescriptorModel, DescriptorSpec, ReductionSpec
from tests.conftest import random_maps


def loop_sba(f: np.ndarray, detectors, beta=2.0) -> np.ndarray:
    """psi_n = sum_xy w_n(x,y) f(:,x,y), w_n = (v_n/||v_n||_2)^(1/beta), concatenated, L2."""
    c, h, w = f.shape
    parts = []
    for n in detectors:
        v = f[n]
        norm = np.sqrt(sum(v[y, x] ** 2 for y in range(h) for x in range(w)))
        psi = np.zeros(c)
        for y in range(h):
            for x in range(w):
                weight = (v[y, x] / norm) ** (1.0 / beta) if norm > 0 else 0.0
                psi += weight * f[:, y, x]
        parts.append(psi)
    out = np.concatenate(parts)
    return out / np.linalg.norm(out)


def loop_variance_detectors(maps, n):
    sums = np.array([[m[ch].sum() for ch in range(m.shape[0])] for m in maps])
    var = [np.mean((sums[:, ch] - sums[:, ch].mean()) ** 2) for ch in range(sums.shape[1])]
    return sorted(np.argsort(var)[::-1][:n])


def test_detectors_are_the_largest_variance_channels_in_index_order():
    maps = random_maps(9)
    got = pooling.select_detectors(np.stack([m.sum(axis=(1, 2)) for m in maps]), 4)
    assert list(got) == loop_variance_detectors(maps, 4)
    assert list(got) == sorted(got)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_sba_regions_match_the_loop_formula(beta):
    maps = random_maps(6)
    det = np.array([1, 4, 9])
    for m in maps:
        fast = pooling.l2n(pooling.sba_regions(m, det, beta).flatten())
        np.testing.assert_allclose(fast, loop_sba(m.astype(np.float64), det, beta), rtol=1e-4, atol=1e-6)


def test_zero_channel_gives_zero_weights_not_nan():
    m = random_maps(1)[0]
    m[3] = 0.0
    w = pooling.region_weights(m, np.array([3, 5]))
    assert np.isfinite(w).all()
    assert float(np.abs(w[0]).sum()) == 0.0
    v = pooling.sba_regions(m, np.array([3, 5]))
    assert np.isfinite(v).all() and float(np.abs(v[0]).sum()) == 0.0


def test_all_zero_map_encodes_to_finite_vector():
    maps = list(random_maps(40))
    model = DescriptorModel.fit(maps, "test", "test@v", 224, DescriptorSpec("sba", 5), ReductionSpec(16))
    v = model.encode_map(np.zeros((12, 5, 7), np.float32))
    assert np.isfinite(v).all()


def test_encoding_is_deterministic():
    maps = list(random_maps(40, seed=3))
    a = DescriptorModel.fit(maps, "t", "t@v", 224, DescriptorSpec("sba", 5), ReductionSpec(16))
    b = DescriptorModel.fit(maps, "t", "t@v", 224, DescriptorSpec("sba", 5), ReductionSpec(16))
    assert a.model_id == b.model_id
    np.testing.assert_array_equal(a.encode_maps(maps), b.encode_maps(maps))


def test_comparison_poolings_by_hand():
    m = random_maps(1)[0]
    t = m
    np.testing.assert_allclose(pooling.spoc(t), m.sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(pooling.mac(t), m.max(axis=(1, 2)), rtol=1e-6)
    gem = np.cbrt((np.clip(m, 1e-6, None) ** 3).mean(axis=(1, 2)))
    np.testing.assert_allclose(pooling.gem(t), gem, rtol=1e-4)
    # CroW: spatial weights from the channel sum, channel weights from sparsity
    s = m.sum(0)
    s = np.sqrt(s / np.sqrt((s ** 2).sum()))
    q = (m > 0).mean(axis=(1, 2))
    omega = np.where(q > 0, np.log(q.sum() / (q + 1e-12)), 0)
    np.testing.assert_allclose(pooling.crow(t), omega * (m * s).sum(axis=(1, 2)), rtol=1e-4)


def test_a_batch_of_maps_gives_the_vectors_of_one_map_at_a_time():
    maps = random_maps(40, seed=5)
    model = DescriptorModel.fit(list(maps), "t", "t@v", 224, DescriptorSpec("sba", 5), ReductionSpec(16))
    one_by_one = np.stack([model.encode_map(m) for m in maps])
    np.testing.assert_allclose(model.encode_batch(maps), one_by_one, atol=1e-6)
    # maps of two shapes in one list are grouped by shape and come back in their order
    mixed = [maps[0], maps[1][:, :4], maps[2], maps[3][:, :4]]
    np.testing.assert_allclose(model.encode_maps(mixed), np.stack([model.encode_map(m) for m in mixed]),
                               atol=1e-6)
