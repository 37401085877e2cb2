"""What must work the same on Linux, Windows and macOS: importing without POSIX modules, the writer
lock (also when its holder is killed), the system trash with undo, revealing a photo."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import dataset, ukbench_names
from sba_desktop.jobs.index import IndexJob
from sba_desktop.jobs.restore import restore_and_reindex
from sba_desktop.library.library import Library
from sba_desktop.library.lock import LibraryBusyError, WriterLock
from sba_desktop.library.trash import move_to_trash
from sba_desktop.ui.reveal import reveal_command

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_cli_and_window_modules_import_without_fcntl():
    # Windows has no fcntl: hiding it must not stop the program from starting
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import sba_desktop.library.library, sba_desktop.library.lock, sba_desktop.cli, sba_desktop.ui.main\n"
            "print('imported')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr


def test_a_killed_lock_holder_releases_the_library(tmp_path):
    lock_file = tmp_path / "writer.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from sba_desktop.library.lock import WriterLock\n"
         f"held = WriterLock({str(lock_file)!r}).acquire(); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LibraryBusyError, match=f"process {holder.pid}"):
            WriterLock(lock_file).acquire()
        holder.send_signal(signal.SIGKILL)  # no clean-up runs in the holder
        holder.wait(timeout=10)
        with WriterLock(lock_file):  # the system dropped the dead holder's lock
            pass
    finally:
        if holder.poll() is None:
            holder.kill()


@pytest.fixture
def trash_home(tmp_path, monkeypatch):
    """A private freedesktop trash: the tests never fill the machine's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "Trash"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the trash folder checked is freedesktop's")
def test_trash_moves_photos_out_of_the_library_and_undo_brings_them_back(tmp_path, trash_home):
    folder = tmp_path / "photos"
    folder.mkdir()
    src = dataset("ukbench-dev") / "images"
    names = ukbench_names(8)
    for n in names:  # copies: the trash moves files, never the shared photos
        shutil.copy(src / n, folder / n)
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    victim = str(folder / names[5])
    keep_id = lib.catalog.photo_id(str(folder / names[4]))
    victim_id = lib.catalog.photo_id(victim)

    done = lib.trash_photos([victim, str(folder / "vanished.jpg")])
    assert [t.moved for t in done] == [True, False]
    assert "no longer there" in done[1].error
    assert not os.path.exists(victim)
    assert Path(done[0].in_trash).parent == trash_home / "files"
    assert (trash_home / "info" / (Path(done[0].in_trash).name + ".trashinfo")).exists()
    # forgotten at once, in the catalog and the index; the other photos untouched
    assert lib.catalog.photo_id(victim) is None and victim_id not in lib.index.ids()
    assert keep_id in lib.index.ids() and len(lib.index) == 7
    assert sorted(os.listdir(folder)) == sorted(n for n in names if n != names[5])
    reopened = Library.open()  # what was saved agrees
    assert reopened.index.ids() == reopened.catalog.indexed_ids(reopened.model.model_id)

    assert restore_and_reindex(lib, done) == []
    assert os.path.exists(victim) and not os.listdir(trash_home / "info")
    IndexJob(lib, [str(folder)]).run()
    assert len(lib.index) == 8 and lib.search(victim, top=1)[0].path == victim


def test_names_the_trash_cannot_take_and_vanished_files_are_left_alone(tmp_path, trash_home):
    folder = tmp_path / "photos"
    folder.mkdir()
    raw_name = os.fsdecode(b"caf\xe9.jpg")  # not UTF-8: possible on Linux, not on Windows/macOS
    try:
        (folder / raw_name).write_bytes(b"x")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system takes only valid names")
    done = move_to_trash([str(folder / raw_name), str(folder / "gone.jpg")])
    assert not any(t.moved for t in done)
    assert "not valid UTF-8" in done[0].error and "no longer there" in done[1].error
    assert (folder / raw_name).exists()


def test_reveal_selects_the_photo_with_each_platforms_own_tool():
    assert reveal_command(r"C:\Photos\a b.jpg", "win32") == ["explorer", r"/select,C:\Photos\a b.jpg"]
    assert reveal_command("/Users/me/a.jpg", "darwin") == ["open", "-R", "/Users/me/a.jpg"]
    linux = reveal_command("/home/me/a b.jpg", "linux")
    if linux is not None:  # dbus-send present: the freedesktop FileManager1 call, the URI encoded
        assert "org.freedesktop.FileManager1.ShowItems" in linux
        assert "array:string:file:///home/me/a%20b.jpg" in linux
