"""Is this the same photo? A small grey picture of every photo, and a test that finds one in another.

The SBA vectors say two photos show the same thing; they cannot say two files hold the same
*picture* (another shot of the same object is as close as a re-saved copy). A copy keeps the
pixels: re-encoded, resized, rotated, re-toned or cropped, its grey picture lies inside the
other's up to a scale, a place, a quarter turn and a linear change of brightness. So a pair is
verified by normalised cross-correlation of the two signatures over those transformations, after a
high-pass (edges carry the identity of a picture; smooth shading is shared by many shots).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

SIGNATURE_SIDE = 64      # long side of the stored grey picture (aspect kept): <= 4 KB per photo
MIN_KEPT_AREA = 0.55     # a crop keeps at least this much of the photo (issue 20: "up to ~20 %")
FINE, BROAD = 1, 4      # radii of the band-pass boxes
FLAT = 1.5              # a tile whose band varies less than this (grey levels) is flat
TILES = 4               # the aligned pictures are compared in TILES x TILES tiles
UPSCALE = 1.15          # a copy's part may be enlarged this much at most: in the coarse search,
UPSCALE_PLACED = 1.04   # and once placed finely (resampling slack)
THUMB = 16              # side of the vectors that find copies turned in their pixels
REFINE_FROM = 0.6       # coarse correlation below this: not a copy, no fine placement
SCALE_STEP = 0.97        # scales tried between "the whole photo" and the smallest crop


def signature(rgb: Image.Image, side: int = SIGNATURE_SIDE) -> np.ndarray:
    """The photo's grey picture, long side `side`, aspect kept (uint8 h x w)."""
    w, h = rgb.size
    s = side / max(w, h)
    size = (max(8, round(w * s)), max(8, round(h * s)))
    return np.asarray(rgb.convert("L").resize(size, Image.Resampling.BOX if s < 1 else Image.Resampling.BILINEAR),
                      np.uint8)


@lru_cache(maxsize=256)
def _blur_matrix(size: int, r: int) -> np.ndarray:
    """(size, size): row i averages the 2r+1 pixels around i, edges repeated."""
    m = np.zeros((size, size), np.float32)
    for i in range(size):
        for k in range(i - r, i + r + 1):
            m[i, min(max(k, 0), size - 1)] += 1.0 / (2 * r + 1)
    return m


def box_blur(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) square around every pixel of the last two axes, edges
    repeated: two small matrix products (numpy only: the run-time has no scipy)."""
    if r <= 0:
        return a
    return _blur_matrix(a.shape[-2], r) @ a @ _blur_matrix(a.shape[-1], r).T


def _highpass(a: np.ndarray, fine: int = FINE, broad: int = BROAD) -> np.ndarray:
    """A band of the grey picture: lightly smoothed (a pixel's misplacement does not matter)
    minus its broad blur (shading does not either)."""
    a = a.astype(np.float32)
    return box_blur(a, fine) - box_blur(a, broad)


def _half(a: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((max(4, a.shape[1] // 2), max(4, a.shape[0] // 2)),
                                                Image.Resampling.BOX), np.uint8)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 1e-9 else 0.0


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR), np.float32)


def _best_place(big: np.ndarray, template: np.ndarray) -> tuple[float, int, int]:
    """(highest normalised cross-correlation, y, x) of `template` over every place inside `big`."""
    th, tw = template.shape
    t = template - template.mean()
    tn = np.sqrt((t * t).sum())
    if tn < 1e-6:
        return 0.0, 0, 0
    win = sliding_window_view(big, (th, tw))                  # (py, px, th, tw), no copy
    num = np.einsum("ijkl,kl->ij", win, t, optimize=True)     # sum of window * centred template
    s1 = win.sum(axis=(2, 3))
    s2 = np.einsum("ijkl,ijkl->ij", win, win, optimize=True)
    var = np.maximum(s2 - s1 * s1 / (th * tw), 1e-6)
    ncc = num / (np.sqrt(var) * tn)
    y, x = np.unravel_index(int(ncc.argmax()), ncc.shape)
    return float(ncc[y, x]), int(y), int(x)


def _tiles_agree(a: np.ndarray, b: np.ndarray, n: int = TILES) -> float:
    """Correlation of two aligned pictures tile by tile, n x n tiles: the third lowest (a
    watermark or a blown highlight may spoil two tiles of a copy; another shot of the same
    thing differs wherever something moved). Tiles flat in both (sky, a wall: only compression
    noise is left in the band) say nothing either way and are left out."""
    h, w = (a.shape[0] // n) * n, (a.shape[1] // n) * n
    ta = a[:h, :w].reshape(n, h // n, n, w // n).transpose(0, 2, 1, 3).reshape(n * n, -1)
    tb = b[:h, :w].reshape(n, h // n, n, w // n).transpose(0, 2, 1, 3).reshape(n * n, -1)
    ta = ta - ta.mean(axis=1, keepdims=True)
    tb = tb - tb.mean(axis=1, keepdims=True)
    ea, eb = (ta * ta).sum(axis=1), (tb * tb).sum(axis=1)
    textured = np.maximum(ea, eb) >= FLAT * FLAT * ta.shape[1]
    if textured.sum() < 4:
        return -1.0
    scores = np.sort((ta * tb).sum(axis=1)[textured] / np.maximum(np.sqrt(ea * eb)[textured], 1e-9))
    return float(scores[2])


def _cut(big: np.ndarray, box: tuple[float, float, float, float], w: int, h: int) -> np.ndarray:
    """The part of `big` inside box (x0, y0, x1, y1, fractional pixels), resampled to w x h."""
    im = Image.fromarray(big.astype(np.float32), mode="F")
    return np.asarray(im.transform((w, h), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR), np.float32)


def _refine(big: np.ndarray, small_hp: np.ndarray, box: list[float], step: float) -> tuple[float, list[float]]:
    """Move and scale the box by fractions of a pixel while the correlation grows (the coarse
    search places it within `step` pixels and a scale step)."""
    h, w = small_hp.shape

    def score(b):
        return _corr(_highpass(_cut(big, tuple(b), w, h)), small_hp)

    best = score(box)
    while step >= 0.25:
        improved = True
        while improved:
            improved = False
            cx, cy, bw = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0]
            bh = box[3] - box[1]
            for dx, dy, ds in ((step, 0, 0), (-step, 0, 0), (0, step, 0), (0, -step, 0),
                               (0, 0, step), (0, 0, -step)):
                f = 1 + ds / max(bw, bh)
                nb = [cx + dx - bw * f / 2, cy + dy - bh * f / 2, cx + dx + bw * f / 2, cy + dy + bh * f / 2]
                s = score(nb)
                if s > best + 1e-4:
                    best, box, improved = s, nb, True
                    break
        step /= 2
    return best, box


def _inside(big: np.ndarray, small: np.ndarray, detail: float, scales: list[float] | None = None
            ) -> tuple[float, float]:
    """(correlation, agreement by tiles) of `small`'s picture placed where it fits best inside
    `big`'s, at any scale from "fills it" down to MIN_KEPT_AREA of it (a crop of `big`, or `big`
    itself re-saved). `detail`: the small photo's full width over the big one's; a crop cannot
    hold more pixels of a scene than its original did, so a part of `big` smaller than that is
    a closer shot of it (a zoom), not a copy. Searched at half resolution, then placed finely;
    `scales` (fractions of "fills it") limits the search to those."""
    big2, small2 = _half(big), _half(small)
    big_hp = _highpass(big2, 0, BROAD // 2)
    bh, bw = big2.shape
    sh, sw = small2.shape
    fill = min(bw / sw, bh / sh)            # the scale at which small fills big as far as it can
    tries = iter(scales) if scales is not None else None
    t = fill if tries is None else next(tries) * fill
    best = (-1.0, [0.0, 0.0, 0.0, 0.0])
    while True:
        w, h = max(4, round(sw * t)), max(4, round(sh * t))
        if w * h < MIN_KEPT_AREA * bw * bh or w < 6 or h < 6 or (w < 0.98 * bw and detail > UPSCALE * w / bw):
            break
        score, y, x = _best_place(big_hp, _highpass(_resize(small2, w, h), 0, BROAD // 2))
        if score > best[0]:
            best = (score, [float(x), float(y), float(x + w), float(y + h)])
        if score > 0.97:  # in place already (a re-saved copy): smaller scales cannot do better
            break
        if tries is None:
            t *= SCALE_STEP
        else:
            nxt = next(tries, None)
            if nxt is None:
                break
            t = nxt * fill
    if best[0] < REFINE_FROM:  # nowhere near: not worth placing it finer
        return best[0], -1.0
    fx, fy = big.shape[1] / bw, big.shape[0] / bh
    box = [best[1][0] * fx, best[1][1] * fy, best[1][2] * fx, best[1][3] * fy]
    small_hp = _highpass(small.astype(np.float32))
    score, box = _refine(big.astype(np.float32), small_hp, box, 1.0)
    part = (box[2] - box[0]) / big.shape[1]
    if part < 0.99 and detail > UPSCALE_PLACED * part:  # placed finely, a closer shot shows
        return score, -1.0
    return score, _tiles_agree(_highpass(_cut(big, tuple(box), small.shape[1], small.shape[0])), small_hp)


def thumbs(sigs: list[np.ndarray], side: int = THUMB) -> np.ndarray:
    """(n, side, side) the grey pictures squeezed square (area resampling, one matrix product per
    picture shape). A quarter turn of a photo is the same turn of this: see unit()."""
    out = np.empty((len(sigs), side, side), np.float32)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, sg in enumerate(sigs):
        by_shape.setdefault(sg.shape, []).append(i)
    whole = np.zeros(1), np.ones(1)
    for (h, w), idx in by_shape.items():
        ry, rx = _area_weights(h, *whole, side)[0], _area_weights(w, *whole, side)[0]
        out[idx] = ry @ np.stack([sigs[i] for i in idx]).astype(np.float32) @ rx.T
    return out


def unit(squeezed: np.ndarray, turn: int = 0) -> np.ndarray:
    """Squeezed pictures (n, s, s), turned `turn` quarter turns, as unit vectors (n, s*s):
    close for copies whatever their size or format (and for copies turned in their pixels,
    once turned back)."""
    out = np.rot90(squeezed, turn, axes=(1, 2)).reshape(len(squeezed), -1)
    out = out - out.mean(axis=1, keepdims=True)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


# Where a crop of a photo may lie in it, as fractions (x0, y0, x1, y1): the whole photo, and
# crops keeping 95 % to 80 % of each side at 3 x 3 places. A copy that is a crop of another
# photo matches one of that photo's boxes closely enough to be worth a search.
BOXES = np.array([(0.0, 0.0, 1.0, 1.0)] + [
    (fx * (1 - k), fy * (1 - k), fx * (1 - k) + k, fy * (1 - k) + k)
    for k in (0.95, 0.9, 0.85, 0.8) for fx in np.linspace(0, 1, 3) for fy in np.linspace(0, 1, 3)], np.float64)
_area_cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _area_weights(n_in: int, lo: np.ndarray, hi: np.ndarray, n_out: int = THUMB) -> np.ndarray:
    """(K, n_out, n_in) weights averaging the input pixels under each output pixel of K spans
    [lo, hi] (fractions of the input): area resampling, as a matrix."""
    edges = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, n_out + 1)[None, :]  # K, n_out+1
    a, b = edges[:, :-1, None] * n_in, edges[:, 1:, None] * n_in                     # K, n_out, 1
    px = np.arange(n_in)[None, None, :]
    w = np.clip(np.minimum(b, px + 1) - np.maximum(a, px), 0, None)
    return (w / np.maximum(w.sum(-1, keepdims=True), 1e-9)).astype(np.float32)


def box_thumbs(sig: np.ndarray, whole_only: bool = False) -> np.ndarray:
    """(len(BOXES), THUMB*THUMB) unit vectors of the band-passed grey picture of each box of
    BOXES squeezed square: the first is the whole photo (the only one with `whole_only`)."""
    h, w = sig.shape
    k = 1 if whole_only else len(BOXES)
    if (h, w, k) not in _area_cache:
        _area_cache[(h, w, k)] = (_area_weights(h, BOXES[:k, 1], BOXES[:k, 3]),
                                  _area_weights(w, BOXES[:k, 0], BOXES[:k, 2]))
    ry, rx = _area_cache[(h, w, k)]
    t = ry @ sig.astype(np.float32) @ rx.transpose(0, 2, 1)              # K, THUMB, THUMB
    t = t - box_blur(t, 2)
    t = t.reshape(k, -1)
    t -= t.mean(axis=1, keepdims=True)
    return t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-6)


def match_in_box(big: np.ndarray, small: np.ndarray, box: np.ndarray, detail: float, turn: int = 0) -> float:
    """Agreement by tiles of `small` (turned `turn` quarters) searched inside `big` at scales
    near box (x0, y0, x1, y1, fractions of big: one of BOXES, which it was found close to).
    `detail`: the small photo's full width (as turned) over the big one's (see _inside)."""
    small = np.ascontiguousarray(np.rot90(small, turn))
    fit = min(big.shape[1] / small.shape[1], big.shape[0] / small.shape[0])  # small filling big
    scale = min(fit, (box[2] - box[0]) * big.shape[1] / small.shape[1],
                (box[3] - box[1]) * big.shape[0] / small.shape[0]) / fit  # ... and filling the box
    return _inside(big, small, detail, [min(1.0, scale * f) for f in (1.05, 1.0, 0.95)])[1]


def same_frame(a: np.ndarray, b: np.ndarray, turn: int = 0) -> float:
    """Agreement by tiles of b (turned) laid over all of a: a copy that was not cropped."""
    r = np.rot90(b, turn)
    a_hp = _highpass(a)
    return _tiles_agree(a_hp, _highpass(_resize(np.ascontiguousarray(r), a.shape[1], a.shape[0])))


def match(a: np.ndarray, b: np.ndarray, width_a: int, width_b: int, turns=(0,)) -> tuple[float, float]:
    """How surely b holds the same picture as a: (correlation, agreement by tiles), each in
    [-1, 1] and ~1 for a copy, at the best of the given quarter turns of b, scale and place,
    either way round (a crop of either). width_a, width_b: the photos' full widths."""
    best = (-1.0, -1.0)
    for k in turns:
        r = np.ascontiguousarray(np.rot90(b, k))
        wb = width_b if k % 2 == 0 else round(width_b * b.shape[0] / b.shape[1])
        best = max(best, _inside(a, r, wb / width_a), _inside(r, a, width_a / wb))
        if best[0] > 0.95:  # a clear copy: no need to try the other turns
            break
    return best
