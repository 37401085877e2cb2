"""`sba bench`: speed and memory on this machine, medians over repeated runs.

Everything measured in one run, so ratios compare like with like. The index
part uses synthetic vectors with cluster structure (real photo vectors are far
from uniform noise, on which no ANN index does well); say so when quoting.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _status_mb(key: str) -> float:
    """A memory figure from /proc/self/status (VmRSS: now, VmHWM: peak), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _photos(n: int, tmp: Path) -> list[str]:
    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ukbench-dev" / "images"
    folder = tmp / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    if shared.is_dir():  # real photos, linked (not copied) into a folder of their own
        out = []
        for p in sorted(shared.iterdir())[:n]:
            os.symlink(p, folder / p.name)
            out.append(str(folder / p.name))
        return out
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):  # smooth synthetic photos, 640x480 JPEG
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        p = folder / f"synthetic_{i:04d}.jpg"
        Image.fromarray(small).resize((640, 480), Image.Resampling.BICUBIC).save(p, quality=90)
        out.append(str(p))
    return out


def clustered_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors shaped like PCA-reduced photo descriptors: clusters (similar photos) and a
    power-law variance spectrum over the dimensions (PCA components decay), not uniform noise."""
    rng = np.random.default_rng(seed)
    scale = (np.arange(1, dim + 1, dtype=np.float32) ** -0.5)
    centres = rng.standard_normal((5000, dim)).astype(np.float32) * scale
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        v = centres[rng.integers(0, 5000, m)] + 0.5 * rng.standard_normal((m, dim)).astype(np.float32) * scale
        out[start:start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def bench_stages(n_photos: int, repeats: int) -> dict:
    import torch

    from .engine.backbones import load_backbone
    from .engine.sba import DescriptorModel, DescriptorSpec, ReductionSpec
    from .library.catalog import Catalog
    from .library.decode import decode
    from .library.indexer import IndexJob
    from .library.library import Library, Settings
    from .library.vindex import VectorIndex

    s = Settings()
    bb = load_backbone(s.backbone)
    tmp = Path(tempfile.mkdtemp(prefix="sba-bench-"))
    paths = _photos(n_photos, tmp)
    # stage timings, per image, median over repeats of the whole set
    decoded = [decode(p, s.image_size) for p in paths]
    t_decode = _median_time(lambda: [decode(p, s.image_size) for p in paths], repeats) / len(paths)
    xs = [bb.preprocess(d.rgb, s.image_size) for d in decoded]
    t_pre = _median_time(lambda: [bb.preprocess(d.rgb, s.image_size) for d in decoded], repeats) / len(paths)
    maps = [bb.feature_map(x[None])[0] for x in xs]
    t_fwd = _median_time(lambda: [bb.feature_map(x[None]) for x in xs], repeats) / len(paths)
    # The product keeps M = 512 dims once a library has > 512 photos; for timing at that size
    # the PCA is fitted on the real maps plus jittered copies (timing only, not for quality).
    fit_maps = list(maps)
    rng = torch.Generator().manual_seed(0)
    while len(fit_maps) <= s.dims:
        m = maps[len(fit_maps) % len(maps)]
        fit_maps.append(m * (1 + 0.1 * torch.randn(m.shape, generator=rng)).clamp(min=0))
    model = DescriptorModel.fit(fit_maps, bb.name, bb.version, s.image_size, DescriptorSpec("sba", s.n_detectors),
                                ReductionSpec(s.dims))
    model.fitted_on = 10**6  # a frozen model: the pipeline below must not refit it
    # as the pipeline does it: regional vectors per photo, PCA per batch of 64
    t_agg = _median_time(lambda: model.encode_maps(maps), repeats) / len(paths)
    vecs = model.encode_maps(maps)

    cat = Catalog(tmp / "bench.sqlite")
    ids = [cat.upsert_pending(p, 1, 1, None) for p in paths]

    def write():
        for i in range(0, len(ids), 64):
            cat.store_results([(pid, v, 640, 480) for pid, v in zip(ids[i:i + 64], vecs[i:i + 64])], [], "m")
    t_cat = _median_time(write, repeats) / len(paths)

    def add():
        idx = VectorIndex(model.dims)
        idx.add(np.array(ids), vecs)
    t_add = _median_time(add, repeats) / len(paths)
    cat.close()

    # the whole pipeline: a real library with this model, indexing the same photos
    pipeline = []
    for r in range(repeats):
        lib = Library.open(tmp / f"lib{r}")
        lib.set_model(model)
        t = time.perf_counter()
        rep = IndexJob(lib, [str(Path(paths[0]).parent)]).run()
        el = time.perf_counter() - t
        # only the photos we encoded count (the folder may hold more)
        pipeline.append(rep.encoded / el)
        lib.close()
    forward_rate = 1.0 / t_fwd
    stages = {"decode": t_decode, "preprocess": t_pre, "forward": t_fwd, "sba_aggregation": t_agg,
              "catalog_write": t_cat, "index_add": t_add}
    total = sum(stages.values())
    return {"photos": len(paths), "image_size": s.image_size, "backbone": bb.name, "dims": model.dims,
            "stages": {k: {"ms": round(v * 1000, 3), "images_per_s": round(1 / v, 1), "share": round(v / total, 3)}
                       for k, v in stages.items()},
            "forward_images_per_s": round(forward_rate, 2),
            "pipeline_images_per_s": round(statistics.median(pipeline), 2),
            "pipeline_vs_forward": round(statistics.median(pipeline) / forward_rate, 3),
            "rss_index_mb": round(_peak_rss_mb(), 1),
            "_model": model, "_query_path": paths[0], "_torch_threads": torch.get_num_threads()}


def bench_vit(repeats: int) -> float:
    """A CLIP ViT-B/32-sized image encoder (timm, random weights: timing only)."""
    import timm
    import torch

    vit = timm.create_model("vit_base_patch32_224", pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        vit(x)
        t = _median_time(lambda: vit(x), max(5, repeats * 3))
    return 1.0 / t


def bench_search(sizes: list[int], dim: int, queries: int = 200) -> dict:
    from .library import vindex

    out = {}
    for n in sizes:
        both = clustered_vectors(n + queries, dim, seed=n)
        data, q = both[:n], both[n:]  # queries: new photos of the same scenes, not in the index
        rss0 = _rss_mb()
        t = time.perf_counter()
        idx = vindex.VectorIndex(dim, capacity=n)
        idx._index.set_num_threads(os.cpu_count() or 2)
        for start in range(0, n, 100_000):
            ids = np.arange(start, min(n, start + 100_000))
            idx._index.add_items(data[start:start + len(ids)], ids)
        idx._live.update(range(n))
        build_s = time.perf_counter() - t
        loaded_mb = _rss_mb() - rss0
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
        out[str(n)] = {"search_ms": round(statistics.median(times) * 1000, 3),
                       "recall_at_10": round(hits / (10 * queries), 4), "build_s": round(build_s, 1),
                       "save_s": round(save_s, 2), "load_s": round(load_s, 2), "file_mb": round(size_mb, 1),
                       "rss_mb_loaded": round(loaded_mb, 1), "index": idx}
        del data
    return out


def bench_first_window(repeats: int) -> float:
    env = {**os.environ, "SBA_DESKTOP_REPORT_STARTUP": "quit"}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["SBA_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="sba-bench-home-")
    times = []
    for _ in range(repeats):
        t = time.time()  # process launch -> the window is shown (the app prints the moment)
        p = subprocess.run([sys.executable, "-m", "sba_desktop"], env=env, capture_output=True, text=True,
                           timeout=120)
        shown = [w for w in p.stdout.split() if w.startswith("first_window_epoch=")]
        if not shown:
            return float("nan")
        times.append(float(shown[0].split("=")[1]) - t)
    return statistics.median(times)


def run_bench(quick: bool = False) -> dict:
    from .library.decode import decode
    from .library.vindex import EF_CONSTRUCTION, EF_SEARCH, HNSW_M

    repeats = 3 if quick else 5
    st = bench_stages(40 if quick else 150, repeats)
    model = st.pop("_model")
    qpath = st.pop("_query_path")
    threads = st.pop("_torch_threads")
    vit = bench_vit(repeats)
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    from .library.library import Settings

    search = bench_search(sizes, Settings().dims, 100 if quick else 200)

    # end-to-end query at 100k: decode + encode + search + QE (10 neighbours, second search)
    from .engine.backbones import load_backbone
    from .engine.encoder import Encoder
    from .engine.sba import average_query_expansion

    enc = Encoder(load_backbone(model.backbone), model.image_size)
    idx = search["100000"]["index"]

    def query():
        photo = decode(qpath, model.image_size)
        q = model.encode_map(enc.feature_map(photo.rgb, rgb_ready=True))
        ids, _ = idx.search(q, 10)
        q2 = average_query_expansion(q, np.stack([idx.vector(int(i)) for i in ids[0]]))
        idx.search(q2, 20)
    query()
    q_ms = _median_time(query, 9) * 1000
    for v in search.values():
        v.pop("index", None)
    first_window = bench_first_window(3)
    return {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "torch_threads": threads},
        **st,
        "vit_b32_images_per_s": round(vit, 2),
        "vs_vit_b32": round(st["pipeline_images_per_s"] / vit, 2),
        "hnsw": {"M": HNSW_M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF_SEARCH, "space": "ip"},
        "search_ms": {k: v["search_ms"] for k, v in search.items()},
        "recall_at_10": {k: v["recall_at_10"] for k, v in search.items()},
        "index_sizes": search,
        "query_ms_end_to_end": round(q_ms, 1),
        "rss_mb": {"indexing_peak": st.pop("rss_index_mb"),
                   **{f"library_{k}_vectors": v["rss_mb_loaded"] for k, v in search.items()}},
        "first_window_s": round(first_window, 3),
    }


def format_bench(r: dict) -> str:
    lines = [f"machine: {r['machine']['cpu_count']} cores, {r['machine']['platform']}, "
             f"python {r['machine']['python']}, torch threads {r['machine']['torch_threads']}",
             f"{r['backbone']} at {r['image_size']} px, {r['dims']} dims, {r['photos']} photos",
             f"{'stage':<16} {'ms/img':>8} {'img/s':>8} {'share':>6}"]
    for k, v in r["stages"].items():
        lines.append(f"{k:<16} {v['ms']:>8.2f} {v['images_per_s']:>8.1f} {v['share']:>6.1%}")
    lines += [f"bare forward      {r['forward_images_per_s']:.1f} img/s",
              f"indexing pipeline {r['pipeline_images_per_s']:.1f} img/s = {r['pipeline_vs_forward']:.2f} x forward",
              f"ViT-B/32 encoder  {r['vit_b32_images_per_s']:.1f} img/s -> we index {r['vs_vit_b32']:.2f} x faster",
              f"HNSW {r['hnsw']}"]
    for k, v in r["index_sizes"].items():
        lines.append(f"  {int(k):>9,} vectors: search {v['search_ms']:.2f} ms, recall@10 {v['recall_at_10']:.3f}, "
                     f"build {v['build_s']} s, save {v['save_s']} s, load {v['load_s']} s, "
                     f"file {v['file_mb']} MB, RSS +{v['rss_mb_loaded']} MB")
    lines += [f"query end to end (decode+encode+search+QE) at 100k: {r['query_ms_end_to_end']} ms",
              f"peak RSS while indexing: {r['rss_mb']['indexing_peak']} MB",
              f"first window: {r['first_window_s']} s"]
    return "\n".join(lines)
