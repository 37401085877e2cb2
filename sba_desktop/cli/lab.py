"""`sba eval` and `sba bench`: measuring the product (the only face that imports lab/)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from sba_desktop.cli.common import bounded, positive_int
from sba_desktop.engine.registry import BACKBONES, DEFAULT_BACKBONE
from sba_desktop.engine.sba import DEFAULT_DIMS, DEFAULT_GLOBAL_WEIGHT, DEFAULT_IMAGE_SIZE

# `sba eval --task open-set --small-library`: a person starting out (issue 18's small case)
SMALL_CATEGORIES, SMALL_EXAMPLES, SMALL_UNSORTED_PER_CLASS = 4, 15, 5


def _progress_printer(label: str):
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r{label}: {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _shape_list(text: str) -> tuple[str, ...]:
    from sba_desktop.lab.evaluation import LIBRARY_SHAPES

    shapes = LIBRARY_SHAPES if text == "all" else tuple(s for s in text.split(",") if s)
    wrong = [s for s in shapes if s not in LIBRARY_SHAPES]
    if wrong or not shapes:
        raise argparse.ArgumentTypeError(f"library shapes are {', '.join(LIBRARY_SHAPES)} or all, not {text!r}")
    return shapes


def cmd_eval(args: argparse.Namespace) -> int:
    from sba_desktop.lab.report import format_table
    from sba_desktop.lab.evaluation import EvalOptions, evaluate

    opt = EvalOptions(backbone=args.backbone, n_detectors=args.n, dims=args.dims, global_weight=args.global_weight,
                      image_size=args.image_size, whiten_on=args.whiten_on, qe=args.qe,
                      k=args.k, sweep=args.sweep, runtime=args.runtime,
                      open_categories=args.categories or (SMALL_CATEGORIES if args.small_library else 12),
                      open_examples=args.examples or (SMALL_EXAMPLES if args.small_library else 10),
                      unsorted_per_class=args.unsorted_per_class, distractors=args.distractors or [],
                      small_library=args.small_library, library_shapes=args.library_shapes or (),
                      small_kinds=args.small_kinds or (), look_inside=args.look_inside)
    if args.look_inside and args.task != "composites":
        raise SystemExit("--look-inside is for --task composites")
    if (args.library_shapes or args.small_kinds) and args.task != "open-set":
        raise SystemExit("--library-shapes and --small-kinds are for --task open-set")
    if args.small_kinds and len(args.small_kinds) < 3:
        raise SystemExit("--small-kinds: at least one folder's class and the 2 classes with no folder")
    if args.small_library:  # the small-library protocol's defaults, unless given
        opt = replace(opt, unsorted_per_class=args.unsorted_per_class or SMALL_UNSORTED_PER_CLASS)
        if args.distractors:
            raise SystemExit("--small-library means nothing else in the library: no --distractors")
    report = evaluate(args.dir, args.task, opt, None if args.json else _progress_printer("encoding"))
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from sba_desktop.lab.bench import format_bench, run_bench

    report = run_bench(quick=args.quick, max_vectors=args.max_vectors, ray=args.ray, pipeline_only=args.pipeline)
    print(json.dumps(report) if args.json else format_bench(report))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from sba_desktop.lab.classifier import DEFAULT_K

    e = sub.add_parser("eval", help="measure retrieval / classification quality on a photo set")
    e.add_argument("dir", help="folder with groundtruth.json and images/")
    e.add_argument("--task", choices=["retrieval", "classification", "open-set", "composites", "elsewhere"],
                   help="classification adds the few-shot curve; open-set: 12 category folders of 10 "
                   "examples, the other classes unsorted (should get no category); composites: another shot of each "
                   "object pasted into everyday photos (needs --distractors); elsewhere: queries not in the library")
    e.add_argument("--json", action="store_true")
    e.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(BACKBONES))
    e.add_argument("--n", type=positive_int, default=25, help="detectors N of the default SBA")
    e.add_argument("--dims", type=positive_int, default=DEFAULT_DIMS, help="reduced dimension M")
    e.add_argument("--global-weight", type=bounded(float, at_least=0), default=DEFAULT_GLOBAL_WEIGHT,
                   help="weight of the whole-photo region beside the N detectors' (0: SBA's regions only)")
    e.add_argument("--image-size", type=bounded(int, at_least=32), default=DEFAULT_IMAGE_SIZE, help="long side in pixels")
    e.add_argument("--whiten-on", metavar="DIR", help="independent photo set to learn whitening on")
    e.add_argument("--qe", action="store_true", help="also report plain average query expansion (top 10)")
    e.add_argument("--k", type=positive_int, default=DEFAULT_K, help="neighbours of the MN classifier")
    e.add_argument("--sweep", action="store_true", help="add N, M, beta and region-pooling sweeps")
    e.add_argument("--categories", type=positive_int, help="open-set: known categories (default 12; small library 4)")
    e.add_argument("--examples", type=positive_int,
                   help="open-set: examples per category (default 10; small library 15)")
    e.add_argument("--unsorted-per-class", type=positive_int, metavar="N",
                   help="open-set: only N unsorted photos per class; the other photos are the rest of the library")
    e.add_argument("--small-library", action="store_true",
                   help=f"open-set: the small library: {SMALL_CATEGORIES} categories x {SMALL_EXAMPLES} examples, "
                   f"{SMALL_UNSORTED_PER_CLASS} unsorted photos per class, nothing else indexed")
    e.add_argument("--distractors", action="append", metavar="DIR",
                   help="other photos in the library (repeatable): searched over, never queries or positives; "
                   "for tagging, the library around the photos")
    e.add_argument("--library-shapes", type=_shape_list, metavar="SHAPES",
                   help="open-set: the tagger in these shapes of library, comma-separated: alone (nothing else "
                   "indexed), small (a few look-alike kinds, 2 with no folder), among and grown (need --distractors; "
                   "grown: the model was fitted before the folders came); 'all' for every one")
    e.add_argument("--small-kinds", type=lambda t: tuple(k for k in t.split(",") if k), metavar="K1,K2,...",
                   help="open-set, small shape: its classes, the folders first and the last 2 with no folder "
                   "(default: a family of look-alike classes drawn per draw)")
    e.add_argument("--look-inside", action="store_true", help="composites: also the band of photos found "
                   "inside (each library photo's windows, read at 448 px, as an indexing that looks inside)")
    e.add_argument("--runtime", choices=["onnx", "torch"], default="onnx",
                   help="onnx: the product's inference (default); torch: the reference network")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="speed and memory of this machine (medians; --quick < 2 min)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--max-vectors", type=positive_int, metavar="N",
                   help="skip the search benchmarks above N vectors (1M takes ~15 min to build)")
    b.add_argument("--pipeline", action="store_true",
                   help="only the indexing pipeline: stages, JPEGs, 12-MP JPEG, HEIC and DNG files")
    b.add_argument("--ray", metavar="ADDRESS", help="only the Ray path ('local' or a cluster address) "
                   "against the local pipeline")
    b.set_defaults(func=cmd_bench)
