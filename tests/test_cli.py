"""Command-line manners: every subcommand, given bad arguments or an empty library, ends with one
line on stderr and a documented exit code - never a traceback - and changes nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sba_desktop import __version__
from sba_desktop.cli import main
from sba_desktop.library.catalog import Catalog
from sba_desktop.paths import app_paths

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: usage errors, --help, --version
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photo(tmp_path) -> str:
    """A real JPEG file made here: these cases need no photo set."""
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    path = tmp_path / "made.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    return str(path)


def labelled_set(root: Path, classes: int, per_class: int) -> str:
    """A set folder with a groundtruth.json of `classes` labels (the protocol checks run before any
    photo is read, so the images stay empty files)."""
    (root / "images").mkdir(parents=True)
    labels = {}
    for c in range(classes):
        for i in range(per_class):
            name = f"c{c}_{i}.jpg"
            (root / "images" / name).touch()
            labels[name] = f"class{c}"
    (root / "groundtruth.json").write_text(json.dumps({"labels": labels}))
    return str(root)


def bad_cases(tmp: Path, photo: str) -> list[tuple[list[str], int, str]]:
    missing = str(tmp / "no-such-folder")
    sorted_root = tmp / "sorted"
    sorted_root.mkdir(exist_ok=True)
    unsorted = tmp / "unsorted"
    unsorted.mkdir(exist_ok=True)
    return [
        ([], 2, "required"),
        (["frobnicate"], 2, "invalid choice"),
        (["index", missing], 1, "no such folder"),
        (["index", photo], 1, "not a folder"),
        (["index"], 1, "no folders in the library"),
        (["rebuild"], 1, "no folders in the library"),
        (["search", str(tmp / "nope.jpg")], 1, "no such file"),
        (["search", photo], 1, "no photos indexed"),
        (["search", photo, "--top", "-5"], 2, "must be 1 or more"),
        (["search", photo, "--top", "ten"], 2, "not a whole number"),
        (["search", photo, "--region", "1,2"], 2, "x,y,w,h"),
        (["search", photo, "--region", "0,0,-3,4"], 2, "x,y,w,h"),
        (["duplicates", "--threshold", "1.5"], 2, "between 0 and 1"),
        (["duplicates", "--threshold", "-0.1"], 2, "between 0 and 1"),
        (["forget", missing], 1, "not a folder of the library"),
        (["categories", "set"], 1, "needs ROOT"),
        (["categories", "set", missing], 1, "no such folder"),
        (["categories", "set", str(sorted_root)], 1, "no subfolders"),
        (["categories", "bogus"], 2, "invalid choice"),
        (["tag", str(unsorted)], 1, "no categories yet"),
        (["tag", missing], 1, "no such folder"),
        (["tag", "--min-confidence", "2"], 2, "between 0 and 1"),
        (["eval", missing], 1, "groundtruth.json"),
        (["eval", missing, "--task", "nonsense"], 2, "invalid choice"),
        (["eval", missing, "--task", "open-set", "--categories", "0"], 2, "must be 1 or more"),
        (["eval", missing, "--task", "open-set", "--unsorted-per-class", "-3"], 2, "must be 1 or more"),
        (["eval", labelled_set(tmp / "five", 5, 25), "--task", "open-set"], 1, "needs at least 12 classes"),
        (["eval", labelled_set(tmp / "seventeen", 17, 40), "--task", "open-set", "--examples", "40"], 1,
         "some must stay unsorted"),
        (["eval", labelled_set(tmp / "three", 3, 4), "--task", "classification", "--distractors", missing], 1,
         "no such folder"),
        (["search", photo, str(tmp / "nope.jpg")], 1, "no such file"),
        (["search", photo, photo, "--region", "1,2,3,4"], 1, "exactly one query"),
        (["search", photo, "--plain"], 1, "no photos indexed"),
        (["bench", "--max-vectors", "many"], 2, "not a whole number"),
    ]


def test_bad_arguments_and_an_empty_library_get_one_line_and_an_exit_code(capsys, tmp_path, photo):
    for argv, want_code, want_text in bad_cases(tmp_path, photo):
        code, out, err = run(capsys, *argv)
        assert code == want_code, (argv, code, err)
        assert "Traceback" not in err and "Traceback" not in out, argv
        message = [line for line in err.splitlines() if line.startswith("sba")]
        assert message and want_text in err, (argv, err)
        if want_code == 1:
            assert len(err.strip().splitlines()) == 1, (argv, err)


def test_a_failed_command_leaves_the_library_as_it_was(capsys, tmp_path):
    unsorted = tmp_path / "unsorted"
    unsorted.mkdir()
    assert run(capsys, "tag", str(unsorted))[0] == 1
    assert run(capsys, "index", str(unsorted), str(tmp_path / "missing"))[0] == 1
    cat = Catalog(app_paths(os.environ["SBA_DESKTOP_HOME"]).catalog_file)
    assert cat.folders() == []  # neither command added a folder
    cat.close()


def test_version_help_and_empty_results(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"sba {__version__}"
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "examples:" in out and "exit codes:" in out
    code, out, _ = run(capsys, "duplicates")
    assert code == 0 and "0 groups" in out
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and '"photos": 0' in out
    code, out, _ = run(capsys, "tag")           # an empty answer would read like a hang
    assert code == 0 and "no proposals yet: sba categories set ROOT" in out
    code, out, _ = run(capsys, "tag", "--json")
    assert code == 0 and json.loads(out) == {"new_categories": [], "proposals": []}


def test_a_closed_pipe_is_no_traceback(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write fails with EPIPE
    p = subprocess.run([sys.executable, "-m", "sba_desktop.cli", "--help"], stdout=write_end,
                       stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60)
    os.close(write_end)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""


def test_a_vanished_folder_is_reported_offline_and_loses_nothing(capsys, tmp_path, photo):
    folder = tmp_path / "disk"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(Path(photo).read_bytes())
    assert run(capsys, "index", str(folder))[0] == 0
    folder.rename(tmp_path / "unplugged")
    code, out, err = run(capsys, "index")
    assert code == 0 and "offline" in out and "Traceback" not in err
    code, out, _ = run(capsys, "status")
    assert "1 indexed" in out and "offline" in out
