"""Why two photos match, exactly: the plain similarity split over places in the two photos.

With each photo's soft-region weights fixed (they are computed from the photo alone), SBA pooling
is linear in the feature map: a photo's raw descriptor is s * sum_x Phi(x), Phi(x) the
concatenation over regions n of w_n(x) f(:, x), s the inverse of its L2 norm. The reduction is
affine, P (a - mu), and the score the cosine of the two reduced vectors u and v:

    score = u . v / (|u| |v|),  u = s_q sum_x P Phi_q(x) - P mu

So each query place x carries Q(x) = s_q P Phi_q(x) . v / (|u| |v|), and
sum_x Q(x) + c_q = score with c_q = -P mu . v / (|u| |v|), the centring term (the same on the
result's side); each (query place, result place) pair carries
T(x, y) = s_q s_r P Phi_q(x) . P Phi_r(y) / (|u| |v|), which sums to the score with one more
centring term. Places are cells of the feature map (32 x 32 input pixels each).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sba_desktop.engine import pooling
from sba_desktop.engine.sba import DescriptorModel


@dataclass
class MatchDecomposition:
    score: float                   # plain cosine similarity of the two final vectors
    query_cells: np.ndarray        # (hq, wq): each query place's part of the score
    result_cells: np.ndarray       # (hr, wr)
    query_centring: float          # query_cells.sum() + query_centring == score
    result_centring: float
    pairs: np.ndarray              # (hq*wq, hr*wr): each pair of places' part of the score
    pairs_centring: float          # pairs.sum() + pairs_centring == score
    per_region: np.ndarray         # (R,): each detector's part (then the whole photo's); + query_centring == score


def _basis(model: DescriptorModel) -> np.ndarray | None:
    """P, the linear part of the reduction (dims x D); None when there is none (identity)."""
    if model.components is not None:
        return model.components if model.scales is None else model.components / model.scales[:, None]
    if model.projection_seed is not None:
        return model.projection().T
    return None


def _reduced_columns(model: DescriptorModel, basis: np.ndarray | None, fmap: np.ndarray
                     ) -> tuple[np.ndarray, float, np.ndarray]:
    """(G, s, psi) of one map: G[:, x] = P Phi(x) (dims x places), s its raw descriptor's inverse
    norm, psi its regions' pooled vectors (R x C)."""
    f = np.asarray(fmap, np.float32)
    c, h, w = f.shape
    weights = pooling.region_weight_matrix(f, model.detectors, model.spec.beta, model.spec.global_weight)
    x = f.reshape(c, h * w)
    psi = weights @ x.T
    s = 1.0 / max(float(np.linalg.norm(psi)), 1e-12)  # |concat_n psi_n| is psi's Frobenius norm
    phi = (weights[:, None, :] * x[None, :, :]).reshape(len(weights) * c, h * w)  # Phi(x) as columns
    return (phi if basis is None else basis @ phi), s, psi


def decompose(model: DescriptorModel, query_map: np.ndarray, result_map: np.ndarray) -> MatchDecomposition:
    """The plain similarity of two photos (their C x H x W maps) split over places and pairs."""
    if model.spec.method != "sba" or model.spec.region_pool != "sum":
        raise ValueError("the exact decomposition exists for SBA with sum pooling")
    basis = _basis(model)
    gq, sq, psi_q = _reduced_columns(model, basis, query_map)
    gr, sr, _ = _reduced_columns(model, basis, result_map)
    pmu = basis @ model.mean if model.components is not None else np.zeros(len(gq), np.float32)
    u = sq * gq.sum(axis=1) - pmu
    v = sr * gr.sum(axis=1) - pmu
    norm = max(float(np.linalg.norm(u) * np.linalg.norm(v)), 1e-12)
    score = float(u @ v) / norm
    q_cells = (sq * (gq.T @ v) / norm).reshape(query_map.shape[1:])
    r_cells = (sr * (gr.T @ u) / norm).reshape(result_map.shape[1:])
    pairs = (sq * sr) * (gq.T @ gr) / norm
    # the query side split by region instead of by place: detector n's part, then the whole photo's
    toward_v = (v if basis is None else v @ basis).reshape(psi_q.shape)
    per_region = sq * (toward_v * psi_q).sum(axis=1) / norm
    return MatchDecomposition(score, q_cells.astype(np.float32), r_cells.astype(np.float32),
                              float(-(pmu @ v)) / norm, float(-(pmu @ u)) / norm, pairs.astype(np.float32),
                              float(-(pmu @ v + pmu @ u + pmu @ pmu)) / norm, per_region.astype(np.float32))


@dataclass
class Region:
    cells: list[int]                         # flat indices of the map cells it covers
    box: tuple[float, float, float, float]   # x0, y0, x1, y1 in the photo's own pixels
    share: float                             # its part of the score / the score
    point: tuple[float, float]               # where its strongest window's match is centred, photo pixels


WINDOW = 3  # cells a side of the window a place's strength is summed over


def window_sums(cells: np.ndarray, size: int = WINDOW) -> np.ndarray:
    """Each cell's part of the score summed over the size x size cells around it (zero beyond the
    map): the match as places of a few cells, not single cells (they point at the pasted object
    far more often: scripts/pointing_benchmark.py, figures in docs/quality.md)."""
    r = size // 2
    pad = np.pad(cells, r)
    h, w = cells.shape
    return sum(pad[i:i + h, j:j + w] for i in range(size) for j in range(size))


def regions(cells: np.ndarray, score: float, photo_box: tuple[float, float, float, float],
            level: float = 0.4, top: int = 5) -> list[Region]:
    """The places that carry the match, strongest first: groups of touching cells (4-neighbours)
    whose 3 x 3 window carries at least `level` x the strongest window's part, as boxes in the
    photo's pixels; ranked by their strongest window, each with the exact share of its own cells.

    photo_box: where the picture the network saw is in the photo's own pixels (the whole photo,
    or a query region). The cells tile that picture evenly, as the heatmaps are drawn (a 224 x 168
    input has 7 x 6 cells of 32 x 28 px; placing them every 32 px instead pointed worse: 0.84 vs
    0.90 on the pointing benchmark)."""
    h, w = cells.shape
    strength = window_sums(cells)
    strongest = float(strength.max(initial=0.0))
    if strongest <= 0:
        return []
    keep = strength >= level * strongest
    label = -np.ones((h, w), np.int64)
    found: list[list[int]] = []
    for start in zip(*np.nonzero(keep)):
        if label[start] >= 0:
            continue
        label[start] = len(found)
        stack, members = [start], []
        while stack:
            y, x = stack.pop()
            members.append(int(y * w + x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and keep[ny, nx] and label[ny, nx] < 0:
                    label[ny, nx] = len(found)
                    stack.append((ny, nx))
        found.append(members)
    x0, y0, x1, y1 = photo_box
    cw, ch = (x1 - x0) / w, (y1 - y0) / h   # one cell in the photo's pixels
    out = []
    for members in found:
        ys, xs = np.divmod(np.asarray(members), w)
        box = (x0 + xs.min() * cw, y0 + ys.min() * ch, x0 + (xs.max() + 1) * cw, y0 + (ys.max() + 1) * ch)
        share = float(cells.reshape(-1)[members].sum()) / score if score else 0.0
        # the strongest window (among equal ones, the one on the strongest cell), and where in it
        # the match is: its positive cells' centre, weighted by their parts (the pointing benchmark:
        # 0.5-2 points more often inside the object than the window's middle cell)
        peak = members[int(np.lexsort((cells.reshape(-1)[members], strength.reshape(-1)[members]))[-1])]
        py, px = divmod(peak, w)
        r = WINDOW // 2
        win = cells[max(0, py - r):py + r + 1, max(0, px - r):px + r + 1]
        weight = np.maximum(win, 0)
        if weight.sum() > 0:
            wy, wx = np.mgrid[max(0, py - r):max(0, py - r) + win.shape[0], max(0, px - r):max(0, px - r) + win.shape[1]]
            py, px = float((wy * weight).sum() / weight.sum()), float((wx * weight).sum() / weight.sum())
        point = (x0 + (px + 0.5) * cw, y0 + (py + 0.5) * ch)
        out.append((float(strength.reshape(-1)[peak]), Region(members, tuple(round(float(v), 1) for v in box), share,
                                                              tuple(round(float(v), 1) for v in point))))
    return [r for _, r in sorted(out, key=lambda t: -t[0])][:top]


def region_pairs(pairs: np.ndarray, score: float, query: list[Region], result: list[Region],
                 top: int = 5) -> list[tuple[int, int, float]]:
    """(query region, result region, share of the score) for the strongest links, strongest first:
    this part of the query matches that part of the result."""
    links = []
    for i, a in enumerate(query):
        for j, b in enumerate(result):
            s = float(pairs[np.ix_(a.cells, b.cells)].sum()) / score if score else 0.0
            if s > 0:
                links.append((i, j, s))
    return sorted(links, key=lambda t: -t[2])[:top]
