"""`sba bench`: speed and memory on this machine, medians over repeated runs.

Everything measured in one run, so ratios compare like with like. The index
part uses synthetic vectors with cluster structure (real photo vectors are far
from uniform noise, on which no ANN index does well); say so when quoting.
"""
from __future__ import annotations

import os
import platform

from sba_desktop.lab.bench.common import median_time
from sba_desktop.lab.bench.pipeline import bench_indexing_memory, bench_ray, bench_stages, bench_torch_forward, bench_vit
from sba_desktop.lab.bench.search import bench_duplicates, bench_explanation, bench_galleries, bench_search, bench_tagging
from sba_desktop.lab.bench.window import bench_first_window, bench_idle_rss


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
    q_ms = median_time(query, 9) * 1000
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
