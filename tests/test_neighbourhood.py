"""The default search's neighbourhood expansion: the adaptive rule, and eval == library search."""
import numpy as np
import pytest

from sba_desktop.engine import neighbourhood as nbh
from sba_desktop.lab.protocols import similarities
from sba_desktop.library.vindex import VectorIndex


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_a_clear_match_is_used_alone_and_the_photo_is_not_its_own_neighbour():
    # A and B are a pair (cos 0.8); C is only loosely related to A (cos 0.3)
    a = unit([1, 0, 0, 0])
    b = unit([0.8, 0.6, 0, 0])
    c = unit([0.3, 0, np.sqrt(1 - 0.09), 0])
    src = nbh.BruteForce(np.stack([a, b, c]))
    got = nbh.augment(a, src)[0]
    # C (0.3 < 0.7 x 0.8) is left out; A itself (in the database) is not counted twice
    np.testing.assert_allclose(got, unit(a + np.sqrt(0.8) * b), atol=1e-6)


def test_near_equal_neighbours_are_used_together():
    a = unit([1, 0, 0])
    b = unit([0.8, 0.6, 0])
    c = unit([0.75, 0, np.sqrt(1 - 0.75 ** 2)])   # 0.75 >= 0.7 x 0.8: both are used
    src = nbh.BruteForce(np.stack([b, c]))
    got = nbh.augment(a, src)[0]
    np.testing.assert_allclose(got, unit(a + np.sqrt(0.8) * b + np.sqrt(0.75) * c), atol=1e-6)


def clustered(n_groups=60, per=4, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_groups, dim))
    x = np.repeat(centres, per, axis=0) + 0.6 * rng.standard_normal((n_groups * per, dim))
    return unit(x), np.repeat(np.arange(n_groups), per)


def test_hnsw_library_index_and_eval_brute_force_rank_alike():
    x, _ = clustered()
    idx = VectorIndex(x.shape[1])
    idx.add(np.arange(len(x)), x)
    brute = nbh.BruteForce(x)
    for q in (x[5], unit(x[9] + 0.3 * x[100])):
        ids_h, s_h = nbh.neighbourhood_search(q, idx, 20)
        ids_b, s_b = nbh.neighbourhood_search(q, brute, 20)
        assert ids_h.tolist() == ids_b.tolist()
        np.testing.assert_allclose(s_h, s_b, atol=1e-5)


def test_eval_rows_are_neighbourhood_search_over_the_whole_set():
    x, groups = clustered(20)
    sim = similarities(x, "adaptive")
    src = nbh.BruteForce(x)
    for i in (0, 33, 79):
        ids, scores = nbh.neighbourhood_search(x[i], src, len(x))
        # float32 sums in another order (the eval shares one cache): a few ulps apart
        np.testing.assert_allclose(sim[i, ids], scores, rtol=1e-5, atol=1e-6)
        assert ids[0] == i  # the query photo itself is its best match


def test_expansion_helps_groups_and_does_not_hurt_pairs():
    from sba_desktop.lab.metrics import retrieval_scores

    for per in (2, 6):
        x, groups = clustered(80, per, seed=per)
        plain = retrieval_scores(similarities(x, "none"), groups)[0]
        adaptive = retrieval_scores(similarities(x, "adaptive"), groups)[0]
        assert adaptive >= plain - 0.01, (per, plain, adaptive)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_libraries(n):
    x, _ = clustered(1, n)
    ids, scores = nbh.neighbourhood_search(x[0], nbh.BruteForce(x), 10)
    assert len(ids) == n and ids[0] == 0 and scores[0] == pytest.approx(1.0, abs=1e-5)


def test_kept_neighbourhoods_give_the_searches_of_a_fresh_cache():
    """The library keeps each touched photo's nearest photos between searches of an unchanged
    index: later searches equal those with nothing kept."""
    x, _ = clustered(60, 4)
    idx = VectorIndex(x.shape[1])
    idx.add(np.arange(len(x)), x)
    kept = nbh.AugmentedVectors(idx)
    queries = [x[1], x[6], unit(x[9] + 0.3 * x[100]), x[200], x[7]]
    for q in queries:
        nbh.neighbourhood_search(q, idx, 30, kept)
    assert len(kept) > 100   # what the searches touched is kept
    for q in queries:
        ids_k, s_k = nbh.neighbourhood_search(q, idx, 30, kept)
        ids_f, s_f = nbh.neighbourhood_search(q, idx, 30)
        assert ids_k.tolist() == ids_f.tolist()
        np.testing.assert_allclose(s_k, s_f, rtol=1e-5, atol=1e-6)


def test_retrieval_scores_with_distractors_and_a_subset_of_queries():
    from sba_desktop.lab.metrics import retrieval_scores

    # items 0-3: two groups of two; items 4-5: distractors (never queries, never positives)
    groups = np.array([0, 0, 1, 1, -1, -1])
    sim = np.array([[1.0, 0.2, 0.0, 0.0, 0.9, 0.1],    # query 0: a distractor before its positive
                    [0.2, 1.0, 0.0, 0.0, 0.0, 0.0]])   # query 1: its positive first
    m_ap, ns = retrieval_scores(sim, groups, np.array([0, 1]))
    assert m_ap == pytest.approx((0.5 + 1.0) / 2) and ns == pytest.approx(2.0)


def test_the_default_search_score_splits_exactly_over_the_photos_it_is_made_of():
    """Each result's score in the default search equals the sum of the parts the split gives the
    query, the result and the close matches; a photo not on the shortlist has no split."""
    x, groups = clustered()
    idx = VectorIndex(x.shape[1])
    idx.add(np.arange(len(x)), x)
    kept = nbh.AugmentedVectors(idx)
    for q in (x[5], unit(x[9] + 0.3 * x[100])):   # a library photo, and a photo not in it
        ids, scores = nbh.neighbourhood_search(q, idx, 20, kept)
        for rid, score in zip(ids[:8], scores[:8]):
            split = nbh.split_search_score(q, int(rid), idx, kept)
            assert split.score == pytest.approx(float(score), abs=1e-5)
            assert sum(split.parts.values()) == pytest.approx(float(score), abs=1e-5)
            assert split.plain == pytest.approx(float(q @ x[rid]), abs=1e-5)
            if float(q @ x[rid]) >= nbh.SAME_PHOTO:
                assert split.parts == {nbh.QUERY: 0.5, int(rid): 0.5}
            else:
                # close matches of one's own group carry part of it: the expansion is not a no-op
                assert set(split.parts) - {nbh.QUERY, int(rid)}
                assert 5 not in split.parts  # the query photo in the library counts as the query
    far = int(np.argmin(x @ x[5]))
    assert nbh.split_search_score(x[5], far, idx, kept) is None
