"""The band "Inside other photos" under the search results: the photos where the query is only a
part, found by their windows when the library looks inside its photos (library/inside.py).
Hidden while empty; its photos open, explain and search like the results above."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMenu, QVBoxLayout, QWidget

from sba_desktop.ui.results import PathRole, ResultGrid, ResultsModel
from sba_desktop.ui.reveal import reveal_in_file_manager

INSIDE_THUMB = 96  # one row of small thumbnails under the results


class InsideBand(QWidget):
    def __init__(self, thumbs, view: Callable[[str], None], explain: Callable[[str], None],
                 search_by: Callable[[str], None], parent=None):
        super().__init__(parent)
        self.view, self.explain, self.search_by = view, explain, search_by
        self.serial = 0  # the search the band is for: a band that arrives after a newer search is dropped
        self.model = ResultsModel(thumbs, self)
        self.grid = ResultGrid()
        self.grid.setModel(self.model)
        self.grid.setFlow(ResultGrid.Flow.LeftToRight)
        self.grid.setWrapping(False)
        self.grid.set_thumb_size(INSIDE_THUMB)
        self.grid.setFixedHeight(self.grid.gridSize().height() + 24)  # one row and a scroll bar
        self.grid.doubleClicked.connect(lambda idx: view(idx.data(PathRole)))
        self.grid.customContextMenuRequested.connect(self._menu)
        for key, slot in (("W", explain), ("Space", view), ("Return", view), ("S", search_by)):
            sc = QShortcut(QKeySequence(key), self.grid)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(lambda slot=slot: self.current() and slot(self.current()))
        title = QLabel("<b>Inside other photos</b>: a part of these photos matches the query (W shows which part)")
        title.setToolTip("Found by looking inside photos (Settings > Model): each photo's parts are compared "
                         "with the query, so an object that fills a fifth of a photo is found too.")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(title)
        lay.addWidget(self.grid)
        self.setVisible(False)

    def show_hits(self, hits: list, serial: int | None = None) -> None:
        """The band's photos (library/inside.py InsideHit), best first; none: hidden. Without a
        serial (a new search, a failed one) any band still on its way is dropped when it comes."""
        if serial is None:
            self.serial += 1
        elif serial != self.serial:
            return
        self.model.set_hits([(h.path, h.score) for h in hits])
        self.setVisible(bool(hits))

    def paths(self) -> list[str]:
        return [p for p, _ in self.model.hits]

    def current(self) -> str | None:
        idx = self.grid.currentIndex()
        return idx.data(PathRole) if idx.isValid() else None

    def _menu(self, pos) -> None:
        idx = self.grid.indexAt(pos)
        if not idx.isValid():
            return
        path = idx.data(PathRole)
        m = QMenu(self)
        m.addAction("View", lambda: self.view(path))
        m.addAction("Why it matches", lambda: self.explain(path))
        m.addAction("Search with this photo", lambda: self.search_by(path))
        m.addAction("Reveal in file manager", lambda: reveal_in_file_manager(path))
        m.exec(self.grid.viewport().mapToGlobal(pos))
