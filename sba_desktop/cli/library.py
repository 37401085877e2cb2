"""Library subcommands of `sba`: index, status, forget, search, duplicates, categories, tag."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from sba_desktop.errors import UserError


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {v}")
    return v


def unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {v}")
    return v


def _folder(path: str) -> str:
    """An existing folder, as an absolute path; checked before anything is changed."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise UserError(f"{path}: no such folder")
    if not os.path.isdir(full):
        raise UserError(f"{path}: not a folder")
    return full


def _open(args):
    from sba_desktop.library.library import Library
    from sba_desktop.logs import setup_logging

    lib = Library.open(args.home)
    setup_logging(lib.paths)
    return lib


def _bar(json_mode: bool):
    from sba_desktop.jobs.index import Progress

    tty = sys.stderr.isatty() and not json_mode

    def show(p: Progress) -> None:
        if not tty:
            return
        if p.phase == "done":
            sys.stderr.write("\r\033[K")
        elif p.total:
            width = 30
            fill = int(width * p.done / p.total)
            eta = f" ETA {p.eta_s:4.0f}s" if p.eta_s else ""
            sys.stderr.write(f"\r\033[K{p.phase:9} [{'#' * fill}{'.' * (width - fill)}] "
                             f"{p.done}/{p.total} {p.rate:5.1f}/s{eta}")
        else:
            sys.stderr.write(f"\r\033[K{p.phase} {p.done} files...")
        sys.stderr.flush()
    return show


def cmd_index(args) -> int:
    from sba_desktop.jobs.index import IndexJob

    args.folders = [_folder(f) for f in args.folders]  # all checked before any is added
    lib = _open(args)
    if not args.folders and not lib.catalog.folders():
        raise UserError("no folders in the library yet: sba index FOLDER")
    rebuild = getattr(args, "rebuild", False)
    if getattr(args, "ray", None):
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UserError("--ray needs the cluster extra: pip install 'sba-desktop[cluster]'")
        from sba_desktop.jobs.cluster import RayIndexJob, connect

        connect(args.ray)
        job = RayIndexJob(lib, args.folders, _bar(args.json), rebuild=rebuild, actors=args.ray_actors,
                          cpus_per_actor=args.ray_cpus, gpus_per_actor=args.ray_gpus)
    else:
        job = IndexJob(lib, args.folders, _bar(args.json), rebuild=rebuild)
    try:
        r = job.run()
    except KeyboardInterrupt:
        job.cancel()
        raise
    out = {**r.to_json(_disp), **{k: v for k, v in lib.status().items() if k in ("photos", "indexed", "model")}}
    if args.json:
        print(json.dumps(out))
    else:
        print(r.summary())
        for p, why in r.skipped:
            print(f"  skipped {_disp(p)}: {why}")
        for p, why in r.problems:
            print(f"  problem {_disp(p)}: {why}")
        for f in r.offline:
            print(f"  offline {_disp(f)}: not reachable now; its photos are kept until it returns")
        print(f"library: {out['photos']} photos, {out['indexed']} indexed; model {out['model']}")
    return 0


def _disp(p: str) -> str:
    from sba_desktop.library.catalog import display

    return display(p)


def cmd_rebuild(args) -> int:
    args.folders, args.rebuild = [], True
    return cmd_index(args)


def cmd_status(args) -> int:
    lib = _open(args)
    s = lib.status()
    if args.json:
        print(json.dumps(s))
    else:
        print(f"library: {s['home']}")
        print(f"photos: {s['photos']} ({s['indexed']} indexed, {s['pending']} pending, {s['skipped']} skipped)")
        print(f"model: {s['model']}")
        for f in s["folders"]:
            print(f"folder: {_disp(f)}" + ("" if os.path.isdir(f) else "  (offline: not reachable now)"))
        if s["refit"]:
            r = s["refit"]
            print(f"refit in progress: {r['staged']} of {r['total']} photos re-encoded for the next model "
                  "(the current model serves searches until it is done; 'sba index' continues it)")
        elif lib.needs_rebuild():
            print("settings differ from the model in use: run 'sba rebuild' to re-encode")
        elif s["refit_due"]:
            print("the model was fitted on a much smaller library: the next 'sba index' refits it "
                  "(searches keep working meanwhile)")
    return 0


def cmd_forget(args) -> int:
    lib = _open(args)
    folder = os.path.abspath(os.path.expanduser(args.folder))
    if folder not in lib.catalog.folders():
        known = ", ".join(lib.catalog.folders()) or "none"
        raise UserError(f"{args.folder} is not a folder of the library (its folders: {known})")
    n = lib.forget_folder(folder)
    print(f"forgot {args.folder}: {n} photos removed from the library (files untouched)")
    return 0


def region_arg(text: str) -> tuple[float, float, float, float]:
    """--region x,y,w,h in the photo's pixels, width and height positive."""
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or parts[2] <= 0 or parts[3] <= 0:
        raise argparse.ArgumentTypeError("needs x,y,w,h with positive width and height, e.g. 120,80,300,200")
    return tuple(parts)


def _query_files(items: list[str]) -> list[str]:
    """Photos named on the command line, folders expanded to their photos (sorted); all checked
    before the library is opened."""
    from sba_desktop.library.discover import walk_photos

    out = []
    for item in items:
        if os.path.isdir(item):
            out += sorted(ff.path for ff in walk_photos(item))
        elif os.path.isfile(item):
            out.append(item)
        else:
            raise UserError(f"{item}: no such file or folder")
    if not out:
        raise UserError(f"no photos in {', '.join(items)}")
    return out


def cmd_search(args) -> int:
    """One or many queries with one model load: photos are decoded and encoded in batches on
    every core (the indexing pipeline), each answered in turn."""
    from sba_desktop.library.encoding import Source

    queries = _query_files(args.images)
    if args.region is not None and len(queries) != 1:
        raise UserError("--region needs exactly one query photo")
    lib = _open(args)
    if lib.model is None or not lib.index:
        raise UserError("the library has no photos indexed yet: sba index FOLDER")
    answers: dict[int, dict] = {}
    for chunk in lib.encode_queries([Source(i, q, region=args.region) for i, q in enumerate(queries)]):
        for e in chunk:
            if e.error is not None:
                answers[e.key] = {"query": queries[e.key], "error": e.error}
            else:
                hits = lib.search_vector(e.vector, args.top, expand=not args.plain)
                answers[e.key] = {"query": queries[e.key],
                                  "results": [{"path": _disp(h.path), "score": round(h.score, 5)} for h in hits]}
    ordered = [answers[i] for i in range(len(queries))]
    failed = [a for a in ordered if "error" in a]
    if len(queries) == 1 and failed:
        raise UserError(f"{queries[0]}: {failed[0]['error']}")
    if args.json:
        print(json.dumps({"queries": ordered}))
    else:
        for n, a in enumerate(ordered):
            if len(queries) > 1:
                print(f"{'' if n == 0 else chr(10)}query {a['query']}")
            if "error" in a:
                print(f"  cannot search: {a['error']}")
            for r in a.get("results", []):
                print(f"{r['score']:6.3f}  {r['path']}")
    if failed:
        print(f"sba: {len(failed)} of {len(queries)} queries could not be read", file=sys.stderr)
        return 1
    return 0


def cmd_explain(args) -> int:
    """Why RESULT matches QUERY: the plain score split exactly over the places of both photos."""
    from sba_desktop.library.decode import DecodeError
    from sba_desktop.library.encoding import Source
    from sba_desktop.jobs.explain import explain, explanation_json

    for f in (args.query, args.result):
        if not os.path.isfile(f):
            raise UserError(f"{f}: no such file")
    lib = _open(args)
    if lib.model is None or lib.model.spec.method != "sba":
        raise UserError("the library has no photos indexed yet: sba index FOLDER")
    try:
        ex = explain(lib, Source("query", path=os.path.abspath(args.query), region=args.region),
                     os.path.abspath(args.result))
    except DecodeError as exc:
        raise UserError(f"cannot read a photo: {exc}") from None
    out = explanation_json(ex)
    for m in (out["search"] or {}).get("close_matches", []):
        m["path"] = _disp(m["path"])
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"similarity {out['score']:.3f} (plain; the default search also weighs each photo's neighbourhood)")
    if not out["matched"]:
        print("these photos are no more alike than two photos picked at random from the library: "
              "there is no match to point at")
    for side in ("query", "result") if out["matched"] else ():
        print(f"{side} regions (x0, y0, x1, y1 in the photo's pixels, share of the similarity):")
        for i, r in enumerate(out[f"{side}_regions"]):
            print(f"  {i + 1}. {tuple(round(v) for v in r['box'])}  {r['share']:.0%}")
    if out["pairs"]:
        print("this part of the query matches that part of the result:")
    for p in out["pairs"]:
        print(f"  query {p['query_region'] + 1} <-> result {p['result_region'] + 1}  {p['share']:.0%}")
    if out["search"]:
        sr = out["search"]
        print(f"in the search with close matches (the default) it scores {sr['score']:.3f}: these two photos "
              f"carry {sr['these_two']:.3f}" + "".join(f", {m['path']} {m['part']:.3f}"
                                                        for m in sr["close_matches"][:4]))
    print("strongest detectors:")
    for d in out["detectors"][:5]:
        print(f"  {d['share']:6.1%}  {d['name']}")
    return 0


def _member_json(m, keeper: bool) -> dict:
    return {"path": _disp(m.path), "keeper": keeper, "width": m.width, "height": m.height, "bytes": m.size,
            "format": m.format, "taken": _when(m.taken), "camera": m.camera,
            "agreement": round(m.agreement, 4), "raw_files": [_disp(p) for p in m.companions]}


def _count(n: int, noun: str) -> str:
    """"1 group", "3 groups"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _when(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def cmd_duplicates(args) -> int:
    from sba_desktop.library.catalog import size_text
    from sba_desktop.jobs.duplicates import SIMILAR_SECONDS, find_duplicates, saved_threshold, trash_others
    from sba_desktop.jobs.index import Progress

    lib = _open(args)
    args.threshold = saved_threshold(lib) if args.threshold is None else args.threshold
    args.seconds = SIMILAR_SECONDS if args.seconds is None else args.seconds
    if args.trash and args.kind == "similar":
        raise UserError("--trash moves copies only: similar shots are different photos, never moved in bulk")
    bar = _bar(args.json)
    report = find_duplicates(lib, args.threshold, args.seconds,
                             progress=lambda phase, done, total: bar(Progress(phase, done, total)))
    kinds = ["copies", "similar"] if args.kind == "all" else [args.kind]
    groups = {k: getattr(report, k) for k in kinds}
    if args.json and not args.trash:
        print(json.dumps({
            "threshold": args.threshold, "similar_seconds": args.seconds, "photos": report.photos,
            "without_capture_time": report.without_time, "compared_pairs": report.candidates,
            "seconds": round(report.seconds, 2),
            **{k: [{"keeper": _disp(g.members[g.keeper].path) if g.keeper is not None else None,
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
                    raw = f"  + {', '.join(_disp(p) for p in m.companions)}" if m.companions else ""
                    print(f"  {mark}  {m.agreement:5.3f}  {m.width}x{m.height}  {size_text(m.size):>8}  "
                          f"{(m.format or '?').upper():5s} {_when(m.taken) or '-':19s}  {_disp(m.path)}{raw}")
        spare = sum(m.size for g in report.copies for m in g.others())
        bar(Progress("done", 0, 0))
        print(f"{_count(len(report.copies), 'group')} of copies ({_count(sum(len(g.others()) for g in report.copies), 'file')} "
              f"could go to the trash, {size_text(spare)}), {_count(len(report.similar), 'group')} of similar shots; "
              f"{_count(report.photos, 'photo')} compared in {report.seconds:.1f} s (threshold {report.threshold})")
        if report.without_time and "similar" in kinds:
            print(f"{_count(report.without_time, 'photo')} without a capture time (EXIF): similar shots among them "
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
        print(json.dumps({"moved": [{"path": _disp(t.path), "in_trash": _disp(t.in_trash)} for t in moved],
                          "not_moved": notes}))
    else:
        for t in moved:
            print(f"moved to the trash: {_disp(t.path)}")
        for line in notes:
            print(line)
        print(f"{len(moved)} copies moved to the system trash (your trash can bring them back)")
    return 1 if notes else 0


def cmd_categories(args) -> int:
    from sba_desktop.jobs.tagging import category_folders, index_folder, label_from_folders

    if args.action == "set":
        if not args.root:
            raise UserError("categories set needs ROOT: a folder whose subfolders are the categories")
        root = _folder(args.root)
        if not category_folders(root):
            raise UserError(f"{args.root} has no subfolders: each subfolder of ROOT is one category "
                            "(e.g. ROOT/birds, ROOT/boats), holding example photos")
    lib = _open(args)
    if args.action == "set":
        index_folder(lib, root, _bar(args.json))
        counts = label_from_folders(lib, args.root)
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
    return {"path": _disp(p.path), "category": p.category, "closest": p.closest,
            "confidence": round(p.confidence, 4)}


def _proposal_text(p) -> str:
    return p.category if p.category is not None else f"none (closest: {p.closest})"


def cmd_tag(args) -> int:
    from sba_desktop.jobs import tagging

    folder = _folder(args.folder) if args.folder else None
    lib = _open(args)
    if folder and not lib.catalog.examples():  # checked before the folder is added
        raise UserError("no categories yet: sba categories set ROOT (each subfolder of ROOT is a category)")
    out: dict = {}
    if folder:
        tagging.index_folder(lib, folder, _bar(args.json))
        props = tagging.propose(lib, folder)
        out["proposals"] = [_proposal_json(p) for p in props]
        if not args.json:  # grouped by category, most confident first; "none" last
            for p in sorted(props, key=lambda p: (p.category is None, p.category or p.closest, -p.confidence)):
                print(f"{p.confidence:5.2f}  {_proposal_text(p):<32} {_disp(p.path)}")
            none = sum(p.category is None for p in props)
            print(f"{len(props) - none} proposals, {none} photos fit none of the categories")
    if args.accept:
        out["accepted"] = tagging.accept(lib, args.min_confidence)
        if not args.json:
            print(f"accepted {out['accepted']} proposals with confidence >= {args.min_confidence}")
    if args.write_xmp:
        out["sidecars_written"] = tagging.write_xmp(lib)
        if not args.json:
            print(f"wrote keywords into {out['sidecars_written']} XMP sidecars (photos untouched)")
    if not (args.folder or args.accept or args.write_xmp):
        props = tagging.proposals(lib)
        out["proposals"] = [{**_proposal_json(p), "accepted": p.accepted} for p in props]
        if not args.json:
            for p in props:
                print(f"{'+' if p.accepted else ' '} {p.confidence:5.2f}  {_proposal_text(p):<32} {_disp(p.path)}")
    if args.json:
        print(json.dumps(out))
    return 0


def cmd_watch(args) -> int:
    """Keep the library current until SIGINT/SIGTERM (a home server, a NAS)."""
    import signal
    import threading

    from sba_desktop.library.lock import LibraryBusyError
    from sba_desktop.jobs.watch import LibraryWatcher

    lib = _open(args)
    if not lib.catalog.folders():
        raise UserError("no folders in the library yet: sba index FOLDER, then sba watch")
    try:  # refuse politely when another writer holds the library
        lib.writer_lock().acquire().release()
    except LibraryBusyError as exc:
        raise UserError(f"cannot watch: {exc}") from None
    lib.close()
    stop = threading.Event()
    # Ctrl+C everywhere, SIGTERM (service managers), and on Windows Ctrl+Break and the console
    # window closing (both arrive as SIGBREAK)
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: stop.set())
    last = [""]

    def status(st) -> None:
        line = st.line()
        if line != last[0] and not args.json:
            print(line, file=sys.stderr, flush=True)
            last[0] = line

    def report(r) -> None:
        print(json.dumps(r.to_json(_disp)) if args.json else f"{time.strftime('%H:%M:%S')} {r.summary()}",
              flush=True)

    w = LibraryWatcher(args.home, settle_s=args.settle, rescan_s=args.rescan_interval,
                       use_events=not args.poll, on_status=status, on_report=report).start()
    while not stop.wait(0.5):
        if w.error is not None:
            raise RuntimeError(f"the watcher stopped: {w.error}")
    w.stop(timeout=30)
    print("stopped", file=sys.stderr)
    return 0


def cmd_inbox(args) -> int:
    from sba_desktop.library.discover import is_under
    from sba_desktop.jobs.tagging import inbox_folders, set_inbox

    lib = _open(args)
    if args.folder:
        folder = _folder(args.folder)
        if not any(folder == f or is_under(folder, f) for f in lib.catalog.folders()):
            raise UserError(f"{args.folder} is not in the library: sba index {args.folder} first")
        set_inbox(lib, folder, not args.off)
    folders = inbox_folders(lib)
    print(json.dumps({"inbox": folders}) if args.json else
          "\n".join(f"inbox: {f}" for f in folders) or "no inbox folders")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="add folders and index their photos (incremental)")
    p.add_argument("folders", nargs="*", help="folders to add (default: the watched folders)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--ray", metavar="ADDRESS", help="encode on a Ray cluster (ADDRESS of `ray start "
                   "--head`, or 'local' for a Ray runtime on this machine); needs the cluster extra")
    p.add_argument("--ray-actors", type=positive_int, help="encoding actors (default: one per CPU share)")
    p.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per actor (default 1)")
    p.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per actor (onnxruntime-gpu on the workers)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("rebuild", help="refit the model with the current settings and re-encode all photos")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rebuild)

    p = sub.add_parser("status", help="what the library holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("forget", help="remove a folder from the library (files are not touched)")
    p.add_argument("folder")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("search", help="photos like each query (any photo, in the library or not; "
                       "folders: each photo in them)")
    p.add_argument("images", nargs="+", metavar="PHOTO|FOLDER")
    p.add_argument("--region", type=region_arg, help="x,y,w,h: search by a rectangle of the query "
                   "(the photo's pixels, as it is shown upright; one query only)")
    p.add_argument("--top", type=positive_int, default=20, help="how many results (default 20)")
    p.add_argument("--plain", action="store_true", help="plain nearest neighbours: no neighbourhood "
                   "expansion (the default expands query and results with their closest matches)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("explain", help="why RESULT matches QUERY: the regions of both photos that carry "
                       "the similarity, and which part matches which")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("result", metavar="RESULT")
    p.add_argument("--region", type=region_arg, help="x,y,w,h: a rectangle of the query, as for search")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("watch", help="keep the library current as photos are added, moved or deleted "
                       "(foreground; stops on Ctrl+C, SIGTERM, or Ctrl+Break / closing the console on Windows)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds a file must stay unchanged before it is read (default 2)")
    p.add_argument("--rescan-interval", type=float, default=300.0,
                   help="seconds between rescans where file events are unavailable (default 300)")
    p.add_argument("--poll", action="store_true", help="no file events at all: rescan periodically")
    p.add_argument("--json", action="store_true", help="one JSON line per change batch")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("inbox", help="mark a library folder as an inbox: arriving photos get category "
                       "proposals automatically while watching")
    p.add_argument("folder", nargs="?", help="the folder (omit to list the inbox folders)")
    p.add_argument("--off", action="store_true", help="stop treating the folder as an inbox")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inbox)

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

    p = sub.add_parser("categories", help="categories from folders")
    p.add_argument("action", choices=["set", "list"])
    p.add_argument("root", nargs="?", help="for 'set': a folder whose subfolders are the categories")
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
    logging.getLogger("sba_desktop").setLevel(logging.INFO)
