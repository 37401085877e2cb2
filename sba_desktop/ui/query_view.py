"""The query photo: drop target, and a rubber band to search by a region."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QRubberBand, QSizePolicy


class QueryView(QLabel):
    """Shows the query; emits regionSelected(x, y, w, h) in the photo's own pixels."""

    regionSelected = Signal(tuple)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(QSize(260, 220))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setText("Drop a photo here\n(or Ctrl+O to open, Ctrl+V to paste)\n\n"
                     "Drag on the photo to search by a region")
        self.setWordWrap(True)
        self.setObjectName("queryView")
        self._image: QImage | None = None
        self._source_size: QSize | None = None   # the photo's own size; the shown image may be smaller
        self._band = QRubberBand(QRubberBand.Shape.Rectangle, self)
        self._origin: QPoint | None = None
        self._region: tuple[int, int, int, int] | None = None

    def set_image(self, image: QImage, source_size: tuple[int, int] | None = None) -> None:
        """Show `image`; `source_size` is the photo's own (oriented) size when the image shown is
        a reduced copy (a HEIC thumbnail): regions are reported in the photo's pixels."""
        self._image = image
        self._source_size = QSize(*source_size) if source_size else None
        self._region = None
        self._band.hide()
        self._refresh()

    def image(self) -> QImage | None:
        return self._image

    def region(self) -> tuple[int, int, int, int] | None:
        return self._region

    def _refresh(self) -> None:
        if self._image is None or self._image.isNull():
            return
        self.setPixmap(QPixmap.fromImage(self._image).scaled(
            self.size() - QSize(8, 8), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._refresh()

    def _shown_rect(self) -> QRect:
        pm = self.pixmap()
        if pm is None or pm.isNull():
            return QRect()
        x = (self.width() - pm.width()) // 2
        y = (self.height() - pm.height()) // 2
        return QRect(x, y, pm.width(), pm.height())

    def widget_to_image(self, rect: QRect) -> tuple[int, int, int, int] | None:
        shown = self._shown_rect()
        if self._image is None or shown.isEmpty():
            return None
        r = rect.intersected(shown)
        if r.width() < 4 or r.height() < 4:
            return None
        full = self._source_size or self._image.size()
        sx = full.width() / shown.width()
        sy = full.height() / shown.height()
        return (int((r.x() - shown.x()) * sx), int((r.y() - shown.y()) * sy),
                int(r.width() * sx), int(r.height() * sy))

    def select_region(self, region: tuple[int, int, int, int]) -> None:
        """Select a region in the photo's own pixels (keyboard/tests) and search by it."""
        self._region = region
        self.regionSelected.emit(region)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            self._origin = event.position().toPoint()
            self._band.setGeometry(QRect(self._origin, QSize()))
            self._band.show()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._origin is not None:
            self._band.setGeometry(QRect(self._origin, event.position().toPoint()).normalized())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._origin is not None:
            rect = QRect(self._origin, event.position().toPoint()).normalized()
            self._origin = None
            region = self.widget_to_image(rect)
            if region is None:
                self._band.hide()
            else:
                self.select_region(region)
        super().mouseReleaseEvent(event)

    def clear_region(self) -> None:
        self._region = None
        self._band.hide()


def overlay(base: QImage, rgba_bytes: bytes, width: int, height: int) -> QImage:
    """Paint an RGBA overlay (computed by the engine) over a picture."""
    over = QImage(rgba_bytes, width, height, width * 4, QImage.Format.Format_RGBA8888).copy()
    out = base.convertToFormat(QImage.Format.Format_ARGB32)
    p = QPainter(out)
    p.drawImage(QRect(0, 0, out.width(), out.height()), over)
    p.end()
    return out
