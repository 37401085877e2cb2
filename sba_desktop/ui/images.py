"""Pictures for the eye: Qt reads what it can (EXIF orientation applied); HEIC, AVIF and RAW files,
which Qt's image plugins do not read, go through the library's one decoder."""
from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QImage, QImageReader


def pil_to_qimage(img: Image.Image) -> QImage:
    rgb = img.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888).copy()


def photo_qimage(path: str, long_side: int | None = None) -> QImage:
    """The photo upright, at least `long_side` pixels on its long side where the decoder may
    reduce it (None: full size); a null QImage when it cannot be read."""
    from sba_desktop.library.decode import DecodeError, decode, is_raw

    if not is_raw(path):  # a DNG is TIFF to Qt, which would show its small first picture
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        img = reader.read()
        if not img.isNull():
            return img
    try:
        return pil_to_qimage(decode(path, long_side, stand_in_min=1.0).rgb)
    except DecodeError:
        return QImage()
