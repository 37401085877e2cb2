"""How the program writes file names and sizes for a person to read."""
from __future__ import annotations

import os


def size_text(n: int) -> str:
    """A file size as a person reads it."""
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def display(path: str) -> str:
    """A path as one line of text that names the file exactly: a byte that is not UTF-8 is
    written \\xHH, a control character (a newline in a name) \\n, \\t, \\r or \\xHH, and a
    backslash \\\\ (on POSIX, where names may hold all of these; Windows names are shown as
    they are). `ls --quoting-style=escape` writes names the same way."""
    if os.name == "nt":
        return path
    out = []
    for ch in path:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
