#!/usr/bin/env python3
"""Start the real application under Xvfb on sample photos, drive it, save PNG screenshots.

Needs Debian packages: xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 imagemagick (for `import -window root`).
Photos come from ../shared/datasets, hard-linked (or copied) into a temporary folder: the library
never follows a symbolic link out of a photo folder, so symlinks would be skipped.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without install
from sba_desktop.lab.datasets import datasets_root  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = datasets_root()


def link(src: Path, dst: Path, names: list[str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        try:
            os.link(src / n, dst / n)
        except OSError:  # another file system
            shutil.copy2(src / n, dst / n)


def prepare(tmp: Path) -> dict:
    photos = tmp / "Pictures"
    uk = sorted(os.listdir(DATA / "ukbench-dev" / "images"))[:120]
    link(DATA / "ukbench-dev" / "images", photos / "objects", uk)
    paris = sorted(os.listdir(DATA / "paris-dev" / "images"))
    link(DATA / "paris-dev" / "images", photos / "paris", paris)
    labels = json.loads((DATA / "flowers17-dev" / "groundtruth.json").read_text())["labels"]
    by: dict[str, list[str]] = {}
    for n, c in sorted(labels.items()):
        by.setdefault(c, []).append(n)
    cats, unsorted = tmp / "Flowers", tmp / "Unsorted flowers"
    for c in sorted(by)[:5]:
        link(DATA / "flowers17-dev" / "images", cats / c, by[c][:20])
        link(DATA / "flowers17-dev" / "images", unsorted, by[c][20:26])
    for c in sorted(by)[5:7]:  # kinds with no category folder: they land in "No category"
        link(DATA / "flowers17-dev" / "images", unsorted, by[c][:4])
    # what a library holds besides: copies of some photos (exports, re-saves, a crop, a turn) and
    # a burst of three frames seconds apart (made here from shared photos, in the temporary folder)
    from PIL import Image, ImageEnhance

    exports = photos / "exports"
    exports.mkdir()
    for n in paris[:60:20]:
        img = Image.open(DATA / "paris-dev" / "images" / n).convert("RGB")
        w, h = img.size
        img.resize((w // 2, h // 2)).save(exports / f"{Path(n).stem}-small.jpg", quality=75)
        img.save(exports / f"{Path(n).stem}.png")
        ImageEnhance.Brightness(img.crop((w // 12, h // 12, w, h))).enhance(1.2).save(
            exports / f"{Path(n).stem}-edit.jpg", quality=90)
    burst = photos / "burst"
    burst.mkdir()
    scene = Image.open(DATA / "flowers17-dev" / "images" / by[sorted(by)[3]][0]).convert("RGB")
    w, h = scene.size
    for k in range(3):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = f"2025:06:14 18:02:0{k}"
        scene.crop((10 * k, 6 * k, w - 30 + 10 * k, h - 18 + 6 * k)).resize((w, h)).save(
            burst / f"IMG_20{k}.jpg", quality=92, exif=exif)
    # objects inside other photos: shots of the query's object and others pasted into everyday
    # photos (lab/composites.py), for the band "inside other photos" (the library looks inside)
    from sba_desktop.lab import composites

    everyday = sorted((DATA / "caltech101-distractors" / "images").rglob("*.jpg"))[::301][:6]
    shots = [[DATA / "ukbench-dev" / "images" / n for n in uk[g * 4:g * 4 + 4]] for g in (3, 7, 11, 15, 19, 23)]
    (photos / "scenes").mkdir()
    for i, c in enumerate(composites.draw_composites(shots, everyday, seed=2, cases=6)):
        composites.write_composite(c, photos / "scenes" / f"scene-{i}.jpg")
    return {"photos": photos, "query": DATA / "ukbench-dev" / "images" / uk[12],
            "cats": cats, "unsorted": unsorted}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--only", help="save only these screenshots (comma-separated names); the others are "
                    "still driven")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="sba-shots-"))
    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb = subprocess.Popen(["Xvfb", ":97", "-screen", "0", "1400x900x24"])
        os.environ["DISPLAY"] = ":97"
        time.sleep(1.5)
    os.environ["SBA_DESKTOP_HOME"] = str(tmp / "home")
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.path.insert(0, str(ROOT))
    try:
        return drive(prepare(tmp), out, set(args.only.split(",")) if args.only else None)
    finally:
        if xvfb:
            xvfb.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def drive(s: dict, out: Path, only: set[str] | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from sba_desktop.jobs.index import IndexJob
    from sba_desktop.library.library import Library
    from sba_desktop.jobs.tagging import label_from_folders

    app = QApplication(sys.argv)
    from sba_desktop.ui.main import MainWindow

    def index_all() -> None:
        lib = Library.open()
        settings = lib.settings()
        settings.inside = True  # Settings > Model > Look inside photos
        lib.save_settings(settings)
        IndexJob(lib, [str(s["photos"])]).run()
        IndexJob(lib, [str(s["cats"]), str(s["unsorted"])]).run()
        label_from_folders(lib, str(s["cats"]))
        lib.close()

    first = MainWindow()  # an empty library: the first-run page
    first.resize(1280, 800)
    first.move(20, 20)
    first.show()
    holder: dict = {}

    def open_main() -> None:
        first.close()
        index_all()
        win = MainWindow()
        win.resize(1280, 800)  # the smallest screen the window promises to fit
        win.move(20, 20)
        win.show()
        holder["win"] = win

    def shot(name: str) -> None:
        app.processEvents()
        if only is not None and name not in only:
            return
        path = out / f"{name}.png"
        convert_import = shutil.which("import") or "/usr/bin/import"
        if os.path.exists(convert_import):
            subprocess.run([convert_import, "-window", "root", str(path)], check=False)
        else:
            app.primaryScreen().grabWindow(0).save(str(path))
        print("saved", path)

    steps: list = []

    def later(cond, action, timeout=120.0):
        steps.append((cond, action, time.time() + timeout))

    def pump():
        if not steps:
            app.quit()
            return
        cond, action, deadline = steps[0]
        if cond() or time.time() > deadline:
            steps.pop(0)
            action()
        QTimer.singleShot(300, pump)

    w = lambda: holder["win"]  # noqa: E731
    later(lambda: first.lib is not None, lambda: QTimer.singleShot(1000, lambda: None))
    later(lambda: True, lambda: shot("first-run"))
    later(lambda: True, open_main)
    later(lambda: w().lib is not None, lambda: w().search.set_query_path(str(s["query"])))
    later(lambda: w().search.model.rowCount() > 0, lambda: QTimer.singleShot(2500, lambda: None))
    later(lambda: len(w().ctx.thumbs._pix) >= 8 and w().search.inside.model.rowCount() > 0,
          lambda: QTimer.singleShot(2000, lambda: None))
    later(lambda: True, lambda: shot("search"))
    later(lambda: True, lambda: w().search.explain(w().search.inside.paths()[0]))
    later(lambda: w().search.why is not None, lambda: QTimer.singleShot(1500, lambda: None))
    later(lambda: True, lambda: (shot("why-inside"), w().search.why.back()))
    later(lambda: True, lambda: w().search.explain(w().search.model.hits[1][0]))
    later(lambda: w().search.why is not None,  # opens on what carries the match: the shares, pairs outlined
          lambda: w().search.why.detectors.setCurrentRow(0))
    later(lambda: True, lambda: QTimer.singleShot(1500, lambda: None))
    later(lambda: True, lambda: shot("why-it-matches"))
    later(lambda: True, lambda: (w().search.why.back(), w().search.show_large(w().search.model.hits[2][0])))
    later(lambda: w().search.viewer.view.item.pixmap().width() > 300, lambda: QTimer.singleShot(800, lambda: None))
    later(lambda: True, lambda: shot("viewer"))
    later(lambda: True, lambda: (w().search.viewer.close_viewer(), w().tabs.setCurrentIndex(1),
                                 w().categories.auto_tag(str(s["unsorted"]))))
    later(lambda: len(w().categories.proposals) > 0, lambda: QTimer.singleShot(3000, lambda: None))
    later(lambda: len(w().ctx.thumbs._pix) >= 30,
          lambda: (w().categories.threshold.setValue(0), shot("categories")))
    later(lambda: True, lambda: (w().tabs.setCurrentWidget(w().duplicates), w().duplicates.find()))
    later(lambda: w().duplicates.copies.rowCount() > 0, lambda: QTimer.singleShot(3000, lambda: None))
    later(lambda: True, lambda: shot("duplicates"))

    def confirm() -> None:
        from sba_desktop.ui.trash_confirm import TrashConfirmation

        d = w().duplicates
        paths = [m.path for _g, ms in d.copies.selection() + d.similar.selection() for m in ms]
        holder["confirm"] = TrashConfirmation(paths, w().ctx.thumbs, w())
        holder["confirm"].show()

    later(lambda: True, confirm)
    later(lambda: True, lambda: QTimer.singleShot(2000, lambda: None))
    later(lambda: True, lambda: (shot("duplicates-confirm"), holder["confirm"].reject()))
    QTimer.singleShot(300, pump)
    app.exec()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
