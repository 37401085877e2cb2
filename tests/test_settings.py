"""Settings (issue 35): the folder list, the thumbnail size and confirm-before-trash, driven in the
real dialog of the real window, offscreen, on real photos from ../shared/datasets."""
from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox  # noqa: E402

from sba_desktop.jobs.index import IndexJob  # noqa: E402
from sba_desktop.library.library import Library  # noqa: E402
from tests.conftest import dataset, link_photos, ukbench_names, with_library  # noqa: E402
from tests.test_gui import drop_file, open_window, result_names, wait  # noqa: E402


def indexed(folder, names, copy=False):
    """A library holding `folder` with these ukbench photos (copies when the trash will move them)."""
    if copy:
        folder.mkdir(parents=True)
        for n in names:
            shutil.copy(dataset("ukbench-dev") / "images" / n, folder / n)
    else:
        link_photos(dataset("ukbench-dev") / "images", folder, names)
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    lib.close()


def in_settings(qtbot, win, steps, ok=True):
    """Open Settings from the window and run steps(dialog) while it is open; then OK (or Cancel)."""
    seen = []

    def drive():
        dlg = win.settings_dialog
        if dlg is None or not dlg.isVisible():
            QTimer.singleShot(50, drive)
            return
        try:
            steps(dlg)
            seen.append(dlg)
        finally:
            dlg.accept() if ok else dlg.reject()

    QTimer.singleShot(0, drive)
    win.settings_act.trigger()
    assert seen, "the Settings dialog was not driven"
    return seen[0]


def test_a_folder_added_in_settings_joins_the_library_and_one_removed_leaves_it(tmp_path, qtbot, monkeypatch):
    first, second = tmp_path / "photos", tmp_path / "more photos"
    names = ukbench_names(16)
    indexed(first, names[:12])
    link_photos(dataset("ukbench-dev") / "images", second, names[12:])
    win = open_window(qtbot, monkeypatch)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(second))

    def add(dlg):
        assert dlg.folder_paths() == [str(first)] and dlg.tabs.tabText(0) == "Library"
        dlg.add_btn.click()
        assert dlg.folder_paths() == [str(first), str(second)]  # listed at once, indexed meanwhile
    reloaded = []  # the indexing job stores into a library of its own; the window's is reopened after it
    win.ctx.libraryLoaded.connect(reloaded.append)
    in_settings(qtbot, win, add)
    wait(qtbot, win, lambda: not win.library.indexing and bool(reloaded))
    assert str(second) in win.lib.catalog.folders()
    assert with_library(lambda lib: lib.catalog.counts()["indexed"]) == 16
    drop_file(win, second / names[13])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    assert names[13] in result_names(win)[:2]   # the new folder's photos are searched

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)

    def remove(dlg):
        dlg.folders.setCurrentRow(dlg.folder_paths().index(str(first)))
        dlg.remove_btn.click()
        assert dlg.folder_paths() == [str(second)]
    in_settings(qtbot, win, remove)
    wait(qtbot, win, lambda: with_library(lambda lib: lib.catalog.folders()) == [str(second)])
    assert len(asked) == 1 and "files stay on disk" in asked[0][2]
    assert with_library(lambda lib: lib.catalog.counts()["indexed"]) == 4
    assert all((first / n).exists() for n in names[:12])  # forgotten, never deleted


def test_the_thumbnail_size_is_one_setting_with_the_slider_and_survives_a_restart(tmp_path, qtbot, monkeypatch):
    from sba_desktop.library.health import read_backup

    folder = tmp_path / "photos"
    indexed(folder, ukbench_names(12))
    win = open_window(qtbot, monkeypatch)
    sp = win.search
    assert sp.grid.iconSize().width() == 192 and sp.size_slider.value() == 192
    before = sp.grid.gridSize().width()

    def smaller(dlg):
        assert dlg.thumb_size.value() == 192
        dlg.thumb_size.setValue(128)
    in_settings(qtbot, win, smaller)
    assert sp.grid.iconSize().width() == 128 and sp.grid.gridSize().width() < before
    assert sp.size_slider.value() == 128   # the slider above the results is the same setting
    sp.size_slider.setValue(144)
    assert sp.grid.iconSize().width() == 144

    def from_the_slider(dlg):
        assert dlg.thumb_size.value() == 144
        dlg.thumb_size.setValue(112)
    in_settings(qtbot, win, from_the_slider)
    in_settings(qtbot, win, lambda dlg: dlg.thumb_size.setValue(250), ok=False)  # Cancel changes nothing
    assert sp.grid.iconSize().width() == 112
    home = win.paths.data
    win.close()
    assert with_library(lambda lib: lib.catalog.get_meta("ui.thumb_size")) == "112"
    backup = dict(read_backup(home)["meta"])   # kept with the user's own data (user-data.sqlite)
    assert backup["ui.thumb_size"] == "112" and backup["ui.confirm_trash"] == "1"

    again = open_window(qtbot, monkeypatch)
    assert again.search.grid.iconSize().width() == 112 and again.search.size_slider.value() == 112


def test_with_confirm_before_trash_off_a_result_goes_without_a_question_and_undo_brings_it_back(
        tmp_path, qtbot, monkeypatch):
    from sba_desktop.ui.trash_confirm import TrashConfirmation

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # a private trash, never the machine's
    folder = tmp_path / "photos"
    names = ukbench_names(12)
    indexed(folder, names, copy=True)
    shown = []  # a confirmation shown now would be refused: the photo would stay
    monkeypatch.setattr(TrashConfirmation, "exec", lambda self: shown.append(self) or QDialog.DialogCode.Rejected)
    win = open_window(qtbot, monkeypatch)

    def safety(dlg):
        assert dlg.confirm_trash.isChecked()  # on by default
        dlg.confirm_trash.setChecked(False)
    in_settings(qtbot, win, safety)
    assert win.ctx.prefs.confirm_trash is False
    drop_file(win, folder / names[4])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    victim = str(folder / names[5])
    win.search.trash([victim])
    wait(qtbot, win, lambda: names[5] not in result_names(win))
    assert not shown and not os.path.exists(victim)
    assert (tmp_path / "xdg" / "Trash" / "files" / names[5]).exists()  # the system trash, not deleted
    win.search.undo_trash()
    wait(qtbot, win, lambda: names[5] in result_names(win))
    assert os.path.exists(victim)
    wait(qtbot, win, lambda: with_library(lambda lib: lib.catalog.get_meta("ui.confirm_trash")) == "0")


def test_with_confirm_off_the_duplicates_view_still_never_trashes_the_keeper(copies_library, qtbot, monkeypatch):
    from sba_desktop.ui.preferences import Preferences, write_preferences
    from sba_desktop.ui.trash_confirm import TrashConfirmation
    from tests.test_window import click_member, found_copies

    folder, names = copies_library
    with_library(lambda lib: write_preferences(lib, Preferences(confirm_trash=False)))  # read as the window opens
    shown = []
    monkeypatch.setattr(TrashConfirmation, "exec", lambda self: shown.append(self) or QDialog.DialogCode.Rejected)
    win, view = found_copies(qtbot, monkeypatch)
    assert win.ctx.prefs.confirm_trash is False
    g = view.copies.groups[0]
    by_name = {os.path.basename(m.path): i for i, m in enumerate(g.members)}
    click_member(view, g.keeper)   # refused: the copy to keep is never marked
    assert g.keeper not in view.copies.marked[0]
    view.trash()
    wait(qtbot, win, lambda: "moved to the trash" in view.status.text())
    assert not shown
    assert os.path.exists(folder / names[0])   # the keeper
    assert not os.path.exists(folder / "small copy.jpg") and not os.path.exists(folder / "as png.png")
    assert by_name[names[0]] == g.keeper
    view.undo()
    wait(qtbot, win, lambda: view.copies.rowCount() == 1 and len(view.copies.groups[0].members) == 5)
    assert os.path.exists(folder / "small copy.jpg") and os.path.exists(folder / "as png.png")


from tests.test_window import copies_library  # noqa: E402,F401  (the fixture, shared)
