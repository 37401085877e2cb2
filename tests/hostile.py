"""A corpus of hostile files, generated on the fly (at least 25 kinds)."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _photo(w=64, h=48, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG that declares w x h pixels (a decompression bomb's header) with a tiny body."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def make_hostile_corpus(root: Path) -> dict[str, str]:
    """Write the corpus; returns {file name: 'bad' | 'good'} for the files that are photos or claim to be."""
    root.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, str] = {}

    def put(name: str, data: bytes, kind: str) -> None:
        (root / name).write_bytes(data)
        kinds[name] = kind

    good = _jpeg(_photo())
    put("good.jpg", good, "good")
    put("truncated.jpg", good[: len(good) // 3], "bad")
    put("zero.jpg", b"", "bad")
    put("text.jpg", b"this is not a photo, just some text\n" * 20, "bad")
    put("html.png", b"<html><body>hello</body></html>", "bad")
    put("bomb.png", _png_header_only(40000, 40000), "bad")
    put("header_only.jpg", good[:200], "bad")
    put("random_bytes.jpg", os.urandom(4096), "bad")
    put("png_named.jpg", _save(_photo(seed=1), "PNG"), "good")  # wrong extension, real photo
    put("cmyk.jpg", _jpeg(_photo(seed=2).convert("CMYK")), "good")
    put("grey16.png", _save(Image.fromarray(np.full((20, 30), 50000, np.uint16)), "PNG"), "good")
    pal = _photo(seed=3).convert("P")
    pal.info["transparency"] = 0
    put("palette_transparent.png", _save(pal, "PNG", transparency=0), "good")
    put("rgba.png", _save(_photo(seed=4).convert("RGBA"), "PNG"), "good")
    put("one_pixel.png", _save(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), "good")
    put("very_wide.png", _save(Image.new("RGB", (8000, 2), (90, 90, 90)), "PNG"), "good")
    img = _photo(80, 40, seed=5)
    exif = img.getexif()
    exif[0x0112] = 6
    put("rotated_exif.jpg", _jpeg(img, exif=exif.tobytes()), "good")
    broken_exif = bytearray(_jpeg(_photo(seed=6)))
    put("gif_animated.gif", _gif(), "good")
    put("tiff_multipage.tif", _tiff_multi(), "good")
    put("webp.webp", _save(_photo(seed=7), "WEBP"), "good")
    put("bmp.bmp", _save(_photo(seed=8), "BMP"), "good")
    put("truncated.png", _save(_photo(seed=9), "PNG")[:150], "bad")
    put("gif_bad.gif", b"GIF89a" + b"\x00" * 5, "bad")
    put("heic_fake.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 50, "bad")
    put("noext_photo", good, "good")  # no extension, found by its magic bytes
    put("broken_exif.jpg", bytes(broken_exif[:2]) + b"\xff\xe1\x00\x10Exif\x00\x00II*\x00\xff\xff\xff\xff" + bytes(broken_exif[2:]), "good?")
    put("non_utf8_\udcff\udcfe.jpg".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape"),
        _jpeg(_photo(seed=10)), "good")
    unreadable = root / "unreadable.jpg"
    unreadable.write_bytes(_jpeg(_photo(seed=11)))
    unreadable.chmod(0)
    kinds["unreadable.jpg"] = "good-if-root"
    (root / "folder.jpg").mkdir()  # a directory named like a photo
    (root / "folder.jpg" / "inside.jpg").write_bytes(_jpeg(_photo(seed=12)))
    kinds[os.path.join("folder.jpg", "inside.jpg")] = "good"
    (root / "loop").mkdir()
    os.symlink("..", root / "loop" / "back")  # symlink loop
    os.symlink(root / "does_not_exist.jpg", root / "dangling.jpg")
    (root / "notes.txt").write_text("not a photo and not named like one")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.jpg").write_bytes(good)
    return kinds


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _gif() -> bytes:
    frames = [Image.new("P", (16, 16), i * 40) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def _tiff_multi() -> bytes:
    buf = io.BytesIO()
    a, b = _photo(seed=13), _photo(seed=14)
    a.save(buf, "TIFF", save_all=True, append_images=[b])
    return buf.getvalue()


def png_bomb(w: int, h: int) -> bytes:
    """A real PNG of w x h black RGB pixels, compressed about 1000:1 (14,000 x 14,000 = 196 MP in
    about 0.6 MB): it decodes fully, which is what makes it a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    z = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * w)
    rows_per_piece = max(1, (1 << 22) // len(row))
    body = []
    for start in range(0, h, rows_per_piece):
        body.append(z.compress(row * min(rows_per_piece, h - start)))
    body.append(z.flush())
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b"")
