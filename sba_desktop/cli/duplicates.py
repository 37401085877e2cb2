"""`sba duplicates`: copies of one photo and similar shots, and moving copies to the trash."""
from __future__ import annotations

import argparse
import json
import sys

from sba_desktop.cli.common import count, display, open_library, positive_float, progress_bar, unit_float, when
from sba_desktop.errors import UserError


def _member_json(m, keeper: bool) -> dict:
    return {"path": display(m.path), "keeper": keeper, "width": m.width, "height": m.height, "bytes": m.size,
            "format": m.format, "taken": when(m.taken), "camera": m.camera,
            "agreement": round(m.agreement, 4), "raw_files": [display(p) for p in m.companions]}


def cmd_duplicates(args) -> int:
    from sba_desktop.text import size_text
    from sba_desktop.jobs.duplicates import SIMILAR_SECONDS, find_duplicates, saved_threshold, trash_others
    from sba_desktop.jobs.index import Progress

    lib = open_library(args)
    args.threshold = saved_threshold(lib) if args.threshold is None else args.threshold
    args.seconds = SIMILAR_SECONDS if args.seconds is None else args.seconds
    if args.trash and args.kind == "similar":
        raise UserError("--trash moves copies only: similar shots are different photos, never moved in bulk")
    bar = progress_bar(args.json)
    report = find_duplicates(lib, args.threshold, args.seconds,
                             progress=lambda phase, done, total: bar(Progress(phase, done, total)))
    kinds = ["copies", "similar"] if args.kind == "all" else [args.kind]
    groups = {k: getattr(report, k) for k in kinds}
    if args.json and not args.trash:
        print(json.dumps({
            "threshold": args.threshold, "similar_seconds": args.seconds, "photos": report.photos,
            "without_capture_time": report.without_time, "compared_pairs": report.candidates,
            "seconds": round(report.seconds, 2),
            **{k: [{"keeper": display(g.members[g.keeper].path) if g.keeper is not None else None,
                    "members": [_member_json(m, i == g.keeper) for i, m in enumerate(g.members)]}
                   for g in gs] for k, gs in groups.items()}}))
        return 0
    if not args.json:
        for kind, gs in groups.items():
            title = "copies of one photo" if kind == "copies" else "similar shots (taken seconds apart)"
            for n, g in enumerate(gs, 1):
                print(f"{title}, group {n} of {len(gs)}:")
                for i, m in enumerate(g.members):
                    mark = "keep" if i == g.keeper else ("copy" if kind == "copies" else "shot")
                    raw = f"  + {', '.join(display(p) for p in m.companions)}" if m.companions else ""
                    print(f"  {mark}  {m.agreement:5.3f}  {m.width}x{m.height}  {size_text(m.size):>8}  "
                          f"{(m.format or '?').upper():5s} {when(m.taken) or '-':19s}  {display(m.path)}{raw}")
        spare = sum(m.size for g in report.copies for m in g.others())
        bar(Progress("done", 0, 0))
        print(f"{count(len(report.copies), 'group')} of copies ({count(sum(len(g.others()) for g in report.copies), 'file')} "
              f"could go to the trash, {size_text(spare)}), {count(len(report.similar), 'group')} of similar shots; "
              f"{count(report.photos, 'photo')} compared in {report.seconds:.1f} s (threshold {report.threshold})")
        if report.without_time and "similar" in kinds:
            print(f"{count(report.without_time, 'photo')} without a capture time (EXIF): similar shots among them "
                  "cannot be told from other photos of the same thing, so they are not grouped")
    if not args.trash:
        return 0
    movable = [m for g in report.copies for m in g.others()]
    if not movable:
        print("nothing to move")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("--trash needs --yes when not run on a terminal (nothing was moved)")
        answer = input(f"Move {len(movable)} copies to the system trash, keeping one of each photo? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing was moved")
            return 0
    done, notes = trash_others(lib, report.copies)
    moved = [t for t in done if t.moved]
    if args.json:
        print(json.dumps({"moved": [{"path": display(t.path), "in_trash": display(t.in_trash)} for t in moved],
                          "not_moved": notes}))
    else:
        for t in moved:
            print(f"moved to the trash: {display(t.path)}")
        for line in notes:
            print(line)
        print(f"{len(moved)} copies moved to the system trash (your trash can bring them back)")
    return 1 if notes else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("duplicates", help="copies of one photo, and similar shots taken seconds apart")
    p.add_argument("--kind", choices=["all", "copies", "similar"], default="all",
                   help="copies: the same picture as other files (re-saved, resized, another format, "
                   "turned, re-toned, cropped); similar: different shots of one moment (default: all)")
    p.add_argument("--threshold", type=unit_float,
                   help="how surely two files must hold the same picture, in [0, 1] (default: the library's "
                   "setting, set in the window, else the value chosen on the benchmark of docs/quality.md; "
                   "printed with the results; higher finds fewer edited copies)")
    p.add_argument("--seconds", type=positive_float,
                   help="similar shots are taken at most this many seconds apart (default 3)")
    p.add_argument("--trash", action="store_true", help="move the copies (all but the suggested one to "
                   "keep, of each group of copies) to the system trash; asks first, or --yes")
    p.add_argument("--yes", action="store_true", help="with --trash: do not ask")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_duplicates)
