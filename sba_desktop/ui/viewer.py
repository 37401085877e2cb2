"""The viewer: one photo fitted to the window, zoom and pan, the next and previous result, Esc back
to the grid. The picture is read off the GUI thread; its thumbnail stands in meanwhile."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QLabel, QVBoxLayout, QWidget

from sba_desktop.text import display

LONG_SIDE = 2560  # pixels read for the screen: enough for 100 % on a large monitor, bounded memory
ZOOM_STEP = 1.25


class PhotoView(QGraphicsView):
    """Fit to the window until the person zooms; the wheel zooms, dragging pans."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.fitted = True
        self.full_width = 0  # the photo's own width, for "100 %"

    def set_pixmap(self, pm: QPixmap, full_width: int | None = None) -> None:
        self.item.setPixmap(pm)
        self.full_width = full_width or pm.width()
        self.scene().setSceneRect(QRectF(pm.rect()))
        if self.fitted:
            self.fit()

    def fit(self) -> None:
        self.fitted = True
        if not self.item.pixmap().isNull():
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self, factor: float) -> None:
        self.fitted = False
        self.scale(factor, factor)

    def actual_size(self) -> None:
        """One pixel of the photo on one pixel of the screen."""
        pm = self.item.pixmap()
        if pm.isNull():
            return
        self.fitted = False
        self.resetTransform()
        f = self.full_width / pm.width() if pm.width() else 1.0
        self.scale(1 / f, 1 / f) if f else None

    def scale_shown(self) -> float:
        pm = self.item.pixmap()
        return self.transform().m11() * pm.width() / self.full_width if self.full_width else 1.0

    def wheelEvent(self, event) -> None:
        self.zoom(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.fitted:
            self.fit()


class Viewer(QWidget):
    """Shows paths[i]; `closed` when the person goes back to the grid (with the photo last shown)."""

    closed = Signal(str)
    current_changed = Signal(str)

    def __init__(self, thumbs, load: Callable[[str, Callable[[QImage], None]], None], parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self.load = load  # load(path, done(QImage)) off the GUI thread
        self.paths: list[str] = []
        self.captions: list[str] = []
        self.i = 0
        self.view = PhotoView()
        self.title = QLabel()
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint = QLabel("←/→ previous/next · wheel or +/− zoom · 0 fit · 1 actual size · drag to pan · "
                           "W why it matches · Esc back to the results")
        self.hint.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.hint)
        for keys, slot in ((("Right", "PgDown", "Space"), self.next), (("Left", "PgUp", "Backspace"), self.previous),
                           (("+", "=", "Ctrl++"), lambda: self.view.zoom(ZOOM_STEP)),
                           (("-", "Ctrl+-"), lambda: self.view.zoom(1 / ZOOM_STEP)),
                           (("0",), self.view.fit), (("1",), self.view.actual_size),
                           (("Esc", "Return"), self.close_viewer), (("Home",), lambda: self.show_at(0)),
                           (("End",), lambda: self.show_at(len(self.paths) - 1))):
            for key in keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(slot)

    def open(self, paths: list[str], i: int, captions: list[str] | None = None) -> None:
        self.paths = list(paths)
        self.captions = list(captions or [""] * len(paths))
        self.show_at(i)
        self.view.setFocus()

    def current(self) -> str | None:
        return self.paths[self.i] if 0 <= self.i < len(self.paths) else None

    def show_at(self, i: int) -> None:
        if not self.paths:
            return
        self.i = max(0, min(i, len(self.paths) - 1))
        path = self.paths[self.i]
        d = display(path)
        extra = f" · {self.captions[self.i]}" if self.captions[self.i] else ""
        self.title.setText(f"<b>{Path(d).name}</b>{extra} · {self.i + 1} of {len(self.paths)} · {d}")
        self.view.fitted = True
        pm = self.thumbs.pixmap(path)
        self.view.set_pixmap(pm if pm is not None else QPixmap())
        self.load(path, lambda img, p=path: self._loaded(p, img))
        self.current_changed.emit(path)

    def _loaded(self, path: str, img: QImage) -> None:
        if path != self.current():
            return  # the person has moved on
        if img.isNull():
            self.title.setText(self.title.text() + " · this photo cannot be shown")
            return
        self.view.set_pixmap(QPixmap.fromImage(img))

    def next(self) -> None:
        self.show_at(self.i + 1)

    def previous(self) -> None:
        self.show_at(self.i - 1)

    def close_viewer(self) -> None:
        path = self.current()
        self.view.set_pixmap(QPixmap())  # the big picture is not kept once the grid is back
        self.closed.emit(path or "")
