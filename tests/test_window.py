"""The window as a photographer uses it (issue 35), offscreen, on real photos from ../shared/datasets:
duplicates that cannot trash the photo kept, results with a cut, the viewer, a broken query."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402

from sba_desktop.jobs.index import IndexJob  # noqa: E402
from sba_desktop.library.library import Library  # noqa: E402
from sba_desktop.ui.duplicates_view import CELL  # noqa: E402
from tests.conftest import dataset, ukbench_names  # noqa: E402
from tests.test_gui import open_window, wait  # noqa: E402


def answer_move(monkeypatch) -> list:
    """Every trash confirmation is answered "Move to trash"; returns the dialogs shown."""
    from sba_desktop.ui.trash_confirm import TrashConfirmation

    shown = []
    monkeypatch.setattr(TrashConfirmation, "exec",
                        lambda self: shown.append(self) or QDialog.DialogCode.Accepted)
    return shown


@pytest.fixture
def copies_library(tmp_path, monkeypatch):
    """Real photos and real copies of the first: a resized JPEG, a PNG, a crop and a brightened one."""
    from PIL import Image, ImageEnhance

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # a private trash, never the machine's
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ukbench_names(8)
    for n in names:  # copies of the shared photos: the trash moves real files
        shutil.copy(dataset("ukbench-dev") / "images" / n, folder / n)
    original = Image.open(folder / names[0])
    w, h = original.size
    original.resize((w // 2, h // 2)).save(folder / "small copy.jpg", quality=70)
    original.save(folder / "as png.png")
    original.crop((int(w * 0.06), int(h * 0.06), int(w * 0.95), int(h * 0.96))).save(folder / "cropped.jpg", quality=92)
    ImageEnhance.Brightness(original).enhance(1.35).save(folder / "brighter.jpg", quality=92)
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    lib.close()
    return folder, names


def found_copies(qtbot, monkeypatch):
    win = open_window(qtbot, monkeypatch)
    win.resize(1280, 800)
    view = win.duplicates
    win.tabs.setCurrentWidget(view)
    view.find()
    wait(qtbot, win, lambda: view.copies.rowCount() == 1)
    return win, view


def click_member(view, member: int, button=Qt.MouseButton.LeftButton) -> None:
    list_view = view.views[0]
    rect = list_view.visualRect(view.copies.index(0))
    QTest.mouseClick(list_view.viewport(), button, Qt.KeyboardModifier.NoModifier,
                     QPoint(rect.left() + 4 + member * CELL + CELL // 2, rect.top() + 40))


def test_the_copy_to_keep_never_reaches_the_trash(copies_library, qtbot, monkeypatch):
    folder, names = copies_library
    shown = answer_move(monkeypatch)
    win, view = found_copies(qtbot, monkeypatch)
    g = view.copies.groups[0]
    by_name = {os.path.basename(m.path): i for i, m in enumerate(g.members)}
    assert set(by_name) == {names[0], "small copy.jpg", "as png.png", "cropped.jpg", "brighter.jpg"}
    assert g.keeper == by_name[names[0]]
    # the edits are shown as such and not marked for the trash; plain copies are
    edits = {os.path.basename(m.path): m.edit for m in g.members}
    assert edits["cropped.jpg"] == "cropped" and edits["brighter.jpg"] == "re-toned"
    assert edits["small copy.jpg"] is None and edits["as png.png"] is None
    assert view.copies.marked[0] == {by_name["small copy.jpg"], by_name["as png.png"]}

    # the keeper case of issue 35: unmark one copy, then click the keeper
    click_member(view, by_name["small copy.jpg"])
    assert view.copies.marked[0] == {by_name["as png.png"]}
    click_member(view, g.keeper)
    assert g.keeper not in view.copies.marked[0]
    assert "copy to keep" in view.status.text() and names[0] in view.status.text()
    view.views[0].setCurrentIndex(view.copies.index(0))  # its number on the keyboard: the same
    QTest.keyClick(view.views[0], Qt.Key(Qt.Key.Key_1 + g.keeper))
    assert g.keeper not in view.copies.marked[0]

    view.trash()
    wait(qtbot, win, lambda: "moved to the trash" in view.status.text())
    assert len(shown) == 1
    listed = [shown[0].list.item(i).text() for i in range(shown[0].list.count())]
    assert len(listed) == 1 and listed[0].startswith("as png.png") and "KB" in listed[0] or "MB" in listed[0]
    assert shown[0].cancel_btn.isDefault() and "Ctrl+Z" in shown[0].where.text()
    assert "Trash" in shown[0].where.text()
    assert os.path.exists(folder / names[0]) and not os.path.exists(folder / "as png.png")
    for kept in ("small copy.jpg", "cropped.jpg", "brighter.jpg"):
        assert os.path.exists(folder / kept)


def test_another_copy_can_be_kept_and_the_label_follows(copies_library, qtbot, monkeypatch):
    folder, names = copies_library
    shown = answer_move(monkeypatch)
    win, view = found_copies(qtbot, monkeypatch)
    g = view.copies.groups[0]
    by_name = {os.path.basename(m.path): i for i, m in enumerate(g.members)}
    png, original = by_name["as png.png"], by_name[names[0]]
    view.views[0].setCurrentIndex(view.copies.index(0))
    QTest.keyClick(view.views[0], Qt.Key(Qt.Key.Key_1 + png), Qt.KeyboardModifier.ControlModifier)
    assert g.keeper == png and png not in view.copies.marked[0]
    click_member(view, original)  # the former keeper is a photo like the others now
    assert original in view.copies.marked[0]
    click_member(view, png)
    assert png not in view.copies.marked[0]
    view.trash()
    wait(qtbot, win, lambda: "moved to the trash" in view.status.text())
    assert os.path.exists(folder / "as png.png") and not os.path.exists(folder / names[0])
    assert len(shown) == 1


def test_the_trash_confirmation_defaults_to_cancel(copies_library, qtbot, monkeypatch):
    folder, names = copies_library
    win, view = found_copies(qtbot, monkeypatch)
    seen = []

    def press_enter():
        dlg = QApplication.activeModalWidget()
        seen.append(dlg)
        if dlg is not None:
            QTest.keyClick(dlg, Qt.Key.Key_Return)

    QTimer.singleShot(500, press_enter)
    view.trash()
    assert seen and seen[0] is not None and seen[0].list.count() == 2
    assert "Nothing" not in view.status.text() and "moved" not in view.status.text()
    assert all(os.path.exists(folder / n) for n in ("small copy.jpg", "as png.png"))


@pytest.fixture
def ukbench_window(tmp_path, qtbot, monkeypatch):
    from tests.conftest import link_photos

    folder = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", folder, ukbench_names(48))
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    lib.close()
    win = open_window(qtbot, monkeypatch)
    win.resize(1280, 800)
    return win


def drop(win, path) -> None:
    from tests.test_gui import drop_file

    drop_file(win, Path(path))


def test_results_are_cut_where_the_matches_end_and_focus_lands_on_them(ukbench_window, qtbot):
    from PySide6.QtWidgets import QApplication

    from sba_desktop.ui.results import MatchRole, NameRole, StrengthRole

    win = ukbench_window
    names = ukbench_names(48)
    win.tabs.tabBar().setFocus()  # where focus was after a drop in issue 35
    drop(win, dataset("ukbench-dev") / "images" / names[12])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    model = win.search.model
    matches = [Path(p).name for r, (p, _s) in enumerate(model.hits) if model.index(r).data(MatchRole)]
    # the query and its three other views are the matches; the rest of the library is "more like it"
    assert set(matches) == set(names[12:16])
    assert f"{len(matches)} matches" in win.search.summary.text() and "more like it" in win.search.summary.text()
    for r in range(model.rowCount()):
        idx = model.index(r)
        assert idx.data(NameRole) == Path(model.hits[r][0]).name  # the name on every cell
        bars, words = idx.data(StrengthRole)
        assert 0 <= bars <= 4 and words
        if not idx.data(MatchRole):
            assert "match" not in words
    assert QApplication.focusWidget() is win.search.grid  # shortcuts work at once after the drop
    # a portrait cell keeps its name: the caption lies under a square box, whatever the photo's shape
    grid = win.search.grid
    assert grid.gridSize().height() > grid.iconSize().height() + 2 * grid.fontMetrics().height()


def test_the_viewer_fits_zooms_walks_the_results_and_esc_comes_back(ukbench_window, qtbot):
    win = ukbench_window
    names = ukbench_names(48)
    drop(win, dataset("ukbench-dev") / "images" / names[4])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    grid = win.search.grid
    grid.setCurrentIndex(win.search.model.index(1))
    QTest.keyClick(grid, Qt.Key.Key_Space)
    viewer = win.search.viewer
    assert win.search.results_area.currentWidget() is viewer
    first = viewer.current()
    assert first == win.search.model.hits[1][0]
    qtbot.waitUntil(lambda: viewer.view.item.pixmap().width() > 256, timeout=30_000)  # the photo, not its thumbnail
    shown = viewer.view.mapFromScene(viewer.view.item.sceneBoundingRect()).boundingRect()
    port = viewer.view.viewport().rect()
    assert shown.width() <= port.width() + 2 and shown.height() <= port.height() + 2  # fitted, not cropped
    assert shown.width() >= port.width() - 4 or shown.height() >= port.height() - 4   # and filling the window
    before = viewer.view.transform().m11()
    QTest.keyClick(viewer.view, Qt.Key.Key_Plus)
    assert viewer.view.transform().m11() > before and not viewer.view.fitted
    QTest.keyClick(viewer.view, Qt.Key.Key_0)
    assert viewer.view.fitted
    QTest.keyClick(viewer.view, Qt.Key.Key_Right)
    assert viewer.current() == win.search.model.hits[2][0]
    QTest.keyClick(viewer.view, Qt.Key.Key_Left)
    QTest.keyClick(viewer.view, Qt.Key.Key_Left)
    assert viewer.current() == win.search.model.hits[0][0]
    assert Path(viewer.current()).name in viewer.title.text()
    QTest.keyClick(viewer.view, Qt.Key.Key_W)  # Why, one key away, and Esc back to the viewer
    wait(qtbot, win, lambda: win.search.why is not None and win.search.results_area.currentWidget() is win.search.why)
    QTest.keyClick(win.search.why.back_btn, Qt.Key.Key_Escape)
    assert win.search.results_area.currentWidget() is viewer
    QTest.keyClick(viewer.view, Qt.Key.Key_Escape)
    assert win.search.results_area.currentWidget() is win.search.grid_page
    assert win.search.current_path() == win.search.model.hits[0][0]  # back on the photo last viewed


def test_why_shows_the_grids_figure_and_calls_a_photo_below_the_cut_weak(ukbench_window, qtbot):
    from sba_desktop.ui.results import MatchRole

    win = ukbench_window
    names = ukbench_names(48)
    drop(win, dataset("ukbench-dev") / "images" / names[0])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    model = win.search.model
    match_row = 1
    weak_row = model.rowCount() - 1
    assert model.index(match_row).data(MatchRole) and not model.index(weak_row).data(MatchRole)
    for row, weak in ((match_row, False), (weak_row, True)):
        old = win.search.why
        path, score = model.hits[row]
        win.search.explain(path)
        wait(qtbot, win, lambda: win.search.why is not None and win.search.why is not old)
        assert win.search.results_area.currentWidget() is win.search.why  # a page of the window, not a dialog
        assert not win.search.why.details.isVisibleTo(win) and win.search.why.details_btn.isVisibleTo(win)
        legend = win.search.why.legend.text()
        assert f"{score:.3f}" in legend  # one similarity figure: the grid's
        assert ("Weak match" in legend) == weak
        shares = [float(x) for x in __import__("re").findall(r"(\d+) % of the match", legend)]
        rest = __import__("re").findall(r"everywhere else: (\d+) %", legend)
        if shares:  # the pairs and "everywhere else" add up to the whole match, never more
            assert sum(shares) + sum(float(x) for x in rest) == pytest.approx(100, abs=len(shares) + 1)
        assert shares or weak
        QTest.keyClick(win.search.why.back_btn, Qt.Key.Key_Escape)
        assert win.search.results_area.currentWidget() is win.search.grid_page


def test_a_broken_query_is_named_and_clears_the_previous_results(ukbench_window, qtbot, tmp_path):
    win = ukbench_window
    names = ukbench_names(48)
    drop(win, dataset("ukbench-dev") / "images" / names[0])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    broken = tmp_path / "holiday 2019.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    drop(win, broken)
    qtbot.waitUntil(lambda: bool(win.errors), timeout=60_000)
    assert "holiday 2019.jpg" in win.errors[0]
    assert win.search.model.rowCount() == 0 and win.search.query_path is None
    assert win.search.summary.text() == ""


def test_grid_comforts_sort_filter_size_and_several_at_once(ukbench_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtGui import QGuiApplication

    from sba_desktop.ui.results import MatchRole

    win = ukbench_window
    names = ukbench_names(48)
    drop(win, dataset("ukbench-dev") / "images" / names[20])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    sp, model = win.search, win.search.model
    matched = {p for r, (p, _s) in enumerate(model.hits) if model.index(r).data(MatchRole)}
    sp.sort_box.setCurrentIndex(1)  # by name: the matches stay the matches wherever they land
    shown = [Path(p).name for p, _ in model.hits]
    assert shown == sorted(shown, key=str.lower)
    assert {p for r, (p, _s) in enumerate(model.hits) if model.index(r).data(MatchRole)} == matched
    sp.sort_box.setCurrentIndex(0)
    assert model.hits == model.ranked
    assert sp.folder_box.count() == 2  # all folders, and the one folder of this library
    sp.folder_box.setCurrentIndex(1)
    assert model.rowCount() == 48
    before = sp.grid.gridSize().width()
    sp.size_slider.setValue(110)
    assert sp.grid.iconSize().width() == 110 and sp.grid.gridSize().width() < before
    # several at once: Ctrl+C copies every selected path
    sp.grid.setFocus()
    sp.grid.setCurrentIndex(model.index(0))
    sp.grid.selectionModel().select(model.index(1), sp.grid.selectionModel().SelectionFlag.Select)
    sp.grid.selectionModel().select(model.index(2), sp.grid.selectionModel().SelectionFlag.Select)
    QTest.keyClick(sp.grid, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    copied = QGuiApplication.clipboard().text().splitlines()
    assert len(copied) == 3 and {Path(c).name for c in copied} == {Path(p).name for p, _ in model.hits[:3]}


def test_indexing_progress_speaks_in_words(tmp_path, qtbot, monkeypatch):
    from tests.conftest import link_photos
    from tests.test_gui import drop_folder

    win = open_window(qtbot, monkeypatch)
    said = []
    win.ctx.message.connect(said.append)
    folder = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", folder, ukbench_names(24))
    drop_folder(win, folder)
    wait(qtbot, win, lambda: win.library.indexing)
    wait(qtbot, win, lambda: not win.library.indexing)
    text = " | ".join(said)
    assert "Learning your library" in text or "Reading photos" in text, text
    assert not any(m.startswith(("scanning", "fitting", "encoding")) for m in said), text
    assert "dims" not in win.status_label.text() and "pca" not in win.status_label.text()


def test_results_sort_by_date_taken_oldest_first_and_undated_last(tmp_path, qtbot, monkeypatch):
    from PIL import Image

    folder = tmp_path / "dated"
    folder.mkdir()
    names = ukbench_names(8)
    for i, n in enumerate(names):   # capture times run against the names: the last name is oldest
        exif = Image.Exif()
        if i < 6:
            exif.get_ifd(0x8769)[0x9003] = f"2024:05:0{7 - i} 10:00:00"   # DateTimeOriginal
        Image.open(dataset("ukbench-dev") / "images" / n).save(folder / f"p{i}.jpg", exif=exif)
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    lib.close()
    win = open_window(qtbot, monkeypatch)
    drop(win, folder / "p0.jpg")
    wait(qtbot, win, lambda: win.search.model.rowCount() == 8)
    win.search.sort_box.setCurrentIndex(3)
    shown = [Path(p).name for p, _ in win.search.model.hits]
    assert win.search.sort_box.currentText() == "Date taken"
    assert shown == ["p5.jpg", "p4.jpg", "p3.jpg", "p2.jpg", "p1.jpg", "p0.jpg", "p6.jpg", "p7.jpg"]


def test_a_finished_task_lets_go_of_its_callbacks_and_what_they_hold(qtbot):
    """A background task's slots (closures over a Why page, a library…) are freed once the result
    is delivered: they used to stay alive for the whole session, one set per task."""
    import gc
    import weakref

    from sba_desktop.ui.tasks import Worker, submit

    class Held:
        pass
    held, got = Held(), []
    ref = weakref.ref(held)
    worker = Worker(lambda: 42)
    worker.signals.finished.connect(lambda result, h=held: got.append(result))
    submit(worker)
    del worker, held
    qtbot.waitUntil(lambda: got == [42], timeout=10_000)
    qtbot.wait(50)  # the signals' QObject is deleted later, from the event loop
    gc.collect()
    assert ref() is None


def test_why_lets_go_of_its_maps_once_closed(ukbench_window, qtbot):
    import gc
    import weakref

    win = ukbench_window
    drop(win, dataset("ukbench-dev") / "images" / ukbench_names(48)[0])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    win.search.explain(win.search.model.hits[1][0])
    wait(qtbot, win, lambda: win.search.why is not None)
    why = win.search.why
    why.show_details(True)
    why.detectors.setCurrentRow(3)  # a gallery asked for: one more task holding the page
    wait(qtbot, win, lambda: why.gallery.count() > 0)
    ex = weakref.ref(why.ex)
    del why
    QTest.keyClick(win.search.why.back_btn, Qt.Key.Key_Escape)
    assert win.search.why is None and win.search.results_area.currentWidget() is win.search.grid_page
    qtbot.wait(100)
    gc.collect()
    assert ex() is None  # the detector maps (~40 MB a pair of photos) are gone with the page


def _where_it_ran(lib, word: str, progress):
    """A job for a process of its own (module-level: the child imports it by name)."""
    progress(f"{word} 1/2")
    if word == "fail":
        from sba_desktop.errors import UserError

        raise UserError("no such folder: /nowhere")
    return os.getpid(), str(lib.paths.data)


def test_a_job_in_a_process_of_its_own_reports_its_progress_result_and_errors():
    """Auto-tagging runs so (tasks.py): what it imports (scikit-learn) leaves with the process."""
    from sba_desktop.errors import SbaError
    from sba_desktop.paths import app_paths
    from sba_desktop.ui.tasks import _in_own_process

    said = []
    pid, data = _in_own_process(None, _where_it_ran, "go", progress=said.append)
    assert pid != os.getpid() and said == ["go 1/2"]
    assert data == str(app_paths().data)  # the same library: the child has the window's environment
    with pytest.raises(SbaError, match="no such folder: /nowhere"):
        _in_own_process(None, _where_it_ran, "fail")
