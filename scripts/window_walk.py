"""Idle memory of the window after a scripted walk of every screen (issue 35: <= 400 MB).

    .venv/bin/python scripts/window_walk.py [--runs 3] [--home DIR]

Builds a library of ~200 real photos from ../shared/datasets once (ukbench objects, Caltech
distractors, flowers17 categories and unsorted photos, a few copies for the duplicates), then per
run starts a fresh window process that walks every screen — a search, the viewer through ten
results, Why it matches on three results with detectors and a gallery, the whole grid scrolled,
categories set and auto-tagging, duplicates found and compared, Settings opened — and reads the
RSS once idle (after the window's own idle trim). Prints each run and the median.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IDLE_S = 20.0  # long enough for the window's 15 s idle trim


def build_library(home: Path) -> dict:
    """The photos (hard links, copies for the duplicates) under home/photos, indexed."""
    from PIL import Image

    from sba_desktop.lab.datasets import datasets_root

    os.environ["SBA_DESKTOP_HOME"] = str(home / "lib")
    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import Library

    ds = datasets_root()
    photos = home / "photos"
    plan = {"search": photos / "objects", "cats": photos / "categories", "unsorted": photos / "unsorted"}

    def link(src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    uk = sorted((ds / "ukbench-dev" / "images").iterdir())[:100]
    for p in uk:
        link(p, plan["search"] / p.name)
    for p in sorted((ds / "caltech101-distractors" / "images").iterdir())[:40]:
        link(p, plan["search"] / p.name)
    labels = json.loads((ds / "flowers17-dev" / "groundtruth.json").read_text())["labels"]
    by_class: dict[str, list[str]] = {}
    for name, cls in sorted(labels.items()):
        by_class.setdefault(cls, []).append(name)
    for cls in sorted(by_class)[:3]:
        for n in by_class[cls][:12]:
            link(ds / "flowers17-dev" / "images" / n, plan["cats"] / cls / n)
        for n in by_class[cls][12:16]:
            link(ds / "flowers17-dev" / "images" / n, plan["unsorted"] / n)
    dup = plan["search"] / "copies"
    dup.mkdir(parents=True, exist_ok=True)
    for p in uk[:4]:  # copies the duplicates view finds (new files: never the shared photos)
        im = Image.open(p)
        im.resize((im.width // 2, im.height // 2)).save(dup / f"small {p.stem}.jpg", quality=75)
    lib = Library.open()
    try:
        IndexJob(lib, [str(plan["search"]), str(plan["cats"]), str(plan["unsorted"])]).run()
    finally:
        lib.close()
    return {k: str(v) for k, v in plan.items()} | {"query": str(uk[8])}


def child(home: Path, plan: dict) -> None:
    """One window walked through every screen; prints start_rss_mb and walk_rss_mb.

    The walk runs inside the application's own event loop (a generator advanced by a timer:
    it yields a condition to wait for, or seconds to let pass), so what the window hands to
    deleteLater is really deleted, as when a person clicks."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    if os.environ.get("SBA_WALK_WATCH") != "1":  # --watch: the live-folder watcher on, as by default
        os.environ["SBA_DESKTOP_NO_WATCH"] = "1"
    app = QApplication.instance() or QApplication([])
    from sba_desktop.ui.main import MainWindow

    win = MainWindow(str(home / "lib"))
    errors: list[str] = []
    win.show_error = errors.append
    win.resize(1280, 800)
    win.show()
    steps = walk(win, plan)
    state: dict = {"wait": None, "since": time.time(), "failed": None}

    def tick() -> None:
        w, waited = state["wait"], time.time() - state["since"]
        if errors or waited > 300:
            state["failed"] = f"the walk stopped: {errors or 'timed out'}"
            app.quit()
            return
        if isinstance(w, float) and waited < w or callable(w) and not w():
            return
        try:
            state["wait"], state["since"] = next(steps), time.time()
        except StopIteration:
            timer.stop()
            app.quit()
    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    app.exec()
    if state["failed"]:
        raise SystemExit(state["failed"])
    win.close()


def walk(win, plan: dict):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from sba_desktop.diagnostics import rss_mb

    def close_modal_soon() -> None:  # a modal dialog of the walk is looked at, then closed
        def close():
            w = QApplication.activeModalWidget()
            if w is None:
                QTimer.singleShot(100, close)
            else:
                QTimer.singleShot(300, w.close)
        QTimer.singleShot(100, close)

    yield lambda: win.lib is not None and win.lib.model is not None
    yield IDLE_S
    start = rss_mb()
    diag = os.environ.get("SBA_WALK_DIAG") == "1"  # where the memory kept after the walk was allocated
    if diag:
        import tracemalloc

        tracemalloc.start(12)
    sp = win.search
    # search, the whole grid scrolled (every thumbnail loaded), the viewer through ten results
    sp.set_query_path(plan["query"])
    yield lambda: sp.model.rowCount() > 0
    for row in range(0, sp.model.rowCount(), 10):
        sp.grid.scrollTo(sp.model.index(row))
        yield 0.05
    sp.show_large(sp.model.hits[0][0])
    for _ in range(10):
        sp.viewer.next()
        yield 0.4
    sp.viewer.close_viewer()
    # why it matches, three results: detectors, overlays, a gallery
    for k in (1, 2, 5):
        before = sp.why
        sp.explain(sp.model.hits[k][0])
        yield lambda: sp.why is not None and sp.why is not before
        why = sp.why
        why.show_details(True)
        for row in (3, 4, 1, 0):
            why.detectors.setCurrentRow(row)
            yield 0.1
        why.detectors.setCurrentRow(3)
        yield lambda: why.gallery.count() > 0
        why.back()
        why = before = None  # the walk's own references (closure cells) would keep the page alive
    # categories: set, auto-tag
    win.tabs.setCurrentWidget(win.categories)
    win.categories.choose_root(plan["cats"])
    yield lambda: win.categories.filter.count() >= 5
    win.categories.auto_tag(plan["unsorted"])
    yield lambda: len(win.categories.proposals) > 0
    yield 1.0
    # duplicates: find, compare
    win.tabs.setCurrentWidget(win.duplicates)
    win.duplicates.find()
    yield lambda: win.duplicates.find_btn.isEnabled() and "Looking" not in win.duplicates.status.text()
    yield 1.0
    if win.duplicates.copies.rowCount():
        close_modal_soon()
        win.duplicates.compare()
    # settings, then back to the search
    close_modal_soon()
    win.open_settings()
    win.tabs.setCurrentWidget(sp)
    yield IDLE_S
    if diag:
        report_held(win)
    if os.environ.get("SBA_WALK_DIAG") == "workers":  # quick: the background tasks still alive
        import gc

        from sba_desktop.ui.tasks import Worker

        gc.collect()
        for w in (o for o in gc.get_objects() if isinstance(o, Worker)):
            fn = w.__dict__.get("fn")
            print(f"worker alive: {getattr(fn, '__qualname__', fn)} args={[type(a).__name__ for a in w.args]}",
                  file=sys.stderr)
    print(f"start_rss_mb={start:.1f} walk_rss_mb={rss_mb():.1f} thumbs={len(win.ctx.thumbs._pix)}", flush=True)


def report_held(win) -> None:
    """Libraries alive, and the largest allocations still held (tracemalloc sees numpy's too)."""
    import gc
    import tracemalloc

    from sba_desktop.library.library import Library

    gc.collect()
    try:
        roll = Path("/proc/self/smaps_rollup").read_text().splitlines()
        print("; ".join(ln.split(":")[0] + " " + str(int(ln.split()[1]) // 1024) + " MB" for ln in roll
                        if ln.split(":")[0] in ("Rss", "Anonymous", "Shared_Clean", "Private_Clean")), file=sys.stderr)
    except OSError:
        pass
    heavy = [m for m in ("sklearn", "scipy", "torch", "PIL", "cv2", "pillow_heif", "rawpy") if m in sys.modules]
    print(f"modules: {len(sys.modules)}, heavy: {heavy}", file=sys.stderr)
    libs = [o for o in gc.get_objects() if isinstance(o, Library)]
    print(f"libraries alive: {len(libs)} (the window's: {win.lib is not None})", file=sys.stderr)
    for lib in libs:
        if lib is not win.lib:
            for r in gc.get_referrers(lib):
                if r is libs:
                    continue
                up = [type(x).__name__ + ":" + getattr(x, "__qualname__", getattr(type(x), "__qualname__", ""))
                      for x in gc.get_referrers(r) if x is not libs][:6]
                print(f"old library held by {type(r).__name__} {str(r)[:120]!r} <- {up}", file=sys.stderr)
                for x in gc.get_referrers(r):
                    if isinstance(x, dict):
                        owners = [type(o).__qualname__ for o in gc.get_referrers(x) if o is not libs][:4]
                        print(f"   dict keys {list(x)[:8]} owned by {owners}", file=sys.stderr)
                    elif isinstance(x, list) and x is not libs:
                        print(f"   list of {len(x)}: {[type(o).__name__ for o in x[:5]]}", file=sys.stderr)
    for kind in ("Explanation", "WhyDialog", "Library", "Comparison", "Proposal"):
        alive = [o for o in gc.get_objects() if type(o).__name__ == kind]
        held_by = sorted({type(r).__name__ for o in alive for r in gc.get_referrers(o)} - {"list"})
        print(f"{kind}: {len(alive)} alive, held by {held_by}", file=sys.stderr)
    snap = tracemalloc.take_snapshot()
    total = sum(s.size for s in snap.statistics("filename"))
    print(f"traced and held: {total / 2**20:.1f} MB", file=sys.stderr)
    for stat in snap.statistics("traceback")[:20]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback
                  if "sba_desktop" in f.filename or "window_walk" in f.filename][:6]
        print(f"{stat.size / 2**20:8.1f} MB {stat.count:6d}  {' <- '.join(frames)}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--home", help="a folder for the walk's library (default: a new temporary one)")
    ap.add_argument("--watch", action="store_true", help="walk with the live-folder watcher on (the default app)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        home = Path(args.child)
        child(home, json.loads((home / "plan.json").read_text()))
        return 0
    home = Path(args.home or tempfile.mkdtemp(prefix="sba-walk-"))
    if not (home / "plan.json").exists():
        t = time.time()
        (home / "plan.json").write_text(json.dumps(build_library(home)))
        print(f"library built in {time.time() - t:.0f} s: {home}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SBA_DESKTOP_HOME": str(home / "lib"),
           "SBA_WALK_WATCH": "1" if args.watch else "0"}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    walks, starts = [], []
    for i in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--child", str(home)], env=env, capture_output=True,
                             text=True, timeout=900)
        line = [ln for ln in out.stdout.splitlines() if "walk_rss_mb=" in ln]
        if not line:
            print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
            return 1
        fields = dict(w.split("=") for w in line[0].split())
        starts.append(float(fields["start_rss_mb"]))
        walks.append(float(fields["walk_rss_mb"]))
        print(f"run {i + 1}: {line[0]}", flush=True)
    print(f"median: start {statistics.median(starts):.1f} MB, after the walk {statistics.median(walks):.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
