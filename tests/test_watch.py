"""Live folders: the watcher keeps catalog and index equal to the disk under real copying."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.library import Library
from sba_desktop.jobs.watch import ChangeTracker, LibraryWatcher, ignored
from tests.conftest import dataset, flowers_by_class, link_photos, ukbench_names, with_library

ROOT = Path(__file__).resolve().parents[1]


def disk_photos(root: Path) -> set[str]:
    out = set()
    for d, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        out |= {os.path.join(d, f) for f in files if f.endswith(".jpg") and not f.startswith(".")}
    return out


def consistent(lib: Library, root: Path) -> bool:
    rows = lib.catalog.photos_under(str(root))
    total = lib.catalog.db.execute("SELECT count(*) FROM photos").fetchone()[0]
    if set(rows) != disk_photos(root) or total != len(rows) or any(r.state != "indexed" for r in rows.values()):
        return False
    return lib.index.ids() == lib.catalog.indexed_ids(lib.model.model_id)


def wait_for(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_tracker_waits_for_a_file_to_stop_changing(tmp_path):
    now = [0.0]
    t = ChangeTracker(settle_s=2.0, max_wait_s=30.0, clock=lambda: now[0])
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x" * 10)
    t.touch(str(f))
    now[0] = 1.0
    assert t.poll()[0] is False                 # not quiet long enough
    f.write_bytes(b"x" * 20)                    # still being written
    now[0] = 2.5
    run, settled, busy = t.poll()
    assert not run and busy == {str(f)}
    now[0] = 4.6
    run, settled, busy = t.poll()
    assert run and settled == {str(f)} and not busy
    t.done(settled)
    assert len(t) == 0
    # a long copy never blocks the others for more than max_wait_s
    t.touch(str(f))
    for step in range(1, 40):
        now[0] = 4.6 + step
        f.write_bytes(b"x" * (20 + step))
        run, settled, busy = t.poll()
        if run:
            break
    assert run and busy == {str(f)} and now[0] - 4.6 >= 30


def test_temporary_and_hidden_files_are_ignored():
    root = "/p"
    for name in ("a.jpg.part", "b.jpg.crdownload", "c.jpg~", ".DS_Store", ".hidden/d.jpg", "e.jpg.tmp",
                 "x/.thumbs/f.jpg"):
        assert ignored(f"{root}/{name}", root), name
    assert not ignored("/p/holiday/IMG_0001.JPG", root)


@pytest.fixture
def watched_library(tmp_path):
    """260 photos already indexed (the model is frozen past the auto-refit size)."""
    root = tmp_path / "Pictures"
    link_photos(dataset("ukbench-dev") / "images", root / "base", ukbench_names(260))
    lib = Library.open()
    IndexJob(lib, [str(root)]).run()
    assert lib.model.fitted_on >= 256
    lib.close()
    return root


def test_watcher_follows_copies_slow_writes_moves_deletes_and_unplugging(watched_library, tmp_path):
    root = watched_library
    src = dataset("ukbench-dev") / "images"
    reports = []
    # settle 2.5 s against a 1 s pause mid-write: the margin absorbs a test thread starved of the
    # GIL while the watcher encodes the copies (1.5 s left 0.5 s and failed once in a full run)
    w = LibraryWatcher(settle_s=2.5, tick_s=0.1, on_report=reports.append).start()
    try:
        assert w.wait_idle(60)
        reports.clear()
        lib = Library.open()
        before = {p: pid for pid, p in lib.catalog.paths(sorted(lib.index.ids())).items()}
        # 40 new photos copied in, temp files beside them
        new = root / "import"
        new.mkdir()
        for n in sorted(os.listdir(src))[300:340]:
            shutil.copy(src / n, new / n)
        (new / "half.jpg.part").write_bytes(b"\xff\xd8\xff")
        (new / ".hidden").mkdir()
        shutil.copy(src / "ukbench00450.jpg", new / ".hidden" / "x.jpg")
        # one photo written slowly, in two halves 1 s apart (settle is 2.5 s)
        data = (src / "ukbench00460.jpg").read_bytes()
        with open(new / "slow.jpg", "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(1.0)
            fh.write(data[len(data) // 2:])
        # 4 moved into a new subfolder, 8 deleted
        (root / "base" / "moved").mkdir()
        moved = ukbench_names(12)[:4]
        for n in moved:
            os.rename(root / "base" / n, root / "base" / "moved" / n)
        for n in ukbench_names(40)[20:28]:
            os.unlink(root / "base" / n)
        ok = wait_for(lambda: with_library(lambda lib: consistent(lib, root)), 30)
        lib = Library.open()
        assert ok, (len(disk_photos(root)), lib.status())
        assert not lib.catalog.skipped()            # the slow photo was not skipped half-written
        assert len(lib.index) == 260 - 8 + 41
        paths = {p: pid for pid, p in lib.catalog.paths(sorted(lib.index.ids())).items()}
        for n in moved:                              # same photo ids at the new place: not re-encoded
            assert paths[str(root / "base" / "moved" / n)] == before[str(root / "base" / n)]
        # the 40 copies and the slow one were encoded, nothing else (the moved photos were not)
        encoded = [pid for r in reports for pid in r.indexed_ids]
        new_ids = {pid for p, pid in paths.items() if p.startswith(str(new) + os.sep)}
        assert len(new_ids) == 41 and set(encoded) == new_ids
        # read twice only if at all the slowly written one, and on a starved machine one more: a
        # writer pausing longer than the settle time (this test's thread, starved of the GIL while
        # the watcher encodes) is read early, then again once complete (seen once in a clean-clone
        # CI run: one of the 40 copies). More than that would be the watcher re-reading photos.
        twice = {pid for pid in encoded if encoded.count(pid) > 1}
        assert len(twice - {paths[str(new / "slow.jpg")]}) <= 1, [p for p, pid in paths.items() if pid in twice]
        assert all(encoded.count(pid) <= 2 for pid in twice)

        # the whole folder goes away (an unplugged disk) and comes back: nothing lost
        away = tmp_path / "Pictures-away"
        os.rename(root, away)
        assert wait_for(lambda: w.status.folders.get(str(root)) == "offline", 10)
        time.sleep(1.0)
        assert len(Library.open().index) == 293
        assert "offline" in w.status.line()
        os.rename(away, root)
        assert wait_for(lambda: w.status.folders.get(str(root)) == "events", 10)
        assert w.wait_idle(30)
        assert consistent(Library.open(), root) and len(Library.open().index) == 293
    finally:
        w.stop()
    assert w.error is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
def test_sba_watch_stops_on_sigterm_or_ctrl_c_with_a_consistent_library(watched_library, sig):
    root = watched_library
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "sba_desktop.cli", "watch", "--settle", "0.5"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)
        new = root / "more"
        new.mkdir()
        for n in sorted(os.listdir(dataset("ukbench-dev") / "images"))[400:460]:
            shutil.copy(dataset("ukbench-dev") / "images" / n, new / n)
        time.sleep(2.0)  # a job is likely running now
        t = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - t < 5.0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
    lib = Library.open()
    assert lib.index.ids() == lib.catalog.indexed_ids(lib.model.model_id)
    IndexJob(lib).run()  # what was not done yet is done by the next run, nothing twice
    assert consistent(lib, root)


def test_sba_watch_refuses_when_another_writer_holds_the_library(watched_library, capsys):
    from sba_desktop.cli import main

    lib = Library.open()
    with lib.writer_lock():
        code = main(["watch"])
    assert code == 1 and "cannot watch" in capsys.readouterr().err


def test_a_photo_skipped_while_partial_is_retried_once_complete(tmp_path):
    folder = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", folder, ukbench_names(8))
    data = (dataset("ukbench-dev") / "images" / "ukbench00100.jpg").read_bytes()
    (folder / "copying.jpg").write_bytes(data[: len(data) // 3])
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    assert [os.path.basename(p) for p, _ in lib.catalog.skipped()] == ["copying.jpg"]
    (folder / "copying.jpg").write_bytes(data)  # the copy finished: size and mtime changed
    IndexJob(lib).run()
    assert not lib.catalog.skipped() and len(lib.index) == 9


def test_without_file_events_the_folders_are_rescanned(watched_library):
    root = watched_library
    w = LibraryWatcher(use_events=False, rescan_s=1.0, tick_s=0.1).start()
    try:
        assert wait_for(lambda: w.status.folders.get(str(root)) == "rescans", 10)
        assert "rescanned periodically" in w.status.line()
        shutil.copy(dataset("ukbench-dev") / "images" / "ukbench00470.jpg", root / "new.jpg")
        assert wait_for(lambda: with_library(lambda lib: len(lib.index)) == 261, 20)
    finally:
        w.stop()


def test_photos_arriving_in_an_inbox_get_category_proposals(tmp_path):

    from sba_desktop.jobs.tagging import label_from_folders, proposals, set_inbox

    flowers = dataset("flowers17-dev")
    by = flowers_by_class()
    classes = sorted(by)[:3]
    cats, inbox = tmp_path / "Sorted", tmp_path / "Inbox"
    for c in classes:
        link_photos(flowers / "images", cats / c, by[c][:15])
    inbox.mkdir()
    lib = Library.open()
    IndexJob(lib, [str(cats), str(inbox)]).run()
    label_from_folders(lib, str(cats))
    set_inbox(lib, str(inbox))
    lib.close()
    w = LibraryWatcher(settle_s=0.5, tick_s=0.1).start()
    try:
        assert w.wait_idle(30)
        arriving = [(c, n) for c in classes for n in by[c][15:17]]
        for _, n in arriving:
            shutil.copy(flowers / "images" / n, inbox / n)
        assert wait_for(lambda: with_library(lambda lib: len(proposals(lib))) == len(arriving), 30)
    finally:
        w.stop()
    got = {os.path.basename(p.path): p.closest for p in proposals(Library.open())}
    right = sum(got[n] == c for c, n in arriving)
    assert right >= len(arriving) - 1  # 15 examples per category: nearly all right
