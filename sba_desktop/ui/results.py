"""The result grid: a list model with lazily loaded, disk-cached thumbnails."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QObject, QRunnable, QSize, Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView

from sba_desktop.text import display
from sba_desktop.library.thumbnails import THUMB_SIZE, thumbnail

PathRole = Qt.ItemDataRole.UserRole + 1
ScoreRole = Qt.ItemDataRole.UserRole + 2


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
        self.signals.done.emit(self.path, img)


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
            if len(self._pix) > 3000:  # bounded memory; the disk cache keeps the rest
                self._pix.pop(next(iter(self._pix)))
        self.loaded.emit(path)


class ResultsModel(QAbstractListModel):
    def __init__(self, thumbs: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self.hits: list[tuple[str, float]] = []
        self._row_of: dict[str, int] = {}
        self._offline: set[str] = set()
        thumbs.loaded.connect(self._thumb_loaded)

    def set_hits(self, hits: list[tuple[str, float]]) -> None:
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
        if role == Qt.ItemDataRole.DisplayRole:
            mark = "offline · " if path in self._offline else ""
            return f"{mark}{score:.3f}  {Path(display(path)).name}"
        if role == Qt.ItemDataRole.DecorationRole:
            pm = self.thumbs.pixmap(path)
            return QIcon(pm) if pm is not None else self.thumbs.loading_icon()
        if role == Qt.ItemDataRole.ToolTipRole:
            off = "\noffline: its folder is not reachable now (kept in the library)" if path in self._offline else ""
            return f"{display(path)}\nsimilarity {score:.3f}{off}"
        if role == PathRole:
            return path
        if role == ScoreRole:
            return score
        return None

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


class ResultGrid(QListView):
    """Virtualised icon grid; uniform item sizes keep 100k results cheap."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setIconSize(QSize(THUMB_SIZE * 3 // 4, THUMB_SIZE * 3 // 4))
        self.setGridSize(QSize(THUMB_SIZE * 3 // 4 + 24, THUMB_SIZE * 3 // 4 + 44))
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSpacing(6)
        self.setWordWrap(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
