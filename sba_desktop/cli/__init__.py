"""`sba`: the headless command line (same jobs as the application)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

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


def cmd_eval(args: argparse.Namespace) -> int:
    from sba_desktop.lab.report import format_table
    from sba_desktop.lab.evaluation import EvalOptions, evaluate

    opt = EvalOptions(backbone=args.backbone, n_detectors=args.n, dims=args.dims, global_weight=args.global_weight,
                      image_size=args.image_size, whiten_on=args.whiten_on, qe=args.qe,
                      k=args.k, sweep=args.sweep, runtime=args.runtime,
                      open_categories=args.categories or (SMALL_CATEGORIES if args.small_library else 12),
                      open_examples=args.examples or (SMALL_EXAMPLES if args.small_library else 10),
                      unsorted_per_class=args.unsorted_per_class, distractors=args.distractors or [],
                      small_library=args.small_library)
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
    from sba_desktop.engine.registry import BACKBONES, DEFAULT_BACKBONE
    from sba_desktop.lab.classifier import DEFAULT_K
    from sba_desktop.engine.sba import DEFAULT_DIMS, DEFAULT_GLOBAL_WEIGHT, DEFAULT_IMAGE_SIZE

    from sba_desktop import __version__

    p = argparse.ArgumentParser(prog="sba", description="sba-desktop on the command line: "
                                "index photo folders, search by example, tag, evaluate.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"sba {__version__}")
    p.add_argument("--home", help="library location (default: platform dirs, or $SBA_DESKTOP_HOME)")
    sub = p.add_subparsers(dest="command", required=True)

    from sba_desktop.cli.library import positive_int

    e = sub.add_parser("eval", help="measure retrieval / classification quality on a photo set")
    e.add_argument("dir", help="folder with groundtruth.json and images/")
    e.add_argument("--task", choices=["retrieval", "classification", "open-set"],
                   help="classification adds the few-shot curve; open-set: 12 category folders of 10 "
                   "examples, the other classes unsorted (should get no category)")
    e.add_argument("--json", action="store_true")
    e.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(BACKBONES))
    e.add_argument("--n", type=int, default=25, help="detectors N of the default SBA")
    e.add_argument("--dims", type=int, default=DEFAULT_DIMS, help="reduced dimension M")
    e.add_argument("--global-weight", type=float, default=DEFAULT_GLOBAL_WEIGHT,
                   help="weight of the whole-photo region beside the N detectors' (0: SBA's regions only)")
    e.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help="long side in pixels")
    e.add_argument("--whiten-on", metavar="DIR", help="independent photo set to learn whitening on")
    e.add_argument("--qe", action="store_true", help="also report plain average query expansion (top 10)")
    e.add_argument("--k", type=int, default=DEFAULT_K, help="neighbours of the MN classifier")
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
    e.add_argument("--runtime", choices=["onnx", "torch"], default="onnx",
                   help="onnx: the product's inference (default); torch: the reference network")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="speed and memory of this machine (medians; --quick < 2 min)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--max-vectors", type=int, metavar="N",
                   help="skip the search benchmarks above N vectors (1M takes ~15 min to build)")
    b.add_argument("--pipeline", action="store_true",
                   help="only the indexing pipeline: stages, JPEGs, 12-MP JPEG, HEIC and DNG files")
    b.add_argument("--ray", metavar="ADDRESS", help="only the Ray path ('local' or a cluster address) "
                   "against the local pipeline")
    b.set_defaults(func=cmd_bench)

    from sba_desktop.cli import library as library_cli
    library_cli.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    from sba_desktop.errors import EXIT_INTERRUPTED, run_friendly

    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return run_friendly(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
