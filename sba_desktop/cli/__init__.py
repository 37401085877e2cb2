"""`sba`: the headless command line (same jobs as the application)."""
from __future__ import annotations

import argparse
import logging

EPILOG = """examples:
  sba index ~/Pictures                   add a folder and index its photos
  sba search photo.jpg --top 10          the 10 photos most like photo.jpg
  sba search photo.jpg --region 120,80,300,200   search by a rectangle of the photo
  sba duplicates --kind copies           copies of one photo (re-saved, resized, cropped, turned...)
  sba duplicates --trash                 move the copies to the system trash (asks first)
  sba categories set ~/Sorted            each subfolder of ~/Sorted is a category
  sba tag ~/Unsorted                     propose a category for each unsorted photo

exit codes: 0 ok, 1 error (one line on stderr), 2 bad arguments, 130 interrupted.
Photos are never modified; only 'sba tag --write-xmp' writes <photo>.xmp sidecars, and
'sba duplicates --trash' moves copies to the system trash after asking."""


def build_parser() -> argparse.ArgumentParser:
    from sba_desktop import __version__

    p = argparse.ArgumentParser(prog="sba", description="sba-desktop on the command line: "
                                "index photo folders, search by example, tag, evaluate.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"sba {__version__}")
    p.add_argument("--home", help="library location (default: platform dirs, or $SBA_DESKTOP_HOME)")
    sub = p.add_subparsers(dest="command", required=True)

    from sba_desktop.cli import duplicates, lab, library, search, tagging

    for group in (library, search, duplicates, tagging, lab):
        group.register(sub)
    logging.getLogger("sba_desktop").setLevel(logging.INFO)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    from sba_desktop.errors import EXIT_INTERRUPTED, run_friendly

    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED

    from sba_desktop.logs import setup_logging
    from sba_desktop.paths import app_paths

    paths = app_paths(args.home)

    def command() -> int:
        from sba_desktop.cli.common import close_libraries

        setup_logging(paths)  # before the library opens: whatever fails is logged
        try:
            return args.func(args)
        finally:
            close_libraries()
    return run_friendly(command, paths.data)


if __name__ == "__main__":
    raise SystemExit(main())
