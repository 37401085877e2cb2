"""Decoding photos from disk robustly: sniff by content, guard bombs, fast JPEG draft.

Every failure becomes a `DecodeError` with a reason a person can read; nothing
here crashes on a bad file.
"""
from __future__ import annotations

import calendar
import hashlib
import io
import os
import struct
import threading
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from sba_desktop.engine.imaging import draft_box, to_rgb
from sba_desktop.errors import SbaError

# Largest photo we decode: 200 megapixels (a 20,000 x 10,000 panorama fits).
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Memory for the pixels of all photos being decoded at once, whatever the number of decoder
# threads: a photo waits for its share, and one that alone would need more (a PNG declaring
# 196 MP in 571 KB: a decompression bomb) is skipped with that reason. Its size comes from the
# header, after JPEG draft scaling, before any pixel is decoded.
DECODE_BUDGET = 512 * 1024 * 1024
# A decoded picture this much larger than the network needs is reduced at once (box filter, to
# at least twice the size, as JPEG draft decoding does), so that it leaves the budget small.
SHRINK_ABOVE_PIXELS = 16_000_000


class _Budget:
    """Bytes held by decodes in progress (threads wait for room; one alone always fits)."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._room = threading.Condition()

    @contextmanager
    def hold(self, n: int):
        with self._room:
            while self.used and self.used + n > self.limit:
                self._room.wait()
            self.used += n
        try:
            yield
        finally:
            with self._room:
                self.used -= n
                self._room.notify_all()


_budget = _Budget(DECODE_BUDGET)


def decode_bytes(mode: str, pixels: int, has_profile: bool) -> int:
    """Pillow's memory for decoding `pixels` of `mode` into sRGB: the decoded picture (1 byte a
    pixel for L/P/1, 2 for 16-bit grey, else 4), its RGB copy (none for RGB) and, with a colour
    profile, the converted copy."""
    depth = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return pixels * (depth + (0 if mode == "RGB" else 4) + (4 if has_profile else 0))


def _share(im: Image.Image, w: int, h: int, profile) -> int:
    """The decode's share of DECODE_BUDGET; DecodeError for a photo that alone needs more."""
    need = decode_bytes(im.mode, im.size[0] * im.size[1], bool(profile))
    if need > DECODE_BUDGET:
        raise DecodeError(f"declares {w}x{h} pixels: decoding would need {need // 2**20} MB, more than "
                          f"the {DECODE_BUDGET // 2**20} MB a photo may use (a decompression bomb?)")
    return need


def _shrink(rgb: Image.Image, long_side: int | None) -> Image.Image:
    if not long_side or rgb.width * rgb.height <= SHRINK_ABOVE_PIXELS:
        return rgb
    factor = max(rgb.size) // (2 * long_side)
    return rgb.reduce(factor) if factor >= 2 else rgb

# Camera RAW files, decoded by LibRaw through rawpy (matched case-insensitively).
RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf",
                            ".orf", ".rw2", ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".erf", ".kdc", ".mrw",
                            ".rwl", ".mos", ".dcr"})
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff",
                              ".bmp", ".dib", ".gif", ".heic", ".heif", ".avif", ".jxl"}) | RAW_EXTENSIONS

# A smaller picture stored in the file (a HEIC thumbnail, a RAW file's preview JPEG) stands in for
# the photo when its long side is at least this many times the size asked for. Measured on HEIC
# versions of paris-dev (scripts/camera_formats_benchmark.py, docs/quality.md): the iPhone's 320 px
# thumbnail for the 224 px network (1.43x) costs 0.004 mAP against the JPEGs, a 224 px one (1x)
# 0.015; so 1.4x.
STAND_IN_MIN = 1.4

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


_jxl_ready: bool | None = None


def jxl_available() -> bool:
    """JPEG XL through pillow-jxl-plugin (a dependency; its import registers it with Pillow)."""
    global _jxl_ready
    if _jxl_ready is None:
        try:
            import pillow_jxl  # type: ignore  # noqa: F401

            _jxl_ready = True
        except Exception:
            _jxl_ready = False
    return _jxl_ready


def _pillow_avif() -> bool:
    """Pillow >= 11.2 decodes AVIF itself when built with libavif (its wheels are)."""
    from PIL import features

    return bool(features.check("avif"))


class DecodeError(SbaError):
    """A file that cannot be used as a photo; str() is the reason."""
    prefix = "This file cannot be used as a photo"


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
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "jxl"  # a bare JPEG XL codestream, or its ISO container
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
    import time as _time

    taken = None
    try:
        # DNG and some RAW files keep the EXIF tags in the main directory, not in an EXIF one
        raw = exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL) or exif.get(DATETIME_ORIGINAL) or exif.get(DATETIME)
        if isinstance(raw, bytes):
            raw = raw.decode("ascii", "replace")
        if raw:
            taken = float(calendar.timegm(_time.strptime(str(raw).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")))
            if taken < 366 * 86400:  # 1970: no time (LibRaw writes it into the previews it rebuilds)
                return None, _camera(exif)
            sub = str(exif.get_ifd(EXIF_IFD).get(SUBSEC_ORIGINAL) or exif.get(SUBSEC_ORIGINAL) or "").strip("\x00 ")
            if sub.isdigit():  # a burst's frames share their second: the fraction tells them apart
                taken += int(sub) / 10 ** len(sub)
    except (ValueError, TypeError, KeyError, OSError):
        taken = None
    return taken, _camera(exif)


def _camera(exif: Image.Exif) -> str | None:
    make, model = (str(exif.get(t, "")).strip("\x00 ") for t in (MAKE, MODEL))
    return (model if model.lower().startswith(make.lower()) else f"{make} {model}").strip() or None


def is_raw(path: str) -> bool:
    """A camera RAW file, by its extension (their contents are TIFF-like or vendor formats)."""
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS


def _read_head(path: str) -> bytes:
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
    return head


def needed_long_side(target_long_side: int | None, width: int, height: int,
                     region: tuple[float, float, float, float] | None = None) -> int | None:
    """Long side the decoded picture needs so that the whole photo, or the region of it, reaches
    `target_long_side`; None for the full photo."""
    if not target_long_side:
        return None
    if region is not None and max(region[2], region[3]) > 0:
        return round(target_long_side * max(width, height) / min(max(region[2], region[3]), max(width, height)))
    return target_long_side


def _stand_in_box(long_side: int, width: int, height: int, stand_in_min: float) -> tuple[int, int]:
    """Smallest size (photo's aspect) a stored smaller picture needs to stand in for the photo."""
    scale = stand_in_min * long_side / max(width, height)
    return max(1, int(width * scale)), max(1, int(height * scale))


def decode(path: str, target_long_side: int | None = None,
           region: tuple[float, float, float, float] | None = None, stand_in_min: float | None = None) -> DecodedPhoto:
    """Open, check and decode a photo into oriented sRGB.

    With `target_long_side`, the picture may be smaller than the photo, never below what that
    size needs: JPEGs are decoded in draft mode at the smallest DCT scale whose long side stays
    at least twice that size (see draft_box); a HEIC's stored thumbnail and a RAW file's preview
    stand in when they are large enough (STAND_IN_MIN). With a `region` (x, y, w, h in the
    photo's oriented pixels) too, it is the region that must keep that size: a small rectangle
    of a big photo is read at a finer scale than the whole photo would be. `stand_in_min`
    overrides STAND_IN_MIN (a picture for the eye needs no margin above its size).
    """
    stand_in_min = STAND_IN_MIN if stand_in_min is None else stand_in_min
    head = _read_head(path)
    fmt = sniff(head)
    if is_raw(path):
        try:
            return _decode_raw(path, target_long_side, region, stand_in_min)
        except _UnsupportedRaw as exc:
            if fmt in (None, "tiff"):
                raise DecodeError(str(exc)) from None
            # a JPEG or PNG under a RAW file's name: read it as what it is
    if fmt is None:
        raise DecodeError("not a photo (content is no known image format)")
    if fmt == "heic" and not heif_available() or fmt == "avif" and not (_pillow_avif() or heif_available()):
        raise DecodeError(f"{fmt.upper()} cannot be decoded here: pillow-heif is not installed or does not load")
    if fmt == "jxl" and not jxl_available():
        raise DecodeError("JPEG XL cannot be decoded here: pillow-jxl-plugin is not installed or does not load")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im, ExitStack() as held:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise DecodeError(f"too large ({w}x{h} pixels; limit {MAX_PIXELS // 1_000_000} MP)")
                if w < 1 or h < 1:
                    raise DecodeError("image has no pixels")
                profile = im.info.get("icc_profile")
                # JPEG and HEIC decode smaller (draft, a thumbnail): their share is known after the
                # draft; other formats decode whole, and a PNG's EXIF read already decodes it
                late = fmt in ("jpeg", "heic", "avif")
                if not late:
                    held.enter_context(_budget.hold(_share(im, w, h, profile)))
                exif = im.getexif()
                orientation = exif.get(0x0112, 1) if fmt in ("jpeg", "tiff", "webp", "png") else 1
                taken, camera = capture_facts(exif)
                # HEIC: pillow-heif applies the file's rotation itself; its size is the oriented size
                ow, oh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
                long_side = needed_long_side(target_long_side, ow, oh, region)
                if long_side and fmt == "jpeg" and im.mode in ("RGB", "L", "CMYK", "YCbCr"):
                    im.draft(im.mode, draft_box(long_side, w, h))
                elif long_side and fmt in ("heic", "avif"):
                    im.draft(im.mode, _stand_in_box(long_side, w, h, stand_in_min))  # the stored thumbnail, if big enough
                if late:
                    held.enter_context(_budget.hold(_share(im, w, h, profile)))
                im.seek(0)  # GIF / multi-page TIFF: first frame
                im.load()
                rgb = to_srgb(_shrink(to_rgb(im), long_side), profile)
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
    return DecodedPhoto(rgb, ow, oh, fmt, taken, camera)


_srgb_transforms: dict[bytes, object] = {}


def to_srgb(rgb: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Pixels in the photo's embedded colour profile (Display P3 on phones, Adobe RGB on cameras)
    converted to sRGB, the space the network was trained in; unchanged without a profile, with an
    sRGB one, or with one that cannot be read."""
    if not icc_profile or rgb.mode != "RGB":
        return rgb
    key = hashlib.blake2b(icc_profile, digest_size=16).digest()
    transform = _srgb_transforms.get(key)
    if transform is None:
        transform = False
        try:
            from PIL import ImageCms

            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            name = (ImageCms.getProfileDescription(profile) or "").lower()
            if profile.profile.xcolor_space.strip() == "RGB" and "srgb" not in name:
                transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB")
        except Exception:  # an unreadable profile (PyCMSError, OSError...): keep the pixels
            transform = False
        _srgb_transforms[key] = transform
    if transform is False:
        return rgb
    from PIL import ImageCms

    return ImageCms.applyTransform(rgb, transform)


class _UnsupportedRaw(Exception):
    """LibRaw does not know the file (an unsupported camera, or not a RAW file at all)."""


def _raw_size(raw) -> tuple[int, int]:
    """A RAW file's picture size once upright (LibRaw's flip 5 and 6 are quarter turns)."""
    w, h = raw.sizes.width, raw.sizes.height
    return (h, w) if raw.sizes.flip in (5, 6) else (w, h)


# LibRaw's orientation ("flip") -> the turn that makes a stored picture upright
_RAW_TURNS = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


def _decode_raw(path: str, target_long_side: int | None,
                region: tuple[float, float, float, float] | None, stand_in_min: float) -> DecodedPhoto:
    """A RAW file through LibRaw (rawpy): its embedded preview JPEG when it is large enough (in
    draft mode, turned by the RAW's own orientation), otherwise a half-size demosaic."""
    try:
        import rawpy
    except ImportError:
        raise DecodeError("RAW files need rawpy (LibRaw), which does not load here") from None
    try:
        with rawpy.imread(path) as raw:
            flip = raw.sizes.flip
            w, h = _raw_size(raw)
            if w * h > MAX_PIXELS:
                raise DecodeError(f"too large ({w}x{h} pixels; limit {MAX_PIXELS // 1_000_000} MP)")
            long_side = needed_long_side(target_long_side, w, h, region)
            preview = _raw_preview(raw, long_side, flip, stand_in_min)
            if preview is not None:
                rgb, taken, camera = preview
            else:  # half-size demosaic (one pixel per Bayer quad) when that is still big enough
                half = bool(long_side) and max(w, h) // 2 >= stand_in_min * long_side
                rgb = Image.fromarray(raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8))
                # LibRaw's own EXIF reading: rawpy fills `other` by unpacking the RAW data, so it is
                # read only here, where the data is unpacked anyway (45-65 ms a 12-MP file otherwise)
                stamp = raw.other.timestamp
                taken = float(calendar.timegm(stamp.timetuple())) if stamp.year > 1970 else None
                camera = None
    except DecodeError:
        raise
    except rawpy.LibRawFileUnsupportedError:
        raise _UnsupportedRaw(f"RAW file of a kind or camera LibRaw {'.'.join(map(str, rawpy.libraw_version))} "
                              "does not support") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError):
        raise DecodeError("broken RAW: the file ends early or its image data is damaged") from None
    except rawpy.LibRawTooBigError:
        raise DecodeError("RAW image too large for LibRaw") from None
    except (rawpy.LibRawError, OSError, ValueError, MemoryError) as exc:
        raise DecodeError(f"broken RAW: {exc.__class__.__name__.removeprefix('LibRaw')}") from None
    if taken is None or camera is None:  # a preview without EXIF (many Canon and Nikon files)
        file_taken, file_camera = _tiff_raw_facts(path)
        taken = file_taken if taken is None else taken
        camera = camera or file_camera
    return DecodedPhoto(rgb, w, h, "raw", taken, camera)


RAW_HEAD_BYTES = 256 * 1024  # a TIFF-based RAW file's first directories and their EXIF lie within this


def _tiff_raw_facts(path: str) -> tuple[float | None, str | None]:
    """(capture time, camera) from a TIFF-based RAW file's own EXIF (DNG, CR2, NEF, ARW, PEF...):
    read from the head of the file, without unpacking the RAW data. (None, None) for other kinds."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(RAW_HEAD_BYTES)
        if head[:4] not in (b"II*\x00", b"MM\x00*"):
            return None, None
        exif = Image.Exif()
        exif.load(head)
        return capture_facts(exif)
    except (OSError, ValueError, TypeError, KeyError, EOFError, SyntaxError, struct.error):
        return None, None


def _raw_preview(raw, long_side: int | None, flip: int, stand_in_min: float):
    """(upright sRGB preview, its capture time, its camera) when the RAW file carries a preview
    of at least the size needed; else None."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        with Image.open(io.BytesIO(thumb.data)) as im:
            if long_side and max(im.size) < stand_in_min * long_side:
                return None
            taken, camera = capture_facts(im.getexif())
            if long_side and im.mode in ("RGB", "L", "CMYK", "YCbCr"):
                im.draft(im.mode, draft_box(long_side, *im.size))
            im.load()
            # the RAW's orientation is the photo's; a preview's own EXIF is often absent or stale
            rgb = to_srgb(to_rgb(im, apply_exif=False), im.info.get("icc_profile"))
    else:  # a bitmap preview (older cameras)
        rgb = Image.fromarray(thumb.data).convert("RGB")
        if long_side and max(rgb.size) < stand_in_min * long_side:
            return None
        taken, camera = None, None
    turn = _RAW_TURNS.get(flip)
    return (rgb.transpose(turn) if turn is not None else rgb), taken, camera


def photo_size(path: str) -> tuple[int, int]:
    """A photo's own size after EXIF orientation, from its header (no pixels decoded): the
    coordinates a query region is given in. DecodeError when it cannot be read."""
    if is_raw(path):
        try:
            import rawpy

            with rawpy.imread(path) as raw:
                return _raw_size(raw)
        except Exception as exc:  # rawpy missing, LibRaw's errors
            raise DecodeError(f"cannot read the photo's size: {exc}") from None
    try:
        fmt = sniff(read_head(path))
        if fmt in ("heic", "avif"):
            heif_available()
        elif fmt == "jxl":
            jxl_available()
        with Image.open(path) as im:
            w, h = im.size
            # a PNG's getexif() decodes every pixel when the EXIF chunk comes after them: a bomb
            exif_read = fmt in ("jpeg", "tiff", "webp") or fmt == "png" and "exif" in im.info
            orientation = im.getexif().get(0x0112, 1) if exif_read else 1
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise DecodeError(f"cannot read the photo's size: {exc}") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
