"""Searching, duplicates, explanations, galleries and tagging at library sizes up to 1M vectors."""
from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from sba_desktop.diagnostics import rss_mb
from sba_desktop.lab.bench.common import median_time, clustered_vectors


def bench_search(sizes: list[int], dim: int, queries: int = 200) -> dict:
    from sba_desktop.library import vindex

    out = {}
    for n in sizes:
        both = clustered_vectors(n + queries, dim, seed=n)
        data, q = both[:n], both[n:]  # queries: new photos of the same scenes, not in the index
        rss0 = rss_mb()
        t = time.perf_counter()
        idx = vindex.VectorIndex(dim, capacity=n)
        for start in range(0, n, 100_000):
            ids = np.arange(start, min(n, start + 100_000))
            idx.add(ids, data[start:start + len(ids)], threads=os.cpu_count() or 2)
        build_s = time.perf_counter() - t
        loaded_mb = rss_mb() - rss0
        exact = np.argsort(-(q @ data.T), axis=1)[:, :10]
        times, hits = [], 0
        for i in range(queries):
            t = time.perf_counter()
            ids, _ = idx.search(q[i], 10)
            times.append(time.perf_counter() - t)
            hits += len(set(ids[0].tolist()) & set(exact[i].tolist()))
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            idx.save(Path(d) / "i.hnsw")
            save_s = time.perf_counter() - t
            size_mb = (Path(d) / "i.hnsw").stat().st_size / 2**20
            del idx
            t = time.perf_counter()
            idx = vindex.VectorIndex.load(Path(d) / "i.hnsw", dim)
            load_s = time.perf_counter() - t
        from sba_desktop.engine.neighbourhood import AugmentedVectors, neighbourhood_search

        # the default search re-ranks a shortlist of 200 with their own neighbourhoods: "cold" makes
        # every augmented vector anew (0.3.0), "kept" keeps them between searches (the library now)
        nb_times, cold_times = [], []
        kept = AugmentedVectors(idx)
        for i in range(min(queries, 100)):
            t = time.perf_counter()
            neighbourhood_search(q[i], idx, 20)
            cold_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            neighbourhood_search(q[i], idx, 20, kept)
            nb_times.append(time.perf_counter() - t)
        out[str(n)] = {"search_ms": round(statistics.median(times) * 1000, 3),
                       "neighbourhood_search_ms": round(statistics.median(nb_times) * 1000, 2),
                       "neighbourhood_search_cold_ms": round(statistics.median(cold_times) * 1000, 2),
                       "recall_at_10": round(hits / (10 * queries), 4), "build_s": round(build_s, 1),
                       "save_s": round(save_s, 2), "load_s": round(load_s, 2), "file_mb": round(size_mb, 1),
                       "rss_mb_loaded": round(loaded_mb, 1), "index": idx}
        del data
    return out


def bench_duplicates(n: int, dim: int = 512) -> dict:
    """`sba duplicates` on n photos of synthetic looks: clustered vectors (every photo has close
    neighbours, so every candidate is gated) and distinct smooth grey pictures (no copies: the
    crop searches and copy checks real near-copies cost are not in it; scripts/
    duplicates_benchmark.py measures those on real photos). The first look, then the next one
    (comparisons kept in the catalog)."""
    import tempfile
    import threading
    from types import SimpleNamespace

    from sba_desktop.engine.copies import box_blur

    from sba_desktop.library.catalog import Catalog
    from sba_desktop.jobs.duplicates import compare
    from sba_desktop.library.encoding import Looks
    from sba_desktop.library.vindex import VectorIndex

    rng = np.random.default_rng(11)
    vecs = clustered_vectors(n, dim, seed=11)
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalog(Path(tmp) / "dups.sqlite")
        ids = []
        with cat.transaction():
            for i in range(n):
                ids.append(cat.upsert_pending(f"/photos/{i:07d}.jpg", 1, 1, None))
        for i in range(0, n, 1000):
            pics = box_blur(box_blur(rng.standard_normal((min(1000, n - i), 48, 64)).astype(np.float32), 2), 2)
            pics = np.clip(128 + pics / pics.std() * 40, 0, 255).astype(np.uint8)
            chunk = ids[i:i + 1000]
            cat.store_results([(pid, vecs[pid - 1], 640, 480) for pid in chunk], [], "m",
                              [(pid, Looks(pic, None, None, "jpeg")) for pid, pic in zip(chunk, pics)])
        index = VectorIndex(dim, capacity=n)
        index.add(np.array(ids), vecs[np.array(ids) - 1], threads=os.cpu_count() or 1)
        lib = SimpleNamespace(model=SimpleNamespace(model_id="m"), index=index, catalog=cat, _state=threading.RLock())
        t = time.perf_counter()
        first = compare(lib)
        t_first = time.perf_counter() - t
        t = time.perf_counter()
        compare(lib)
        t_again = time.perf_counter() - t
        cat.close()
    return {"photos": n, "pairs": len(first.agreements), "first_s": round(t_first, 1), "again_s": round(t_again, 1)}


def bench_explanation(model, query_path: str, result_path: str, index, kept, repeats: int = 5) -> float:
    """Seconds (median) for what library/explain.py computes for one result in a library of
    len(index) vectors, the names check aside (once per model: bench_galleries): both photos
    encoded with their maps, `explanation_of` (split, regions, heatmaps), and the split of the
    result's default-search score (the result: the query's best match in that index)."""
    from sba_desktop.engine.neighbourhood import neighbourhood_search, split_search_score
    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.library.encoding import PhotoEncoder, Source
    from sba_desktop.jobs.explain import explanation_of, shares_of

    enc = PhotoEncoder(load_runtime(model.backbone), model.image_size, model, workers=1, keep_maps=True)

    def explanation() -> None:
        q = enc.encode_one(Source("q", query_path), with_picture=True)
        r = enc.encode_one(Source("r", result_path), with_picture=True)
        ids, _ = neighbourhood_search(q.vector, index, 1, kept)
        split = split_search_score(q.vector, int(ids[0]), index, kept)
        explanation_of(model, q, r, None, None, set(), shares_of(split, {}) if split else None)
    explanation()
    return median_time(explanation, repeats)


def bench_galleries(n: int, detectors: int = 25, repeats: int = 3) -> dict:
    """What an explanation reads from the catalog that grows with the library: the strongest
    photos of every detector (the galleries its names are checked on, once per model), from a
    synthetic catalog of n indexed photos. The rest of an explanation (two photos encoded, the
    exact split) does not depend on the library's size: scripts/pointing_benchmark.py times it."""
    import tempfile

    from sba_desktop.library.catalog import Catalog

    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        cat = Catalog(Path(tmp) / "peaks.sqlite")
        with cat.transaction():
            ids = [cat.upsert_pending(f"/photos/{i:07d}.jpg", 1, 1, None) for i in range(n)]
        vec = np.zeros(8, np.float32)
        for i in range(0, n, 5000):
            peaks = rng.random((min(5000, n - i), detectors, 3)).astype(np.float32)
            cat.store_results([(pid, vec, 640, 480, p) for pid, p in zip(ids[i:i + 5000], peaks)], [], "m")
        every = list(range(detectors))
        one_pass = median_time(lambda: cat.strongest_peaks("m", every, 8), repeats)
        one = median_time(lambda: cat.strongest_peaks("m", [0], 12), repeats)
        cat.close()
    return {"photos": n, "detectors": detectors, "all_galleries_s": round(one_pass, 2),
            "one_gallery_s": round(one, 2)}


def bench_tagging(sizes: list[int], dim: int) -> dict:
    """`sba tag` cost as in a large library: 12 categories x 10 examples, N unsorted photos and the
    BACKGROUND (3,000) other photos `sba tag` samples into its graph whatever the library's size
    (synthetic clustered vectors, the product's HNSW neighbours above 20,000). The largest size
    also runs in a worker thread, as the window runs it, while this thread asks to wake every
    10 ms like an event loop: the longest wait is how long the window could stall."""
    from sba_desktop.engine.open_set import OpenSetTagger
    from sba_desktop.jobs.tagging import BACKGROUND, hnsw_knn

    seconds: dict[str, float] = {}
    for n in sizes:
        x = clustered_vectors(n + 120 + BACKGROUND, dim, seed=7 + n)
        tagger = OpenSetTagger(knn=hnsw_knn).fit(x[:120], [f"c{i % 12}" for i in range(120)])
        t = time.perf_counter()
        tagger.propose(x[120:n + 120], x[n + 120:])
        seconds[str(n)] = round(time.perf_counter() - t, 2)
    worker = threading.Thread(target=lambda: tagger.propose(x[120:n + 120], x[n + 120:]))
    worker.start()
    longest = 0.0
    while worker.is_alive():
        t = time.perf_counter()
        time.sleep(0.01)
        longest = max(longest, time.perf_counter() - t - 0.01)
    return {"seconds": seconds, "longest_wait_ms": round(longest * 1000, 1)}
