"""The main window of sba-desktop: the shell around one panel per job (library, search,
categories), with the toolbar, menus, status bar and the window's remembered geometry.

Start-up stays light: the window appears after reading the catalog with sqlite3 only; the
model and the network (onnxruntime) load in the background.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, QSettings, QSize, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QToolBar

from sba_desktop import APP_NAME, __version__
from sba_desktop.diagnostics import rss_mb
from sba_desktop.library.catalog import Catalog
from sba_desktop.logs import setup_logging
from sba_desktop.paths import app_paths
from sba_desktop.ui.categories import CategoriesPanel
from sba_desktop.ui.context import AppContext
from sba_desktop.ui.duplicates_view import DuplicatesPanel
from sba_desktop.ui.library_panel import LibraryController
from sba_desktop.ui.preferences import read_preferences
from sba_desktop.ui.search_panel import SearchPanel

log = logging.getLogger("sba_desktop.ui")
RESOURCES = Path(__file__).resolve().parents[1] / "resources"
DEFAULT_SIZE = QSize(1280, 820)
SHORTCUTS = """Search: Ctrl+O open a photo · Ctrl+V paste one · drop a photo or a folder on the window
Results: arrows move · Space or Enter view · W why it matches · S search with this photo
    Ctrl+C copy path · Ctrl+R reveal in file manager · Shift+Enter open with the system's viewer
    Delete move to trash · Ctrl+Z undo · Shift/Ctrl+click select several
Viewer: ←/→ previous/next · +/− or wheel zoom · 0 fit · 1 actual size · drag to pan · W why · Esc back
Why it matches: Esc back
Duplicates: click or 1-9 mark/unmark · Ctrl+1-9 keep that one · Enter compare · Delete move marked · Ctrl+Z undo
Library: Ctrl+Shift+A add folder · F5 index now · F1 this list"""


def fit_to_screen(wanted: QRect, available: QRect) -> QRect:
    """The window's rectangle moved and shrunk to lie inside the screen (title bar reachable)."""
    w = min(wanted.width(), available.width())
    h = min(wanted.height(), available.height())
    x = min(max(wanted.x(), available.x()), available.right() - w + 1)
    y = min(max(wanted.y(), available.y()), available.bottom() - h + 1)
    return QRect(x, y, w, h)


class MainWindow(QMainWindow):
    def __init__(self, home: str | None = None):
        super().__init__()
        self.paths = app_paths(home).ensure()
        setup_logging(self.paths)
        self.ctx = AppContext(home, self.paths, self)
        self.ctx.failed.connect(lambda m: self.show_error(m))  # late-bound: tests replace show_error
        self.ctx.libraryLoaded.connect(self._library_loaded)
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(QIcon(str(RESOURCES / "sba-desktop.svg")))
        self.setAcceptDrops(True)
        self.settings = QSettings(str(self.paths.data / "window.ini"), QSettings.Format.IniFormat)
        self.settings_dialog = None  # the Settings dialog while it is open

        self.search = SearchPanel(self.ctx)
        self.categories = CategoriesPanel(self.ctx)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.search, "Search")
        self.tabs.addTab(self.categories, "Categories")
        self.duplicates = DuplicatesPanel(self.ctx)
        self.tabs.addTab(self.duplicates, "Duplicates")
        self.setCentralWidget(self.tabs)

        self.progress_label = QLabel()
        self.status_label = QLabel()
        self.watch_label = QLabel()
        self.ctx.message.connect(self.progress_label.setText)
        acts = {k: (lambda slot, t=t, sc=sc: self._action(t, slot, sc)) for k, t, sc in (
            ("add", "Add folder…", "Ctrl+Shift+A"), ("remove", "Remove folder…", None),
            ("index", "Index now", "F5"), ("pause", "Pause", None), ("cancel", "Cancel", None),
            ("skipped", "Skipped files", None), ("watch", "Watch folders", None),
            ("inbox", "Inbox folder…", None))}
        self.library = LibraryController(self.ctx, self, acts)
        self.library.dock()
        self.library.watchStatus.connect(self.watch_label.setText)
        self.library.indexingProgress.connect(
            lambda p: self.search.welcome.show_indexing(p.done, p.total, p.phase))
        self.search.welcome.addFolderRequested.connect(lambda: self.library.add_folder())
        self.search.welcome.categoriesRequested.connect(lambda: self.tabs.setCurrentWidget(self.categories))
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.watch_label)
        self.statusBar().addPermanentWidget(self.progress_label)
        self.statusBar().addPermanentWidget(self.library.progress)
        self._build_actions()
        self._restore_geometry()
        self.refresh_status_from_catalog()
        QTimer.singleShot(0, self.ctx.load_library)
        # the window idles most of its life: what searches, explanations and jobs freed goes back
        # to the system (glibc keeps freed memory otherwise: ~110 MB after a walk of every screen)
        self._trim_timer = QTimer(self)
        self._trim_timer.setInterval(15_000)
        self._trim_timer.timeout.connect(release_free_memory)
        self._trim_timer.start()

    # the panels' state, for the tests and the shortcuts
    @property
    def lib(self):
        return self.ctx.lib

    # ------------------------------------------------------------------ actions
    def _action(self, text, slot, shortcut=None) -> QAction:
        a = QAction(text, self)
        a.triggered.connect(slot)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        return a

    def _build_actions(self) -> None:
        lc, sp = self.library, self.search
        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setIconSize(QSize(18, 18))
        self.addToolBar(tb)
        self.open_act = self._action("Open photo…", sp.open_photo, QKeySequence.StandardKey.Open)
        self.paste_act = self._action("Paste", sp.paste, QKeySequence.StandardKey.Paste)
        self.settings_act = self._action("Settings…", self.open_settings, QKeySequence.StandardKey.Preferences)
        self.log_act = self._action("Open log", self.open_log)
        for a in (self.open_act, lc.add_act, lc.index_act, lc.pause_act, lc.cancel_act, lc.skipped_act,
                  self.settings_act, self.log_act):
            tb.addAction(a)
        self.addAction(self.paste_act)
        menu = self.menuBar()
        f = menu.addMenu("&File")
        for a in (self.open_act, self.paste_act, lc.add_act, lc.remove_act):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self._action("Quit", self.close, QKeySequence.StandardKey.Quit))
        m = menu.addMenu("&Library")
        for a in (lc.index_act, lc.pause_act, lc.cancel_act, lc.skipped_act, lc.watch_act, lc.inbox_act,
                  self.settings_act, self.log_act):
            m.addAction(a)
        h = menu.addMenu("&Help")
        h.addAction(self._action("Keyboard shortcuts", lambda: QMessageBox.information(
            self, "Keyboard shortcuts", SHORTCUTS), "F1"))
        h.addAction(self._action("About", lambda: QMessageBox.about(self, APP_NAME, self.about_text())))

    def about_text(self) -> str:
        """The version and, for the curious, the model that describes the photos (not in the status bar)."""
        text = f"{APP_NAME} {__version__}\nFind photos by example, offline (SBA features)."
        lib = self.ctx.lib
        if lib is not None:
            s = lib.status()
            dims = f", {s['dims']} dims" if s["dims"] else ""
            text += f"\n\nModel: {s['model']}{dims}\nLibrary: {s['home']}"
        return text

    # ------------------------------------------------------------------ geometry
    def _restore_geometry(self) -> None:
        """Last session's size, position and splitter, fitted to the screen it opens on."""
        geo = self.settings.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            self.resize(DEFAULT_SIZE)
        split = self.settings.value("window/searchSplitter")
        if isinstance(split, QByteArray) and not split.isEmpty():
            self.search.restoreState(split)
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None and not self.isMaximized():
            avail = screen.availableGeometry()
            # the frame (title bar) is outside geometry(): keep room for it
            frame_h = max(0, self.frameGeometry().height() - self.geometry().height()) or 32
            inner = QRect(avail.x(), avail.y() + frame_h, avail.width(), avail.height() - frame_h)
            self.setGeometry(fit_to_screen(self.geometry(), inner))

    def _save_geometry(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/searchSplitter", self.search.saveState())
        self.settings.sync()

    # ------------------------------------------------------------------ library state
    def refresh_status_from_catalog(self) -> None:
        """Read the catalog with sqlite only (no model, no network), so the first window shows state."""
        cat = Catalog(self.paths.catalog_file)
        try:
            c = cat.counts()
            model = cat.active_model()
            folders = cat.folders()
            prefs = read_preferences(cat)
        finally:
            cat.close()
        self.ctx.show_prefs(prefs)  # the grid has its size before the first search
        desc = "" if model else " · photos are read and the library learnt at the first indexing"
        self.status_label.setText(f"{c['indexed']} photos indexed, {c['pending']} pending, "
                                  f"{c['skipped']} skipped{desc}")
        self._show_welcome(c["indexed"], bool(folders))

    def _show_welcome(self, indexed: int, has_folders: bool) -> None:
        if self.library.indexing:
            return
        if indexed == 0 and not has_folders:
            self.search.welcome.show_empty()
        else:
            self.search.welcome.show_ready(indexed)

    def _library_loaded(self, lib) -> None:
        if self.progress_label.text() == "The library is still loading…":
            self.progress_label.setText("")
        s = lib.status()
        self.status_label.setText(f"{s['indexed']} photos indexed, {s['pending']} pending, "
                                  f"{s['skipped']} skipped")  # the model's details: Help > About
        self._show_welcome(s["indexed"], bool(s["folders"]))
        if os.environ.get("SBA_DESKTOP_REPORT_STARTUP") == "idle":  # sba bench: memory once settled
            QTimer.singleShot(2000, self._report_idle)

    def _report_idle(self) -> None:
        mb = rss_mb()  # read where the system tells it cheaply (Linux); the release smoke tests
        rss = "n/a" if mb != mb else f"{mb:.1f}"  # on Windows/macOS only need the window to come up
        report_startup(f"idle_rss_mb={rss} torch_loaded={'torch' in sys.modules}")
        QApplication.quit()

    def show_error(self, message: str) -> None:
        self.progress_label.setText("")
        QMessageBox.warning(self, APP_NAME, message)

    # ------------------------------------------------------------------ drops: folders index, photos search
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        md = event.mimeData()
        folders = [u.toLocalFile() for u in md.urls() if u.isLocalFile() and os.path.isdir(u.toLocalFile())]
        if folders:
            self.library.start_index(folders)
            event.acceptProposedAction()
        elif self.search.take_mime(md):
            self.tabs.setCurrentWidget(self.search)
            event.acceptProposedAction()

    # ------------------------------------------------------------------ settings, log
    def open_settings(self) -> None:
        lib = self.ctx.lib
        if lib is None:
            return
        from sba_desktop.engine.registry import BACKBONES
        from sba_desktop.ui.settings import SettingsDialog

        dlg = SettingsDialog(lib.settings(), list(BACKBONES), str(self.paths.data.parent), self,
                             prefs=self.ctx.prefs, folders=lib.catalog.folders(),
                             add_folder=self.library.add_folder, forget_folder=self.library.forget)
        self.settings_dialog = dlg  # for the tests, which drive it while it is open
        try:
            accepted = dlg.exec() == QDialog.DialogCode.Accepted
        finally:
            self.settings_dialog = None
        if not accepted:
            return
        self.ctx.set_prefs(dlg.preferences())
        lib = self.ctx.lib  # a folder added or removed meanwhile has reopened the library
        looked_inside = lib.settings().inside
        if lib.save_settings(dlg.value()):
            answer = QMessageBox.question(
                self, "Re-encode the library?",
                "These settings change how photos are described: every photo must be encoded again "
                "(search keeps working with the old model until then). Rebuild now?")
            if answer == QMessageBox.StandardButton.Yes:
                self.library.start_index([], rebuild=True)
        elif dlg.value().inside != looked_inside:  # windows made (or dropped) by an indexing run
            self.library.start_index([])

    def open_log(self) -> None:
        self.paths.log_file.touch(exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.paths.log_file)))

    def closeEvent(self, event) -> None:
        self._save_geometry()
        self.ctx.flush_prefs()
        self.library.stop_watching()
        job = self.library.index_holder.get("job")
        if job is not None:
            job.cancel()
        self.ctx.pool.waitForDone(10000)
        super().closeEvent(event)


def release_free_memory() -> None:
    """Hand memory freed by Python and Qt back to the system (Linux glibc; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # musl or another libc: nothing to trim
        pass


def report_startup(line: str) -> None:
    """Start-up figures for sba bench and the smoke tests: printed, or appended to the file named by
    SBA_DESKTOP_REPORT_TO (a windowed Windows program has no console to print to)."""
    to = os.environ.get("SBA_DESKTOP_REPORT_TO")
    if to:
        with open(to, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    elif sys.stdout is not None:
        print(line, flush=True)


def open_arguments(win: MainWindow, paths: list[str]) -> None:
    """`sba-desktop PHOTO` searches by it, `sba-desktop FOLDER` adds and indexes it (the menu entry's %F)."""
    folders = [os.path.abspath(p) for p in paths if os.path.isdir(p)]
    photos = [os.path.abspath(p) for p in paths if os.path.isfile(p)]
    if folders:
        win.library.start_index(folders)
    if photos:
        def when_loaded(_lib, path=photos[0]) -> None:
            win.ctx.libraryLoaded.disconnect(when_loaded)
            win.search.set_query_path(path)
        win.ctx.libraryLoaded.connect(when_loaded)


def run(argv: list[str]) -> int:
    t0 = time.perf_counter()
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName("sba-desktop")
    app.setWindowIcon(QIcon(str(RESOURCES / "sba-desktop.svg")))
    home = None
    args = list(argv[1:])
    if "--home" in args:
        i = args.index("--home")
        home = args[i + 1] if i + 1 < len(args) else None
        del args[i:i + 2]
    win = MainWindow(home)
    win.show()
    open_arguments(win, [a for a in args if not a.startswith("-")])
    if os.environ.get("SBA_DESKTOP_REPORT_STARTUP"):
        QTimer.singleShot(0, lambda: (report_startup(f"first_window_s={time.perf_counter() - t0:.3f} "
                                                     f"first_window_epoch={time.time():.4f} "
                                                     f"torch_loaded={'torch' in sys.modules}"),
                                      app.quit() if os.environ.get("SBA_DESKTOP_REPORT_STARTUP") == "quit"
                                      else None))
    return app.exec()
