"""The indexing pipeline: decode, forward, SBA, per stage and end to end; camera files; Ray."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sba_desktop.lab.datasets import dataset_images
from sba_desktop.lab.bench.common import camera_photos, decode_one, median_time, sample_photos


def bench_camera_formats(tmp: Path, model_file: Path, net, image_size: int, forward_rate: float,
                         n: int, repeats: int) -> dict:
    """Indexing rates of phone and camera files (`sba index` in a child, frozen model), and the
    12-MP JPEG pipeline against its own overlap limit. A kind whose files cannot be made here
    (no heif-enc for thumbnails, no pidng for DNG) is reported as such."""
    cores = os.cpu_count() or 2
    out: dict = {}
    for kind in ("jpeg", "heic", "heic-no-thumbnail", "dng", "dng-no-preview"):
        try:
            files = camera_photos(n, tmp, kind)
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
        out[b] = sum(len(g) for g in groups) / median_time(lambda: [forward(g) for g in groups], repeats)
    return out


def _decode_rate(paths: list[str], image_size: int, net, workers: int, processes: bool, repeats: int) -> float:
    """Decode + preprocess alone on all cores (threads or processes), images per second."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    pool_cls = ProcessPoolExecutor if processes else ThreadPoolExecutor
    with pool_cls(workers) as pool:
        fn = decode_one
        list(pool.map(fn, paths[:workers], [image_size] * workers, [net.info.name] * workers))
        t = median_time(lambda: list(pool.map(fn, paths, [image_size] * len(paths),
                                               [net.info.name] * len(paths), chunksize=4 if processes else 1)),
                         repeats)
    return len(paths) / t


def _index_in_child(folder: Path, home: Path, model_file: Path | None) -> dict:
    """`sba index` as a user runs it, in a process of its own (its peak RSS is its own)."""
    import json

    out = subprocess.run([sys.executable, "-m", "sba_desktop.lab.bench.index_child", str(home), str(folder),
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
    paths = sample_photos(n_photos, tmp)
    cores = os.cpu_count() or 2
    # stage timings, per image, median over repeats of the whole set (one thread each)
    decoded = [decode(p, s.image_size) for p in paths]
    t_decode = median_time(lambda: [decode(p, s.image_size) for p in paths], repeats) / len(paths)
    xs = [net.preprocess(d.rgb, s.image_size) for d in decoded]
    t_pre = median_time(lambda: [net.preprocess(d.rgb, s.image_size) for d in decoded], repeats) / len(paths)
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
        t_agg = median_time(lambda: vectors_from_maps(model, maps), repeats) / len(paths)
    vecs = vectors_from_maps(model, maps)[0]

    cat = Catalog(tmp / "bench.sqlite")
    ids = [cat.upsert_pending(p, 1, 1, None) for p in paths]

    def write():
        for i in range(0, len(ids), 64):
            cat.store_results([(pid, v, 640, 480) for pid, v in zip(ids[i:i + 64], vecs[i:i + 64])], [], "m")
    t_cat = median_time(write, repeats) / len(paths)

    def add():
        idx = VectorIndex(model.dims)
        idx.add(np.array(ids), vecs)
    t_add = median_time(add, repeats) / len(paths)
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
        t = median_time(lambda: vit(x), max(3, repeats))
    return batch / t


def bench_indexing_memory(quick: bool) -> dict:
    """A fresh `sba index` of UKBench + flowers photos (~1,180, fit included): rate and peak RSS."""
    tmp = Path(tempfile.mkdtemp(prefix="sba-bench-mem-"))
    folder = tmp / "photos"
    folder.mkdir()
    imgs = dataset_images("ukbench-dev") + dataset_images("flowers17-dev")
    for p in imgs[:300] if quick else imgs:
        os.symlink(p, folder / p.name)
    r = _index_in_child(folder, tmp / "home", None)
    return {"photos": r["encoded"], "seconds": round(r["seconds"], 2), "images_per_s": round(r["rate"], 2),
            "rss_mb_peak": round(r["peak_mb"], 1), "torch_imported": r["torch"], "_home": tmp / "home"}


def bench_ray(address: str, n_photos: int, repeats: int) -> dict:
    """The Ray path's rate against the local pipeline, same photos, same frozen model, one run."""
    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.jobs.cluster import RayIndexJob, connect
    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import Library

    tmp = Path(tempfile.mkdtemp(prefix="sba-bench-ray-"))
    paths = sample_photos(n_photos, tmp)
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
