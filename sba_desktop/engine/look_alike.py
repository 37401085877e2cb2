"""Look-alike groups: unsorted photos that form a group of their own, apart from every category
folder, to be suggested as a new category (engine/open_set.py calls it after the proposals).

Candidates are the unsorted photos of each HDBSCAN cluster (McInnes et al. 2017, scikit-learn's)
of the examples and the unsorted photos together, at least GROUP_MIN_PHOTOS of them; a cluster may
hold a folder's examples too (dandelions cluster with coltsfoot). A candidate is kept when its
photos get GROUP_OWN_SHARE of their spread mass from their own group rather than from their
closest folder: each half of the group seeds a category of its own in the label spreading and the
other half is read, so a photo never counts its own seed. (Chosen on Caltech-101: clusters with no
example only and more than half the mass offered 1.6 of the 2 look-alike kinds of a small library
per draw; any cluster and three quarters, 1.8, with no more wrong groups; docs/quality.md.) A
candidate that fails is tried once more with only its photos that passed (a cluster that also took
photos of a folder's kind); chosen on Caltech-101's look-alike families of 7 kinds, 6 draws: 1.33 ->
1.5 kinds offered per draw, no wrong group more (4 folders beside 13 kinds: 4.5 -> 4.67).
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

GROUP_MIN_PHOTOS = 5          # a new category is suggested for at least this many look-alike photos ...
GROUP_OWN_SHARE = 0.75        # ... that get three times the mass from each other that they get from the folders
GROUP_SEARCH_LIMIT = 4000     # unsorted photos searched for such groups (a seeded sample beyond)

Spread = Callable[[np.ndarray, np.ndarray, int], np.ndarray]   # (seeds, labels, columns) -> mass


def look_alike_groups(space: np.ndarray, spread: Spread, labels: np.ndarray, n_categories: int,
                      n_unsorted: int, best: np.ndarray, seed: int = 0
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """space: the examples' then the unsorted photos' vectors (first len(labels) + n_unsorted rows)
    in the graph's space; spread: the graph's label spreading; best: each unsorted photo's closest
    category. Returns the groups (rows of the unsorted photos) and, per photo of a group, the share
    of its mass that came from its own group. None where scikit-learn is not installed (the
    bundle leaves it out: docs/platforms.md)."""
    try:
        from sklearn.cluster import HDBSCAN
    except ImportError:
        log.info("no new categories suggested: scikit-learn is not installed")
        return [], []

    ne, c = len(labels), n_categories
    if n_unsorted < GROUP_MIN_PHOTOS:
        return [], []
    rows = np.arange(ne + n_unsorted)
    if n_unsorted > GROUP_SEARCH_LIMIT:   # a seeded sample of the unsorted photos
        rng = np.random.default_rng(seed)
        rows = np.concatenate([np.arange(ne), ne + np.sort(rng.choice(n_unsorted, GROUP_SEARCH_LIMIT, replace=False))])
    cluster = HDBSCAN(min_cluster_size=GROUP_MIN_PHOTOS, copy=True).fit_predict(space[rows])
    candidates = []
    for k in range(cluster.max() + 1):
        members = rows[cluster == k]
        unsorted = members[members >= ne]
        if len(unsorted) >= GROUP_MIN_PHOTOS:
            candidates.append(unsorted)
    if not candidates:
        return [], []
    rng = np.random.default_rng(seed + 1)
    own = _own_shares(candidates, spread, labels, c, ne, best, rng)
    kept = [i for i, o in enumerate(own) if np.median(o) > GROUP_OWN_SHARE]
    # a cluster that also took photos of a folder's kind (dandelions with coltsfoot): its photos
    # that stand apart from the folder are tested again as a group of their own
    refined = [candidates[i][own[i] > GROUP_OWN_SHARE] for i in range(len(candidates)) if i not in kept]
    refined = [g for g in refined if len(g) >= GROUP_MIN_PHOTOS]
    if refined:
        again = _own_shares(refined, spread, labels, c, ne, best, rng)
        candidates = [candidates[i] for i in kept] + refined
        own = [own[i] for i in kept] + again
        kept = [i for i, o in enumerate(own) if np.median(o) > GROUP_OWN_SHARE]
    return [candidates[i] - ne for i in kept], [own[i] for i in kept]


def _own_shares(candidates: list[np.ndarray], spread: Spread, labels: np.ndarray, c: int, ne: int,
                best: np.ndarray, rng) -> list[np.ndarray]:
    """Per photo of each candidate group, the share of its spread mass that comes from its own
    group rather than from its closest folder: each half of every group seeds a category of its
    own, the other half is read (a photo never counts its own seed)."""
    halves = [rng.permutation(len(g)) % 2 for g in candidates]
    own = [np.zeros(len(g)) for g in candidates]
    for half in (0, 1):
        seeds = np.concatenate([np.arange(ne)] + [g[h == half] for g, h in zip(candidates, halves)])
        seed_labels = np.concatenate([labels] + [np.full((h == half).sum(), c + i)
                                                 for i, h in enumerate(halves)])
        f = spread(seeds, seed_labels, c + len(candidates))
        for i, (g, h) in enumerate(zip(candidates, halves)):
            read = g[h != half]
            folder = f[read, best[read - ne]]
            mine = f[read, c + i]
            own[i][h != half] = mine / np.maximum(mine + folder, 1e-300)
    return own
