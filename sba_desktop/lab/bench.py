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
import threading
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


def _shared_images(name: str) -> list[Path]:
    d = Path(__file__).resolve().parents[2] / "shared" / "datasets" / name / "images"
    return sorted(d.iterdir()) if d.is_dir() else []


def _camera_photos(n: int, tmp: Path, kind: str = "jpeg") -> list[str]:
    """n camera-sized files (camera_files.py) made from shared photos: decode cost follows pixels.
    kind: jpeg (12 MP, quality 92), heic (with the 320 px thumbnail an iPhone stores),
    heic-no-thumbnail, dng (Bayer mosaic with a 1024 px preview, Adobe DNG Converter's default
    "medium" preview), dng-no-preview. HEIC and DNG are slow to write: 8 distinct photos, the rest
    copies (decoding does not care)."""
    import shutil

    from PIL import Image

    from sba_desktop.lab import camera_files as cf

    folder = tmp / f"camera-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    src = _shared_images("paris-dev") or _shared_images("ukbench-dev")
    distinct = n if kind == "jpeg" else min(n, 8)
    suffix = {"jpeg": ".jpg", "heic": ".heic", "heic-no-thumbnail": ".heic"}.get(kind, ".dng")
    out = []
    for i in range(n):
        p = folder / f"camera_{i:03d}{suffix}"
        if i >= distinct:
            shutil.copyfile(out[i % distinct], p)
        else:
            with Image.open(src[i % len(src)]) as im:
                big = cf.upscaled(im)
            if kind == "jpeg":
                cf.camera_jpeg(big, p)
            elif kind.startswith("heic"):
                cf.heic(big, p, thumbnail=None if kind == "heic-no-thumbnail" else cf.IPHONE_THUMBNAIL)
            else:
                cf.dng(big, p, preview=None if kind == "dng-no-preview" else 1024)
        out.append(str(p))
    return out


def bench_camera_formats(tmp: Path, model_file: Path, net, image_size: int, forward_rate: float,
                         n: int, repeats: int) -> dict:
    """Indexing rates of phone and camera files (`sba index` in a child, frozen model), and the
    12-MP JPEG pipeline against its own overlap limit. A kind whose files cannot be made here
    (no heif-enc for thumbnails, no pidng for DNG) is reported as such."""
    cores = os.cpu_count() or 2
    out: dict = {}
    for kind in ("jpeg", "heic", "heic-no-thumbnail", "dng", "dng-no-preview"):
        try:
            files = _camera_photos(n, tmp, kind)
        except (RuntimeError, ImportError) as exc:
            out[kind] = {"skipped": str(exc)}
            continue
        runs = [_index_in_child(Path(files[0]).parent, tmp / f"lib-{kind}-{r}", model_file)
                for r in range(repeats)]
        out[kind] = {"pipeline_images_per_s": round(statistics.median(r["rate"] for r in runs), 2),
                     "decode_images_per_s": round(_decode_rate(files, image_size, net, cores, False, repeats), 2),
                     "skipped_files": max(r["skipped"] for r in runs)}
    jpeg = out["jpeg"]
    limit = 1.0 / (1.0 / forward_rate + 1.0 / jpeg["decode_images_per_s"])
    rates = {k: v.get("pipeline_images_per_s") for k, v in out.items()}
    return {"formats": out,
            "camera_overlap_limit_images_per_s": round(limit, 2),
            "camera_pipeline_vs_limit": round(jpeg["pipeline_images_per_s"] / limit, 3),
            "heic_pipeline_images_per_s": rates["heic"],
            "heic_no_thumbnail_pipeline_images_per_s": rates["heic-no-thumbnail"],
            "heic_thumbnail_vs_full_decode": round(rates["heic"] / rates["heic-no-thumbnail"], 1)
            if rates["heic"] and rates["heic-no-thumbnail"] else None,
            "raw_pipeline_images_per_s": rates["dng"],
            "raw_no_preview_pipeline_images_per_s": rates["dng-no-preview"],
            "raw_vs_camera_jpeg": round(rates["dng"] / rates["jpeg"], 3) if rates["dng"] else None}


def _rate_by_batch(forward, xs: list[np.ndarray], batches: tuple[int, ...], repeats: int) -> dict[int, float]:
    """Images per second of `forward` over the same inputs, at each batch size (median of repeats)."""
    out = {}
    for b in batches:
        groups = [np.stack(xs[i:i + b]) for i in range(0, len(xs) - b + 1, b)]
        forward(groups[0])
        out[b] = sum(len(g) for g in groups) / _median_time(lambda: [forward(g) for g in groups], repeats)
    return out


def _decode_rate(paths: list[str], image_size: int, net, workers: int, processes: bool, repeats: int) -> float:
    """Decode + preprocess alone on all cores (threads or processes), images per second."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    pool_cls = ProcessPoolExecutor if processes else ThreadPoolExecutor
    with pool_cls(workers) as pool:
        fn = _decode_one
        list(pool.map(fn, paths[:workers], [image_size] * workers, [net.info.name] * workers))
        t = _median_time(lambda: list(pool.map(fn, paths, [image_size] * len(paths),
                                               [net.info.name] * len(paths), chunksize=4 if processes else 1)),
                         repeats)
    return len(paths) / t


def _decode_one(path: str, image_size: int, backbone: str) -> tuple:
    """The pipeline's decode + preprocess of one photo (library/encoding.py)."""
    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.library.encoding import PhotoEncoder, Source

    return PhotoEncoder(load_runtime(backbone), image_size).prepare(Source(0, path))[0].shape


_INDEX_CHILD = """
import json, sys, time
from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.library import Library
from sba_desktop.engine.sba import DescriptorModel
from sba_desktop.engine.runtime import load_runtime
home, folder, model = sys.argv[1:4]
lib = Library.open(home)
if model != "-":
    m = DescriptorModel.load(model)
    m.fitted_on = 10**6  # frozen: the pipeline alone, no refit
    lib.set_model(m)
    load_runtime(m.backbone)  # steady state: the session exists before the clock starts
t = time.perf_counter()
rep = IndexJob(lib, [folder]).run()
el = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"encoded": rep.encoded, "seconds": el, "rate": rep.encoded / el,
                  "peak_mb": int(hwm) / 1024, "torch": "torch" in sys.modules, "skipped": len(rep.skipped)}))
"""


def _index_in_child(folder: Path, home: Path, model_file: Path | None) -> dict:
    """`sba index` as a user runs it, in a process of its own (its peak RSS is its own)."""
    import json

    out = subprocess.run([sys.executable, "-c", _INDEX_CHILD, str(home), str(folder),
                          str(model_file) if model_file else "-"],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"indexing child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_stages(n_photos: int, repeats: int, with_torch: bool = True) -> dict:
    from threadpoolctl import threadpool_limits

    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.library.encoding import fit_model, vectors_from_maps
    from sba_desktop.library.catalog import Catalog
    from sba_desktop.library.decode import decode
    from sba_desktop.library.encoding import FORWARD_BATCH
    from sba_desktop.library.library import Settings
    from sba_desktop.library.vindex import VectorIndex

    s = Settings()
    net = load_runtime(s.backbone)
    tmp = Path(tempfile.mkdtemp(prefix="sba-bench-"))
    paths = _photos(n_photos, tmp)
    cores = os.cpu_count() or 2
    # stage timings, per image, median over repeats of the whole set (one thread each)
    decoded = [decode(p, s.image_size) for p in paths]
    t_decode = _median_time(lambda: [decode(p, s.image_size) for p in paths], repeats) / len(paths)
    xs = [net.preprocess(d.rgb, s.image_size) for d in decoded]
    t_pre = _median_time(lambda: [net.preprocess(d.rgb, s.image_size) for d in decoded], repeats) / len(paths)
    shape = xs[0].shape
    same = [x for x in xs if x.shape == shape]
    batches = tuple(b for b in (1, 4, 8, 16) if b <= len(same))
    onnx_by_batch = _rate_by_batch(net.forward, same, batches, repeats)
    forward_rate = onnx_by_batch.get(FORWARD_BATCH, max(onnx_by_batch.values()))
    maps = [m for i in range(0, len(xs)) for m in net.forward(xs[i][None])]
    # The product keeps M = 512 dims once a library has > 512 photos; for timing at that size
    # the PCA is fitted on the real maps plus jittered copies (timing only, not for quality).
    fit_maps = list(maps)
    rng = np.random.default_rng(0)
    while len(fit_maps) <= s.dims:
        m = maps[len(fit_maps) % len(maps)]
        fit_maps.append(np.maximum(m * (1 + 0.1 * rng.standard_normal(m.shape, dtype=np.float32)), 0))
    model = fit_model(fit_maps, net, s.image_size, s.n_detectors, s.dims, s.global_weight)  # the product's spec
    del fit_maps
    model_file = tmp / "model.npz"
    model.save(model_file)
    with threadpool_limits(limits=1, user_api="blas"):  # as the indexing job runs it: the pipeline's own step
        t_agg = _median_time(lambda: vectors_from_maps(model, maps), repeats) / len(paths)
    vecs = vectors_from_maps(model, maps)[0]

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

    decode_threads = _decode_rate(paths, s.image_size, net, cores, False, repeats)
    decode_procs = _decode_rate(paths, s.image_size, net, cores, True, repeats)
    limit = 1.0 / (1.0 / forward_rate + 1.0 / decode_threads)
    # the whole pipeline: a real library with this (frozen) model, indexing the same photos
    pipeline = [_index_in_child(Path(paths[0]).parent, tmp / f"lib{r}", model_file)["rate"]
                for r in range(repeats)]
    pipe = statistics.median(pipeline)
    camera = bench_camera_formats(tmp, model_file, net, s.image_size, forward_rate,
                                  16 if n_photos <= 100 else 40, max(1, repeats // 2))
    stages = {"decode": t_decode, "preprocess": t_pre, "forward": 1.0 / forward_rate, "sba_aggregation": t_agg,
              "catalog_write": t_cat, "index_add": t_add}
    total = sum(stages.values())
    out = {"photos": len(paths), "image_size": s.image_size, "backbone": net.name, "dims": model.dims,
           "runtime": {"providers": net.providers, "forward_batch": FORWARD_BATCH},
           "stages": {k: {"ms": round(v * 1000, 3), "images_per_s": round(1 / v, 1), "share": round(v / total, 3)}
                      for k, v in stages.items()},
           "forward_images_per_s": round(forward_rate, 2),
           "forward_images_per_s_by_batch": {"onnx": {str(b): round(r, 1) for b, r in onnx_by_batch.items()}},
           "decode_images_per_s": round(decode_threads, 1),
           "decode_images_per_s_processes": round(decode_procs, 1),
           "overlap_limit_images_per_s": round(limit, 2),
           "pipeline_images_per_s": round(pipe, 2),
           "pipeline_vs_limit": round(pipe / limit, 3),
           "pipeline_vs_forward": round(pipe / forward_rate, 3),
           "camera_decode_images_per_s": camera["formats"]["jpeg"]["decode_images_per_s"],
           "camera_pipeline_images_per_s": camera["formats"]["jpeg"]["pipeline_images_per_s"],
           **camera,
           "_model": model, "_query_path": paths[0], "_result_path": paths[1], "_same_shape": same}
    return out


def bench_torch_forward(same: list[np.ndarray], batches: tuple[int, ...], repeats: int) -> dict[int, float]:
    """The same network in torch eager (the reference), images per second by batch."""
    from sba_desktop.engine.torch_build.backbones import load_backbone

    return _rate_by_batch(load_backbone().forward, same, batches, repeats)


def bench_vit(repeats: int, batch: int = 8) -> float:
    """A CLIP ViT-B/32-sized image encoder (timm, random weights: timing only), batched, torch eager."""
    import timm
    import torch

    vit = timm.create_model("vit_base_patch32_224", pretrained=False).eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        vit(x)
        t = _median_time(lambda: vit(x), max(3, repeats))
    return batch / t


def bench_indexing_memory(quick: bool) -> dict:
    """A fresh `sba index` of UKBench + flowers photos (~1,180, fit included): rate and peak RSS."""
    tmp = Path(tempfile.mkdtemp(prefix="sba-bench-mem-"))
    folder = tmp / "photos"
    folder.mkdir()
    imgs = _shared_images("ukbench-dev") + _shared_images("flowers17-dev")
    for p in imgs[:300] if quick else imgs:
        os.symlink(p, folder / p.name)
    r = _index_in_child(folder, tmp / "home", None)
    return {"photos": r["encoded"], "seconds": round(r["seconds"], 2), "images_per_s": round(r["rate"], 2),
            "rss_mb_peak": round(r["peak_mb"], 1), "torch_imported": r["torch"], "_home": tmp / "home"}


def bench_idle_rss(home: Path) -> float:
    """RSS of the application after start-up, its library open and its network loaded, then idle."""
    env = {**os.environ, "SBA_DESKTOP_REPORT_STARTUP": "idle", "SBA_DESKTOP_HOME": str(home)}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    p = subprocess.run([sys.executable, "-m", "sba_desktop"], env=env, capture_output=True, text=True, timeout=180)
    found = [w for w in p.stdout.split() if w.startswith("idle_rss_mb=")]
    return float(found[0].split("=")[1]) if found else float("nan")


def bench_search(sizes: list[int], dim: int, queries: int = 200) -> dict:
    from sba_desktop.library import vindex

    out = {}
    for n in sizes:
        both = clustered_vectors(n + queries, dim, seed=n)
        data, q = both[:n], both[n:]  # queries: new photos of the same scenes, not in the index
        rss0 = _rss_mb()
        t = time.perf_counter()
        idx = vindex.VectorIndex(dim, capacity=n)
        for start in range(0, n, 100_000):
            ids = np.arange(start, min(n, start + 100_000))
            idx.add(ids, data[start:start + len(ids)], threads=os.cpu_count() or 2)
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


def bench_ray(address: str, n_photos: int, repeats: int) -> dict:
    """The Ray path's rate against the local pipeline, same photos, same frozen model, one run."""
    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.jobs.cluster import RayIndexJob, connect
    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import Library

    tmp = Path(tempfile.mkdtemp(prefix="sba-bench-ray-"))
    paths = _photos(n_photos, tmp)
    folder = str(Path(paths[0]).parent)
    seed = Library.open(tmp / "seed")
    IndexJob(seed, [folder]).run()  # a model fitted on these photos
    model = seed.model
    model.fitted_on = 10**6  # frozen: both runs only encode
    load_runtime(model.backbone)
    t = time.perf_counter()
    connect(address)
    ray_start = time.perf_counter() - t
    rates: dict[str, list[float]] = {"local": [], "ray": []}
    for r in range(repeats):
        for kind, job_cls in (("local", IndexJob), ("ray", RayIndexJob)):
            lib = Library.open(tmp / f"{kind}{r}")
            lib.set_model(model)
            t = time.perf_counter()
            rep = job_cls(lib, [folder]).run()
            rates[kind].append(rep.encoded / (time.perf_counter() - t))
    local, ray_rate = statistics.median(rates["local"]), statistics.median(rates["ray"])
    return {"address": address, "photos": len(paths), "ray_start_s": round(ray_start, 2),
            "local_images_per_s": round(local, 2), "ray_images_per_s": round(ray_rate, 2),
            "ray_vs_local": round(ray_rate / local, 3)}


def _machine() -> dict:
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}


def run_bench(quick: bool = False, max_vectors: int | None = None, ray: str | None = None,
              pipeline_only: bool = False) -> dict:
    from sba_desktop.library.vindex import EF_CONSTRUCTION, EF_SEARCH, HNSW_M

    from sba_desktop.engine.runtime import load_runtime

    repeats = 3 if quick else 5
    if ray:  # the Ray path alone: sba bench --ray ADDRESS
        return {"ray": bench_ray(ray, 200, 3)}
    load_runtime()  # exported now if it is missing, so no child below pays for (or imports) torch
    if pipeline_only:  # sba bench --pipeline: the indexing pipeline and the camera formats
        st = bench_stages(100 if quick else 500, repeats)
        for k in ("_model", "_query_path", "_result_path", "_same_shape"):
            st.pop(k)
        return {"machine": _machine(), **st}
    memory = bench_indexing_memory(quick)  # first, in a child: nothing else loaded yet
    idle = bench_idle_rss(memory.pop("_home"))
    st = bench_stages(100 if quick else 500, repeats)
    model = st.pop("_model")
    qpath = st.pop("_query_path")
    rpath = st.pop("_result_path")
    same = st.pop("_same_shape")
    onnx_by_batch = {int(b): r for b, r in st["forward_images_per_s_by_batch"]["onnx"].items()}
    torch_by_batch = bench_torch_forward(same, tuple(onnx_by_batch), repeats)
    st["forward_images_per_s_by_batch"]["torch"] = {str(b): round(r, 1) for b, r in torch_by_batch.items()}
    vit = bench_vit(repeats)
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    sizes = [n for n in sizes if n <= (max_vectors or n)] or [10_000]
    from sba_desktop.library.library import Settings

    search = bench_search(sizes, Settings().dims, 100 if quick else 200)

    # end-to-end query at 100k: decode + encode + neighbourhood search (the default), the
    # library's own query path (one pipeline, the augmented-vector cache kept between searches)
    from sba_desktop.engine.neighbourhood import AugmentedVectors, neighbourhood_search
    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.library.encoding import PhotoEncoder, Source

    enc = PhotoEncoder(load_runtime(model.backbone), model.image_size, model, workers=1)
    qsize = max(sizes, key=lambda n: (n <= 100_000, n))  # the query is timed at 100k vectors
    idx = search[str(qsize)]["index"]
    kept = AugmentedVectors(idx)

    def query():
        q = enc.encode_one(Source(0, qpath)).vector
        neighbourhood_search(q, idx, 20, kept)
    query()
    q_ms = _median_time(query, 9) * 1000
    explain_ms = bench_explanation(model, qpath, rpath, idx, kept) * 1000
    for v in search.values():
        v.pop("index", None)
    first_window = bench_first_window(3)
    tagging = bench_tagging([1000] if quick else [1000, 5000, 20000], Settings().dims)
    duplicates = bench_duplicates(10_000 if quick else min(100_000, max_vectors or 100_000), Settings().dims)
    galleries = bench_galleries(10_000 if quick else min(100_000, max_vectors or 100_000))
    return {
        "machine": _machine(),
        **st,
        "runtime_vs_torch": round(max(onnx_by_batch.values()) / max(torch_by_batch.values()), 2),
        "vit_b32_images_per_s": round(vit, 2),
        "vs_vit_b32": round(st["pipeline_images_per_s"] / vit, 2),
        "indexing": memory,
        "hnsw": {"M": HNSW_M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF_SEARCH, "space": "ip"},
        "search_ms": {k: v["search_ms"] for k, v in search.items()},
        "recall_at_10": {k: v["recall_at_10"] for k, v in search.items()},
        "index_sizes": search,
        "query_ms_end_to_end": round(q_ms, 1),
        "explanation_ms": round(explain_ms, 1),
        "query_at_vectors": qsize,
        "rss_mb_indexing_peak": memory["rss_mb_peak"],
        "rss_mb_idle": round(idle, 1),
        "rss_mb": {"indexing_peak": memory["rss_mb_peak"], "idle": round(idle, 1),
                   **{f"library_{k}_vectors": v["rss_mb_loaded"] for k, v in search.items()}},
        "first_window_s": round(first_window, 3),
        "tagging": tagging,
        "duplicates": duplicates,
        "galleries": galleries,
    }


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
    return _median_time(explanation, repeats)


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
        one_pass = _median_time(lambda: cat.strongest_peaks("m", every, 8), repeats)
        one = _median_time(lambda: cat.strongest_peaks("m", [0], 12), repeats)
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


def format_bench(r: dict) -> str:
    if "ray" in r and len(r) == 1:
        x = r["ray"]
        return (f"Ray ({x['address']}, started in {x['ray_start_s']} s), {x['photos']} photos, frozen model: "
                f"{x['ray_images_per_s']} photos/s vs the local pipeline {x['local_images_per_s']} photos/s "
                f"= {x['ray_vs_local']} x")
    bb = r["forward_images_per_s_by_batch"]
    lines = [f"machine: {r['machine']['cpu_count']} cores, {r['machine']['platform']}, "
             f"python {r['machine']['python']}, torch threads {r['machine']['torch_threads']}",
             f"{r['backbone']} at {r['image_size']} px, {r['dims']} dims, {r['photos']} photos, "
             f"onnxruntime {r['runtime']['providers']}, batch {r['runtime']['forward_batch']}",
             f"{'stage':<16} {'ms/img':>8} {'img/s':>8} {'share':>6}"]
    for k, v in r["stages"].items():
        lines.append(f"{k:<16} {v['ms']:>8.2f} {v['images_per_s']:>8.1f} {v['share']:>6.1%}")
    lines += [f"forward by batch  onnx {bb['onnx']}  torch {bb.get('torch')} img/s",
              *([f"runtime vs torch  {r['runtime_vs_torch']:.2f} x (best batch each)"] if "runtime_vs_torch" in r else []),
              f"decode+preprocess {r['decode_images_per_s']:.1f} img/s on all cores (threads; processes "
              f"{r['decode_images_per_s_processes']:.1f})",
              f"overlap limit     {r['overlap_limit_images_per_s']:.1f} img/s",
              f"indexing pipeline {r['pipeline_images_per_s']:.1f} img/s = {r['pipeline_vs_limit']:.2f} x limit, "
              f"{r['pipeline_vs_forward']:.2f} x forward",
              f"12-MP camera JPEGs: pipeline {r['camera_pipeline_images_per_s']:.1f} img/s "
              f"(decode alone {r['camera_decode_images_per_s']:.1f}) = {r['camera_pipeline_vs_limit']:.2f} x "
              f"its limit {r['camera_overlap_limit_images_per_s']:.1f}",
              *(f"  {k:<18} " + (f"pipeline {v['pipeline_images_per_s']:.1f} img/s, decode alone "
                                 f"{v['decode_images_per_s']:.1f}" if "skipped" not in v else f"not run: {v['skipped']}")
                for k, v in r["formats"].items()),
              f"  HEIC thumbnail vs full decode {r['heic_thumbnail_vs_full_decode']} x; DNG (preview) vs 12-MP "
              f"JPEG {r['raw_vs_camera_jpeg']} x"]
    if "indexing" not in r:  # sba bench --pipeline
        return "\n".join(lines)
    lines += [f"ViT-B/32 encoder  {r['vit_b32_images_per_s']:.1f} img/s -> we index {r['vs_vit_b32']:.2f} x faster",
              f"sba index of {r['indexing']['photos']} photos (fit included): {r['indexing']['seconds']} s, "
              f"{r['indexing']['images_per_s']} img/s, peak RSS {r['rss_mb_indexing_peak']} MB",
              f"HNSW {r['hnsw']}"]
    for k, v in r["index_sizes"].items():
        lines.append(f"  {int(k):>9,} vectors: search {v['search_ms']:.2f} ms (with the neighbourhood "
                     f"{v['neighbourhood_search_ms']:.1f} ms), recall@10 {v['recall_at_10']:.3f}, "
                     f"build {v['build_s']} s, save {v['save_s']} s, load {v['load_s']} s, "
                     f"file {v['file_mb']} MB, RSS +{v['rss_mb_loaded']} MB")
    lines += [f"query end to end (decode+encode+neighbourhood search) at {r['query_at_vectors']:,}: {r['query_ms_end_to_end']} ms",
              f"why it matches at {r['query_at_vectors']:,} (two photos encoded with their maps, the exact split, "
              f"regions, heatmaps, the default search's split): {r['explanation_ms']} ms",
              f"application idle RSS: {r['rss_mb_idle']} MB",
              f"first window: {r['first_window_s']} s",
              "tagging (12 x 10 examples + N unsorted + 3,000 library photos): "
              + ", ".join(f"{int(k):,} in {v} s" for k, v in r["tagging"]["seconds"].items())
              + f"; a 10 ms tick in another thread waited at most {r['tagging']['longest_wait_ms']} ms"]
    if "duplicates" in r:
        d = r["duplicates"]
        lines.append(f"duplicates, {d['photos']:,} photos of synthetic looks ({d['pairs']:,} candidate pairs, "
                     f"no copies): first look {d['first_s']} s, next look {d['again_s']} s")
    if "galleries" in r:
        g = r["galleries"]
        lines.append(f"detector galleries, {g['photos']:,} photos: all {g['detectors']} in one pass {g['all_galleries_s']} s "
                     f"(once per model, for the names check), one {g['one_gallery_s']} s")
    return "\n".join(lines)
