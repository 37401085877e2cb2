"""The result grid: a list model with lazily loaded, disk-cached thumbnails; each cell shows the
file name and the match strength in words and bars, the matches set apart from "more like it"
(the cut and the strengths come from engine/match_cut.py)."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import (QAbstractListModel, QMimeData, QModelIndex, QObject, QRect, QRunnable, QSize, Qt,
                            QThreadPool, QUrl, Signal)
from PySide6.QtGui import QColor, QIcon, QImage, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate

from sba_desktop.text import display
from sba_desktop.library.thumbnails import THUMB_SIZE, thumbnail

PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2
NameRole = Qt.ItemDataRole.UserRole + 3
StrengthRole = Qt.ItemDataRole.UserRole + 4   # (bars 0-4, words)
MatchRole = Qt.ItemDataRole.UserRole + 5      # True above the cut, False for "more like it"
FirstMoreRole = Qt.ItemDataRole.UserRole + 6  # the first "more like it" after some matches
MEMORY_THUMBS = 300  # thumbnails kept in memory: <= 256 x 256 x 4 bytes each, <= 75 MB (a screenful is ~60)


class _ThumbSignals(QObject):
    done = Signal(str, object)  # path, QImage or None


class _ThumbJob(QRunnable):
    def __init__(self, cache_dir: Path, path: str, signals: _ThumbSignals):
        super().__init__()
        self.cache_dir, self.path, self.signals = cache_dir, path, signals

    def run(self) -> None:
        try:
            out = thumbnail(self.cache_dir, self.path)
        except OSError:
            out = None
        img = QImage(str(out)) if out else None  # thumbnails are already upright (EXIF applied)
        try:
            self.signals.done.emit(self.path, img)
        except RuntimeError:  # the window closed while this one loaded: nobody to tell
            pass


class ThumbnailLoader(QObject):
    """Loads thumbnails off the GUI thread; a small in-memory cache on top of the disk cache."""

    loaded = Signal(str)

    def __init__(self, cache_dir: Path, parent=None):
        super().__init__(parent)
        self.cache_dir = cache_dir
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._pix: dict[str, QPixmap] = {}
        self._asked: set[str] = set()
        self._signals = _ThumbSignals()
        self._signals.done.connect(self._done)
        self._loading_icon: QIcon | None = None

    def loading_icon(self) -> QIcon:
        """A neutral square while a thumbnail loads (keeps every grid cell the same size)."""
        if self._loading_icon is None:
            pm = QPixmap(THUMB_SIZE, THUMB_SIZE)
            pm.fill(Qt.GlobalColor.transparent)
            self._loading_icon = QIcon(pm)
        return self._loading_icon

    def pixmap(self, path: str) -> QPixmap | None:
        pm = self._pix.get(path)
        if pm is None and path not in self._asked:
            self._asked.add(path)
            self.pool.start(_ThumbJob(self.cache_dir, path, self._signals))
        return pm

    def _done(self, path: str, img) -> None:
        if img is not None and not img.isNull():
            self._pix[path] = QPixmap.fromImage(img)
            if len(self._pix) > MEMORY_THUMBS:  # bounded memory; the disk cache keeps the rest
                self._asked.discard(evicted := next(iter(self._pix)))  # asked again when shown again
                self._pix.pop(evicted)
        self.loaded.emit(path)


class ResultsModel(QAbstractListModel):
    def __init__(self, thumbs: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self.hits: list[tuple[str, float]] = []
        self.ranked: list[tuple[str, float]] = []
        self.matched: set[str] = set()
        self.sort, self.folder = "score", None
        self.taken: dict[str, float] = {}   # path -> EXIF capture time, for the photos that have one
        self.cut = None  # engine.match_cut.MatchCut of the search shown, or None
        self._row_of: dict[str, int] = {}
        self._offline: set[str] = set()
        thumbs.loaded.connect(self._thumb_loaded)

    SORTS = ("score", "name", "folder", "taken")

    def set_hits(self, hits: list[tuple[str, float]], cut=None, taken: dict[str, float] | None = None) -> None:
        self.cut = cut
        self.taken = dict(taken or {})
        self.ranked = list(hits)  # best first, as the search returned them
        self.matched = {p for p, _ in self.ranked[:cut.count]} if cut is not None else {p for p, _ in self.ranked}
        self._show(self.ranked)

    def arrange(self, sort: str = "score", folder: str | None = None) -> None:
        """Sort the results shown (score, name, folder, date taken: oldest first, photos with no
        capture time last) and keep one folder's only (None: all)."""
        self.sort, self.folder = sort, folder
        shown = [h for h in self.ranked if folder is None or os.path.dirname(h[0]) == folder]
        if sort == "name":
            shown.sort(key=lambda h: Path(display(h[0])).name.lower())
        elif sort == "folder":
            shown.sort(key=lambda h: (display(os.path.dirname(h[0])).lower(), Path(h[0]).name.lower()))
        elif sort == "taken":
            shown.sort(key=lambda h: (h[0] not in self.taken, self.taken.get(h[0], 0.0), Path(h[0]).name.lower()))
        self._show(shown)

    def remove_paths(self, gone: set[str]) -> None:
        """Photos moved away: out of the results; the others keep their place and their strength."""
        self.ranked = [h for h in self.ranked if h[0] not in gone]
        self.matched -= gone
        self.arrange(self.sort, self.folder)

    def folders(self) -> list[str]:
        return sorted({os.path.dirname(p) for p, _ in self.ranked})

    def _show(self, hits: list[tuple[str, float]]) -> None:
        self.beginResetModel()
        self.hits = list(hits)
        self._row_of = {p: i for i, (p, _) in enumerate(self.hits)}
        # photos of a folder that is not reachable now (an unplugged disk): kept, shown as offline
        self._offline = {p for p, _ in self.hits if not os.path.exists(p)}
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.hits)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        path, score = self.hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:  # what a screen reader says
            mark = "offline · " if path in self._offline else ""
            return f"{mark}{Path(display(path)).name}, {self.strength(index.row(), score)[1]}"
        if role == NameRole:
            return ("offline · " if path in self._offline else "") + Path(display(path)).name
        if role == StrengthRole:
            return self.strength(index.row(), score)
        if role == MatchRole:
            return path in self.matched
        if role == FirstMoreRole:
            return (self.sort == "score" and self.folder is None and self.cut is not None
                    and 0 < len(self.matched) == index.row())
        if role == Qt.ItemDataRole.DecorationRole:
            pm = self.thumbs.pixmap(path)
            return QIcon(pm) if pm is not None else self.thumbs.loading_icon()
        if role == Qt.ItemDataRole.ToolTipRole:
            off = "\noffline: its folder is not reachable now (kept in the library)" if path in self._offline else ""
            bars, words = self.strength(index.row(), score)
            return f"{display(path)}\n{words} · similarity {score:.3f}{off}"
        if role == PathRole:
            return path
        if role == ScoreRole:
            return score
        return None

    def strength(self, row: int, score: float) -> tuple[int, str]:
        if self.cut is None:
            return 0, f"similarity {score:.3f}"
        bars, words = self.cut.strength(score)
        if self.hits[row][0] not in self.matched and bars > 2:
            bars, words = 2, "close"  # below the cut it is never called a match
        return bars, words

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def paths(self) -> list[str]:
        return [p for p, _ in self.hits]

    def _thumb_loaded(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def flags(self, index: QModelIndex):
        return super().flags(index) | Qt.ItemFlag.ItemIsDragEnabled

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:
        md = QMimeData()
        md.setUrls([QUrl.fromLocalFile(self.hits[i.row()][0]) for i in indexes if i.isValid()])
        return md


MATCH_COLOUR = QColor(46, 160, 67)


class ResultDelegate(QStyledItemDelegate):
    """A cell: the thumbnail in a square box (portrait or landscape alike), the file name on its
    own line, the strength as bars and words; matches framed, the first "more like it" marked."""

    def __init__(self, grid: "ResultGrid"):
        super().__init__(grid)
        self.grid = grid

    def sizeHint(self, option, index) -> QSize:
        return self.grid.gridSize() - QSize(6, 6)

    def paint(self, painter, option, index) -> None:
        painter.save()
        r = option.rect
        side = self.grid.iconSize().width()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(r, option.palette.highlight())
        box = QRect(r.left() + (r.width() - side) // 2, r.top() + 4, side, side)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if icon is not None:
            pm = icon.pixmap(QSize(side, side))
            scaled = pm.size().scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio)
            x = box.left() + (side - scaled.width()) // 2
            y = box.top() + (side - scaled.height()) // 2
            painter.drawPixmap(QRect(x, y, scaled.width(), scaled.height()), pm)
        if index.data(MatchRole):
            painter.setPen(QPen(MATCH_COLOUR, 2))
            painter.drawRect(box.adjusted(-2, -2, 2, 2))
        if index.data(FirstMoreRole):
            painter.setPen(QPen(option.palette.mid().color(), 2, Qt.PenStyle.DashLine))
            painter.drawLine(r.left() + 1, r.top(), r.left() + 1, r.bottom())
        text = option.palette.highlightedText() if selected else option.palette.text()
        painter.setPen(text.color())
        fm = painter.fontMetrics()
        line = fm.height()
        name_rect = QRect(r.left() + 2, box.bottom() + 4, r.width() - 4, line)
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignHCenter,
                         fm.elidedText(index.data(NameRole) or "", Qt.TextElideMode.ElideMiddle, r.width() - 6))
        bars, words = index.data(StrengthRole) or (0, "")
        meter = "▮" * bars + "▯" * (4 - bars) + "  " if self.grid.model().cut is not None else ""
        painter.drawText(QRect(r.left() + 2, name_rect.bottom() + 1, r.width() - 4, line),
                         Qt.AlignmentFlag.AlignHCenter,
                         fm.elidedText(meter + words, Qt.TextElideMode.ElideRight, r.width() - 6))
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(QPen(option.palette.highlight().color(), 1, Qt.PenStyle.DotLine))
            painter.drawRect(r.adjusted(0, 0, -1, -1))
        painter.restore()


class ResultGrid(QListView):
    """Virtualised icon grid; uniform item sizes keep 100k results cheap."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.set_thumb_size(THUMB_SIZE * 3 // 4)
        self.setSpacing(6)
        self.setItemDelegate(ResultDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def set_thumb_size(self, side: int) -> None:
        """Thumbnails `side` pixels square; two lines of caption under each."""
        line = self.fontMetrics().height()
        self.setIconSize(QSize(side, side))
        self.setGridSize(QSize(max(side + 16, 120), side + 2 * line + 18))
