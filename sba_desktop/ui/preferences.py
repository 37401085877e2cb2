"""The window's own preferences: thumbnail size and whether to ask before the trash.

Kept in the catalog's meta table beside the model settings (no Qt, no files of its own), so the
backup of what only the user made (user-data.sqlite) holds them too and a repaired catalog gets
them back."""
from __future__ import annotations

from dataclasses import dataclass

THUMB_MIN, THUMB_MAX = 96, 256   # the disk cache's thumbnails are 256 px: larger would be upscaled
THUMB_DEFAULT = 192
_KEYS = {"thumb_size": "ui.thumb_size", "confirm_trash": "ui.confirm_trash"}


@dataclass(frozen=True)
class Preferences:
    thumb_size: int = THUMB_DEFAULT
    confirm_trash: bool = True


def read_preferences(catalog) -> Preferences:
    """The stored preferences; a missing or unreadable value keeps its default."""
    thumb = catalog.get_meta(_KEYS["thumb_size"])
    confirm = catalog.get_meta(_KEYS["confirm_trash"])
    try:
        size = min(THUMB_MAX, max(THUMB_MIN, int(thumb))) if thumb else THUMB_DEFAULT
    except ValueError:  # a hand-edited catalog: the default, not a crash
        size = THUMB_DEFAULT
    return Preferences(size, confirm != "0")


def write_preferences(lib, prefs: Preferences) -> Preferences:
    """Store them in lib's catalog and refresh the user-data backup (it is written otherwise only
    when a library opens or closes, and the window keeps its library open for hours)."""
    lib.catalog.set_meta(_KEYS["thumb_size"], str(int(prefs.thumb_size)))
    lib.catalog.set_meta(_KEYS["confirm_trash"], "1" if prefs.confirm_trash else "0")
    lib.backup_user_data()
    return prefs
