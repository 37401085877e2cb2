"""`sba categories` and `sba tag`: categories from folders, proposals for unsorted photos."""
from __future__ import annotations

import argparse
import json

from sba_desktop.cli.common import display, folder_arg, open_library, positive_int, progress_bar, unit_float
from sba_desktop.errors import UserError


def cmd_categories(args) -> int:
    from sba_desktop.jobs.tagging import category_folders, index_folder, label_from_folders

    if args.action == "set":
        if not args.root:
            raise UserError("categories set needs ROOT: a folder whose subfolders are the categories")
        root = folder_arg(args.root)
        if not category_folders(root):
            raise UserError(f"{args.root} has no subfolders: each subfolder of ROOT is one category "
                            "(e.g. ROOT/birds, ROOT/boats), holding example photos")
    if args.action == "new" and (args.group is None or not args.name):
        raise UserError("categories new needs --group N (from sba tag) and --name NAME")
    lib = open_library(args)
    if args.action == "set":
        index_folder(lib, root, progress_bar(args.json))
        counts = label_from_folders(lib, args.root)
    elif args.action == "new":
        from sba_desktop.jobs.tagging import look_alike_groups, make_category

        groups = look_alike_groups(lib)
        if not 1 <= args.group <= len(groups):
            raise UserError(f"no group {args.group}: sba tag lists {len(groups)} group(s) of look-alike photos")
        n = make_category(lib, args.name, groups[args.group - 1].photo_ids)
        counts = {args.name.strip(): n}
    else:
        counts = {}
        for _pid, name, *_ in lib.catalog.labels(accepted=True):
            counts[name] = counts.get(name, 0) + 1
    if args.json:
        print(json.dumps({"categories": counts}))
    else:
        for name, n in sorted(counts.items()):
            print(f"{name}: {n} examples")
    return 0


def _proposal_json(p) -> dict:
    """category is null when the photo fits none; confidence is P(closest is right)."""
    return {"path": display(p.path), "category": p.category, "closest": p.closest,
            "confidence": round(p.confidence, 4)}


def _groups_json(groups) -> list[dict]:
    return [{"group": i, "photos": [display(p) for p in g.paths], "count": len(g.paths), "closest": g.closest}
            for i, g in enumerate(groups, 1)]


def _print_groups(groups) -> None:
    for i, g in enumerate(groups, 1):
        print(f"group {i}: these {len(g.paths)} photos look alike and fit none of your categories "
              f"(closest: {g.closest}); make it a category: sba categories new --group {i} --name NAME")
        for p in g.paths[:5]:
            print(f"    {display(p)}")
        if len(g.paths) > 5:
            print(f"    ... and {len(g.paths) - 5} more")


def _proposal_text(p) -> str:
    return p.category if p.category is not None else f"none (closest: {p.closest})"


def cmd_tag(args) -> int:
    from sba_desktop.jobs import tagging

    folder = folder_arg(args.folder) if args.folder else None
    lib = open_library(args)
    if folder and not lib.catalog.examples():  # checked before the folder is added
        raise UserError("no categories yet: sba categories set ROOT (each subfolder of ROOT is a category)")
    out: dict = {}
    if folder:
        tagging.index_folder(lib, folder, progress_bar(args.json))
        props = tagging.propose(lib, folder)
        out["proposals"] = [_proposal_json(p) for p in props]
        if not args.json:  # grouped by category, most confident first; "none" last
            for p in sorted(props, key=lambda p: (p.category is None, p.category or p.closest, -p.confidence)):
                print(f"{p.confidence:5.2f}  {_proposal_text(p):<32} {display(p.path)}")
            none = sum(p.category is None for p in props)
            print(f"{len(props) - none} proposals, {none} photos fit none of the categories")
    if folder or not (args.accept or args.write_xmp):
        groups = tagging.look_alike_groups(lib)
        out["new_categories"] = _groups_json(groups)
        if not args.json:
            _print_groups(groups)
    if args.accept:
        out["accepted"] = tagging.accept(lib, args.min_confidence)
        if not args.json:
            print(f"accepted {out['accepted']} proposals with confidence >= {args.min_confidence}")
    if args.write_xmp:
        left: list[tuple[str, str]] = []
        out["sidecars_written"] = tagging.write_xmp(lib, left)
        out["sidecars_left_alone"] = [{"path": display(p), "reason": why} for p, why in left]
        if not args.json:
            for p, why in left:
                print(f"  not written {display(p)}.xmp: {why}")
            print(f"wrote keywords into {out['sidecars_written']} XMP sidecars (photos untouched)")
    if not (args.folder or args.accept or args.write_xmp):
        props = tagging.proposals(lib)
        out["proposals"] = [{**_proposal_json(p), "accepted": p.accepted} for p in props]
        if not args.json:
            for p in props:
                print(f"{'+' if p.accepted else ' '} {p.confidence:5.2f}  {_proposal_text(p):<32} {display(p.path)}")
            if not props and not out["new_categories"]:  # an empty answer reads like a hang or a crash
                print("no proposals yet: sba categories set ROOT, then sba tag FOLDER of unsorted photos"
                      if not lib.catalog.examples() else "no proposals yet: sba tag FOLDER of unsorted photos")
    if args.json:
        print(json.dumps(out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("categories", help="categories from folders")
    p.add_argument("action", choices=["set", "list", "new"])
    p.add_argument("root", nargs="?", help="for 'set': a folder whose subfolders are the categories")
    p.add_argument("--group", type=positive_int, help="for 'new': a group of look-alike photos listed by sba tag")
    p.add_argument("--name", help="for 'new': the new category's name (no file is moved)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_categories)

    p = sub.add_parser("tag", help="propose categories for unsorted photos; accept; write XMP sidecars")
    p.add_argument("folder", nargs="?", help="folder of unsorted photos to propose categories for")
    p.add_argument("--accept", action="store_true", help="accept proposals")
    p.add_argument("--min-confidence", type=unit_float, default=0.0,
                   help="accept only proposals at least this confident, in [0, 1] (confidence = estimated "
                   "probability of being right; photos that fit no category are never accepted in bulk)")
    p.add_argument("--write-xmp", action="store_true",
                   help="write accepted categories as keywords into <photo>.xmp sidecars")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tag)
