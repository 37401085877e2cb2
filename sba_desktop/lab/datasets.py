"""Where the evaluation photo sets are: $SBA_DESKTOP_DATASETS, else ../shared/datasets beside a
checkout. Used by sba bench, the benchmark scripts and the tests; the product never needs them."""
from __future__ import annotations

import os
from pathlib import Path

DATASETS_ENV = "SBA_DESKTOP_DATASETS"


def datasets_root() -> Path:
    env = os.environ.get(DATASETS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "datasets"


def dataset_images(name: str) -> list[Path]:
    """The photos of one set, sorted by name (empty when the set is not on this machine)."""
    d = datasets_root() / name / "images"
    return sorted(d.iterdir()) if d.is_dir() else []
