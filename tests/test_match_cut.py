"""engine/match_cut.py: where the matches of a search end, on real search scores and on their shapes."""
from __future__ import annotations

import numpy as np
import pytest

from sba_desktop.engine.match_cut import match_cut


def test_a_cliff_after_a_few_views_of_one_object_is_the_cut():
    # the shape of a UKBench search: the photo itself, three views, then the library
    rest = np.linspace(0.5, 0.05, 196)
    cut = match_cut([1.0, 0.983, 0.976, 0.963, *rest])
    assert cut.count == 4
    assert cut.strength(0.97)[1] in ("strong match", "match") and cut.strength(0.2)[0] <= 1


def test_matches_that_fade_out_are_split_where_the_two_groups_differ_most():
    # a landmark: twenty views fading from 0.95 to 0.45, the library near 0.05, no single cliff
    rng = np.random.default_rng(0)
    views = np.linspace(0.95, 0.45, 20)
    library = np.sort(rng.normal(0.05, 0.03, 180))[::-1]
    scores = np.concatenate([views, library])
    cut = match_cut(scores)
    assert 17 <= cut.count <= 21
    assert cut.match_level > cut.rest_level


def test_the_cut_moves_with_the_scores_not_with_a_constant():
    base = np.concatenate([[0.9, 0.88, 0.87], np.linspace(0.4, 0.1, 100)])
    assert match_cut(base).count == 3
    assert match_cut(base - 0.3).count == 3  # the same search in another library's scale
    assert match_cut(base * 0.5).count == 3


@pytest.mark.parametrize("scores,count", [([], 0), ([1.0], 1), ([0.8, 0.3], 2), ([1.0, 1.0, 0.4], 3)])
def test_tiny_libraries(scores, count):
    assert match_cut(scores).count == count


def test_strength_words_never_call_the_library_a_strong_match():
    cut = match_cut([0.95, 0.94, 0.92, *np.linspace(0.3, 0.0, 50)])
    words = [cut.strength(s)[1] for s in (1.0, 0.95, 0.6, 0.3, 0.0, -0.2)]
    assert words[0] == "same photo" and words[1] == "strong match" and words[-1] == "weak"
    bars = [cut.strength(s)[0] for s in (0.95, 0.6, 0.3, -0.2)]
    assert bars == sorted(bars, reverse=True)
