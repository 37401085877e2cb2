"""The issue's tagging protocols, run the way a person runs them: photos copied into category
folders and an unsorted folder, `sba categories set ROOT`, then `sba tag UNSORTED --json`, each in
a library of its own (nothing of `sba eval`'s shortcuts: the model is fitted and refitted as the
product does it, in the order a person adds the folders).

    python scripts/tagging_cli_check.py ../shared/datasets/flowers17-dev [--draws 3]
        [--shapes alone,small,grown] [--distractors ../shared/datasets/caltech101-distractors]

Shapes: alone (12 folders x 10, the rest unsorted, nothing else indexed); small (5 folders x 20 of
--small-kinds, 10 unsorted of each and 20 of each of the last two kinds, which have no folder);
grown (alone, in a library that first indexed --distractors: the model is theirs). Prints, per
shape: precision / coverage / rejection, right at >= 0.8 (count), calibration error, look-alike
groups offered (of a kind with no folder) / wrong.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sba_desktop.lab.metrics import calibration_error  # noqa: E402

SMALL_KINDS = "bluebell,buttercup,colts_foot,cowslip,crocus,daisy,dandelion"


def sba(home: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "sba_desktop.cli", "--home", str(home), *args],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"sba {' '.join(args)} failed: {out.stderr.strip()[-800:]}")
    return out.stdout


def lay_out(work: Path, images: Path, examples: dict[str, list[str]], unsorted: list[str]) -> tuple[Path, Path]:
    cats, inbox = work / "categories", work / "unsorted"
    for kind, names in examples.items():
        (cats / kind).mkdir(parents=True)
        for n in names:
            shutil.copy2(images / n, cats / kind / n)
    inbox.mkdir()
    for n in unsorted:
        shutil.copy2(images / n, inbox / n)
    return cats, inbox


def run_draw(images: Path, labels: dict[str, str], examples: dict[str, list[str]], unsorted: list[str],
             distractors: Path | None, template: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="sba-tagcheck-") as tmp:
        work = Path(tmp)
        home = work / "home"
        if template is not None:          # a library that indexed the distractors first
            shutil.copytree(template, home)
        cats, inbox = lay_out(work, images, examples, unsorted)
        sba(home, "categories", "set", str(cats), "--json")
        out = json.loads(sba(home, "tag", str(inbox), "--json"))
    known = set(examples)
    truth = {Path(p["path"]).name: labels[Path(p["path"]).name] for p in out["proposals"]}
    made = np.array([p["category"] is not None for p in out["proposals"]])
    inside = np.array([truth[Path(p["path"]).name] in known for p in out["proposals"]])
    right = np.array([p["closest"] == truth[Path(p["path"]).name] for p in out["proposals"]]) & inside
    conf = np.array([p["confidence"] for p in out["proposals"]])
    offered = wrong = 0
    for g in out.get("new_categories", []):
        kinds = [truth[Path(p).name] for p in g["photos"]]
        top = max(set(kinds), key=kinds.count)
        if top not in known and kinds.count(top) >= 0.75 * len(kinds):
            offered += 1
        else:
            wrong += 1
    return {"made": made, "inside": inside, "right": right, "conf": conf, "offered": offered, "wrong": wrong}


def summarise(draws: list[dict]) -> dict:
    made, inside, right, conf = (np.concatenate([d[k] for d in draws]) for k in ("made", "inside", "right", "conf"))
    sure = made & (conf >= 0.8)
    return {"precision": round(float(right[made].mean()), 3) if made.any() else None,
            "coverage": round(float(made[inside].mean()), 3),
            "rejection": round(float((~made[~inside]).mean()), 3) if (~inside).any() else None,
            "right_at_0.8": round(float(right[sure].mean()), 3) if sure.any() else None,
            "n_at_0.8_per_draw": round(float(sure.sum()) / len(draws), 1),
            "calibration_error": round(calibration_error(conf[made], right[made]), 3) if made.any() else None,
            "groups_offered_per_draw": round(sum(d["offered"] for d in draws) / len(draws), 2),
            "groups_wrong_per_draw": round(sum(d["wrong"] for d in draws) / len(draws), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--shapes", default="alone,small")
    ap.add_argument("--small-kinds", default=SMALL_KINDS)
    ap.add_argument("--distractors")
    ap.add_argument("--folders", type=int, default=12)
    ap.add_argument("--examples", type=int, default=10)
    args = ap.parse_args()
    root = Path(args.set)
    labels: dict[str, str] = json.loads((root / "groundtruth.json").read_text())["labels"]
    images = root / "images"
    kinds = sorted(set(labels.values()))
    by_kind = {k: sorted(n for n, v in labels.items() if v == k) for k in kinds}
    template = None
    tmp_template = None
    if "grown" in args.shapes:
        if not args.distractors:
            raise SystemExit("the grown shape needs --distractors")
        tmp_template = tempfile.TemporaryDirectory(prefix="sba-tagcheck-template-")
        template = Path(tmp_template.name) / "home"
        d = Path(args.distractors)
        sba(template, "index", str((d / "images") if (d / "images").is_dir() else d), "--json")
    for shape in args.shapes.split(","):
        draws = []
        for t in range(args.draws):
            rng = np.random.default_rng(t)
            if shape == "small":
                ks = args.small_kinds.split(",")
                folders, others = ks[:-2], ks[-2:]
                examples, unsorted = {}, []
                for k in folders:
                    names = list(rng.permutation(by_kind[k]))
                    examples[k], unsorted = names[:20], unsorted + names[20:30]
                for k in others:
                    unsorted += list(rng.permutation(by_kind[k]))[:20]
            else:
                folders = sorted(rng.permutation(kinds)[:args.folders].tolist())
                examples, unsorted = {}, []
                for k in kinds:
                    names = list(rng.permutation(by_kind[k]))
                    if k in folders:
                        examples[k], unsorted = names[:args.examples], unsorted + names[args.examples:]
                    else:
                        unsorted += names
            draws.append(run_draw(images, labels, examples, unsorted, None,
                                  template if shape == "grown" else None))
            print(f"{shape} draw {t}: {summarise(draws[-1:])}", flush=True)
        print(f"== {shape}, {args.draws} draws: {json.dumps(summarise(draws))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
