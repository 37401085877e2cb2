import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from sba_desktop.lab.datasets import datasets_root

# the evaluation photos beside the project (SBA_DESKTOP_DATASETS elsewhere; a missing folder skips)
DATASETS = datasets_root()


def dataset(name: str) -> Path:
    p = DATASETS / name
    if not p.is_dir():
        pytest.skip(f"evaluation photos not found at {p}")
    return p


def link_photos(src: Path, dst: Path, names: list[str]) -> None:
    """Hard links to evaluation photos (a photo folder's symlinks out of it are not followed:
    library/discover.py); copies only where the file system has no hard links across."""
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        try:
            os.link(src / n, dst / n)
        except OSError:
            shutil.copyfile(src / n, dst / n)


def ukbench_names(n: int) -> list[str]:
    return sorted(os.listdir(dataset("ukbench-dev") / "images"))[:n]


def composites_folder(folder: Path, groups: list[int], everyday_step: int, everyday_n: int, seed: int) -> list:
    """A photo folder of composites (lab/composites.py: another shot of a UKBench object pasted into
    an everyday photo), one per group given, as composite-<i>.jpg, and every `everyday_step`-th
    Caltech photo but the backgrounds linked beside them (`everyday_n` everyday photos taken in
    all); returns the composites."""
    from sba_desktop.lab import composites
    from sba_desktop.lab.evaluation import PhotoSet

    ps = PhotoSet.open(dataset("ukbench-dev"))
    paths = ps.paths()
    members = [[paths[i] for i in np.flatnonzero(ps.groups == g)] for g in groups]
    everyday = sorted((dataset("caltech101-distractors") / "images").rglob("*.jpg"))[::everyday_step][:everyday_n]
    cases = composites.draw_composites(members, everyday[:len(groups)], seed=seed, cases=len(groups))
    folder.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(cases):
        composites.write_composite(c, folder / f"composite-{i}.jpg")
    for p in everyday[len(groups):]:
        os.link(p, folder / p.name)
    return cases


def with_library(fn):
    """fn(library) on a library opened for that call and closed after it (for polling loops)."""
    from sba_desktop.library.library import Library

    lib = Library.open()
    try:
        return fn(lib)
    finally:
        lib.close()


def random_maps(n, c=12, h=5, w=7, seed=0):
    """Feature maps shaped like a ReLU network's: non-negative, sparse."""
    rng = np.random.default_rng(seed)
    maps = rng.gamma(1.0, 1.0, size=(n, c, h, w)).astype(np.float32)
    maps[maps < 0.6] = 0.0  # ReLU-like sparsity
    return maps


def flowers_by_class() -> dict[str, list[str]]:
    """flowers17-dev photo names per class, each list sorted."""
    labels = json.loads((dataset("flowers17-dev") / "groundtruth.json").read_text())["labels"]
    by_class: dict[str, list[str]] = {}
    for name, cls in sorted(labels.items()):
        by_class.setdefault(cls, []).append(name)
    return by_class


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Tests never touch a real home: everything under a temporary SBA_DESKTOP_HOME."""
    monkeypatch.setenv("SBA_DESKTOP_HOME", str(tmp_path / "sba-home"))
    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))


@pytest.fixture(scope="session", autouse=True)
def _exported_networks(tmp_path_factory):
    """One ONNX export per test session (the first use exports it), shared by every test."""
    os.environ["SBA_DESKTOP_MODELS"] = str(tmp_path_factory.mktemp("models"))
