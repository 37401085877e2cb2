"""`sba search` and `sba explain`: photos like a query, and why one matches."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from sba_desktop.cli.common import display, folder_arg, open_library, positive_int
from sba_desktop.errors import UserError


def region_arg(text: str) -> tuple[float, float, float, float]:
    """--region x,y,w,h in the photo's pixels, width and height positive."""
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or not all(math.isfinite(v) for v in parts) or parts[2] <= 0 or parts[3] <= 0:
        raise argparse.ArgumentTypeError("needs x,y,w,h with positive width and height, e.g. 120,80,300,200")
    return tuple(parts)


def _query_files(items: list[str]) -> list[str]:
    """Photos named on the command line, folders expanded to their photos (sorted); all checked
    before the library is opened."""
    from sba_desktop.library.discover import walk_photos

    out = []
    for item in items:
        if os.path.isdir(item):
            out += sorted(ff.path for ff in walk_photos(folder_arg(item)))
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
    lib = open_library(args)
    if lib.model is None or not lib.index:
        waiting = lib.catalog.counts()["pending"]
        raise UserError(f"the library's {waiting} photos wait to be encoded: sba index" if waiting else
                        "the library has no photos indexed yet: sba index FOLDER")
    answers: dict[int, dict] = {}
    inside = lib.settings().inside and lib.model is not None
    for chunk in lib.encode_queries([Source(i, q, region=args.region) for i, q in enumerate(queries)]):
        for e in chunk:
            if e.error is not None:
                answers[e.key] = {"query": queries[e.key], "error": e.error}
            else:
                hits = lib.search_vector(e.vector, args.top, expand=not args.plain)
                answers[e.key] = {"query": queries[e.key],
                                  "results": [{"path": display(h.path), "score": round(h.score, 5)} for h in hits]}
                if inside:  # the photos it appears in as a part, besides the results above
                    answers[e.key]["inside"] = [
                        {"path": display(h.path), "score": round(h.score, 5), "box": h.pixels()}
                        for h in lib.inside.search(lib.model.model_id, e.vector, exclude={h.photo_id for h in hits})]
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
            if a.get("inside"):
                print("inside other photos (a part of the photo matches; x,y,w,h in its pixels):")
            for r in a.get("inside", []):
                print(f"{r['score']:6.3f}  {r['path']}" + (f"  at {','.join(map(str, r['box']))}" if r["box"] else ""))
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
    lib = open_library(args)
    if lib.model is None or lib.model.spec.method != "sba":
        raise UserError("the library has no photos indexed yet: sba index FOLDER")
    try:
        ex = explain(lib, Source("query", path=os.path.abspath(args.query), region=args.region),
                     os.path.abspath(args.result))
    except DecodeError as exc:
        raise UserError(f"cannot read a photo: {exc}") from None
    out = explanation_json(ex)
    for m in (out["search"] or {}).get("close_matches", []):
        m["path"] = display(m["path"])
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
    if out["inside"]:
        print(f"inside the result, the part at {tuple(out['inside']['box'])} matches the whole query: "
              f"{out['inside']['score']:.3f} (looking inside photos)")
    print("strongest detectors:")
    for d in out["detectors"][:5]:
        print(f"  {d['share']:6.1%}  {d['name']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
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
