"""How the program writes file names and sizes for a person to read."""
from __future__ import annotations

import os


def size_text(n: int) -> str:
    """A file size as a person reads it."""
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def display(path: str) -> str:
    """A path as text a person can read (undecodable bytes shown as U+FFFD)."""
    return os.fsencode(path).decode("utf-8", "replace")
