"""`sba index`, `rebuild`, `status`, `forget`, `watch`, `inbox`: the library and its folders."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from sba_desktop.cli.common import (bounded, display, folder_arg, open_library, positive_float, positive_int,
                                    progress_bar)
from sba_desktop.errors import UserError


def cmd_index(args) -> int:
    from sba_desktop.jobs.index import IndexJob

    args.folders = [folder_arg(f) for f in args.folders]  # all checked before any is added
    lib = open_library(args)
    if not args.folders and not lib.catalog.folders():
        raise UserError("no folders in the library yet: sba index FOLDER")
    rebuild = getattr(args, "rebuild", False)
    if getattr(args, "look_inside", None) is not None:
        settings = lib.settings()
        settings.inside = args.look_inside
        lib.save_settings(settings)
    if getattr(args, "ray", None):
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UserError("--ray needs the cluster extra: pip install 'sba-desktop[cluster]'")
        from sba_desktop.jobs.cluster import RayIndexJob, connect

        connect(args.ray)
        job = RayIndexJob(lib, args.folders, progress_bar(args.json), rebuild=rebuild, actors=args.ray_actors,
                          cpus_per_actor=args.ray_cpus, gpus_per_actor=args.ray_gpus)
    else:
        job = IndexJob(lib, args.folders, progress_bar(args.json), rebuild=rebuild)
    try:
        r = job.run()
    except KeyboardInterrupt:
        job.cancel()
        raise
    out = {**r.to_json(display), **{k: v for k, v in lib.status().items() if k in ("photos", "indexed", "model")}}
    if args.json:
        print(json.dumps(out))
    else:
        print(r.summary())
        for p, why in r.skipped:
            print(f"  skipped {display(p)}: {why}")
        for p, why in r.problems:
            print(f"  problem {display(p)}: {why}")
        for f in r.offline:
            print(f"  offline {display(f)}: not reachable now; its photos are kept until it returns")
        print(f"library: {out['photos']} photos, {out['indexed']} indexed; model {out['model']}")
    return 0


def cmd_rebuild(args) -> int:
    args.folders, args.rebuild = [], True
    return cmd_index(args)


def cmd_status(args) -> int:
    lib = open_library(args)
    s = lib.status()
    s["health"] = lib.health()  # repairs made at the open, SQLite's full check of the catalog
    # photos with windows (looking inside photos), None when the library does not look inside
    s["looked_inside"] = (lib.inside.count(s["model_id"]) if s["model_id"] else 0) if lib.settings().inside else None
    if args.json:
        print(json.dumps(s))
    else:
        print(f"library: {s['home']}")
        print("health: " + ("every file checked, all sound" if not s["health"] else s["health"][0]))
        for line in s["health"][1:]:
            print(f"health: {line}")
        print(f"photos: {s['photos']} ({s['indexed']} indexed, {s['pending']} pending, {s['skipped']} skipped)")
        print(f"model: {s['model']}")
        if s["looked_inside"] is not None:
            done = s["looked_inside"]
            print(f"looking inside photos: {done} of {s['indexed']} photos" +
                  ("" if done >= s["indexed"] else " (the next 'sba index' looks inside the rest)"))
        for f in s["folders"]:
            print(f"folder: {display(f)}" + ("" if os.path.isdir(f) else "  (offline: not reachable now)"))
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
    lib = open_library(args)
    folder = os.path.abspath(os.path.expanduser(args.folder))
    if folder not in lib.catalog.folders():
        known = ", ".join(lib.catalog.folders()) or "none"
        raise UserError(f"{args.folder} is not a folder of the library (its folders: {known})")
    n = lib.forget_folder(folder)
    print(f"forgot {args.folder}: {n} photos removed from the library (files untouched)")
    return 0


def cmd_watch(args) -> int:
    """Keep the library current until SIGINT/SIGTERM (a home server, a NAS)."""
    import signal
    import threading

    from sba_desktop.library.lock import LibraryBusyError
    from sba_desktop.jobs.watch import LibraryWatcher

    lib = open_library(args)
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
        print(json.dumps(r.to_json(display)) if args.json else f"{time.strftime('%H:%M:%S')} {r.summary()}",
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

    lib = open_library(args)
    if args.folder:
        folder = folder_arg(args.folder)
        if not any(folder == f or is_under(folder, f) for f in lib.catalog.folders()):
            raise UserError(f"{args.folder} is not in the library: sba index {args.folder} first")
        set_inbox(lib, folder, not args.off)
    folders = inbox_folders(lib)
    print(json.dumps({"inbox": folders}) if args.json else
          "\n".join(f"inbox: {f}" for f in folders) or "no inbox folders")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="add folders and index their photos (incremental)")
    p.add_argument("folders", nargs="*", help="folders to add (default: the watched folders)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--look-inside", action=argparse.BooleanOptionalAction, default=None,
                   help="look inside photos (kept as the library's setting): searches also show the photos "
                   "an object appears in as a small part; indexing reads each photo once more at 448 px "
                   "(about 3.5x the time) and keeps 8 KB a photo")
    p.add_argument("--ray", metavar="ADDRESS", help="encode on a Ray cluster (ADDRESS of `ray start "
                   "--head`, or 'local' for a Ray runtime on this machine); needs the cluster extra")
    p.add_argument("--ray-actors", type=positive_int, help="encoding actors (default: one per CPU share)")
    p.add_argument("--ray-cpus", type=bounded(float, above=0), default=1.0, help="CPUs per actor (default 1)")
    p.add_argument("--ray-gpus", type=bounded(float, at_least=0), default=0.0, help="GPUs per actor (onnxruntime-gpu on the workers)")
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

    p = sub.add_parser("watch", help="keep the library current as photos are added, moved or deleted "
                       "(foreground; stops on Ctrl+C, SIGTERM, or Ctrl+Break / closing the console on Windows)")
    p.add_argument("--settle", type=bounded(float, at_least=0), default=2.0,
                   help="seconds a file must stay unchanged before it is read (default 2)")
    p.add_argument("--rescan-interval", type=positive_float, default=300.0,
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
