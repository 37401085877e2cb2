"""Duplicates on real photos: copies kept apart from other shots, the keeper rule, the trash."""
import json
import os
import shutil
import sys

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from conftest import dataset
from sba_desktop.engine import copies
from sba_desktop.jobs.duplicates import COPY_THRESHOLD, find_duplicates, trash_others
from sba_desktop.jobs.index import IndexJob
from sba_desktop.jobs.restore import restore_and_reindex
from sba_desktop.library.library import Library

# one UKBench object: its four shots are different photos of the same thing
OBJECT = ["ukbench00012.jpg", "ukbench00013.jpg", "ukbench00014.jpg", "ukbench00015.jpg"]
OTHERS = ["ukbench00040.jpg", "ukbench00041.jpg", "ukbench00100.jpg", "ukbench00101.jpg"]


def exif_time(when: str) -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal
    exif[0x010F], exif[0x0110] = "Canon", "EOS 5D"
    return exif


@pytest.fixture
def trash_home(tmp_path, monkeypatch):
    """A private freedesktop trash: the tests never fill the machine's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "Trash"


@pytest.fixture
def library_with_copies(tmp_path):
    """Real photos copied into a temporary folder (the trash moves files: never the shared set's),
    and copies of one of them made the ways a library holds them."""
    src = dataset("ukbench-dev") / "images"
    photos, exports = tmp_path / "photos", tmp_path / "exports"
    photos.mkdir()
    exports.mkdir()
    for n in OBJECT + OTHERS:
        shutil.copy(src / n, photos / n)
    original = Image.open(src / OBJECT[0]).convert("RGB")
    w, h = original.size
    made = {
        "small.jpg": lambda p: original.resize((w // 3, h // 3)).save(p, quality=60),
        "same.png": lambda p: original.save(p),
        "turned.jpg": lambda p: original.rotate(90, expand=True).save(p, quality=90),
        "cropped.jpg": lambda p: original.crop((40, 30, w - 30, h - 20)).save(p, quality=90),
        "brighter.webp": lambda p: ImageEnhance.Brightness(original).enhance(1.3).save(p, quality=85),
    }
    for name, make in made.items():
        make(exports / name)
    lib = Library.open()
    for folder in (photos, exports):
        lib.add_folder(str(folder))
    IndexJob(lib).run()
    yield lib, photos, exports, sorted(str(exports / n) for n in made)
    lib.close()


EDITS = {"cropped.jpg": "cropped", "brighter.webp": "re-toned"}  # work done on the photo: never suggested


def plain(made: list[str]) -> list[str]:
    """The copies the suggestion moves: re-saved, resized, converted, turned; not the edits."""
    return [p for p in made if os.path.basename(p) not in EDITS]


def test_signatures_tell_a_copy_from_another_shot_of_the_same_object():
    src = dataset("ukbench-dev") / "images"
    a = Image.open(src / OBJECT[0]).convert("RGB")
    sig = copies.signature(a)
    assert sig.dtype == np.uint8 and max(sig.shape) == copies.SIGNATURE_SIDE
    crop = copies.signature(a.crop((60, 40, a.width - 20, a.height - 30)).resize((300, 220)))
    turned = copies.signature(a.rotate(270, expand=True))
    darker = copies.signature(ImageEnhance.Brightness(a).enhance(0.7))
    assert copies.match(sig, crop, a.width, 300)[1] > COPY_THRESHOLD
    assert copies.match(sig, turned, a.width, a.height, turns=(1,))[1] > COPY_THRESHOLD
    assert copies.match(sig, turned, a.width, a.height, turns=(0,))[1] < 0.5  # not without the turn
    assert copies.same_frame(sig, darker) > 0.95
    for other in OBJECT[1:]:
        b = Image.open(src / other).convert("RGB")
        assert copies.match(sig, copies.signature(b), a.width, b.width)[1] < COPY_THRESHOLD, other


def test_copies_are_grouped_apart_from_other_shots_and_the_keeper_is_the_original(library_with_copies):
    lib, photos, exports, made = library_with_copies
    report = find_duplicates(lib)
    # the UKBench shots carry their capture times (5-10 s apart): other sides of one object, not
    # similar shots; the copies made here carry none
    assert report.photos == 13 and report.similar == [] and report.without_time == 5
    assert len(report.copies) == 1, [[m.path for m in g.members] for g in report.copies]
    group = report.copies[0]
    paths = sorted(m.path for m in group.members)
    assert paths == sorted(made + [str(photos / OBJECT[0])])  # the other shots are not in it
    keeper = group.members[group.keeper]
    assert keeper.path == str(photos / OBJECT[0])  # most pixels, camera format over PNG/WebP exports
    assert {m.path for m in group.others()} == set(plain(made))
    assert {os.path.basename(m.path): m.edit for m in group.members if m.edit} == EDITS
    assert all(0 < m.agreement <= 1.0 for m in group.members)

    from sba_desktop.jobs.duplicates import compare

    assert compare(lib, should_stop=lambda: True) is None  # stopped: no result, nothing half-grouped
    # what was compared is kept: the next look compares nothing again, a changed photo anew
    known = lib.catalog.compared()
    assert len(known) == report.candidates
    again = find_duplicates(lib)
    assert [[m.path for m in g.members] for g in again.copies] == [[m.path for m in g.members] for g in report.copies]
    changed = lib.catalog.photo_id(made[0])
    lib.catalog.upsert_pending(made[0], 1, 1, None)
    assert not [k for k in lib.catalog.compared() if changed in k] and len(lib.catalog.compared()) < len(known)


def test_a_photo_with_its_raw_file_beside_it_is_kept_and_never_offered(tmp_path):
    src = dataset("ukbench-dev") / "images"
    a, b = tmp_path / "card", tmp_path / "export"
    a.mkdir()
    b.mkdir()
    shutil.copy(src / OBJECT[0], a / "IMG_0001.JPG")
    (a / "IMG_0001.CR2").write_bytes(b"II*\x00 raw data of the same shot")  # the RAW of the pair
    Image.open(src / OBJECT[0]).resize((1280, 960)).save(b / "IMG_0001.jpg", quality=95)  # bigger export
    shutil.copy(src / OBJECT[0], b / "IMG_0001-2.jpg")
    (b / "IMG_0001-2.CR2").write_bytes(b"II*\x00 another pair")  # a second pair: kept too
    lib = Library.open()
    IndexJob(lib, [str(a), str(b)]).run()
    [group] = find_duplicates(lib).copies
    keeper = group.members[group.keeper]
    assert keeper.path == str(a / "IMG_0001.JPG") and keeper.companions == [str(a / "IMG_0001.CR2")]
    assert [m.path for m in group.others()] == [str(b / "IMG_0001.jpg")]  # despite more pixels


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the trash folder checked is freedesktop's")
def test_trash_moves_the_copies_and_undo_brings_them_back(library_with_copies, trash_home):
    lib, photos, exports, made = library_with_copies
    report = find_duplicates(lib)
    done, notes = trash_others(lib, report.copies)
    moved = plain(made)
    assert notes == [] and sorted(t.path for t in done if t.moved) == moved
    assert not any(os.path.exists(p) for p in moved) and os.path.exists(photos / OBJECT[0])
    assert all(os.path.exists(p) for p in made if p not in moved)  # the edits stay
    assert sorted(os.listdir(trash_home / "files")) == sorted(os.path.basename(p) for p in moved)
    assert len(lib.index) == 10 and all(lib.catalog.photo_id(p) is None for p in moved)
    assert [m.path for g in find_duplicates(lib).copies for m in g.others()] == []

    assert restore_and_reindex(lib, done) == []  # the files go back and their folders are indexed again
    assert all(os.path.exists(p) for p in made) and not os.listdir(trash_home / "files")
    assert len(lib.index) == 13 and len(find_duplicates(lib).copies) == 1


def test_files_gone_before_the_action_are_reported_and_nothing_else_moves(library_with_copies, trash_home):
    lib, photos, exports, made = library_with_copies
    report = find_duplicates(lib)
    os.remove(photos / OBJECT[0])  # the copy to keep vanished: its copies may be the last ones
    done, notes = trash_others(lib, report.copies)
    assert done == [] and len(notes) == 1 and "nothing of the group was moved" in notes[0]
    assert all(os.path.exists(p) for p in made)

    shutil.copy(dataset("ukbench-dev") / "images" / OBJECT[0], photos / OBJECT[0])
    IndexJob(lib).run()
    report = find_duplicates(lib)
    moved = plain(made)
    os.remove(moved[0])  # one copy vanished: one line for it, the others move
    done, notes = trash_others(lib, report.copies)
    assert len(notes) == 1 and notes[0].startswith(moved[0]) and "no longer there" in notes[0]
    assert sorted(t.path for t in done if t.moved) == moved[1:]


def test_similar_shots_need_capture_times_seconds_apart(tmp_path):
    src = dataset("ukbench-dev") / "images"
    burst, later = tmp_path / "burst", tmp_path / "later"
    burst.mkdir()
    later.mkdir()
    # a burst: three frames of one moment, the camera moving a little between them (each frame
    # a slightly different view of the scene, as full-size photos: not copies of each other)
    scene = Image.open(src / OBJECT[0]).convert("RGB")
    w, h = scene.size
    for k in range(3):
        frame = scene.crop((12 * k, 8 * k, w - 48 + 12 * k, h - 36 + 8 * k)).resize((w, h), Image.Resampling.LANCZOS)
        frame.save(burst / f"frame{k}.jpg", quality=92, exif=exif_time(f"2024:05:01 10:00:0{k}"))
    for n in OBJECT[1:]:  # other shots of the object, later
        Image.open(src / n).save(later / n, quality=92, exif=exif_time("2024:05:01 11:30:00"))
    for n in OTHERS:  # other photos, without a capture time
        Image.open(src / n).save(later / n, quality=92)
    lib = Library.open()
    IndexJob(lib, [str(burst), str(later)]).run()
    report = find_duplicates(lib)
    assert report.copies == [] and report.without_time == len(OTHERS)
    [group] = report.similar
    assert [os.path.basename(m.path) for m in group.members] == ["frame0.jpg", "frame1.jpg", "frame2.jpg"]
    assert group.keeper is None and group.others() == []  # offered, never pre-selected
    assert group.members[0].camera == "Canon EOS 5D"
    assert group.members[0].taken == 1714557600.0  # 2024-05-01 10:00:00, read as the camera's clock
    assert find_duplicates(lib, similar_seconds=0.5).similar == []  # none taken within half a second


def test_sba_duplicates_json_and_trash_only_with_consent(library_with_copies, trash_home, capsys, monkeypatch):
    from sba_desktop.cli import main

    lib, photos, exports, made = library_with_copies
    assert main(["duplicates", "--kind", "copies", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["threshold"] == COPY_THRESHOLD and len(out["copies"]) == 1 and "similar" not in out
    group = out["copies"][0]
    assert group["keeper"] == str(photos / OBJECT[0])
    assert sorted(m["path"] for m in group["members"] if not m["keeper"]) == made
    assert all({"width", "height", "bytes", "format", "agreement", "raw_files"} <= set(m) for m in group["members"])

    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(["duplicates", "--trash"]) == 1  # no terminal to ask on, no --yes: nothing moves
    assert "--yes" in capsys.readouterr().err and all(os.path.exists(p) for p in made)
    assert main(["duplicates", "--kind", "similar", "--trash", "--yes"]) == 1
    capsys.readouterr()

    assert main(["duplicates", "--trash", "--yes"]) == 0
    out = capsys.readouterr().out
    assert all(f"moved to the trash: {p}" in out for p in plain(made))
    assert not any(os.path.exists(p) for p in plain(made)) and os.path.exists(photos / OBJECT[0])
    assert all(os.path.exists(p) for p in made if p not in plain(made))  # edits are never suggested
