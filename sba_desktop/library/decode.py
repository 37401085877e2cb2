"""Decoding photos from disk robustly: sniff by content, guard bombs, fast JPEG draft.

Every failure becomes a `DecodeError` with a reason a person can read; nothing
here crashes on a bad file.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ..engine.imaging import draft_box, to_rgb

# Largest photo we decode: 200 megapixels (a 20,000 x 10,000 panorama fits).
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

PHOTO_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff",
                    ".bmp", ".dib", ".gif", ".heic", ".heif", ".avif"}

_heif_ready: bool | None = None


def heif_available() -> bool:
    """HEIC/HEIF and AVIF through pillow-heif (a dependency; registered on first use)."""
    global _heif_ready
    if _heif_ready is None:
        try:
            import pillow_heif  # type: ignore

            pillow_heif.register_heif_opener()
            _heif_ready = True
        except Exception:
            _heif_ready = False
    return _heif_ready


def _pillow_avif() -> bool:
    """Pillow >= 11.2 decodes AVIF itself when built with libavif (its wheels are)."""
    from PIL import features

    return bool(features.check("avif"))


class DecodeError(Exception):
    """A file that cannot be used as a photo; str() is the reason."""


def sniff(head: bytes) -> str | None:
    """Photo format from the first bytes of a file, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "heic"
    return None


def read_head(path: str, n: int = 32) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def fingerprint(path: str, size: int) -> str:
    """Content fingerprint: size + first and last 64 KiB (recognises moved files cheaply)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(65536))
        if size > 131072:
            fh.seek(-65536, os.SEEK_END)
            h.update(fh.read(65536))
    return h.hexdigest()


@dataclass
class DecodedPhoto:
    rgb: Image.Image     # oriented RGB, possibly reduced by draft mode
    width: int           # the photo's full size, after EXIF orientation
    height: int
    fmt: str
    taken: float | None = None   # EXIF capture time (seconds since 1970, the camera's clock)
    camera: str | None = None    # EXIF make and model: originals carry them, many exports do not


EXIF_IFD, DATETIME_ORIGINAL, SUBSEC_ORIGINAL, DATETIME, MAKE, MODEL = 0x8769, 0x9003, 0x9291, 0x0132, 0x010F, 0x0110


def capture_facts(exif: Image.Exif) -> tuple[float | None, str | None]:
    """(capture time, camera) from EXIF; None where absent or unreadable. The time is read as
    if it were UTC: only differences between photos of one camera are used."""
    import calendar
    import time as _time

    taken = None
    try:
        raw = exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL) or exif.get(DATETIME)
        if isinstance(raw, bytes):
            raw = raw.decode("ascii", "replace")
        if raw:
            taken = float(calendar.timegm(_time.strptime(str(raw).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")))
            sub = str(exif.get_ifd(EXIF_IFD).get(SUBSEC_ORIGINAL) or "").strip("\x00 ")
            if sub.isdigit():  # a burst's frames share their second: the fraction tells them apart
                taken += int(sub) / 10 ** len(sub)
    except (ValueError, TypeError, KeyError, OSError):
        taken = None
    make, model = (str(exif.get(t, "")).strip("\x00 ") for t in (MAKE, MODEL))
    camera = (model if model.lower().startswith(make.lower()) else f"{make} {model}").strip() or None
    return taken, camera


def decode(path: str, target_long_side: int | None = None,
           region: tuple[float, float, float, float] | None = None) -> DecodedPhoto:
    """Open, check and decode a photo into oriented RGB.

    With `target_long_side`, JPEGs are decoded in draft mode at the smallest
    DCT scale whose long side stays at least twice that size (see draft_box).
    With a `region` (x, y, w, h in the photo's oriented pixels) too, it is the
    region that must keep that size: a small rectangle of a big photo is read
    at a finer scale than the whole photo would be.
    """
    try:
        head = read_head(path)
    except PermissionError:
        raise DecodeError("permission denied") from None
    except IsADirectoryError:
        raise DecodeError("is a directory") from None
    except FileNotFoundError:
        raise DecodeError("file vanished") from None
    except OSError as exc:
        raise DecodeError(f"cannot read: {exc.strerror or exc}") from None
    if not head:
        raise DecodeError("empty file (0 bytes)")
    fmt = sniff(head)
    if fmt is None:
        raise DecodeError("not a photo (content is no known image format)")
    if fmt == "heic" and not heif_available() or fmt == "avif" and not (_pillow_avif() or heif_available()):
        raise DecodeError(f"{fmt.upper()} cannot be decoded here: pillow-heif is not installed or does not load")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise DecodeError(f"too large ({w}x{h} pixels; limit {MAX_PIXELS // 1_000_000} MP)")
                if w < 1 or h < 1:
                    raise DecodeError("image has no pixels")
                exif = im.getexif()
                orientation = exif.get(0x0112, 1) if fmt in ("jpeg", "tiff", "webp", "png") else 1
                taken, camera = capture_facts(exif)
                if fmt == "jpeg" and target_long_side and im.mode in ("RGB", "L", "CMYK", "YCbCr"):
                    long_side = target_long_side
                    if region is not None and max(region[2], region[3]) > 0:
                        long_side = target_long_side * max(w, h) / min(max(region[2], region[3]), max(w, h))
                    im.draft(im.mode, draft_box(round(long_side), w, h))
                im.seek(0)  # GIF / multi-page TIFF: first frame
                im.load()
                rgb = to_rgb(im)
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(f"decompression bomb refused ({exc})") from None
    except UnidentifiedImageError:
        raise DecodeError(f"{fmt.upper()} content that Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, MemoryError) as exc:
        msg = str(exc) or exc.__class__.__name__
        if "truncated" in msg.lower():
            msg = "truncated file"
        raise DecodeError(f"broken {fmt.upper()}: {msg}") from None
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return DecodedPhoto(rgb, w, h, fmt, taken, camera)


def photo_size(path: str) -> tuple[int, int]:
    """A photo's own size after EXIF orientation, from its header (no pixels decoded): the
    coordinates a query region is given in. DecodeError when it cannot be read."""
    try:
        fmt = sniff(read_head(path))
        if fmt in ("heic", "avif"):
            heif_available()
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1) if fmt in ("jpeg", "tiff", "webp", "png") else 1
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise DecodeError(f"cannot read the photo's size: {exc}") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
