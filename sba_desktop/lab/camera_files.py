"""Camera-like files made from ordinary photos, for `sba bench`, the tests and the format benchmark.

Not used by the application. What a phone or camera writes, from any RGB picture:
- `camera_jpeg`: a 12-MP JPEG at quality 92;
- `heic`: a HEIC as an iPhone stores it, with a 320 px thumbnail beside the photo (libheif's
  `heif-enc`, Debian/Ubuntu package libheif-examples: pillow-heif reads thumbnails but cannot
  write them), or without one (pillow-heif);
- `dng`: a DNG holding the picture's Bayer mosaic (RGGB, 12 bits, written by pidng), with or
  without an embedded preview JPEG (as cameras and converters add one).
"""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CAMERA_SIZE = (4000, 3000)   # 12 MP
# The sensor's colours are linear sRGB: its DNG colour matrix (XYZ -> camera) is XYZ -> linear sRGB
XYZ_TO_LINEAR_SRGB = (3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570)
IPHONE_THUMBNAIL = 320       # the long side of the thumbnail an iPhone stores in its HEIC files


def upscaled(img: Image.Image, size: tuple[int, int] = CAMERA_SIZE) -> Image.Image:
    """The picture at a camera's size (turned to the picture's orientation): decode cost
    follows pixels."""
    w, h = size if img.width >= img.height else size[::-1]
    return img.convert("RGB").resize((w, h), Image.Resampling.BICUBIC)


def camera_jpeg(img: Image.Image, path: Path, quality: int = 92) -> Path:
    img.save(path, "JPEG", quality=quality)
    return path


def heif_enc_available() -> bool:
    return shutil.which("heif-enc") is not None


def heic(img: Image.Image, path: Path, thumbnail: int | None = IPHONE_THUMBNAIL, quality: int = 90) -> Path:
    """A HEIC of the picture at its own size; with a stored thumbnail of that long side, or none.
    heif-enc encodes the thumbnail at the photo's quality; at 60 a 320 px thumbnail is visibly
    blocky and costs retrieval (docs/quality.md), at 90 it does not."""
    if thumbnail is None:
        import pillow_heif

        pillow_heif.from_pillow(img.convert("RGB")).save(path, quality=quality)
        return path
    if not heif_enc_available():
        raise RuntimeError("HEIC files with a thumbnail need libheif's heif-enc "
                           "(Debian/Ubuntu: apt-get install libheif-examples)")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        img.convert("RGB").save(src, compress_level=1)
        subprocess.run(["heif-enc", "-q", str(quality), "-t", str(thumbnail), str(src), "-o", str(path)],
                       check=True, capture_output=True)
    return path


def bayer(img: Image.Image, white: int = 4095, black: int = 64) -> np.ndarray:
    """The RGGB mosaic a sensor would record of this sRGB picture (linear light, 12 bits)."""
    linear = (np.asarray(img.convert("RGB"), np.float32) / 255.0) ** 2.2 * (white - black) + black
    h, w = linear.shape[0] & ~1, linear.shape[1] & ~1
    out = np.empty((h, w), np.uint16)
    out[0::2, 0::2] = linear[0:h:2, 0:w:2, 0]
    out[0::2, 1::2] = linear[0:h:2, 1:w:2, 1]
    out[1::2, 0::2] = linear[1:h:2, 0:w:2, 1]
    out[1::2, 1::2] = linear[1:h:2, 1:w:2, 2]
    return out


def dng(img: Image.Image, path: Path, preview: int | None = 1024, orientation: int = 1,
        taken: str | None = None) -> Path:
    """A DNG of the picture's Bayer mosaic; with an embedded preview JPEG of that long side (no
    EXIF in it, as in many cameras' previews), or none. `orientation` is the TIFF orientation tag
    (6: the camera was turned clockwise); `taken` "YYYY:MM:DD HH:MM:SS", the DNG's own capture time."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    mosaic = bayer(img)
    h, w = mosaic.shape
    tags = DNGTags()
    for tag, value in [(Tag.ImageWidth, w), (Tag.ImageLength, h), (Tag.TileWidth, w), (Tag.TileLength, h),
                       (Tag.Orientation, orientation), (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16),
                       (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
                       (Tag.CFARepeatPatternDim, [2, 2]), (Tag.CFAPattern, CFAPattern.RGGB),
                       (Tag.BlackLevel, 64), (Tag.WhiteLevel, 4095),
                       (Tag.ColorMatrix1, [[round(v * 10000), 10000] for v in XYZ_TO_LINEAR_SRGB]),
                       (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65),
                       (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]), (Tag.BaselineExposure, [[0, 1]]),
                       (Tag.Make, "SBA"), (Tag.Model, "Bayer Test"), (Tag.UniqueCameraModel, "SBA Bayer Test"),
                       (Tag.DNGVersion, DNGVersion.V1_4)] + ([(Tag.DateTimeOriginal, taken)] if taken else []):
        tags.set(tag, value)
    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    data = bytes(writer.convert(mosaic, filename=""))
    if preview:
        small = img.convert("RGB").copy()
        small.thumbnail((preview, preview), Image.Resampling.LANCZOS)
        data = _with_preview(data, small)
    Path(path).write_bytes(data)
    return Path(path)


def _with_preview(tiff: bytes, preview: Image.Image) -> bytes:
    """The DNG with a second IFD holding a baseline JPEG preview (NewSubfileType 1), chained
    after the raw IFD: where LibRaw, like camera software, finds a preview."""
    jpeg = io.BytesIO()
    preview.save(jpeg, "JPEG", quality=90)
    buf = bytearray(tiff)
    count = struct.unpack_from("<H", buf, 8)[0]
    next_ifd_at = 8 + 2 + 12 * count
    if struct.unpack_from("<I", buf, next_ifd_at)[0] != 0:
        raise ValueError("expected a single-IFD DNG")
    buf += b"\0" * (-len(buf) % 4)
    jpeg_at = len(buf)
    buf += jpeg.getvalue()
    buf += b"\0" * (-len(buf) % 4)
    ifd_at = len(buf)
    w, h = preview.size
    tags = [(254, 4, 1, 1), (256, 4, 1, w), (257, 4, 1, h), (258, 3, 3, ifd_at + 2 + 12 * 10 + 4),
            (259, 3, 1, 7), (262, 3, 1, 6), (273, 4, 1, jpeg_at), (277, 3, 1, 3), (278, 4, 1, h),
            (279, 4, 1, len(jpeg.getvalue()))]
    buf += struct.pack("<H", len(tags))
    for tag, kind, n, value in tags:
        buf += struct.pack("<HHIHH", tag, kind, n, value, 0) if kind == 3 and n == 1 else \
            struct.pack("<HHII", tag, kind, n, value)
    buf += struct.pack("<I", 0) + struct.pack("<HHH", 8, 8, 8) + b"\0\0"
    struct.pack_into("<I", buf, next_ifd_at, ifd_at)
    return bytes(buf)
