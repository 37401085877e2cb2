"""Query by example: the query photo (drop, paste, open, region), the result grid, the large view
and "why it matches"."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage, QImageReader, QKeySequence, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMenu, QPushButton, QSlider,
                               QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from sba_desktop.text import display
from sba_desktop.library.decode import PHOTO_EXTENSIONS
from sba_desktop.library.library import SHOWN_RESULTS
from sba_desktop.jobs.restore import restore_and_reindex
from sba_desktop.ui.context import AppContext
from sba_desktop.ui.images import photo_qimage
from sba_desktop.ui.inside_band import InsideBand
from sba_desktop.ui.preferences import THUMB_MAX, THUMB_MIN, Preferences
from sba_desktop.ui.query_view import QueryView
from sba_desktop.ui.reveal import reveal_in_file_manager
from sba_desktop.ui.results import PathRole, ResultGrid, ResultsModel, ScoreRole
from sba_desktop.ui.viewer import LONG_SIDE, Viewer
from sba_desktop.ui.welcome import WelcomePage

PHOTO_FILTER = f"Photos ({' '.join('*' + e for e in sorted(PHOTO_EXTENSIONS))});;All files (*)"


class SearchPanel(QSplitter):
    def __init__(self, ctx: AppContext, parent=None):
        super().__init__(parent)
        self.setObjectName("searchSplitter")
        self.ctx = ctx
        self.query_path: str | None = None
        self.last_hits: list = []
        self.why = None
        self._names_checked_for: str | None = None  # the model whose detector names were checked
        self.last_trashed: list = []  # the last move to the trash, for Undo
        self.query_view = QueryView()
        self.query_view.regionSelected.connect(lambda r: self.run_search(region=r))
        self.expand_box = QCheckBox("Use close matches")
        self.expand_box.setChecked(True)
        self.expand_box.setToolTip("Search with the query's closest matches too, and compare each result "
                                   "with its own closest matches: finds more views of the same place or "
                                   "object. Off: plain nearest photos.")
        self.expand_box.toggled.connect(lambda _: self.run_search(region=self.query_view.region()))
        self.why_btn = QPushButton("Why it matches")
        self.why_btn.clicked.connect(self.explain_current)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(QLabel("<b>Query</b>"))
        lv.addWidget(self.query_view, 1)
        lv.addWidget(self.expand_box)
        lv.addWidget(self.why_btn)

        self.model = ResultsModel(ctx.thumbs, self)
        self.grid = ResultGrid()
        self.grid.setModel(self.model)
        self.grid.doubleClicked.connect(lambda idx: self.show_large(idx.data(PathRole)))
        self.grid.customContextMenuRequested.connect(self.result_menu)
        # keyboard: arrows move (Qt), Space/Enter open the viewer, W explains the match, S searches by it
        for key, slot in (("Return", lambda: self.show_large(self.current_path())),
                          ("Space", lambda: self.show_large(self.current_path())),
                          ("W", self.explain_current),
                          ("S", lambda: self.current_path() and self.set_query_path(self.current_path())),
                          ("Delete", lambda: self.trash(self.selected_paths())),
                          ("Ctrl+C", lambda: self.copy_paths(self.selected_paths())),
                          ("Ctrl+R", lambda: self.current_path() and reveal_in_file_manager(self.current_path())),
                          ("Shift+Return", lambda: self.open_external(self.current_path())),
                          ("Ctrl+Z", self.undo_trash)):
            sc = QShortcut(QKeySequence(key), self.grid)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(slot)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.sort_box = QComboBox()
        self.sort_box.addItems(["Best match first", "Name", "Folder", "Date taken"])
        self.sort_box.setToolTip("Sort the results")
        self.folder_box = QComboBox()
        self.folder_box.setToolTip("Show the results of one folder only")
        self.folder_box.setMinimumContentsLength(14)
        self.folder_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        # one setting with Settings > View: the slider changes the preference, the preference the grid
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(THUMB_MIN, THUMB_MAX)
        self.size_slider.setMaximumWidth(120)
        self.size_slider.setToolTip("Thumbnail size (also in Settings > View)")
        self._apply_prefs(ctx.prefs)
        self.size_slider.valueChanged.connect(lambda v: self.ctx.set_prefs(thumb_size=v))
        ctx.prefsChanged.connect(self._apply_prefs)
        self.sort_box.currentIndexChanged.connect(lambda _i: self._arrange())
        self.folder_box.currentIndexChanged.connect(lambda _i: self._arrange())
        bar = QHBoxLayout()
        bar.addWidget(self.summary, 1)
        for widget in (self.sort_box, self.folder_box, QLabel("Size"), self.size_slider):
            bar.addWidget(widget)
        grid_page = QWidget()
        gl = QVBoxLayout(grid_page)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.addLayout(bar)
        gl.addWidget(self.grid, 1)
        self.inside = InsideBand(ctx.thumbs, self.show_large, self.explain, self.set_query_path)
        gl.addWidget(self.inside)
        self.grid_page = grid_page
        self.viewer = Viewer(ctx.thumbs, self._load_for_viewer)
        self.viewer.closed.connect(self._viewer_closed)
        for key, slot in (("W", lambda: self.viewer.current() and self.explain(self.viewer.current())),
                          ("S", lambda: self.viewer.current() and self.set_query_path(self.viewer.current())),
                          ("Delete", lambda: self.viewer.current() and self.trash([self.viewer.current()])),
                          ("Ctrl+C", lambda: self.copy_paths([self.viewer.current()])),
                          ("Ctrl+R", lambda: reveal_in_file_manager(self.viewer.current()))):
            sc = QShortcut(QKeySequence(key), self.viewer)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        self.welcome = WelcomePage()
        self.results_area = QStackedWidget()
        self.results_area.addWidget(self.welcome)
        self.results_area.addWidget(self.grid_page)
        self.results_area.addWidget(self.viewer)
        self.addWidget(left)
        self.addWidget(self.results_area)
        self.setStretchFactor(1, 3)

    def _apply_prefs(self, prefs: Preferences) -> None:
        if self.grid.iconSize().width() != prefs.thumb_size:
            self.grid.set_thumb_size(prefs.thumb_size)
        if self.size_slider.value() != prefs.thumb_size:
            self.size_slider.blockSignals(True)  # shown, not set again
            self.size_slider.setValue(prefs.thumb_size)
            self.size_slider.blockSignals(False)

    def show_results(self, on: bool) -> None:
        self.results_area.setCurrentWidget(self.grid_page if on else self.welcome)

    # ------------------------------------------------------------------ queries
    def open_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by a photo", "", PHOTO_FILTER)
        if path:
            self.set_query_path(path)

    def paste(self) -> None:
        self.take_mime(QGuiApplication.clipboard().mimeData())

    def take_mime(self, md) -> bool:
        """A photo file or image data from another application becomes the query."""
        if md is None:
            return False
        if md.hasUrls():
            for url in md.urls():
                if url.isLocalFile() and os.path.isfile(url.toLocalFile()):
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
        qdir = self.ctx.paths.cache / "queries"
        qdir.mkdir(parents=True, exist_ok=True)
        path = qdir / f"query-{int(time.time() * 1000)}.png"
        img.save(str(path), "PNG")
        self.set_query_path(str(path))

    def set_query_path(self, path: str) -> None:
        self.query_path = path
        reader = QImageReader(path)
        reader.setAutoTransform(True)  # EXIF orientation, as the engine sees the photo
        img = reader.read()
        source_size = None
        if img.isNull():
            # Qt cannot show it (e.g. HEIC): our decoder's thumbnail, regions scaled to the photo
            from sba_desktop.library.decode import DecodeError, photo_size
            from sba_desktop.library.thumbnails import thumbnail

            thumb = thumbnail(self.ctx.paths.cache, path, 512)
            img = QImage(str(thumb)) if thumb else QImage()
            try:
                source_size = photo_size(path)
            except DecodeError:
                source_size = None
        self.query_view.set_image(img, source_size)
        self.run_search()

    def run_search(self, region=None) -> None:
        if self.query_path is None:
            return
        lib = self.ctx.lib
        if lib is None or lib.model is None:
            self.ctx.message.emit("Index some photos first (Add folder…)")
            return
        from sba_desktop.engine.match_cut import match_cut

        self.ctx.message.emit("Searching…")
        query, expand = self.query_path, self.expand_box.isChecked()

        def job():
            q = lib.encode_query(query, region)
            hits = lib.search_vector(q, SHOWN_RESULTS, expand)
            taken = lib.catalog.taken([h.photo_id for h in hits])
            cut = match_cut([h.score for h in hits])
            return hits, cut, {h.path: taken[h.photo_id] for h in hits if h.photo_id in taken}, q

        self.ctx.run(job, self._search_done, failed=lambda msg: self._search_failed(query, msg))

    def _search_failed(self, query: str, message: str) -> None:
        """A query that cannot be read: named, and nothing of the previous search stays on screen."""
        self.query_path = None
        self.last_hits = []
        self.model.set_hits([])
        self.inside.show_hits([])
        self.summary.setText("")
        self.query_view.set_image(QImage())
        self.show_results(True)
        self.ctx.message.emit("")
        self.ctx.failed.emit(f"{Path(display(query)).name}: {message}")

    def _arrange(self) -> None:
        folder = self.folder_box.currentData()
        self.model.arrange(self.model.SORTS[max(self.sort_box.currentIndex(), 0)], folder or None)

    def _search_done(self, result) -> None:
        hits, cut, taken, q = result
        self.inside.show_hits([])
        lib = self.ctx.lib
        if lib is not None and lib.model is not None and lib.settings().inside:
            # looking inside photos, after the results are shown (at 100,000 photos it reads 800 MB):
            # the photos the query appears in as a part, besides the matches framed above
            matches, serial = {h.photo_id for h in hits[:cut.count]}, self.inside.serial
            self.ctx.run(lambda: lib.inside.search(lib.model.model_id, q, exclude=matches),
                         lambda found: self.inside.show_hits(found, serial))
        self.model.set_hits([(h.path, h.score) for h in hits], cut, taken)
        self.folder_box.blockSignals(True)
        self.folder_box.clear()
        self.folder_box.addItem("All folders", "")
        for f in self.model.folders():
            self.folder_box.addItem(Path(display(f)).name or display(f), f)
            self.folder_box.setItemData(self.folder_box.count() - 1, display(f), Qt.ItemDataRole.ToolTipRole)
        self.folder_box.blockSignals(False)
        self._arrange()
        self.show_results(True)
        more = len(hits) - cut.count
        self.summary.setText(
            f"<b>{cut.count} match{'es' if cut.count != 1 else ''}</b> (framed), then {more} more like it"
            if cut.count and more else f"<b>{len(hits)} matches</b>" if hits else "Nothing in the library yet.")
        self.summary.setToolTip("Where the matches end is read from this search's own scores: the photos "
                                "of one place or object stand apart from the rest of the library.")
        self.ctx.message.emit(f"{len(hits)} results")
        if hits:
            self.grid.setCurrentIndex(self.model.index(0))
            self._check_detector_names()
        self.grid.setFocus()  # the shortcuts work at once, after a drop, a paste or an open
        self.last_hits = hits

    def _check_detector_names(self) -> None:
        """Check once per model, in the background, which detectors' words mean something in this
        library (a few seconds), so the first "Why it matches" does not wait for it."""
        lib = self.ctx.lib
        if lib is None or lib.model is None or self._names_checked_for == lib.model.model_id:
            return
        from sba_desktop.jobs.explain import named_detectors

        self._names_checked_for = lib.model.model_id
        self.ctx.run(named_detectors, lambda _named: None, lib,
                     failed=lambda msg: logging.getLogger("sba_desktop.ui").warning("detector names: %s", msg))

    # ------------------------------------------------------------------ results
    def current_path(self) -> str | None:
        idx = self.grid.currentIndex()
        return idx.data(PathRole) if idx.isValid() else None

    def selected_paths(self) -> list[str]:
        """The selected results in the grid's order (the current one when none is selected)."""
        rows = sorted(i.row() for i in self.grid.selectionModel().selectedIndexes())
        paths = [self.model.hits[r][0] for r in rows]
        return paths or ([self.current_path()] if self.current_path() else [])

    def copy_paths(self, paths: list[str]) -> None:
        if paths:
            QGuiApplication.clipboard().setText("\n".join(display(p) for p in paths))
            self.ctx.message.emit("Path copied" if len(paths) == 1 else f"{len(paths)} paths copied")

    def open_external(self, path: str | None) -> None:
        """The system's own viewer for this photo."""
        if path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))

    def result_menu(self, pos) -> None:
        idx = self.grid.indexAt(pos)
        if not idx.isValid():
            return
        path = idx.data(PathRole)
        chosen = self.selected_paths()
        if path not in chosen:
            chosen = [path]
        m = QMenu(self)
        for text, slot, key in (("View", lambda: self.show_large(path), "Space"),
                                ("Why it matches", lambda: self.explain(path), "W"),
                                ("Search with this photo", lambda: self.set_query_path(path), "S"),
                                (None, None, None),
                                ("Open with the system's viewer", lambda: self.open_external(path), "Shift+Return"),
                                ("Reveal in file manager", lambda: reveal_in_file_manager(path), "Ctrl+R"),
                                ("Copy path" if len(chosen) == 1 else f"Copy {len(chosen)} paths",
                                 lambda: self.copy_paths(chosen), "Ctrl+C"),
                                (None, None, None),
                                ("Move to trash…" if len(chosen) == 1 else f"Move {len(chosen)} to trash…",
                                 lambda: self.trash(chosen), "Delete")):
            if text is None:
                m.addSeparator()
                continue
            act = m.addAction(text, slot)
            act.setShortcut(QKeySequence(key))  # shown in the menu; the grid's shortcuts do the work
        if self.last_trashed:
            m.addAction("Undo move to trash", self.undo_trash).setShortcut(QKeySequence("Ctrl+Z"))
        m.exec(self.grid.viewport().mapToGlobal(pos))

    # ------------------------------------------------------------------ the trash
    def trash(self, paths: list[str], confirm: bool = True) -> None:
        """After one confirmation (unless Settings > Safety turned it off), move the photos to the
        system trash (Ctrl+Z brings them back)."""
        if not paths:
            return
        if confirm:
            from sba_desktop.ui.trash_confirm import ask_to_trash

            if not ask_to_trash(self, paths, self.ctx):
                return
        self.ctx.jobs.submit(lambda lib: lib.trash_photos(paths), self._trashed)

    def _trashed(self, done) -> None:
        moved = [t for t in done if t.moved]
        self.last_trashed = moved
        gone = {t.path for t in moved}
        self.model.remove_paths(gone)
        lines = [f"{len(moved)} moved to the trash (Ctrl+Z: undo)"]
        lines += [f"{display(t.path)}: not moved, {t.error}" for t in done if not t.moved]
        self.ctx.message.emit("; ".join(lines))

    def undo_trash(self) -> None:
        items, self.last_trashed = self.last_trashed, []
        if not items:
            return
        def done(failed) -> None:
            back = len(items) - len(failed)
            msg = [f"{back} brought back from the trash"]
            msg += [f"{display(t.path)}: {t.error}" for t in failed]
            self.ctx.message.emit("; ".join(msg))
            # the window's library is reopened after the job: search again once it holds them
            self.ctx.libraryLoaded.connect(lambda _lib: self.run_search(region=self.query_view.region()),
                                           Qt.ConnectionType.SingleShotConnection)

        self.ctx.jobs.submit(lambda lib: restore_and_reindex(lib, items), done)

    def show_large(self, path: str | None) -> None:
        """The viewer on this result, the others one key away (←/→); Esc comes back here."""
        if not path:
            return
        paths = self.model.paths()
        if path not in paths:
            paths = [path]
        captions = [self.model.strength(i, s)[1] for i, (_p, s) in enumerate(self.model.hits)] \
            if len(paths) == len(self.model.hits) else None
        self.results_area.setCurrentWidget(self.viewer)
        self.viewer.open(paths, paths.index(path), captions)

    def _load_for_viewer(self, path: str, done) -> None:
        self.ctx.run(photo_qimage, done, path, LONG_SIDE, failed=lambda _m: done(QImage()))

    def _viewer_closed(self, path: str) -> None:
        self.results_area.setCurrentWidget(self.grid_page)
        row = self.model.row_of(path)
        if row is not None:
            self.grid.setCurrentIndex(self.model.index(row))
            self.grid.scrollTo(self.model.index(row))
        self.grid.setFocus()

    def explain_current(self) -> None:
        path = self.current_path()
        if path:
            self.explain(path)

    def explain(self, result_path: str) -> None:
        if self.ctx.lib is None or self.query_path is None:
            return
        from sba_desktop.library.encoding import Source
        from sba_desktop.jobs.explain import explain

        lib, qpath, region = self.ctx.lib, self.query_path, self.query_view.region()

        def job():
            return explain(lib, Source("query", path=qpath, region=region), result_path)

        self.ctx.message.emit("Explaining the match…")
        self.ctx.run(job, lambda ex: self._show_why(ex, result_path))

    def score_shown(self, path: str) -> float | None:
        """The figure the grid shows for a result (the Why view shows the same one)."""
        row = self.model.row_of(path)
        return None if row is None else float(self.model.index(row).data(ScoreRole))

    def _show_why(self, ex, result_path: str) -> None:
        from sba_desktop.ui.why import WhyDialog

        self.ctx.message.emit("")
        from sba_desktop.jobs.explain import detector_gallery

        model_id = self.ctx.lib.model.model_id

        def load_gallery(position: int, done) -> None:
            # the window's library at the time asked: a page holding the one it was opened with
            # would keep a whole reopened library (model, index, caches) alive
            lib = self.ctx.lib
            if lib is None or lib.model is None or lib.model.model_id != model_id:
                done([])  # refitted meanwhile: the positions name other detectors now
                return
            self.ctx.run(detector_gallery, done, lib, position)

        row = self.model.row_of(result_path)
        shown = None if row is None else (self.model.hits[row][1], *self.model.strength(row, self.model.hits[row][1]),
                                          self.model.cut is None or self.model.cut.is_match(row))
        came_from = self.results_area.currentWidget()
        if self.why is not None and came_from is self.why:
            came_from = self.why.came_from
        self._release_why()  # one explanation at a time: its pictures and maps are not kept
        self.why = WhyDialog(ex, Path(display(result_path)).name, None, gallery_loader=load_gallery,
                             search_by=self.set_query_path, shown=shown)
        self.why.came_from = came_from
        self.why.back_to = lambda: self._why_back()
        self.results_area.addWidget(self.why)
        self.results_area.setCurrentWidget(self.why)
        self.why.back_btn.setFocus()

    def _why_back(self) -> None:
        """From Why back to where it was asked for: the viewer or the grid."""
        page = self.why.came_from if self.why is not None else None
        self.results_area.setCurrentWidget(page if page in (self.viewer, self.grid_page) else self.grid_page)
        (self.viewer.view if page is self.viewer else self.grid).setFocus()
        self._release_why()  # its maps are ~40 MB a photo pair; W explains again in a second

    def _release_why(self) -> None:
        if self.why is not None:
            self.results_area.removeWidget(self.why)
            self.why.deleteLater()
            self.why = None
