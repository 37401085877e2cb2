"""The real widgets, offscreen, on a small real library built from ../shared/datasets photos."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QImage  # noqa: E402

from sba_desktop.jobs.index import IndexJob  # noqa: E402
from sba_desktop.library.library import Library  # noqa: E402
from tests.conftest import composites_folder, dataset, flowers_by_class, link_photos, ukbench_names, with_library  # noqa: E402

WAIT = 120_000


def wait(qtbot, win, cond):
    qtbot.waitUntil(lambda: cond() or bool(win.errors), timeout=WAIT)
    assert not win.errors, win.errors


@pytest.fixture
def ukbench_library(tmp_path):
    folder = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", folder, ukbench_names(48))
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    lib.close()
    return folder


def open_window(qtbot, monkeypatch):
    """The main window on the test's library, once that library is loaded."""
    from sba_desktop.ui.main import MainWindow

    monkeypatch.setenv("SBA_DESKTOP_NO_WATCH", "1")  # no second writer racing the tests' own jobs
    win = MainWindow()
    win.errors = []
    win.show_error = win.errors.append  # a modal box would block the test; errors are asserted instead
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.lib is not None, timeout=WAIT)
    return win


def answer_yes(monkeypatch) -> list:
    """Every confirmation is answered Yes; returns the list of questions asked."""
    from PySide6.QtWidgets import QDialog, QMessageBox

    from sba_desktop.ui.trash_confirm import TrashConfirmation

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    monkeypatch.setattr(TrashConfirmation, "exec", lambda self: asked.append(self) or QDialog.DialogCode.Accepted)
    return asked


@pytest.fixture
def window(qtbot, monkeypatch):
    return open_window(qtbot, monkeypatch)


def drop_file(win, path: Path) -> None:
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)


def result_names(win) -> list[str]:
    return [Path(p).name for p, _ in win.search.model.hits]


def test_window_appears_before_torch_is_imported(tmp_path):
    env = {**os.environ, "SBA_DESKTOP_REPORT_STARTUP": "quit", "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-m", "sba_desktop"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert "torch_loaded=False" in out.stdout, out.stdout + out.stderr


def test_drop_searches_and_region_query(ukbench_library, window, qtbot):
    src = dataset("ukbench-dev") / "images"
    names = ukbench_names(48)
    drop_file(window, src / names[8])
    wait(qtbot, window, lambda: window.search.model.rowCount() > 0)
    assert set(result_names(window)[:4]) == set(names[8:12])
    assert "results" in window.progress_label.text()
    window.search.model.set_hits([])
    window.search.query_view.select_region((100, 80, 440, 320))
    wait(qtbot, window, lambda: window.search.model.rowCount() > 0)
    assert len(set(result_names(window)[:6]) & set(names[8:12])) >= 3
    # status bar says what the index holds
    assert "48 photos indexed" in window.status_label.text()
    assert "dims" not in window.status_label.text() and "dims" in window.about_text()  # model details: About


def test_heatmap_view_renders_overlays(ukbench_library, window, qtbot):
    src = dataset("ukbench-dev") / "images"
    names = ukbench_names(48)
    drop_file(window, src / names[0])
    wait(qtbot, window, lambda: window.search.model.rowCount() > 1)
    # the detector names are checked in the background after the first search, not at the first "why"
    wait(qtbot, window, lambda: with_library(
        lambda lib: lib.catalog.get_meta(f"named_detectors:{lib.model.model_id}")) is not None)
    window.search.explain(window.search.model.hits[1][0])
    wait(qtbot, window, lambda: window.search.why is not None)
    why = window.search.why
    assert why.detectors.count() == 2 + 25
    assert why.selected() == -2  # opens on what carries the match: exact shares, pairs outlined
    qh, rh = why.last_overlay
    assert qh.max() == pytest.approx(1.0) and rh.max() == pytest.approx(1.0)  # each scaled to its own peak
    assert "of the match" in why.legend.text() and why.ex.links
    # the default search's score, split over these two photos and the close matches it used
    assert why.ex.search is not None and "In the search with close matches" in why.legend.text()
    assert why.ex.search.these_two + sum(v for _, v in why.ex.search.close_matches) == \
        pytest.approx(why.ex.search.score, abs=1e-4)
    from sba_desktop.jobs.explain import named_detectors

    named = with_library(named_detectors)
    for row in range(2, why.detectors.count()):  # words only where the detector's own gallery agrees
        pos = why.detectors.item(row).data(Qt.ItemDataRole.UserRole)
        assert ("detector " in why.detectors.item(row).text()) == (pos not in named)
    why.detectors.setCurrentRow(3)
    wait(qtbot, window, lambda: why.gallery.count() > 0)   # where it fires in the library
    assert why.gallery.count() <= 12
    patch = why.gallery.item(0).data(Qt.ItemDataRole.UserRole)
    why.gallery.itemActivated.emit(why.gallery.item(0))  # double-click: search by that photo
    assert window.search.query_path == patch
    qh, rh = why.last_overlay
    assert qh.shape[0] > 10 and 0.0 <= qh.min() and qh.max() <= 1.0 and qh.max() > 0
    assert not why.query_label.pixmap().isNull() and not why.result_label.pixmap().isNull()
    before = why.query_label.pixmap().toImage()
    why.opacity.setValue(0)
    assert why.query_label.pixmap().toImage() != before  # the overlay was really painted
    why.detectors.setCurrentRow(1)  # all detectors
    assert why.selected() == -1
    why.detectors.setCurrentRow(0)  # opacity 0 now: the photo and the pair outlines alone
    img = why.result_label.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    first_pair = pixels.reshape(img.height(), img.width(), 3) == (0x00, 0xE5, 0xFF)
    assert first_pair.all(axis=2).sum() > 20  # the strongest pair's outline is drawn on the result


def test_categories_flow_proposes_accepts_and_persists(tmp_path, window, qtbot):
    src = dataset("flowers17-dev")
    by_class = flowers_by_class()
    classes = sorted(by_class)[:3]
    root, unsorted = tmp_path / "cats", tmp_path / "unsorted"
    for c in classes:
        link_photos(src / "images", root / c, by_class[c][:12])
        link_photos(src / "images", unsorted, by_class[c][12:14])
    window.categories.choose_root(str(root))
    wait(qtbot, window, lambda: window.categories.filter.count() == 5)  # All, No category, 3
    window.categories.auto_tag(str(unsorted))
    wait(qtbot, window, lambda: len(window.categories.proposals) == 6)
    window.categories.threshold.setValue(0)
    assert window.categories.list.count() == 6
    window.categories.list.setCurrentRow(0)
    pid = int(window.categories.list.currentItem().data(Qt.ItemDataRole.UserRole + 10))
    window.categories.decide_current(True)
    wait(qtbot, window, lambda: pid in with_library(
        lambda lib: [r[0] for r in lib.catalog.labels(source="auto", accepted=True)]))
    # any photo can be put in another category by hand (right-click -> Put in category)
    assert window.categories.category_names() == classes
    other = next(p for p in window.categories.proposals if p.photo_id != pid)
    window.categories.move_to(other.photo_id, classes[2])
    wait(qtbot, window, lambda: (other.photo_id, classes[2]) in with_library(
        lambda lib: [(r[0], r[1]) for r in lib.catalog.labels(source="user", accepted=True)]))
    assert other.photo_id not in with_library(lambda lib: [r[0] for r in lib.catalog.labels(source="auto")])



def test_look_alike_photos_of_no_category_get_a_card_that_makes_one(tmp_path, window, qtbot):
    """15 sunflowers among the unsorted photos, no folder for them: a card offers them as a new
    category; naming it makes the category (the photos its examples) and moves no file."""
    src = dataset("flowers17-dev")
    by_class = flowers_by_class()
    classes = ["crocus", "daffodil", "snowdrop"]
    root, unsorted = tmp_path / "cats", tmp_path / "unsorted"
    for c in classes:
        link_photos(src / "images", root / c, by_class[c][:12])
        link_photos(src / "images", unsorted, by_class[c][12:16])
    link_photos(src / "images", unsorted, by_class["sunflower"][:15])
    listing = sorted([*root.rglob("*"), *unsorted.rglob("*")])
    panel = window.categories
    panel.choose_root(str(root))
    wait(qtbot, window, lambda: panel.filter.count() == 5)
    panel.auto_tag(str(unsorted))
    wait(qtbot, window, lambda: len(panel.proposals) == 27)
    assert len(panel.cards) == 1
    card = panel.cards[0]
    names = {Path(p).name for p in card.group.paths}
    assert len(names & set(by_class["sunflower"])) >= 0.75 * len(names) >= 5
    assert card.photos.count() == min(8, len(names)) and not card.make.isEnabled()
    card.name.setText("Sunflowers")
    assert card.make.isEnabled()
    card.make.click()
    wait(qtbot, window, lambda: "Sunflowers" in panel.info.text() and not panel.cards)
    assert "Sunflowers" in panel.category_names()
    made = with_library(lambda lib: sorted(r[0] for r in lib.catalog.labels(source="user", accepted=True)))
    assert made == sorted(card.group.photo_ids)
    assert sorted([*root.rglob("*"), *unsorted.rglob("*")]) == listing


def test_cancel_indexing_leaves_consistent_library(tmp_path, ukbench_library, window, qtbot):
    folder = tmp_path / "many"
    link_photos(dataset("ukbench-dev") / "images", folder, sorted(os.listdir(dataset("ukbench-dev") / "images"))[48:248])
    window.library.start_index([str(folder)])
    # cancel once the job is well under way
    wait(qtbot, window, lambda: window.library.indexing and window.library.progress.value() >= 10)
    window.library.cancel_index()
    wait(qtbot, window, lambda: not window.library.indexing)
    assert window.library.last_report.cancelled
    assert "cancelled" in window.progress_label.text().lower()
    lib = Library.open()
    assert lib.index.ids() == lib.catalog.indexed_ids(lib.model.model_id)
    assert len(lib.index) < 248
    # the next run completes the work
    IndexJob(lib).run()
    assert len(lib.index) == 248


def drop_folder(win, folder: Path) -> None:
    drop_file(win, folder)  # a folder's URL, as a file manager drags it


def test_first_run_guides_from_an_empty_library_to_the_first_search(tmp_path, window, qtbot):
    welcome = window.search.welcome
    assert window.search.results_area.currentWidget() is welcome
    assert welcome.state == "empty" and welcome.add_btn.isVisibleTo(window)
    assert "photo" in welcome.title.text().lower()
    # with no category folder, the Categories tab explains the folder-of-folders convention
    assert "subfolders are the" in window.categories.info.text()
    folder = tmp_path / "photos"
    link_photos(dataset("ukbench-dev") / "images", folder, ukbench_names(40))
    drop_folder(window, folder)  # dropping a folder adds it and indexes it
    assert window.library.indexing
    wait(qtbot, window, lambda: welcome.state == "indexing" and welcome.bar.isVisibleTo(window))
    wait(qtbot, window, lambda: not window.library.indexing)
    wait(qtbot, window, lambda: welcome.state == "ready")
    assert "40 photos" in welcome.title.text() and "Categories" in welcome.text.text()
    assert welcome.cat_btn.isVisibleTo(window)
    assert [os.path.realpath(f) for f in window.lib.catalog.folders()] == [os.path.realpath(folder)]
    drop_file(window, folder / ukbench_names(40)[4])  # then a photo: the results replace the page
    wait(qtbot, window, lambda: window.search.model.rowCount() > 0)
    assert window.search.results_area.currentWidget() is window.search.grid_page


def test_window_fits_small_screens_and_remembers_its_geometry(qtbot):
    from PySide6.QtCore import QRect

    from sba_desktop.ui.main import MainWindow, fit_to_screen

    for w, h in ((1280, 800), (1366, 768), (1024, 600)):
        screen = QRect(0, 0, w, h - 32)  # a panel takes some of the screen
        r = fit_to_screen(QRect(100, 60, 1280, 820), screen)
        assert screen.contains(r), (w, h, r)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    avail = win.screen().availableGeometry()
    assert avail.contains(win.geometry())  # the status bar is on screen
    win.resize(700, 500)  # the offscreen screen is 800x800
    win.move(avail.x() + 40, avail.y() + 50)
    win.search.setSizes([280, 400])
    sizes = win.search.sizes()
    win.close()
    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    assert (again.width(), again.height()) == (700, 500)
    assert again.search.sizes() == sizes
    again.close()


def test_the_window_watches_its_folders(ukbench_library, qtbot, tmp_path):
    import shutil

    from sba_desktop.ui.main import MainWindow

    win = MainWindow()
    win.errors = []
    win.show_error = win.errors.append
    qtbot.addWidget(win)
    win.show()
    wait(qtbot, win, lambda: "watching 1 folder" in win.watch_label.text())
    assert win.library.watch_act.isChecked()
    n = ukbench_names(60)[50]
    shutil.copy(dataset("ukbench-dev") / "images" / n, ukbench_library / n)
    wait(qtbot, win, lambda: win.lib is not None and len(win.lib.index) == 49)
    assert "1 new" in win.progress_label.text() or "49 photos indexed" in win.status_label.text()
    win.library.watch_act.trigger()  # pause
    wait(qtbot, win, lambda: "paused" in win.watch_label.text())
    win.close()
    assert win.library.watcher.error is None


def test_results_from_an_unreachable_folder_are_marked_offline(qtbot, tmp_path):
    from pathlib import Path as P

    from PySide6.QtCore import Qt as QtNS

    from sba_desktop.ui.results import ResultsModel, ThumbnailLoader

    present = dataset("ukbench-dev") / "images" / ukbench_names(1)[0]
    model = ResultsModel(ThumbnailLoader(tmp_path / "cache"))
    model.set_hits([(str(present), 0.9), (str(P("/media/usb-disk/gone.jpg")), 0.8)])
    shown = [model.data(model.index(r), QtNS.ItemDataRole.DisplayRole) for r in range(2)]
    assert not shown[0].startswith("offline") and shown[1].startswith("offline")
    assert "not reachable" in model.data(model.index(1), QtNS.ItemDataRole.ToolTipRole)


def test_a_region_drawn_on_a_heic_or_rotated_query_is_read_in_the_photos_pixels(ukbench_library, window,
                                                                                 qtbot, tmp_path):
    """HEIC is shown from a 512 px thumbnail and a rotated JPEG upright: a rectangle drawn on either
    is the same part of the photo that the search then reads."""
    from PIL import Image
    from PySide6.QtCore import QRect

    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    src = dataset("ukbench-dev") / "images" / ukbench_names(48)[8]
    with Image.open(src) as im:
        rgb = im.convert("RGB")                       # 640 x 480
    heic, rotated = tmp_path / "q.heic", tmp_path / "q-rot6.jpg"
    rgb.save(heic, format="HEIF", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb.transpose(Image.Transpose.ROTATE_90).save(rotated, quality=95, exif=exif.tobytes())
    for query, size in ((heic, (640, 480)), (rotated, (640, 480))):
        window.search.model.set_hits([])
        window.search.set_query_path(str(query))
        wait(qtbot, window, lambda: window.search.model.rowCount() > 0)
        view = window.search.query_view
        shown = view._shown_rect()
        assert shown.width() < size[0]   # what is shown is smaller than the photo
        # the right half of what is shown is the right half of the photo, in its own pixels
        half = QRect(shown.x() + shown.width() // 2, shown.y(), shown.width() - shown.width() // 2, shown.height())
        x, y, w, h = view.widget_to_image(half)
        assert abs(x - size[0] / 2) <= 3 and y == 0 and abs(w - size[0] / 2) <= 3 and abs(h - size[1]) <= 3
        window.search.model.set_hits([])
        view.select_region((x, y, w, h))
        wait(qtbot, window, lambda: window.search.model.rowCount() > 0)
        lib = window.lib
        want = [hit.path for hit in lib.search_vector(lib.encode_query(str(query), (x, y, w, h)), len(lib.index))]
        assert [p for p, _ in window.search.model.hits] == want


def test_jobs_that_write_never_change_the_library_searches_read(tmp_path, ukbench_library, window, qtbot):
    """Indexing runs on a library of its own while the window keeps searching its own; the window's
    library is swapped for the new state once the job is done, and writing jobs queue, one at a time."""
    searched = window.lib
    before = len(searched.index)
    more = tmp_path / "more"
    link_photos(dataset("ukbench-dev") / "images", more, sorted(os.listdir(dataset("ukbench-dev") / "images"))[48:96])
    window.library.start_index([str(more)])
    window.library.start_index([])   # queued behind the first, not refused, not run beside it
    assert window.ctx.jobs.busy
    q = str(dataset("ukbench-dev") / "images" / ukbench_names(48)[8])
    while window.library.indexing:
        assert len(searched.index) == before   # nothing writes into the library being searched
        assert searched.search(q, 4)
        qtbot.wait(50)
    assert not window.errors, window.errors
    wait(qtbot, window, lambda: window.lib is not searched and len(window.lib.index) == before + 48)
    assert not window.ctx.jobs.busy


def test_settings_dialog_keeps_every_setting_and_offers_the_whole_photo_region(qtbot):
    from sba_desktop.library.library import Settings
    from sba_desktop.ui.settings import SettingsDialog

    given = Settings(image_size=256, n_detectors=30, dims=256, k=20, global_weight=1.5, inside=True)
    dlg = SettingsDialog(given, ["efficientnet_lite0"], "/tmp/home")
    qtbot.addWidget(dlg)
    assert dlg.value() == given
    dlg.whole.setValue(0.0)   # the detectors' regions only: SBA as the paper
    assert dlg.value().global_weight == 0.0 and dlg.value().n_detectors == 30


def test_a_result_moved_to_the_trash_leaves_the_window_and_ctrl_z_brings_it_back(tmp_path, qtbot, monkeypatch):
    import shutil

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # a private trash, never the machine's
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ukbench_names(12)
    for n in names:  # copies: the trash moves real files
        shutil.copy(dataset("ukbench-dev") / "images" / n, folder / n)
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    lib.close()
    asked = answer_yes(monkeypatch)
    win = open_window(qtbot, monkeypatch)
    drop_file(win, folder / names[4])
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0)
    victim = str(folder / names[5])
    assert names[5] in result_names(win)[:4]

    win.search.trash([victim])
    wait(qtbot, win, lambda: names[5] not in result_names(win))
    assert len(asked) == 1 and not os.path.exists(victim)
    assert "moved to the trash" in win.progress_label.text()
    assert (tmp_path / "xdg" / "Trash" / "files" / names[5]).exists()
    assert with_library(lambda lib: lib.catalog.photo_id(victim)) is None

    said = []
    win.search.ctx.message.connect(said.append)
    win.search.undo_trash()
    wait(qtbot, win, lambda: names[5] in result_names(win)[:4])
    assert os.path.exists(victim) and any("1 brought back from the trash" in m for m in said), said


def test_the_duplicates_view_marks_the_copies_moves_them_to_the_trash_and_undo_brings_them_back(
        tmp_path, qtbot, monkeypatch):
    import shutil

    from PIL import Image
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # a private trash, never the machine's
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ukbench_names(8)
    for n in names:  # copies of the shared photos: the trash moves real files
        shutil.copy(dataset("ukbench-dev") / "images" / n, folder / n)
    original = Image.open(folder / names[0])
    original.resize((320, 240)).save(folder / "small copy.jpg", quality=70)
    original.save(folder / "as png.png")
    lib = Library.open()
    IndexJob(lib, [str(folder)]).run()
    lib.close()
    asked = answer_yes(monkeypatch)
    win = open_window(qtbot, monkeypatch)
    win.resize(1280, 800)
    view = win.duplicates
    win.tabs.setCurrentWidget(view)
    view.find()
    wait(qtbot, win, lambda: view.copies.rowCount() == 1)
    group = view.copies.groups[0]
    assert sorted(os.path.basename(m.path) for m in group.members) == sorted([names[0], "small copy.jpg", "as png.png"])
    assert os.path.basename(group.members[group.keeper].path) == names[0]  # the original is kept
    assert view.copies.marked[0] == {i for i in range(3) if i != group.keeper}  # the copies are marked
    assert view.tabs.tabText(0) == "Copies (1)" and "0.84" in view.meaning.text()

    # a click on the photo to keep does nothing to it... a click on a copy unmarks it, and again marks it
    list_view = view.views[0]
    rect = list_view.visualRect(view.copies.index(0))
    copy_i = min(view.copies.marked[0])
    from sba_desktop.ui.duplicates_view import CELL

    at = QPoint(rect.left() + 4 + copy_i * CELL + CELL // 2, rect.top() + 40)
    QTest.mouseClick(list_view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    assert copy_i not in view.copies.marked[0]
    QTest.mouseClick(list_view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    assert copy_i in view.copies.marked[0]
    list_view.setCurrentIndex(view.copies.index(0))  # the keyboard: its number toggles a photo too
    QTest.keyClick(list_view, Qt.Key(Qt.Key.Key_1 + copy_i))
    assert copy_i not in view.copies.marked[0]
    QTest.keyClick(list_view, Qt.Key(Qt.Key.Key_1 + copy_i))
    assert copy_i in view.copies.marked[0]

    view.trash()
    wait(qtbot, win, lambda: view.copies.rowCount() == 0)
    assert len(asked) == 1 and os.path.exists(folder / names[0])
    assert not os.path.exists(folder / "small copy.jpg") and not os.path.exists(folder / "as png.png")
    assert "2 moved to the trash" in view.status.text()
    assert with_library(lambda lib: lib.catalog.photo_id(str(folder / "as png.png"))) is None

    view.undo()
    wait(qtbot, win, lambda: view.copies.rowCount() == 1)  # back, indexed again, found again
    assert os.path.exists(folder / "small copy.jpg") and os.path.exists(folder / "as png.png")


def test_the_band_inside_other_photos_shows_a_pasted_object_and_why_outlines_its_part(tmp_path, qtbot, monkeypatch):
    """A library that looks inside its photos: under the results, the band holds the everyday photo
    a shot of the object was pasted into, and Why outlines the part of it that matches."""
    folder = tmp_path / "photos"
    cases = composites_folder(folder, [7, 8], everyday_step=151, everyday_n=30, seed=4)
    lib = Library.open()
    s = lib.settings()
    s.inside = True
    lib.save_settings(s)
    assert IndexJob(lib, [str(folder)]).run().looked_inside == 30
    lib.close()
    win = open_window(qtbot, monkeypatch)
    drop_file(win, cases[0].query)
    wait(qtbot, win, lambda: win.search.model.rowCount() > 0 and win.search.inside.model.rowCount() > 0)
    band = win.search.inside.paths()
    assert not win.search.inside.isHidden() and len(band) == 10
    matches = {p for p, _ in win.search.model.hits[:win.search.model.cut.count]}
    assert not set(band) & matches                                        # not the matches framed above
    target = str(folder / "composite-0.jpg")
    assert target in matches or band[0] == target   # framed by the whole-photo search, or first inside
    win.search.explain(target)
    wait(qtbot, win, lambda: win.search.why is not None)
    score, (x0, y0, x1, y1) = win.search.why.ex.inside
    box = cases[0].box
    assert box[0] * 640 <= (x0 + x1) / 2 <= box[2] * 640 and box[1] * 480 <= (y0 + y1) / 2 <= box[3] * 480
    assert "Inside this photo" in win.search.why.legend.text() and "looking inside photos" in win.search.why.legend.text()
