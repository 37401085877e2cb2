"""Where the matches of a search end: the cut between "matches" and "more like it", read from the
scores the search itself returned, with no threshold fitted to one set of photos.

The scores of one search fall into two groups: the photos of the same place or object (the
neighbourhood search pulls them up together) and the rest of the library. Two readings of that:
- the split of the ranked scores into two groups with the most distinct means (Otsu's criterion,
  the largest between-group variance): right when the matches fade out gradually (landmarks, kinds);
- the largest drop between two neighbouring scores: right when a few views of one object stand
  on a cliff above everything else.
The drop wins when it is larger than half the distance between the two groups' means (the split's
midpoint: a cliff that high is the clearer boundary), else the split. Both move with each query,
library and model. A photo equal to the query (score 1, the photo itself) is a match and takes no
part in either. Measured in docs/quality.md ("Where the matches end"). Numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAME_PHOTO = 0.9999  # engine/neighbourhood.py: the query photo itself, or a byte-identical copy


@dataclass(frozen=True)
class MatchCut:
    count: int               # the first `count` results are matches
    match_level: float       # mean score of the matches (the split's upper group)
    rest_level: float        # mean score of what follows

    def strength(self, score: float) -> tuple[int, str]:
        """(bars 0-4, words) for one result's score, relative to this search's two groups."""
        if score >= SAME_PHOTO:
            return 4, "same photo"
        span = self.match_level - self.rest_level
        level = (score - self.rest_level) / span if span > 1e-9 else 0.0
        if level >= 1.0:
            return 4, "strong match"
        if level >= 0.5:
            return 3, "match"
        if level >= 0.25:
            return 2, "close"
        if level >= 0.0:
            return 1, "like it"
        return 0, "weak"

    def is_match(self, rank: int) -> bool:
        return rank < self.count


def match_cut(scores) -> MatchCut:
    """The cut of one search's scores, best first (see the module doc)."""
    s = np.asarray(scores, np.float64)
    same = int(np.sum(s >= SAME_PHOTO))
    rest = s[same:]
    n = len(rest)
    if n == 0:
        return MatchCut(same, 1.0, 0.0)
    if n < 3:  # too few to tell two groups apart: they are what the library has
        return MatchCut(same + n, float(rest.mean()), float(rest.min()))
    c = np.cumsum(rest)
    k = np.arange(1, n)
    upper = c[:-1] / k
    lower = (c[-1] - c[:-1]) / (n - k)
    split = int(np.argmax(k * (n - k) * (upper - lower) ** 2))
    drops = rest[:-1] - rest[1:]
    cliff = int(np.argmax(drops))
    at = cliff if drops[cliff] > (upper[split] - lower[split]) / 2 else split
    return MatchCut(same + at + 1, float(upper[at]), float(lower[at]))
