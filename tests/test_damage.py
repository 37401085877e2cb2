"""The fault corpus: real libraries damaged the way disks and folders damage them, hostile files
planted in photo folders. Each fault: no crash, no traceback, one line, nothing the user made
lost (categories, accepted tags), the library usable again without deleting anything, and no
byte written outside the library or a photo's own sidecar."""
from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import dataset, link_photos, ukbench_names
from hostile import png_bomb
from sba_desktop.cli import main
from sba_desktop.files import DiskError, replace_file
from sba_desktop.library import library as library_module
from sba_desktop.library.decode import DecodeError, decode
from sba_desktop.library.discover import walk_photos
from sba_desktop.library.vindex import IndexFileError, VectorIndex, check_file
from sba_desktop.library.xmp import SidecarError, add_keywords, read_keywords


def sba(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """One real library, made once: two category folders (4 photos each), four unsorted photos
    tagged and accepted. Each test works on its own copy of the home."""
    root = tmp_path_factory.mktemp("made")
    names = ukbench_names(12)
    images = dataset("ukbench-dev") / "images"
    link_photos(images, root / "sorted" / "first", names[:4])
    link_photos(images, root / "sorted" / "second", names[4:8])
    link_photos(images, root / "unsorted", names[8:])
    home = root / "home"
    assert main(["--home", str(home), "categories", "set", str(root / "sorted")]) == 0
    assert main(["--home", str(home), "tag", str(root / "unsorted")]) == 0
    from sba_desktop.jobs.tagging import assign
    from sba_desktop.library.library import Library

    lib = Library.open(home)  # what the window does when the user puts photos in categories
    for name, category in zip(names[8:10], ("first", "second")):
        assign(lib, lib.catalog.photo_id(str(root / "unsorted" / name)), category)
    lib.close()
    return {"root": root, "home": home, "query": str(root / "sorted" / "first" / names[0])}


@pytest.fixture
def lib(made, tmp_path) -> dict:
    home = tmp_path / "home"
    shutil.copytree(made["home"], home)
    return {**made, "home": home, "data": home / "data", "args": ["--home", str(home)]}


def _user_data(capsys, lib) -> tuple[str, list]:
    """What only the user made: the categories with their example counts (as `sba categories
    list` prints them) and every accepted tag, by photo path."""
    from sba_desktop.library.library import Library

    code, out, _ = sba(capsys, *lib["args"], "categories", "list")
    assert code == 0
    opened = Library.open(lib["home"])
    try:
        paths = opened.catalog.paths([r.photo_id for r in opened.catalog.labels(accepted=True)])
        tags = sorted((paths[r.photo_id], r.category, r.source) for r in opened.catalog.labels(accepted=True))
    finally:
        opened.close()
    return out, tags


def _garble(path: Path, n: int, start: int = 0, seed: int = 0) -> None:
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    for _ in range(n):
        data[rng.randrange(start, len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data))


def _searches(capsys, lib) -> None:
    code, out, err = sba(capsys, *lib["args"], "search", lib["query"], "--top", "3")
    assert code == 0, err
    assert out.splitlines()[0].endswith(os.path.basename(lib["query"]))  # the photo itself comes first


# ---------------------------------------------------------------------- the index
@pytest.mark.parametrize("damage", ["garbled", "truncated", "empty", "links"])
def test_a_damaged_index_is_rebuilt_from_the_catalog(capsys, lib, damage):
    before = _user_data(capsys, lib)
    index = lib["data"] / "vectors.hnsw"
    if damage == "garbled":
        _garble(index, 30, start=96)
    elif damage == "truncated":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    elif damage == "empty":
        index.write_bytes(b"")
    else:  # the neighbour lists: what hnswlib's loader never checks and crashes on
        data = bytearray(index.read_bytes())
        data[96 + 4: 96 + 8] = b"\xff\xff\xff\x7f"
        index.write_bytes(bytes(data))
    code, out, err = sba(capsys, *lib["args"], "status")
    assert code == 0
    assert "the search index" in err and "rebuilt from the catalog's vectors" in err
    assert len(err.strip().splitlines()) == 1
    _searches(capsys, lib)
    assert "every file checked, all sound" in sba(capsys, *lib["args"], "status")[1]
    assert _user_data(capsys, lib) == before


def test_no_garbled_index_reaches_hnswlib_in_a_state_that_crashes_it(tmp_path):
    """Hundreds of garbled copies: each is refused by check_file, or loads and searches in a
    child process without crashing it (hnswlib's own loader segfaults on many of them)."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(16)
    index.add(np.arange(400) + 1, vectors)
    good = tmp_path / "good.hnsw"
    index.save(good)
    passed = []
    for trial in range(300):
        bad = tmp_path / f"bad{trial}.hnsw"
        data = bytearray(good.read_bytes())
        for _ in range(int(rng.integers(1, 40))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        bad.write_bytes(bytes(data))
        try:
            check_file(bad, 16)
            passed.append(bad)
        except IndexFileError:
            bad.unlink()
    assert len(passed) < 200  # most garbling is seen by the structure alone (the checksum sees the rest)
    child = ("import sys, numpy as np, hnswlib\n"
             "for p in sys.argv[1:]:\n"
             "    ix = hnswlib.Index(space='ip', dim=16); ix.load_index(p, max_elements=0)\n"
             "    ix.knn_query(np.random.default_rng(1).normal(size=(20, 16)).astype('float32'), k=10)\n")
    done = subprocess.run([sys.executable, "-c", child, *map(str, passed)], capture_output=True, timeout=300)
    assert done.returncode >= 0, f"hnswlib crashed (signal {-done.returncode}) on a file check_file let through"


def test_an_index_save_the_disk_cuts_short_keeps_the_old_index(tmp_path, monkeypatch):
    """hnswlib reports no write error: a full disk leaves a short file. The save checks what
    reached the disk, keeps the old index and leaves no temporary file."""
    index = VectorIndex(8)
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 8)).astype(np.float32)
    index.add(np.arange(50), v / np.linalg.norm(v, axis=1, keepdims=True))
    path = tmp_path / "vectors.hnsw"
    index.save(path)
    old = path.read_bytes()
    class ShortWrites:  # hnswlib's index, whose save the disk cuts short
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def save_index(self, name: str) -> None:
            self.real.save_index(name)
            with open(name, "r+b") as fh:
                fh.truncate(os.path.getsize(name) // 3)
    monkeypatch.setattr(index, "_index", ShortWrites(index._index))
    with pytest.raises((IndexFileError, DiskError)):
        index.save(path)
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["vectors.hnsw"]


def test_a_refused_write_leaves_the_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"the old model")

    def fill(tmp: str) -> None:
        Path(tmp).write_bytes(b"half of a new")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(DiskError) as caught:
        replace_file(target, fill, "the fitted model", need=5_000_000)
    assert str(tmp_path) in str(caught.value) and "no space left" in str(caught.value)
    assert target.read_bytes() == b"the old model"
    assert os.listdir(tmp_path) == ["model.npz"]


# ---------------------------------------------------------------------- the catalog
@pytest.mark.parametrize("damage", ["garbled pages", "truncated", "header"])
def test_a_damaged_catalog_is_salvaged_and_loses_nothing_the_user_made(capsys, lib, damage):
    before = _user_data(capsys, lib)
    assert before[0] and before[1]  # categories and accepted tags to lose
    catalog = lib["data"] / "catalog.sqlite"
    original = catalog.read_bytes()
    if damage == "garbled pages":
        _garble(catalog, 3000, start=4096 * 2, seed=3)
    elif damage == "truncated":
        catalog.write_bytes(original[: len(original) // 3])
    else:
        catalog.write_bytes(os.urandom(100) + original[100:])
    code, out, err = sba(capsys, *lib["args"], "status")
    assert code == 0
    assert err.count("\n") == 1 and "the catalog was damaged" in err and "a new one made" in err
    aside = [n for n in os.listdir(lib["data"]) if n.startswith("catalog.damaged-") and n.endswith(".sqlite")]
    assert len(aside) == 1  # the damaged file is kept, never deleted
    assert _user_data(capsys, lib) == before
    assert sba(capsys, *lib["args"], "index")[0] == 0  # photos that lost their vector are encoded again
    _searches(capsys, lib)
    assert _user_data(capsys, lib) == before
    assert "all sound" in sba(capsys, *lib["args"], "status")[1]


def test_the_backup_of_the_users_data_follows_its_changes_and_is_rotated(capsys, lib):
    data = lib["data"]
    assert (data / "user-data.sqlite").is_file()
    first = (data / "user-data.sqlite").read_bytes()
    sba(capsys, *lib["args"], "status")
    assert (data / "user-data.sqlite").read_bytes() == first  # unchanged data: not written again
    code, _, _ = sba(capsys, *lib["args"], "forget", str(lib["root"] / "unsorted"))
    assert code == 0
    assert (data / "user-data.1.sqlite").read_bytes() == first


# ---------------------------------------------------------------------- the model
@pytest.mark.parametrize("damage", ["garbled", "missing"])
def test_a_damaged_model_file_is_refitted_from_the_photos(capsys, lib, damage):
    from sba_desktop.library.library import Library

    before = _user_data(capsys, lib)
    opened = Library.open(lib["home"])
    model = opened.paths.model_file(opened.model.model_id)   # the model in use (a refit leaves the old)
    opened.close()
    if damage == "garbled":
        _garble(model, 50, start=64)
    else:
        model.unlink()
    code, out, err = sba(capsys, *lib["args"], "status")
    assert code == 0 and err.count("\n") == 1
    assert f"the model file {model.name} was" in err and "fits a new model" in err
    assert sba(capsys, *lib["args"], "index")[0] == 0
    _searches(capsys, lib)
    assert _user_data(capsys, lib) == before


# ---------------------------------------------------------------------- read-only, logging
def test_a_read_only_library_answers_searches_and_writes_nothing(capsys, lib, monkeypatch):
    """As root a folder's permissions do not stop writes, so the library is told it cannot write
    (what os.access says on a read-only disk); then nothing in it may change."""
    monkeypatch.setattr(library_module, "_writable", lambda paths: False)
    (lib["data"] / "catalog.sqlite-wal").unlink(missing_ok=True)
    state = {p.name: p.read_bytes() for p in lib["data"].iterdir()}
    _searches(capsys, lib)
    code, out, _ = sba(capsys, *lib["args"], "status")
    assert code == 0 and "read-only" in out
    code, _, err = sba(capsys, *lib["args"], "forget", str(lib["root"] / "unsorted"))
    assert code == 1 and "read-only" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in lib["data"].iterdir()} == state


# ---------------------------------------------------------------------- hostile photo folders
def test_links_out_of_a_photo_folder_are_not_followed(capsys, tmp_path):
    outside = tmp_path / "outside"
    link_photos(dataset("ukbench-dev") / "images", outside, ukbench_names(2))
    photos = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", photos, ukbench_names(3)[2:])
    os.symlink(outside, photos / "to-outside")
    os.symlink(outside / ukbench_names(1)[0], photos / "a-photo-elsewhere.jpg")
    os.symlink("/", photos / "root")
    (photos / "inner").mkdir()
    os.symlink(photos / "inner", photos / "inner-again")  # a link that stays inside is followed
    link_photos(dataset("ukbench-dev") / "images", photos / "inner", ukbench_names(4)[3:])
    problems: list = []
    found = sorted(os.path.basename(f.path) for f in walk_photos(str(photos), problems))
    assert found == sorted(ukbench_names(4)[2:])
    leaving = [p for p in problems if "not followed" in p[1]]
    assert len(leaving) == 1 and "and 2 more" in leaving[0][1]  # said once


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc here")
@pytest.mark.parametrize("folder", ["/proc/self", "/sys", "/dev"])
def test_the_systems_virtual_folders_are_refused(capsys, tmp_path, folder):
    home = tmp_path / "home"
    code, _, err = sba(capsys, "--home", str(home), "index", folder)
    assert code == 1 and "virtual folder of the system" in err and err.count("\n") == 1
    assert not (home / "data" / "catalog.sqlite").exists()


def test_a_sidecar_is_never_written_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"  # a file of the user's outside the photo folder
    victim.write_text("keep me")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (photos / name).write_bytes(b"not read here")
    os.symlink(victim, photos / "a.jpg.xmp")  # the sidecar's own name
    os.symlink(victim, photos / "b.jpg.xmp.tmp")  # the fixed temporary name older versions used
    with pytest.raises(SidecarError):
        add_keywords(str(photos / "a.jpg"), ["boats"])
    assert add_keywords(str(photos / "b.jpg"), ["boats"])
    assert victim.read_text() == "keep me" and os.path.islink(photos / "b.jpg.xmp.tmp")
    (photos / "c.jpg.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed>")
    with pytest.raises(SidecarError):
        add_keywords(str(photos / "c.jpg"), ["boats"])
    assert (photos / "c.jpg.xmp").read_text().endswith("<unclosed>")  # left as it was
    assert read_keywords(str(photos / "b.jpg")) == ["boats"]
    assert not [n for n in os.listdir(photos) if n.endswith(".tmp") and not n.startswith("b.jpg")]


def test_a_decompression_bomb_is_skipped_before_it_is_decoded(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(14000, 14000))  # 196 MP in about 0.6 MB
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(DecodeError, match="decompression bomb"):
        decode(str(bomb), 224)


@pytest.mark.parametrize("region", ["nan,0,10,10", "0,0,inf,10", "10,10,0,5"])
def test_bad_regions_are_refused_with_one_line(capsys, lib, region):
    with pytest.raises(SystemExit) as exited:
        main([*lib["args"], "search", lib["query"], "--region", region])
    assert exited.value.code == 2 and "x,y,w,h" in capsys.readouterr().err


def test_a_region_off_the_photo_is_refused(capsys, lib):
    code, _, err = sba(capsys, *lib["args"], "search", lib["query"], "--region", "5000,5000,100,100")
    assert code == 1 and "outside the photo" in err and err.count("\n") == 1


def test_a_failure_is_one_line_with_its_details_in_the_log(capsys, lib):
    from sba_desktop.logs import log_file

    code, _, err = sba(capsys, *lib["args"], "search", str(lib["root"] / "no-such.jpg"))
    assert code == 1 and err.count("\n") == 1
    where = log_file()
    assert where is not None and where.is_file() and where.stat().st_size > 0


def test_forgetting_a_nested_folder_keeps_what_a_watched_parent_holds(capsys, tmp_path):
    photos = tmp_path / "photos"
    names = ukbench_names(6)
    images = dataset("ukbench-dev") / "images"
    link_photos(images, photos / "sorted" / "first", names[:3])
    link_photos(images, photos / "sorted" / "second", names[3:])
    home = ["--home", str(tmp_path / "home")]
    assert sba(capsys, *home, "index", str(photos))[0] == 0
    assert sba(capsys, *home, "categories", "set", str(photos / "sorted"))[0] == 0
    before = sba(capsys, *home, "categories", "list")[1]
    assert "first: 3 examples" in before
    code, out, _ = sba(capsys, *home, "forget", str(photos / "sorted"))
    assert code == 0 and "0 photos removed" in out
    assert sba(capsys, *home, "categories", "list")[1] == before
    assert "6 indexed" in sba(capsys, *home, "status")[1]


@pytest.mark.skipif(os.name == "nt", reason="POSIX file names")
def test_odd_file_names_are_printed_exactly_one_line_each(capsys, tmp_path):
    import codecs

    photos = tmp_path / "photos"
    photos.mkdir()
    source = dataset("ukbench-dev") / "images"
    odd = [b"line\nbreak.jpg", b"not-utf8-\xff\xfe.jpg", b"back\\slash.jpg", b"tab\there.jpg"]
    for raw, name in zip(odd, ukbench_names(4)):
        os.link(source / name, os.path.join(os.fsencode(str(photos)), raw))
    home = ["--home", str(tmp_path / "home")]
    assert sba(capsys, *home, "index", str(photos))[0] == 0
    code, out, _ = sba(capsys, *home, "search", str(source / ukbench_names(1)[0]), "--top", "4", "--plain")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4
    printed = {codecs.escape_decode(line.split("  ", 1)[1].encode())[0] for line in lines}
    assert printed == {os.path.join(os.fsencode(str(photos)), raw) for raw in odd}  # each name exactly
