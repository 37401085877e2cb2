"""Categories: example folders, auto-tagging (or none), review with the keyboard, XMP sidecars.

The panel asks for folders and runs the library work in the background through the context."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QMenu, QMessageBox, QPushButton, QSlider, QVBoxLayout, QWidget)

from sba_desktop.text import display
from sba_desktop.ui.context import AppContext

if TYPE_CHECKING:  # importing tagging at start-up would load numpy and the classifier
    from sba_desktop.jobs.tagging import LookAlikeGroup, Proposal

NO_CATEGORIES = (
    "<h3>Sort photos into your own categories</h3>"
    "<p>Categories are folders you already have. Make one folder whose <b>subfolders are the "
    "categories</b>, each holding a few example photos (5–20 is plenty):</p>"
    "<pre>  Sorted/\n    Birds/      12 photos\n    Boats/       8 photos\n    Grandma/    15 photos</pre>"
    "<p>Choose that folder with <b>Category folder…</b>, then <b>Auto-tag unsorted folder…</b>: every "
    "unsorted photo gets the category whose examples it resembles most, or <b>No category</b> when it "
    "fits none, with a confidence (the estimated chance it is right). Review, accept "
    "(A) or reject (R), and write the accepted ones as XMP keywords if you like. Photos are never moved "
    "or modified.</p>")

PidRole = Qt.ItemDataRole.UserRole + 10
NO_CATEGORY = "No category"
CARD_THUMBNAILS = 8   # photos of a look-alike group shown on its card


def _auto_tag(lib, folder: str, progress):
    """Index the unsorted folder, then propose a category (or none) for each of its photos and
    group the look-alikes; progress gets one line of words at a time (module-level: it runs in a
    process of its own)."""
    from sba_desktop.jobs.tagging import index_folder, look_alike_groups, propose

    index_folder(lib, folder, lambda p: progress(f"Auto-tagging… indexing {p.done}/{p.total}")
                 if p.phase in ("fitting", "encoding") and p.total else None)
    found = propose(lib, folder, lambda done, total: progress(f"Auto-tagging… learning from your examples "
                                                              f"{done}/{total}"))
    return found, look_alike_groups(lib)


class NewCategoryCard(QFrame):
    """A group of unsorted photos that look alike and fit no category: its thumbnails, a name
    field and "Make category" (the photos become the new category's examples; no file moves)."""
    makeRequested = Signal(object, str)   # the group, the name typed
    dismissed = Signal(object)

    def __init__(self, group: "LookAlikeGroup", thumbs, parent=None):
        super().__init__(parent)
        self.group = group
        self.setFrameShape(QFrame.Shape.StyledPanel)
        n = len(group.paths)
        title = QLabel(f"<b>These {n} photos look alike and fit none of your categories</b> "
                       f"(closest: {group.closest}). Make them a category?")
        title.setWordWrap(True)
        self.photos = QListWidget()
        self.photos.setViewMode(QListWidget.ViewMode.IconMode)
        self.photos.setFlow(QListWidget.Flow.LeftToRight)
        self.photos.setWrapping(False)
        self.photos.setIconSize(QSize(72, 72))
        self.photos.setFixedHeight(96)
        for path in group.paths[:CARD_THUMBNAILS]:
            item = QListWidgetItem()
            item.setToolTip(display(path))
            item.setData(Qt.ItemDataRole.UserRole, path)
            pm = thumbs.pixmap(path)
            item.setIcon(QIcon(pm) if pm is not None else thumbs.loading_icon())
            self.photos.addItem(item)
        more = QLabel(f"and {n - CARD_THUMBNAILS} more" if n > CARD_THUMBNAILS else "")
        self.name = QLineEdit()
        self.name.setPlaceholderText("Name of the new category")
        self.make = QPushButton("Make category")
        self.make.setEnabled(False)
        self.name.textChanged.connect(lambda t: self.make.setEnabled(bool(t.strip())))
        self.name.returnPressed.connect(self._make)
        self.make.clicked.connect(self._make)
        later = QPushButton("Not now")
        later.clicked.connect(lambda: self.dismissed.emit(self))
        row = QHBoxLayout()
        for w in (more, self.name, self.make, later):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.photos)
        layout.addLayout(row)

    def _make(self) -> None:
        if self.name.text().strip():
            self.makeRequested.emit(self.group, self.name.text().strip())

    def thumb_loaded(self, path: str, pixmap) -> None:
        for i in range(self.photos.count()):
            if self.photos.item(i).data(Qt.ItemDataRole.UserRole) == path:
                self.photos.item(i).setIcon(QIcon(pixmap))


class CategoriesPanel(QWidget):
    acceptRequested = Signal(int, bool)      # photo id, accepted (after the panel updated itself)

    def __init__(self, ctx: AppContext, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.thumbs = thumbs = ctx.thumbs
        self.proposals: list[Proposal] = []
        self.cards: list[NewCategoryCard] = []
        self.cards_box = QVBoxLayout()
        self.info = QLabel(NO_CATEGORIES)
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        root_btn = QPushButton("Category folder…")
        root_btn.clicked.connect(lambda: self.choose_root())
        self.tag_btn = QPushButton("Auto-tag unsorted folder…")
        self.tag_btn.clicked.connect(lambda: self.auto_tag())
        self.filter = QComboBox()
        self.filter.addItem("All categories")
        self.filter.addItem(NO_CATEGORY)
        self.filter.currentIndexChanged.connect(lambda _: self._fill())
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(50)
        self.threshold_label = QLabel()
        self.threshold.valueChanged.connect(self._threshold_changed)
        accept_all = QPushButton("Accept all above threshold")
        accept_all.clicked.connect(lambda: self.accept_all(self.threshold.value() / 100))
        xmp_btn = QPushButton("Write XMP keywords…")
        xmp_btn.clicked.connect(self._confirm_xmp)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.setIconSize(QSize(128, 128))
        self.list.setGridSize(QSize(170, 190))
        self.list.setToolTip("A / Enter: accept   R / Delete: reject   right-click: put it in another category")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        for keys, ok in (("A", True), ("Return", True), ("R", False), ("Delete", False)):
            sc = QShortcut(QKeySequence(keys), self.list)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(lambda ok=ok: self.decide_current(ok))
        # two short rows rather than one long one: the window must fit a 1024 px wide screen
        top, review = QHBoxLayout(), QHBoxLayout()
        for w in (root_btn, self.tag_btn, xmp_btn):
            top.addWidget(w)
        top.addStretch(1)
        for w in (QLabel("Show"), self.filter, QLabel("Confidence ≥"), self.threshold, self.threshold_label,
                  accept_all):
            review.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addLayout(top)
        layout.addLayout(review)
        layout.addLayout(self.cards_box)
        layout.addWidget(self.list, 1)
        self._threshold_changed(self.threshold.value())
        thumbs.loaded.connect(self._thumb_loaded)
        self.acceptRequested.connect(self.decide_label)
        ctx.libraryLoaded.connect(self._library_loaded)

    # ------------------------------------------------------------------ library work
    def _library_loaded(self, lib) -> None:
        counts: dict[str, int] = {}
        for _pid, name in lib.catalog.examples():
            counts[name] = counts.get(name, 0) + 1
        self.set_categories(counts)

    def _index_folder_then(self, folder: str | None, prompt: str, then, done, message: str) -> None:
        """Index a folder (asking for it if not given), then run then(lib, folder, progress), off the
        GUI thread; progress goes to the status line."""
        folder = folder or QFileDialog.getExistingDirectory(self, prompt)
        if not folder:
            return

        say = self.ctx.message.emit  # a signal: safe to emit from the worker thread

        def job(lib, folder):
            from sba_desktop.jobs.tagging import index_folder

            index_folder(lib, folder, lambda p: say(f"{message} indexing {p.done}/{p.total}")
                         if p.phase in ("fitting", "encoding") and p.total else None)
            return then(lib, folder, lambda done, total: say(f"{message} learning from your examples {done}/{total}"))

        self.ctx.message.emit(message)
        # the coordinator runs it on a library of its own, then reopens the window's
        self.ctx.jobs.submit(job, done, folder)

    def choose_root(self, root: str | None = None) -> None:
        from sba_desktop.jobs.tagging import label_from_folders

        self._index_folder_then(root, "Folder whose subfolders are categories",
                                lambda lib, folder, _progress: label_from_folders(lib, folder),
                                self._categories_set, "Indexing category examples…")

    def _categories_set(self, counts) -> None:
        self.ctx.message.emit(f"{len(counts)} categories")
        self.set_categories(counts)

    def auto_tag(self, folder: str | None = None) -> None:
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder of unsorted photos")
        if not folder:
            return
        self.ctx.message.emit("Auto-tagging…")
        # in a process of its own: the look-alike grouping imports scikit-learn, which the window
        # would otherwise carry for the rest of the session (100-160 MB)
        self.ctx.jobs.submit(_auto_tag, self._proposed, folder, progress=self.ctx.message.emit, own_process=True)

    def _proposed(self, result) -> None:
        proposals, groups = result
        none = sum(p.category is None for p in proposals)
        looks = (f"; {len(groups)} group{'s' if len(groups) > 1 else ''} of look-alike photos could be "
                 f"new categories" if groups else "")
        self.ctx.message.emit(f"{len(proposals) - none} proposals, {none} photos fit no category{looks}")
        self.set_proposals(proposals)
        self.set_groups(groups)

    def set_groups(self, groups: list[LookAlikeGroup]) -> None:
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards = []
        for g in groups:
            card = NewCategoryCard(g, self.thumbs, self)
            card.makeRequested.connect(self.make_category)
            card.dismissed.connect(self._dismiss_card)
            self.cards_box.addWidget(card)
            self.cards.append(card)

    def _dismiss_card(self, card: NewCategoryCard) -> None:
        self.cards.remove(card)
        card.setParent(None)
        card.deleteLater()

    def make_category(self, group: LookAlikeGroup, name: str) -> None:
        """The user named a look-alike group: a new category with those photos as its examples."""
        def job(lib, group, name):
            from sba_desktop.jobs.tagging import look_alike_groups, make_category, proposals

            make_category(lib, name, group.photo_ids)
            counts: dict[str, int] = {}
            for _pid, cat in lib.catalog.examples():
                counts[cat] = counts.get(cat, 0) + 1
            return counts, (proposals(lib), look_alike_groups(lib))

        def done(result) -> None:
            counts, proposed = result
            self.set_categories(counts)
            self.set_proposals(proposed[0])
            self.set_groups(proposed[1])
            self.ctx.message.emit(f"Made the category {name} of {len(group.photo_ids)} photos (no file was moved)")

        self.ctx.jobs.submit(job, done, group, name, own_library=False)

    def decide_label(self, photo_id: int, accepted: bool) -> None:
        from sba_desktop.jobs.tagging import set_accepted

        self.ctx.jobs.submit(set_accepted, lambda _: None, photo_id, accepted, own_library=False)

    def accept_all(self, min_conf: float) -> None:
        def job(lib, c):
            from sba_desktop.jobs.tagging import accept, proposals

            from sba_desktop.jobs.tagging import look_alike_groups

            accept(lib, c)
            return proposals(lib), look_alike_groups(lib)

        self.ctx.jobs.submit(job, self._proposed, min_conf, own_library=False)

    def write_xmp(self) -> None:
        from sba_desktop.jobs.tagging import write_xmp

        self.ctx.jobs.submit(write_xmp, lambda n: self.ctx.message.emit(f"Wrote {n} XMP sidecars"),
                             own_library=False)

    # ------------------------------------------------------------------ review

    def _threshold_changed(self, v: int) -> None:
        self.threshold_label.setText(f"{v / 100:.2f}")
        self._fill()

    def set_categories(self, counts: dict[str, int]) -> None:
        self.info.setText("Categories: " + ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
                          if counts else NO_CATEGORIES)
        current = self.filter.currentText()
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.addItem("All categories")
        self.filter.addItem(NO_CATEGORY)
        self.filter.addItems(sorted(counts))
        self.filter.setCurrentText(current)
        self.filter.blockSignals(False)

    def set_proposals(self, proposals: list[Proposal]) -> None:
        self.proposals = list(proposals)
        self._fill()

    def _fill(self) -> None:
        if not hasattr(self, "list"):
            return
        cat = self.filter.currentText() if self.filter.currentIndex() > 0 else None
        th = self.threshold.value() / 100
        self.list.clear()
        # proposals first (most confident first), then the "No category" group; the confidence
        # threshold applies to proposals, the group is always shown (accept = its closest category)
        for p in sorted(self.proposals, key=lambda p: (p.category is None, -p.confidence)):
            none = p.category is None
            if cat == NO_CATEGORY and not none or cat not in (None, NO_CATEGORY) and p.category != cat:
                continue
            if not none and p.confidence < th:
                continue
            mark = "✓ " if p.accepted else ""
            what = f"{NO_CATEGORY} (closest: {p.closest}, " if none else f"{p.category} ("
            item = QListWidgetItem(f"{mark}{what}{p.confidence:.2f})\n{Path(display(p.path)).name}")
            item.setData(PidRole, p.photo_id)
            item.setData(Qt.ItemDataRole.UserRole, p.path)
            pm = self.thumbs.pixmap(p.path)
            item.setIcon(QIcon(pm) if pm is not None else self.thumbs.loading_icon())
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _thumb_loaded(self, path: str) -> None:
        pm = self.thumbs.pixmap(path)
        if pm is not None:
            for card in self.cards:
                card.thumb_loaded(path, pm)
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == path:
                pm = self.thumbs.pixmap(path)
                if pm is not None:
                    item.setIcon(pm)

    def decide_current(self, accepted: bool) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        pid = int(item.data(PidRole))
        row = self.list.currentRow()
        for p in self.proposals:
            if p.photo_id == pid:
                p.decide(accepted)
        if not accepted:
            self.proposals = [p for p in self.proposals if p.photo_id != pid]
        self.acceptRequested.emit(pid, accepted)
        self._fill()
        self.list.setCurrentRow(min(row + (1 if accepted else 0), self.list.count() - 1))

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        sub = menu.addMenu("Put in category")
        for name in self.category_names():
            sub.addAction(name, lambda name=name: self.move_to(int(item.data(PidRole)), name))
        menu.exec(self.list.mapToGlobal(pos))

    def category_names(self) -> list[str]:
        return [self.filter.itemText(i) for i in range(2, self.filter.count())]

    def move_to(self, photo_id: int, category: str) -> None:
        """The user's own choice: the photo becomes an accepted example of `category`."""
        from sba_desktop.jobs.tagging import assign

        for p in self.proposals:
            if p.photo_id == photo_id:
                p.category, p.closest, p.accepted = category, category, True
        self._fill()
        self.ctx.jobs.submit(assign, lambda _: None, photo_id, category, own_library=False)

    def _confirm_xmp(self) -> None:
        n = sum(p.accepted for p in self.proposals)
        answer = QMessageBox.question(
            self, "Write XMP sidecars",
            f"Write the accepted categories of {n} photos as keywords into .xmp sidecar files next to "
            "the photos?\nThe photo files themselves are not modified.")
        if answer == QMessageBox.StandardButton.Yes:
            self.write_xmp()
