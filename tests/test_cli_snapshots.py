"""What `sba status` and `sba search --json` print, kept as snapshots (tests/snapshots/): a change of
the command line's interface shows here as a diff, and is made on purpose or not at all.

The library's folders and the model's fitted id change from run to run and are written as <PHOTOS>,
<HOME> and <ID>; scores are kept to two decimals (the network's arithmetic differs a little between
processors). SBA_UPDATE_SNAPSHOTS=1 rewrites the files after an intended change.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import dataset, link_photos, ukbench_names
from sba_desktop.cli import main

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def _run(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def _normalised(text: str, photos: Path, home: Path) -> str:
    text = text.replace(str(photos), "<PHOTOS>").replace(str(home), "<HOME>")
    return re.sub(r"\bid [0-9a-f]{6,}\b", "id <ID>", text)


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("SBA_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        if os.environ.get("CI") and not path.exists():
            pytest.fail(f"snapshot {name} is missing: run with SBA_UPDATE_SNAPSHOTS=1 and commit it")
        path.write_text(text)
    assert text == path.read_text(), f"`sba` output changed against tests/snapshots/{name}"


@pytest.fixture
def library(tmp_path) -> Path:
    """A real library of 8 UKBench photos (two objects, four shots each)."""
    photos = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", photos, ukbench_names(8))
    assert main(["index", str(photos)]) == 0
    return photos


def test_status_output_is_as_recorded(library, capsys):
    capsys.readouterr()
    home = Path(os.environ["SBA_DESKTOP_HOME"])
    _check("status.txt", _normalised(_run(capsys, "status"), library, home))
    status = json.loads(_run(capsys, "status", "--json"))
    status["home"], status["model_id"] = "<HOME>", "<ID>"
    status["folders"] = [_normalised(f, library, home) for f in status["folders"]]
    status["model"] = _normalised(status["model"], library, home)
    _check("status.json", json.dumps(status, indent=1, sort_keys=True) + "\n")


def test_search_json_output_is_as_recorded(library, capsys):
    capsys.readouterr()
    out = json.loads(_run(capsys, "search", str(library / "ukbench00000.jpg"), "--top", "5", "--json"))
    for q in out["queries"]:
        q["query"] = _normalised(q["query"], library, library)
        for r in q["results"]:
            r["path"] = _normalised(r["path"], library, library)
            r["score"] = f"{r['score']:.2f}"
    _check("search.json", json.dumps(out, indent=1) + "\n")
