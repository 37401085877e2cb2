"""Thumbnails cached on disk (user cache dir), keyed by path + size + mtime."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sba_desktop.files import DiskError, replace_file
from sba_desktop.library.decode import DecodeError, decode

THUMB_SIZE = 256


def thumbnail_path(cache_dir: Path, photo_path: str, size: int = THUMB_SIZE) -> Path:
    try:
        st = os.stat(photo_path)
        key = f"{photo_path}|{st.st_size}|{st.st_mtime_ns}|{size}"
    except OSError:
        key = f"{photo_path}|missing|{size}"
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()
    return cache_dir / "thumbs" / digest[:2] / f"{digest}.jpg"


def thumbnail(cache_dir: Path, photo_path: str, size: int = THUMB_SIZE) -> Path | None:
    """Path of a JPEG thumbnail (made once, then read from the cache); None if undecodable."""
    out = thumbnail_path(cache_dir, photo_path, size)
    if out.exists():
        return out
    try:
        # a HEIC's thumbnail or a RAW's preview of at least the cell's size serves the grid as is
        photo = decode(photo_path, size, stand_in_min=1.0)
    except DecodeError:
        return None
    img = photo.rgb
    img.thumbnail((size, size))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # a fresh temporary file (two windows making one thumbnail at once never share one);
        # a full or read-only cache shows no thumbnail, nothing else
        replace_file(out, lambda tmp: img.save(tmp, "JPEG", quality=85), "a thumbnail")
    except (OSError, DiskError):
        return None
    return out
