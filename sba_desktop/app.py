"""`sba-desktop`: start the desktop application."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        from sba_desktop.ui.main import run
    except ImportError as exc:  # the window arrives with the GUI issue
        print(f"sba-desktop: the desktop window is not available yet ({exc}); "
              "use the command line: sba --help", file=sys.stderr)
        return 1
    return run(sys.argv if argv is None else argv)
