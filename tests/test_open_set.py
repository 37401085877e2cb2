"""The tagger that can say "none of these" (engine/open_set.py), on synthetic clusters."""
import numpy as np

from sba_desktop.engine.open_set import Graph, OpenSetTagger, _logistic_fit, brute_force_knn


def clusters(n_clusters, per, dim=48, spread=0.45, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    x = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((n_clusters * per, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), np.repeat(np.arange(n_clusters), per)


def test_known_kinds_get_their_category_and_unknown_kinds_get_none():
    x, y = clusters(8, 40)
    known = y < 5                                 # 5 categories; 3 kinds nobody made a folder for
    ex = np.flatnonzero(known & (np.arange(len(y)) % 40 < 10))
    rest = np.setdiff1d(np.arange(len(y)), ex)
    steps = []
    props = OpenSetTagger().fit(x[ex], [f"c{v}" for v in y[ex]]).propose(x[rest], progress=lambda d, t: steps.append((d, t)))
    assert steps == [(i, 11) for i in range(1, 12)]  # 1 spread + 5 folds + 5 hidden categories
    made = np.array([p.category is not None for p in props])
    inside = y[rest] < 5
    right = np.array([p.closest == f"c{v}" for p, v in zip(props, y[rest])])
    assert right[made].mean() >= 0.95
    assert made[inside].mean() >= 0.65 and (~made[~inside]).mean() >= 0.9
    conf = np.array([p.confidence for p in props])
    assert ((0 <= conf) & (conf <= 1)).all()
    assert conf[made].mean() > conf[~made].mean() + 0.3  # confidence follows the decision


def test_one_arriving_photo_and_one_example_per_category_still_work():
    x, y = clusters(3, 11, seed=1)
    ex = np.flatnonzero(np.arange(len(y)) % 11 < 10)
    one = OpenSetTagger().fit(x[ex], [str(v) for v in y[ex]]).propose(x[10])  # an inbox photo
    assert len(one) == 1 and one[0].closest == "0"
    single = np.flatnonzero(np.arange(len(y)) % 11 == 0)
    props = OpenSetTagger().fit(x[single], [str(v) for v in y[single]]).propose(x[ex])
    assert len(props) == len(ex) and all(p.closest in {"0", "1", "2"} for p in props)
    assert OpenSetTagger().fit(x[:5], ["a"] * 5).propose(np.zeros((0, x.shape[1]))) == []


def test_spreading_solves_the_linear_system():
    x, y = clusters(3, 6, dim=8, seed=2)
    g = Graph(x)
    seeds = np.array([0, 6, 12])
    f = g.spread(seeds, np.array([0, 1, 2]), 3)
    # M f = b, with M assembled densely from the same graph
    m = np.eye(len(x))
    for r, c, v in zip(g.rows, g.cols, g.vals):
        m[r, c] -= v
    b = np.zeros((len(x), 3))
    b[seeds, [0, 1, 2]] = 1.0
    np.testing.assert_allclose(m @ f, b, atol=1e-7)
    assert np.allclose(m, m.T)  # symmetric: conjugate gradients apply


def test_knn_and_logistic_fit_by_hand():
    x = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]] + np.float32(0.01) * np.arange(4)[:, None]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids, _ = brute_force_knn(x, 1)
    assert ids[:, 0].tolist() == [1, 0, 3, 2]
    xs = np.array([-2.0, -1.0, 1.0, 2.0, -1.5, 1.5])
    ys = np.array([0, 0, 1, 1, 1, 0], float)
    slope, intercept = _logistic_fit(xs, ys, np.ones(6), ridge=0.0)
    p = 1 / (1 + np.exp(-(intercept + slope * xs)))
    assert np.abs(xs @ (p - ys)) < 1e-6 and abs((p - ys).sum()) < 1e-6  # the score equations hold
    assert slope > 0


def test_the_libraries_hnsw_neighbours_equal_brute_force():
    """Past BRUTE_FORCE_LIMIT photos the tagging graph takes its neighbours from a temporary HNSW index."""
    from sba_desktop.jobs.tagging import hnsw_knn

    x, _ = clusters(30, 20, seed=3)
    ids_h, sims_h = hnsw_knn(x, 5)
    ids_b, sims_b = brute_force_knn(x, 5)
    order = np.argsort(-sims_b, axis=1)
    ids_b, sims_b = np.take_along_axis(ids_b, order, 1), np.take_along_axis(sims_b, order, 1)
    assert (ids_h == ids_b).mean() >= 0.99
    np.testing.assert_allclose(sims_h, sims_b, atol=1e-5)


def test_protocol_reports_what_accepting_above_a_confidence_gives():
    from sba_desktop.lab.protocols import open_set_protocol

    x, y = clusters(14, 30, seed=3)
    labels = np.array([f"kind{i}" for i in y])
    r = open_set_protocol(x, labels, categories=10, examples=5, trials=3)
    assert r["proposals_at_0.9"] <= r["proposals_at_0.8"]
    assert r["proposals_at_0.8"] > 0 and 0.0 <= r["precision_at_0.8"] <= 1.0
    # well separated kinds: confident proposals are right, the rest of the draws' photos get none
    assert r["precision_at_0.9"] >= r["precision"] - 0.02 and r["rejection"] > 0.8


def test_the_small_library_protocol_keeps_the_rest_of_the_set_out_of_the_library():
    from sba_desktop.lab.protocols import open_set_protocol

    x, y = clusters(8, 30, seed=5)
    labels = np.array([f"kind{i}" for i in y])
    around = open_set_protocol(x, labels, categories=4, examples=10, trials=2, unsorted_per_class=3)
    small = open_set_protocol(x, labels, categories=4, examples=10, trials=2, unsorted_per_class=3,
                              rest_in_library=False)
    # 8 kinds x 3 unsorted each; the other 240 - 40 - 24 photos are the library around, or absent
    assert around["unsorted"] == small["unsorted"] == 24
    assert (around["library"], around["background"]) == ("around", 176)
    assert (small["library"], small["background"]) == ("small", 0)


def test_the_small_library_protocol_fits_each_draws_own_model():
    from sba_desktop.lab.protocols import open_set_protocol

    x, y = clusters(8, 30, seed=5)
    labels = np.array([f"kind{i}" for i in y])
    seen = []

    def refit(rows):
        seen.append(rows)
        return x[rows]          # the same vectors: the answer must not change

    args = dict(categories=4, examples=10, trials=2, unsorted_per_class=3, rest_in_library=False)
    refitted = open_set_protocol(x, labels, **args, refit=refit)
    # the figures report the draws' own models' dimensions
    assert refitted.pop("dims") == x.shape[1]
    assert refitted == open_set_protocol(x, labels, **args)
    # each draw's model sees its 40 examples and 24 unsorted photos, nothing else
    assert [len(r) for r in seen] == [64, 64] and all(len(set(r.tolist())) == 64 for r in seen)
    fewer = open_set_protocol(x, labels, **args, refit=lambda rows: x[rows][:, :5])
    assert fewer["dims"] == 5


def test_whitening_evens_out_how_photos_of_a_category_differ():
    from sba_desktop.engine.open_set import within_category_whitening

    rng = np.random.default_rng(0)
    loud = np.r_[np.ones(8), np.full(8, 0.05)]       # categories vary a lot in 8 directions, little in 8
    centres = 2 * rng.standard_normal((3, 16))
    x = np.repeat(centres, 30, axis=0) + rng.standard_normal((90, 16)) * loud
    y = np.repeat(np.arange(3), 30)
    w = within_category_whitening(x, y, shrink=0.0)
    within = np.concatenate([x[y == c] - x[y == c].mean(0) for c in range(3)]) @ w
    values = np.linalg.eigvalsh(within.T @ within)
    assert values.max() / values.min() < 1.01          # before: ~400
    # a member differs in the loud directions, a look-alike of another kind in the quiet ones
    member = rng.standard_normal(16) * loud
    lookalike = np.r_[np.zeros(8), np.full(8, 0.5)] + rng.standard_normal(16) * loud * 0.3
    ratio = lambda m: np.linalg.norm(lookalike @ m) / np.linalg.norm(member @ m)
    assert ratio(np.eye(16)) < 1 and ratio(w) > 3      # closer as they are, far once evened out
    assert ratio(within_category_whitening(x, y)) > 1.1 * ratio(np.eye(16))  # the product's shrinkage
    # one example per category: no spread to learn from, nothing changes
    np.testing.assert_array_equal(within_category_whitening(x[::30], y[::30]), np.eye(16))


def test_the_graph_is_whitened_only_with_enough_examples_per_category():
    x, y = clusters(4, 12, seed=4)
    few = OpenSetTagger().fit(x[np.arange(48) % 12 < 3], y[np.arange(48) % 12 < 3])   # 4 x 3
    many = OpenSetTagger().fit(x[np.arange(48) % 12 < 8], y[np.arange(48) % 12 < 8])  # 4 x 8
    assert not few._whiten() and many._whiten()


def test_a_kind_with_no_folder_is_offered_as_a_group_and_not_without_scikit_learn(monkeypatch):
    import sys

    x, y = clusters(6, 30, seed=7)
    known = y < 4                                 # kinds 4 and 5 have no folder
    ex = np.flatnonzero(known & (np.arange(len(y)) % 30 < 10))
    rest = np.setdiff1d(np.arange(len(y)), ex)
    labels = [f"c{v}" for v in y[ex]]
    tagger = OpenSetTagger().fit(x[ex], labels)
    props = tagger.propose(x[rest])
    assert tagger.new_groups
    for g in tagger.new_groups:   # each group is one of the kinds with no folder, none proposed
        kinds = y[rest][g]
        assert (kinds >= 4).all() and len(set(kinds.tolist())) == 1 and len(g) >= 5
        assert all(props[i].category is None for i in g)
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)   # the bundle has no scikit-learn
    without = OpenSetTagger().fit(x[ex], labels)
    assert len(without.propose(x[rest])) == len(rest) and without.new_groups == []


def test_the_known_part_follows_new_photos_of_the_categories_not_a_tail_of_other_kinds():
    """The mixture's known part moves as the photos it holds move (examples that look too alike
    score above new photos of their kind), but a long tail of photos of other kinds that it takes
    on its low side drags it much less than it drags a mean and a spread (an unsorted folder
    mostly of other kinds)."""
    from sba_desktop.engine.open_set import _known_moves

    rng = np.random.default_rng(0)
    examples = rng.normal(-2.0, 0.4, 100)                  # the hidden examples' log scores
    new = rng.normal(-2.0, 0.4, 300)                       # new photos of the categories, alike
    tail = rng.uniform(-4.5, -2.8, 300)                    # photos of other kinds, half held
    x, held = np.concatenate([new, tail]), np.r_[np.ones(300), np.full(300, 0.5)]
    shift, stretch = _known_moves(x, held, examples)
    every, weight = np.concatenate([x, examples]), np.r_[held, np.ones(100)]
    mean = weight @ every / weight.sum()
    spread = np.sqrt(weight @ (every - mean) ** 2 / weight.sum()) / examples.std()
    assert mean - examples.mean() < -0.45 and spread > 2       # what means made of it
    assert -0.35 < shift < 0 and stretch < 1.3
    shift, _ = _known_moves(new - 1.5, np.ones(300), examples)   # too-alike examples
    assert -1.5 < shift < -1.0
    shift, stretch = _known_moves(x, np.r_[np.ones(300), np.zeros(300)], examples)   # none held
    assert abs(shift) < 0.1 and 0.8 < stretch < 1.2
