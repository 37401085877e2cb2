"""The main window of sba-desktop.

Start-up stays light: the window appears after reading the catalog with
sqlite3 only; the model and the network (onnxruntime) load in the background.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QThreadPool, QTimer, QUrl
from PySide6.QtGui import (QAction, QDesktopServices, QGuiApplication, QIcon, QImage, QImageReader, QKeySequence,
                           QPixmap, QShortcut)
from PySide6.QtWidgets import (QApplication, QCheckBox, QDialog, QDockWidget, QFileDialog, QLabel, QListWidget,
                               QMainWindow, QMenu, QMessageBox, QProgressBar,
                               QPushButton, QScrollArea, QSplitter, QTabWidget, QToolBar, QVBoxLayout,
                               QWidget)

from .. import APP_NAME, __version__
from ..library.catalog import Catalog, display
from ..logs import setup_logging
from ..paths import app_paths
from .categories import CategoriesPanel
from .query_view import QueryView
from .results import PathRole, ResultGrid, ResultsModel, ThumbnailLoader
from .workers import Worker, submit

log = logging.getLogger("sba_desktop.ui")
RESOURCES = Path(__file__).resolve().parents[1] / "resources"
TOP_K = 200


def _open_library(home):
    from ..library.library import Library

    lib = Library.open(home)
    if lib.model is not None:
        lib.encoder()  # loads the network now, not at the first query
    return lib


def _run_index(home, folders, holder: dict, rebuild: bool, progress):
    from ..library.indexer import IndexJob
    from ..library.library import Library

    lib = Library.open(home)
    try:
        job = IndexJob(lib, folders, progress, rebuild=rebuild)
        holder["job"] = job
        return job.run()
    finally:
        lib.close()


class MainWindow(QMainWindow):
    def __init__(self, home: str | None = None):
        super().__init__()
        self.home = home
        self.paths = app_paths(home).ensure()
        setup_logging(self.paths)
        self.lib = None
        self.pool = QThreadPool.globalInstance()
        self.index_holder: dict = {}
        self.indexing = False
        self.query_path: str | None = None
        self.setWindowTitle(f"{APP_NAME}")
        self.setWindowIcon(QIcon(str(RESOURCES / "sba-desktop.svg")))
        self.setAcceptDrops(True)
        self.resize(1280, 820)

        self.thumbs = ThumbnailLoader(self.paths.cache, self)
        self.query_view = QueryView()
        self.query_view.regionSelected.connect(lambda r: self.run_search(region=r))
        self.qe_box = QCheckBox("Query expansion")
        self.qe_box.setToolTip("Average the query with its top 10 results and search again: "
                               "better when many photos show the same thing, worse for unique objects")
        self.qe_box.toggled.connect(lambda _: self.run_search(region=self.query_view.region()))
        self.why_btn = QPushButton("Why it matches")
        self.why_btn.clicked.connect(self.explain_current)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(QLabel("<b>Query</b>"))
        lv.addWidget(self.query_view, 1)
        lv.addWidget(self.qe_box)
        lv.addWidget(self.why_btn)

        self.model = ResultsModel(self.thumbs, self)
        self.grid = ResultGrid()
        self.grid.setModel(self.model)
        self.grid.doubleClicked.connect(lambda idx: self.show_large(idx.data(PathRole)))
        self.grid.customContextMenuRequested.connect(self.result_menu)
        # keyboard: arrows move (Qt), Enter opens the large view, W explains the match, S searches by it
        for key, slot in (("Return", lambda: self.show_large(self.current_path())),
                          ("W", self.explain_current),
                          ("S", lambda: self.current_path() and self.set_query_path(self.current_path()))):
            sc = QShortcut(QKeySequence(key), self.grid)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(slot)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.grid)
        split.setStretchFactor(1, 3)

        self.categories = CategoriesPanel(self.thumbs)
        self.categories.chooseRootRequested.connect(self.choose_category_root)
        self.categories.autoTagRequested.connect(self.auto_tag)
        self.categories.acceptRequested.connect(self.decide_label)
        self.categories.acceptAllRequested.connect(self.accept_all)
        self.categories.writeXmpRequested.connect(self.write_xmp)
        self.tabs = QTabWidget()
        self.tabs.addTab(split, "Search")
        self.tabs.addTab(self.categories, "Categories")
        self.setCentralWidget(self.tabs)

        self.skipped = QListWidget()
        dock = QDockWidget("Skipped files", self)
        dock.setObjectName("skippedDock")
        dock.setWidget(self.skipped)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        dock.hide()
        self.skipped_dock = dock

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.progress_label = QLabel()
        self.status_label = QLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress_label)
        self.statusBar().addPermanentWidget(self.progress)
        self._build_actions()
        self.refresh_status_from_catalog()
        QTimer.singleShot(0, self.load_library)

    # ------------------------------------------------------------------ actions
    def _action(self, text, slot, shortcut=None, tip=None) -> QAction:
        a = QAction(text, self)
        a.triggered.connect(slot)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
        return a

    def _build_actions(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setIconSize(QSize(18, 18))
        self.addToolBar(tb)
        self.open_act = self._action("Open photo…", self.open_photo, QKeySequence.StandardKey.Open)
        self.paste_act = self._action("Paste", self.paste, QKeySequence.StandardKey.Paste)
        self.add_act = self._action("Add folder…", self.add_folder, "Ctrl+Shift+A")
        self.remove_act = self._action("Remove folder…", self.remove_folder)
        self.index_act = self._action("Index now", lambda: self.start_index([]), "F5")
        self.pause_act = self._action("Pause", self.toggle_pause)
        self.cancel_act = self._action("Cancel", self.cancel_index)
        self.pause_act.setEnabled(False)
        self.cancel_act.setEnabled(False)
        self.skipped_act = self._action("Skipped files", self.show_skipped)
        self.settings_act = self._action("Settings…", self.open_settings, QKeySequence.StandardKey.Preferences)
        self.log_act = self._action("Open log", self.open_log)
        for a in (self.open_act, self.add_act, self.index_act, self.pause_act, self.cancel_act, self.skipped_act,
                  self.settings_act, self.log_act):
            tb.addAction(a)
        self.addAction(self.paste_act)
        menu = self.menuBar()
        f = menu.addMenu("&File")
        for a in (self.open_act, self.paste_act, self.add_act, self.remove_act):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self._action("Quit", self.close, QKeySequence.StandardKey.Quit))
        lib = menu.addMenu("&Library")
        for a in (self.index_act, self.pause_act, self.cancel_act, self.skipped_act, self.settings_act, self.log_act):
            lib.addAction(a)
        h = menu.addMenu("&Help")
        h.addAction(self._action("About", lambda: QMessageBox.about(
            self, APP_NAME, f"{APP_NAME} {__version__}\nFind photos by example, offline (SBA features).")))

    # ------------------------------------------------------------------ library state
    def refresh_status_from_catalog(self) -> None:
        """Read the catalog with sqlite only (no torch), so the first window already shows state."""
        cat = Catalog(self.paths.data / "catalog.sqlite")
        try:
            c = cat.counts()
            model = cat.active_model()
        finally:
            cat.close()
        desc = f"model {model[2]}" if model else "no model yet (fitted at the first indexing)"
        self.status_label.setText(f"{c['indexed']} photos indexed, {c['pending']} pending, "
                                  f"{c['skipped']} skipped · {desc}")

    def load_library(self) -> None:
        if self.lib is None:
            self.progress_label.setText("Loading the model…")
        w = Worker(_open_library, self.home)
        w.signals.finished.connect(self._library_loaded)
        w.signals.failed.connect(self.show_error)
        submit(w, self.pool)

    def _library_loaded(self, lib) -> None:
        # the previous library is not closed here: a background task may still hold it
        self.lib = lib
        if self.progress_label.text() == "Loading the model…":
            self.progress_label.setText("")
        s = lib.status()
        dims = f", {s['dims']} dims" if s["dims"] else ""
        self.status_label.setText(f"{s['indexed']} photos indexed, {s['pending']} pending, "
                                  f"{s['skipped']} skipped · {s['model']}{dims}")
        self._fill_skipped()
        if os.environ.get("SBA_DESKTOP_REPORT_STARTUP") == "idle":  # sba bench: memory once settled
            QTimer.singleShot(2000, self._report_idle)

    def _report_idle(self) -> None:
        with open("/proc/self/status") as fh:
            rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        print(f"idle_rss_mb={rss / 1024:.1f} torch_loaded={'torch' in sys.modules}", flush=True)
        QApplication.quit()

    def _fill_skipped(self) -> None:
        if self.lib is None:
            return
        self.skipped.clear()
        for p, why in self.lib.catalog.skipped():
            self.skipped.addItem(f"{display(p)} — {why}")
        self.skipped_act.setText(f"Skipped files ({self.skipped.count()})")

    def show_error(self, message: str) -> None:
        self.progress_label.setText("")
        QMessageBox.warning(self, APP_NAME, message)

    # ------------------------------------------------------------------ indexing
    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a photo folder")
        if folder:
            self.start_index([folder])

    def remove_folder(self) -> None:
        if self.lib is None:
            return
        folders = self.lib.catalog.folders()
        if not folders:
            return
        from PySide6.QtWidgets import QInputDialog

        folder, ok = QInputDialog.getItem(self, "Remove folder", "Forget this folder (files stay on disk):",
                                          [display(f) for f in folders], 0, False)
        if ok:
            real = folders[[display(f) for f in folders].index(folder)]
            w = Worker(self.lib.forget_folder, real)
            w.signals.finished.connect(lambda _: self.load_library())
            w.signals.failed.connect(self.show_error)
            submit(w, self.pool)

    def start_index(self, folders: list[str], rebuild: bool = False) -> None:
        if self.indexing:
            return
        self.indexing = True
        self.index_holder = {}
        self.progress.setValue(0)
        self.progress.show()
        self.pause_act.setEnabled(True)
        self.cancel_act.setEnabled(True)
        self.index_act.setEnabled(False)
        w = Worker(_run_index, self.home, folders, self.index_holder, rebuild, with_progress=True)
        w.signals.progress.connect(self._index_progress)
        w.signals.finished.connect(self._index_done)
        w.signals.failed.connect(self._index_failed)
        submit(w, self.pool)

    def _index_progress(self, p) -> None:
        if p.total:
            self.progress.setMaximum(p.total)
            self.progress.setValue(p.done)
            eta = f" · ETA {int(p.eta_s)} s" if p.eta_s else ""
            rate = f" · {p.rate:.1f}/s" if p.rate else ""
            self.progress_label.setText(f"{p.phase} {p.done}/{p.total}{rate}{eta}")
        else:
            self.progress.setMaximum(0)
            self.progress_label.setText(f"{p.phase} {p.done} files…")

    def _index_finished_ui(self) -> None:
        self.indexing = False
        self.progress.hide()
        self.pause_act.setEnabled(False)
        self.pause_act.setText("Pause")
        self.cancel_act.setEnabled(False)
        self.index_act.setEnabled(True)

    def _index_done(self, report) -> None:
        self._index_finished_ui()
        self.last_report = report
        self.progress_label.setText("Indexing cancelled" if report.cancelled else
                                    f"Indexed {report.encoded} photos in {report.seconds:.0f} s")
        self.load_library()

    def _index_failed(self, message: str) -> None:
        self._index_finished_ui()
        self.show_error(message)

    def toggle_pause(self) -> None:
        job = self.index_holder.get("job")
        if job is None:
            return
        if job.paused:
            job.resume()
            self.pause_act.setText("Pause")
        else:
            job.pause()
            self.pause_act.setText("Resume")
            self.progress_label.setText("Paused")

    def cancel_index(self) -> None:
        job = self.index_holder.get("job")
        if job is not None:
            job.cancel()

    def show_skipped(self) -> None:
        self._fill_skipped()
        self.skipped_dock.show()

    # ------------------------------------------------------------------ queries
    def open_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by a photo", "",
                                              "Photos (*.jpg *.jpeg *.png *.webp *.tif *.tiff *.bmp *.gif "
                                              "*.heic *.avif);;All files (*)")
        if path:
            self.set_query_path(path)

    def paste(self) -> None:
        md = QGuiApplication.clipboard().mimeData()
        self._take_mime(md)

    def _take_mime(self, md) -> bool:
        if md is None:
            return False
        if md.hasUrls():
            for url in md.urls():
                if url.isLocalFile():
                    self.set_query_path(url.toLocalFile())
                    return True
        if md.hasImage():
            img = QImage(md.imageData())
            if not img.isNull():
                self.set_query_image(img)
                return True
        return False

    def set_query_image(self, img: QImage) -> None:
        """Image data (dragged from another app or pasted): saved in the cache, not in photo folders."""
        qdir = self.paths.cache / "queries"
        qdir.mkdir(parents=True, exist_ok=True)
        path = qdir / f"query-{int(time.time() * 1000)}.png"
        img.save(str(path), "PNG")
        self.set_query_path(str(path))

    def set_query_path(self, path: str) -> None:
        self.query_path = path
        reader = QImageReader(path)
        reader.setAutoTransform(True)  # EXIF orientation, as the engine sees the photo
        img = reader.read()
        if img.isNull():
            # Qt cannot show it (e.g. HEIC): fall back to our decoder's thumbnail
            from ..library.thumbnails import thumbnail

            thumb = thumbnail(self.paths.cache, path, 512)
            img = QImage(str(thumb)) if thumb else QImage()
        self.query_view.set_image(img)
        self.run_search()

    def run_search(self, region=None) -> None:
        if self.query_path is None:
            return
        if self.lib is None or self.lib.model is None:
            self.progress_label.setText("Index some photos first (Add folder…)")
            return
        self.progress_label.setText("Searching…")
        w = Worker(self.lib.search, self.query_path, TOP_K, region, self.qe_box.isChecked())
        w.signals.finished.connect(self._search_done)
        w.signals.failed.connect(self.show_error)
        submit(w, self.pool)

    def _search_done(self, hits) -> None:
        self.model.set_hits([(h.path, h.score) for h in hits])
        self.progress_label.setText(f"{len(hits)} results")
        if hits:
            self.grid.setCurrentIndex(self.model.index(0))
        self.last_hits = hits

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        if self._take_mime(event.mimeData()):
            event.acceptProposedAction()

    # ------------------------------------------------------------------ results
    def current_path(self) -> str | None:
        idx = self.grid.currentIndex()
        return idx.data(PathRole) if idx.isValid() else None

    def result_menu(self, pos) -> None:
        idx = self.grid.indexAt(pos)
        if not idx.isValid():
            return
        path = idx.data(PathRole)
        m = QMenu(self)
        m.addAction("Open", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(path)))
        m.addAction("Reveal in file manager",
                    lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path))))
        m.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(display(path)))
        m.addAction("Search similar to this", lambda: self.set_query_path(path))
        m.addAction("Why it matches", lambda: self.explain(path))
        m.exec(self.grid.viewport().mapToGlobal(pos))

    def show_large(self, path: str | None) -> None:
        if not path:
            return
        dlg = QDialog(self)
        dlg.setWindowTitle(display(path))
        lab = QLabel()
        pm = QPixmap(path)
        if pm.isNull():
            lab.setText("This photo cannot be shown.")
        else:
            screen = self.screen().availableGeometry().size() * 0.85
            lab.setPixmap(pm.scaled(screen, Qt.AspectRatioMode.KeepAspectRatio,
                                    Qt.TransformationMode.SmoothTransformation))
        area = QScrollArea()
        area.setWidget(lab)
        QVBoxLayout(dlg).addWidget(area)
        dlg.resize(900, 700)
        dlg.show()

    def explain_current(self) -> None:
        path = self.current_path()
        if path:
            self.explain(path)

    def explain(self, result_path: str) -> None:
        if self.lib is None or self.query_path is None:
            return
        from ..library.decode import decode
        from ..library.explain import explain
        from ..engine.encoder import crop_region

        lib, qpath, region = self.lib, self.query_path, self.query_view.region()

        def job():
            photo = decode(qpath)
            return explain(lib, crop_region(photo.rgb, region), result_path)

        self.progress_label.setText("Computing heatmaps…")
        w = Worker(job)
        w.signals.finished.connect(lambda ex: self._show_why(ex, result_path))
        w.signals.failed.connect(self.show_error)
        submit(w, self.pool)

    def _show_why(self, ex, result_path: str) -> None:
        from .why import WhyDialog

        self.progress_label.setText("")
        self.why = WhyDialog(ex, Path(display(result_path)).name, self)
        self.why.show()

    # ------------------------------------------------------------------ categories
    def _lib_task(self, fn, done, *args) -> None:
        if self.lib is None:
            self.progress_label.setText("The library is still loading…")
            return
        w = Worker(fn, self.lib, *args)
        w.signals.finished.connect(done)
        w.signals.failed.connect(self.show_error)
        submit(w, self.pool)

    def _index_folder_then(self, folder: str | None, prompt: str, then, done, message: str) -> None:
        """Index a folder (asking for it if not given), then run then(lib, folder), off the GUI thread."""
        folder = folder or QFileDialog.getExistingDirectory(self, prompt)
        if not folder:
            return
        from ..library.indexer import IndexJob

        def job(lib, folder):
            IndexJob(lib, [folder]).run()
            return then(lib, folder)

        self.progress_label.setText(message)
        self._lib_task(job, done, folder)

    def choose_category_root(self, root: str | None = None) -> None:
        from ..library.tagging import label_from_folders

        self._index_folder_then(root, "Folder whose subfolders are categories", label_from_folders,
                                self._categories_set, "Indexing category examples…")

    def _categories_set(self, counts) -> None:
        self.progress_label.setText(f"{len(counts)} categories")
        self.categories.set_categories(counts)
        self.load_library()

    def auto_tag(self, folder: str | None = None) -> None:
        from ..library.tagging import propose

        self._index_folder_then(folder, "Folder of unsorted photos", propose, self._proposed, "Auto-tagging…")

    def _proposed(self, proposals) -> None:
        self.progress_label.setText(f"{len(proposals)} proposals")
        self.categories.set_proposals(proposals)

    def decide_label(self, photo_id: int, accepted: bool) -> None:
        from ..library.tagging import set_accepted

        self._lib_task(set_accepted, lambda _: None, photo_id, accepted)

    def accept_all(self, min_conf: float) -> None:
        from ..library.tagging import accept, proposals

        def job(lib, c):
            accept(lib, c)
            return proposals(lib)

        self._lib_task(job, self._proposed, min_conf)

    def write_xmp(self) -> None:
        from ..library.tagging import write_xmp

        self._lib_task(write_xmp, lambda n: self.progress_label.setText(f"Wrote {n} XMP sidecars"))

    # ------------------------------------------------------------------ settings, log
    def open_settings(self) -> None:
        if self.lib is None:
            return
        from ..engine.registry import BACKBONES
        from .settings import SettingsDialog

        dlg = SettingsDialog(self.lib.settings(), list(BACKBONES), str(self.paths.data.parent), self)
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return
        if self.lib.save_settings(dlg.value()):
            answer = QMessageBox.question(
                self, "Re-encode the library?",
                "These settings change how photos are described: every photo must be encoded again "
                "(search keeps working with the old model until then). Rebuild now?")
            if answer == QMessageBox.StandardButton.Yes:
                self.rebuild()

    def rebuild(self) -> None:
        self.start_index([], rebuild=True)

    def open_log(self) -> None:
        self.paths.log_file.touch(exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.paths.log_file)))

    def closeEvent(self, event) -> None:
        job = self.index_holder.get("job")
        if job is not None:
            job.cancel()
        self.pool.waitForDone(10000)
        super().closeEvent(event)


def run(argv: list[str]) -> int:
    t0 = time.perf_counter()
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName("sba-desktop")
    app.setWindowIcon(QIcon(str(RESOURCES / "sba-desktop.svg")))
    home = None
    if "--home" in argv:
        home = argv[argv.index("--home") + 1]
    win = MainWindow(home)
    win.show()
    if os.environ.get("SBA_DESKTOP_REPORT_STARTUP"):
        QTimer.singleShot(0, lambda: (print(f"first_window_s={time.perf_counter() - t0:.3f} "
                                            f"first_window_epoch={time.time():.4f} "
                                            f"torch_loaded={'torch' in sys.modules}", flush=True),
                                      app.quit() if os.environ.get("SBA_DESKTOP_REPORT_STARTUP") == "quit"
                                      else None))
    return app.exec()
