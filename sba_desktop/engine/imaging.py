"""Turn any Pillow image into the RGB picture a backbone sees (no Qt, no files)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# Compositing background for transparent photos: white, like a viewer shows them.
_BACKGROUND = (255, 255, 255)


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer / float greyscale -> 8-bit, keeping the tonal range."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.size == 0:
        return Image.new("L", img.size)
    if img.mode == "F":
        lo, hi = float(arr.min()), float(arr.max())
        scale = (hi - lo) or 1.0
        arr = (arr - lo) / scale * 255.0
    else:
        # 16-bit data stored in an int container; 8-bit data sometimes too.
        arr = arr / (257.0 if arr.max() > 255 else 1.0)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image, apply_exif: bool = True) -> Image.Image:
    """Return an RGB copy of `img` with EXIF orientation applied.

    Handles every mode Pillow decodes photos into: 1, L, P (with or without
    transparency), LA, RGBA, CMYK, YCbCr, LAB, HSV, I;16*, I and F.
    """
    if apply_exif:
        try:  # exif_transpose copies even an upright picture: a second full-size copy of a big one
            if img.getexif().get(0x0112, 1) not in (None, 1):
                img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not lose the photo
            pass
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_depth_to_l(img).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def scaled_size(width: int, height: int, long_side: int, min_side: int = 32) -> tuple[int, int]:
    """Size with the long side at `long_side`, aspect kept, short side >= min_side."""
    scale = long_side / max(width, height)
    w = max(min_side, round(width * scale))
    h = max(min_side, round(height * scale))
    return w, h


def resize_long_side(img: Image.Image, long_side: int) -> Image.Image:
    """Scale so the long side is `long_side` (no crop: a photo keeps its edges)."""
    size = scaled_size(img.width, img.height, long_side)
    if size == img.size:
        return img
    # reducing_gap makes large downscales fast at no visible cost.
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def draft_box(long_side: int, width: int | None = None, height: int | None = None) -> tuple[int, int]:
    """Size asked of JPEG draft mode: the decoder may shrink by 1/2, 1/4, 1/8 while the long side
    stays at least twice `long_side`. Measured on paris-dev: asking for 1x (a 640 px photo decoded
    at 320 px) cost 0.3 mAP, so large photos are shrunk in the decoder only down to 2x.

    Asked with the photo's own aspect ratio (width, height): a square box would let the short side
    of a panorama decide, and a 4608x1976 photo would decode at 1/4 where 1/8 still gives 2x."""
    target = 2 * long_side
    if not width or not height:
        return target, target
    scale = target / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_input(rgb: Image.Image, long_side: int | None, mean: tuple[float, ...],
             std: tuple[float, ...]) -> np.ndarray:
    """RGB Pillow image -> normalised 3xHxW float32 array, long side scaled (no crop)."""
    if long_side:
        rgb = resize_long_side(rgb, long_side)
    arr = np.asarray(rgb, dtype=np.uint8)
    scale = np.asarray(std, np.float32) * 255.0
    # (x/255 - mean)/std == x * 1/(255 std) - mean/std, in one pass per channel
    x = arr.astype(np.float32) * (1.0 / scale) - np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


Region = tuple[float, float, float, float]  # x, y, width, height in the photo's own pixels


def crop_region(rgb: Image.Image, region: Region | None) -> Image.Image:
    """The query rectangle of a picture, in its pixels (clamped to the picture; at least 1x1)."""
    if region is None:
        return rgb
    x, y, w, h = (int(round(v)) for v in region)
    x0 = min(max(0, x), rgb.width - 1)
    y0 = min(max(0, y), rgb.height - 1)
    x1 = min(rgb.width, max(x0 + 1, x + w))
    y1 = min(rgb.height, max(y0 + 1, y + h))
    return rgb.crop((x0, y0, x1, y1))
