#!/usr/bin/env python3
"""What looking inside photos costs (issue 34): indexing time, storage and the band's search time.

1. Indexing: the product's own `sba index` job on the same photos in two fresh libraries, looking
   inside off and on, in interleaved rounds (medians, and the ratio of each round's pair): paris-dev
   photos (~640 px JPEGs, the shared set) and 12-megapixel camera JPEGs made from them (decoding
   takes a larger share there).
2. Storage: the catalog's bytes a photo with and without its windows.
3. The band's search: a table of WINDOWS_KEPT int8 windows a photo at the model's dims, searched
   exactly for one query (the library's code: engine/windows.py WindowTable.best), at 10,000 and
   100,000 photos (random windows: the time does not depend on their values), its memory, and how
   long reading it from a catalog takes (measured at 10,000 photos).

    .venv/bin/python scripts/inside_benchmark.py [--photos 40] [--rounds 3] [--sizes 10000,100000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sba_desktop.lab.datasets import datasets_root  # noqa: E402


def index_seconds(folder: Path, home: Path, inside: bool) -> tuple[float, int, int]:
    """(seconds of one `sba index` run of the folder into a fresh library, catalog bytes, photos)."""
    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import Library
    from sba_desktop.paths import app_paths

    lib = Library(app_paths(home))
    s = lib.settings()
    s.inside = inside
    lib.save_settings(s)
    t = time.perf_counter()
    report = IndexJob(lib, [str(folder)]).run()
    seconds = time.perf_counter() - t
    assert report.encoded > 0 and report.looked_inside == (report.encoded if inside else 0), report
    lib.catalog.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    lib.close()
    return seconds, lib.paths.catalog_file.stat().st_size, report.encoded


def bench_indexing(folder: Path, rounds: int, tmp: Path) -> dict:
    off, on, ratios, sizes = [], [], [], {}
    for r in range(rounds):
        a, sizes["off"], n = index_seconds(folder, tmp / f"off-{r}", False)
        b, sizes["on"], _ = index_seconds(folder, tmp / f"on-{r}", True)
        off.append(a)
        on.append(b)
        ratios.append(b / a)
    return {"photos": n, "off_s": round(statistics.median(off), 2), "on_s": round(statistics.median(on), 2),
            "off_ms_per_photo": round(1000 * statistics.median(off) / n, 1),
            "on_ms_per_photo": round(1000 * statistics.median(on) / n, 1),
            "ratio_median": round(statistics.median(ratios), 2), "ratios": [round(x, 2) for x in ratios],
            "catalog_kb_per_photo_off": round(sizes["off"] / n / 1024, 1),
            "catalog_kb_per_photo_on": round(sizes["on"] / n / 1024, 1)}


def bench_band(sizes: list[int], dims: int, tmp: Path) -> dict:
    from sba_desktop.engine.windows import WINDOWS_KEPT, PhotoWindows, WindowTable
    from sba_desktop.library.catalog import Catalog
    from sba_desktop.library.inside import InsideStore

    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        w = n * WINDOWS_KEPT
        table = WindowTable(np.repeat(np.arange(n), WINDOWS_KEPT), rng.integers(-127, 128, (w, dims), dtype=np.int8),
                            rng.random(w, dtype=np.float32) / 127, rng.random((w, 4), dtype=np.float32))
        q = rng.standard_normal(dims).astype(np.float32)
        q /= np.linalg.norm(q)
        exclude = set(range(20))
        table.best(q, 10, exclude)
        times = []
        for _ in range(9):
            t = time.perf_counter()
            table.best(q, 10, exclude)
            times.append(time.perf_counter() - t)
        mb = (table.head.nbytes + table.tail.nbytes + table.scales.nbytes + table.boxes.nbytes + table.photo_ids.nbytes) / 2**20
        out[n] = {"band_ms": round(1000 * statistics.median(times), 1), "table_mb": round(mb, 1)}
    n = min(sizes)  # reading the table from a catalog
    cat = Catalog(tmp / "read.sqlite")
    with cat.transaction():
        cat.db.executemany("INSERT INTO photos(id, path, size, mtime_ns, state, model_id, updated) "
                           "VALUES (?, ?, 0, 0, 'indexed', 'm', 0)", [(i, f"/p/{i}".encode()) for i in range(n)])
    store = InsideStore(cat)
    for s in range(0, n, 1000):
        store.store("m", [(i, PhotoWindows(rng.integers(-127, 128, (WINDOWS_KEPT, dims), dtype=np.int8),
                                           np.ones(WINDOWS_KEPT, np.float32), np.zeros((WINDOWS_KEPT, 4), np.float32)))
                          for i in range(s, min(n, s + 1000))])
    t = time.perf_counter()
    store.table("m", dims)
    out["read_table_s"] = {n: round(time.perf_counter() - t, 2)}
    cat.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="10000,100000")
    args = ap.parse_args()
    from sba_desktop.lab.bench.common import camera_photos
    from sba_desktop.library.library import Settings

    with tempfile.TemporaryDirectory(prefix="sba-inside-bench-") as d:
        tmp = Path(d)
        src = datasets_root() / "paris-dev" / "images"
        small = tmp / "paris"
        small.mkdir()
        every = sorted(src.iterdir())
        for p in every[::max(1, len(every) // args.photos)][:args.photos]:
            os.link(p, small / p.name)
        print("indexing, paris-dev photos:", bench_indexing(small, args.rounds, tmp), flush=True)
        camera = Path(camera_photos(args.photos // 2, tmp / "cam", "jpeg")[0]).parent
        print("indexing, 12-MP camera JPEGs:", bench_indexing(camera, args.rounds, tmp), flush=True)
        band = bench_band([int(x) for x in args.sizes.split(",")], Settings().dims, tmp)
        print("the band's search (one query, exact):", band, flush=True)


if __name__ == "__main__":
    main()
