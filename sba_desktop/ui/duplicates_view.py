"""The Duplicates view: copies and similar shots as rows of thumbnails, the copy to keep marked,
two compared side by side, the others moved to the system trash with one confirmation and Ctrl+Z.

No math here: library/duplicates.py finds and groups, library/trash.py moves. Rows are painted
by a delegate over a list model, so a result of thousands of groups stays one virtualised list.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QEvent, QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QKeySequence, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (QDialog, QDoubleSpinBox, QHBoxLayout, QLabel, QListView, QPushButton,
                               QScrollArea, QStyle, QStyledItemDelegate, QTabWidget, QVBoxLayout, QWidget)

from sba_desktop.text import display, size_text
from sba_desktop.jobs.restore import restore_and_reindex
from sba_desktop.ui.context import AppContext
from sba_desktop.ui.images import photo_qimage

CELL = 172           # width of one photo in a row (room for a file name)
THUMB = 128          # its thumbnail's box
ROW_HEIGHT = THUMB + 78   # the label, the file name and three lines of facts
GroupRole = Qt.ItemDataRole.UserRole + 10
KEEPER_RULE = ("Suggested copy to keep: the photo with its RAW file beside it, then the most pixels, then "
               "the one with camera EXIF, then a camera format (JPEG/HEIC) over an export (PNG/WebP), then "
               "the larger file, then the oldest.")


def caption(m) -> list[str]:
    """The facts under a photo of a group: its name first (a .png and a .jpg copy must be told apart)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m.taken)) if m.taken else "no capture time"
    return [Path(display(m.path)).name, f"{m.width}×{m.height} · {size_text(m.size)}",
            f"{(m.format or '?').upper()} · {Path(display(os.path.dirname(m.path))).name}/", when]


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class GroupsModel(QAbstractListModel):
    """One row per group; `marked[row]` holds the members chosen for the trash."""

    def __init__(self, ctx: AppContext, parent=None):
        super().__init__(parent)
        self.thumbs = ctx.thumbs
        self.groups: list = []
        self.marked: list[set[int]] = []
        self._row_of: dict[str, list[int]] = {}
        self.thumbs.loaded.connect(self._thumb_loaded)

    def set_groups(self, groups: list) -> None:
        self.beginResetModel()
        self.groups = list(groups)
        # copies: the suggestion is pre-selected; similar shots are offered, never pre-selected
        self.marked = [{i for i, m in enumerate(g.members) if m in g.others()} for g in self.groups]
        self._row_of = {}
        for r, g in enumerate(self.groups):
            for m in g.members:
                self._row_of.setdefault(m.path, []).append(r)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.groups)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        g = self.groups[index.row()]
        if role == GroupRole:
            return g
        if role == Qt.ItemDataRole.DisplayRole:  # what a screen reader says
            return f"{len(g.members)} photos, {len(self.marked[index.row()])} marked for the trash"
        return None

    def toggle(self, row: int, member: int) -> bool:
        """Mark or unmark one photo; False (nothing changes) for the copy to keep, which is never
        marked (keep() makes another photo the one to keep), and for a photo with its RAW file."""
        g = self.groups[row]
        if g.members[member].companions or member == g.keeper:
            return False  # one photo, two files / the copy kept: never moved from here
        self.marked[row] ^= {member}
        if len(self.marked[row]) == len(g.members):  # one photo of a group always stays
            self.marked[row].discard(member)
            return False
        self.dataChanged.emit(self.index(row), self.index(row))
        return True

    def keep(self, row: int, member: int) -> None:
        """This photo becomes the one to keep: unmarked, labelled "keep"; the previous keeper stays
        unmarked (the person marks it if they want it gone)."""
        g = self.groups[row]
        if g.kind != "copies":
            self.marked[row].discard(member)
        else:
            g.keeper = member
            self.marked[row].discard(member)
        self.dataChanged.emit(self.index(row), self.index(row))

    def selection(self) -> list[tuple]:
        """(group, members to move) for every group with a mark; the keeper never among them."""
        out = []
        for g, mk in zip(self.groups, self.marked):
            chosen = [g.members[i] for i in sorted(mk) if i != g.keeper]
            if chosen:
                out.append((g, chosen))
        return out

    def remove_paths(self, gone: set[str]) -> None:
        """Photos moved away: out of their groups; a group of one is no group."""
        keep = []
        for g, mk in zip(self.groups, self.marked):
            left = [m for m in g.members if m.path not in gone]
            if len(left) > 1:
                g.members, g.keeper = left, (left.index(g.members[g.keeper]) if g.keeper is not None
                                             and g.members[g.keeper] in left else None)
                keep.append(g)
        self.set_groups(keep)

    def _thumb_loaded(self, path: str) -> None:
        for r in self._row_of.get(path, []):
            self.dataChanged.emit(self.index(r), self.index(r))


class GroupDelegate(QStyledItemDelegate):
    """Paints a group as a row of thumbnails with their facts; a click marks or unmarks one."""

    def __init__(self, model: GroupsModel, parent=None):
        super().__init__(parent)
        self.model = model

    def sizeHint(self, option, index) -> QSize:
        g = index.data(GroupRole)
        return QSize(CELL * len(g.members) + 8, ROW_HEIGHT)

    @staticmethod
    def member_at(rect: QRect, x: int) -> int | None:
        i = (x - rect.left() - 4) // CELL
        return i if i >= 0 else None

    def paint(self, painter, option, index) -> None:
        g = index.data(GroupRole)
        marked = self.model.marked[index.row()]
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.alternateBase())
        for i, m in enumerate(g.members):
            x = option.rect.left() + 4 + i * CELL
            if x > option.rect.right():
                break
            box = QRect(x + (CELL - THUMB) // 2, option.rect.top() + 4, THUMB, THUMB)
            pm = self.model.thumbs.pixmap(m.path)
            if pm is not None:
                scaled = pm.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
                painter.drawPixmap(box.left() + (THUMB - scaled.width()) // 2,
                                   box.top() + (THUMB - scaled.height()) // 2, scaled)
            if i == g.keeper:
                colour, label = QColor(46, 160, 67), "✔ keep"
            elif i in marked:
                colour, label = QColor(207, 34, 46), "✖ to the trash" + (f" ({m.edit})" if m.edit else "")
            elif m.companions:
                colour, label = QColor(46, 160, 67), "RAW + JPEG: kept"
            elif m.edit:
                colour, label = QColor(219, 154, 4), f"edited ({m.edit}): stays"
            else:
                colour, label = QColor(130, 130, 130), "stays"
            painter.setPen(QPen(colour, 3))
            painter.drawRect(box.adjusted(-2, -2, 2, 2))
            painter.setPen(option.palette.text().color())
            text_top = box.bottom() + 4
            for k, line in enumerate([label] + caption(m)):
                r = QRect(x, text_top + k * 14, CELL - 4, 14)
                painter.drawText(r, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                                 painter.fontMetrics().elidedText(line, Qt.TextElideMode.ElideMiddle, CELL - 6))
        painter.restore()

    def editorEvent(self, event, model, option, index) -> bool:
        if event.type() == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            i = self.member_at(option.rect, int(event.position().x()))
            if i is not None and i < len(index.data(GroupRole).members):
                self.clicked_member = (index.row(), i)
                if not self.model.toggle(index.row(), i):
                    self.refused(index.row(), i)
                return True
        return False

    clicked_member: tuple[int, int] | None = None
    refused = staticmethod(lambda row, member: None)  # the panel says why a click changed nothing


class CompareDialog(QDialog):
    """Two photos of a group side by side at full size; the scroll bars move together."""

    def __init__(self, a, b, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Compare")
        row = QHBoxLayout(self)
        self.areas = []
        for m in (a, b):
            col = QVBoxLayout()
            col.addWidget(QLabel(" · ".join(caption(m)) + f"\n{display(m.path)}"))
            label = QLabel()
            pm = QPixmap.fromImage(photo_qimage(m.path))  # full size: compare pixel for pixel
            if pm.isNull():
                label.setText("This photo cannot be shown.")
            else:
                label.setPixmap(pm)
            area = QScrollArea()
            area.setWidget(label)
            col.addWidget(area, 1)
            row.addLayout(col)
            self.areas.append(area)
        for sb in ("horizontalScrollBar", "verticalScrollBar"):
            one, two = (getattr(a, sb)() for a in self.areas)
            one.valueChanged.connect(two.setValue)
            two.valueChanged.connect(one.setValue)
        screen = (parent.screen() if parent else self.screen()).availableGeometry()
        self.resize(int(screen.width() * 0.9), int(screen.height() * 0.85))


class DuplicatesPanel(QWidget):
    def __init__(self, ctx: AppContext, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self.comparison = None
        self.last_trashed: list = []
        self._stop = threading.Event()
        self.find_btn = QPushButton("Find duplicates")
        self.find_btn.clicked.connect(self.find)
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop looking; what was compared is kept, the next look goes on from there")
        self.stop_btn.clicked.connect(self._stop.set)
        self.stop_btn.setVisible(False)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.5, 1.0)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setToolTip("How surely two files must hold the same picture. Measured on real photos "
                                  "with every kind of copy (docs/quality.md): see the note beside it.")
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.meaning = QLabel()
        self.meaning.setWordWrap(True)
        self.status = QLabel("Finds copies of one photo (re-saved, resized, another format, turned, re-toned, "
                             "cropped) and similar shots taken seconds apart.")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.find_btn)
        top.addWidget(self.stop_btn)
        top.addWidget(QLabel("Copies at:"))
        top.addWidget(self.threshold)
        top.addWidget(self.meaning, 1)

        self.copies = GroupsModel(ctx, self)
        self.similar = GroupsModel(ctx, self)
        self.tabs = QTabWidget()
        self.views = []
        for model, title in ((self.copies, "Copies"), (self.similar, "Similar shots")):
            view = QListView()
            view.setModel(model)
            delegate = GroupDelegate(model, view)
            delegate.refused = self._refused
            view.setItemDelegate(delegate)
            view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            view.customContextMenuRequested.connect(lambda pos, v=view: self._menu(v, pos))
            view.setUniformItemSizes(True)  # groups come largest first: the first row is the widest
            view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
            view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            view.doubleClicked.connect(lambda _i: self.compare())
            view.installEventFilter(self)
            self.tabs.addTab(view, title)
            self.views.append(view)

        self.compare_btn = QPushButton("Compare…")
        self.compare_btn.clicked.connect(self.compare)
        self.trash_btn = QPushButton("Move marked to trash…")
        self.trash_btn.clicked.connect(self.trash)
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.clicked.connect(self.undo)
        self.undo_btn.setEnabled(False)
        rule = QLabel(KEEPER_RULE + " Click a photo (or press its number, 1-9) to mark or unmark it; "
                      "Ctrl+number or right-click keeps that one instead; Enter compares; similar shots and "
                      "edited copies are never marked for you.")
        rule.setWordWrap(True)
        bottom = QHBoxLayout()
        for b in (self.compare_btn, self.trash_btn, self.undo_btn):
            bottom.addWidget(b)
        bottom.addWidget(rule, 1)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.status)
        lay.addWidget(self.tabs, 1)
        lay.addLayout(bottom)
        QShortcut(QKeySequence("Ctrl+Z"), self, self.undo, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        QShortcut(QKeySequence("Delete"), self, self.trash, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        ctx.libraryLoaded.connect(self._library_loaded)
        if ctx.lib is not None:
            self._library_loaded(ctx.lib)

    # ------------------------------------------------------------------ finding
    def _library_loaded(self, lib) -> None:
        from sba_desktop.jobs.duplicates import saved_threshold

        self.threshold.blockSignals(True)
        self.threshold.setValue(saved_threshold(lib))
        self.threshold.blockSignals(False)
        self._show_meaning()

    def _show_meaning(self) -> None:
        from sba_desktop.jobs.duplicates import threshold_meaning

        self.meaning.setText(threshold_meaning(self.threshold.value()))

    def find(self) -> None:
        from sba_desktop.jobs.duplicates import compare

        self.find_btn.setEnabled(False)
        self.stop_btn.setVisible(True)
        self._stop.clear()
        self.status.setText("Looking for duplicates…")
        self.ctx.jobs.submit(lambda lib, progress: compare(lib, lambda *p: progress(p), self._stop.is_set),
                             self._compared, progress=self._progress, own_library=False,
                             failed=lambda m: (self._looked(), self.status.setText(m)))

    def _looked(self) -> None:
        self.find_btn.setEnabled(True)
        self.stop_btn.setVisible(False)

    def _progress(self, p) -> None:
        phase, done, total = p
        self.status.setText(f"Looking for duplicates: {phase} {done}/{total}…")

    def _compared(self, comparison) -> None:
        self._looked()
        if comparison is None:
            self.status.setText("Stopped. What was compared is kept: the next look goes on from there.")
            return
        self.comparison = comparison
        self._regroup()

    def _threshold_changed(self, value: float) -> None:
        from sba_desktop.jobs.duplicates import save_threshold

        self._show_meaning()
        if self.ctx.lib is not None:
            self.ctx.jobs.submit(lambda lib: save_threshold(lib, value), lambda _r: None, own_library=False)
        if self.comparison is not None:
            self._regroup()

    def _regroup(self) -> None:
        from sba_desktop.jobs.duplicates import group

        report = group(self.comparison, self.threshold.value())
        self.copies.set_groups(report.copies)
        self.similar.set_groups(report.similar)
        self.tabs.setTabText(0, f"Copies ({len(report.copies)})")
        self.tabs.setTabText(1, f"Similar shots ({len(report.similar)})")
        spare = sum(m.size for g in report.copies for m in g.others())
        notime = (f" {report.without_time} photos have no capture time: similar shots among them cannot be "
                  "told apart from other photos of one scene, so they are not grouped.") if report.without_time else ""
        self.status.setText(f"{report.photos} photos compared in {report.seconds:.1f} s: "
                            f"{_n(len(report.copies), 'group', 'groups')} of copies ({size_text(spare)} in the copies "
                            f"marked), {_n(len(report.similar), 'group', 'groups')} of similar shots.{notime}")

    def eventFilter(self, obj, event) -> bool:
        """In a list of groups: 1-9 mark or unmark that photo of the current group, Enter compares."""
        if event.type() == QEvent.Type.KeyPress and obj in self.views:
            model, row = self._current()
            key = event.key()
            if row is not None and Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
                member = key - Qt.Key.Key_1
                if member < len(model.groups[row].members):
                    if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                        model.keep(row, member)
                    elif not model.toggle(row, member):
                        self._refused(row, member, model)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.compare()
                return True
        return super().eventFilter(obj, event)

    # ------------------------------------------------------------------ acting
    def _refused(self, row: int, member: int, model=None) -> None:
        model = model or self.views[self.tabs.currentIndex()].model()
        g = model.groups[row]
        m = g.members[member]
        if member == g.keeper:
            why = "is the copy to keep, so it is never marked. To keep another, Ctrl+its number or right-click it."
        elif m.companions:
            why = "has its RAW file beside it (one photo, two files): it is never moved from here."
        else:
            why = "is the last photo of its group left unmarked: one photo of every group stays."
        self.status.setText(f"{Path(display(m.path)).name} {why}")

    def _menu(self, view, pos) -> None:
        from PySide6.QtWidgets import QMenu

        idx = view.indexAt(pos)
        if not idx.isValid():
            return
        model = view.model()
        member = GroupDelegate.member_at(view.visualRect(idx), pos.x())
        g = model.groups[idx.row()]
        if member is None or member >= len(g.members):
            return
        menu = QMenu(self)
        if g.kind == "copies" and member != g.keeper:
            menu.addAction("Keep this one instead", lambda: model.keep(idx.row(), member))
        if member != g.keeper:
            marked = member in model.marked[idx.row()]
            menu.addAction("Unmark" if marked else "Mark for the trash",
                           lambda: model.toggle(idx.row(), member) or self._refused(idx.row(), member, model))
        from sba_desktop.ui.reveal import reveal_in_file_manager

        menu.addAction("Reveal in file manager", lambda: reveal_in_file_manager(g.members[member].path))
        menu.exec(view.viewport().mapToGlobal(pos))

    def _current(self):
        view = self.views[self.tabs.currentIndex()]
        idx = view.currentIndex()
        return (view.model(), idx.row()) if idx.isValid() else (view.model(), None)

    def compare(self) -> None:
        model, row = self._current()
        if row is None:
            if not model.groups:
                return
            row = 0
        g = model.groups[row]
        first = g.keeper if g.keeper is not None else 0
        others = sorted(model.marked[row]) or [i for i in range(len(g.members)) if i != first]
        CompareDialog(g.members[first], g.members[others[0]], self).exec()

    def trash(self) -> None:
        selection = self.copies.selection() + self.similar.selection()
        n = sum(len(ms) for _g, ms in selection)
        if not n:
            self.status.setText("Nothing is marked: click the photos to move to the trash.")
            return
        from sba_desktop.ui.trash_confirm import ask_to_trash

        # asked or not, selection() and trash_selected() leave every group's keeper where it is
        if not ask_to_trash(self, [m.path for _g, ms in selection for m in ms], self.ctx,
                            " One photo of every group stays: the ones marked keep are not touched."):
            return
        from sba_desktop.jobs.duplicates import trash_selected

        self.ctx.jobs.submit(lambda lib: trash_selected(lib, selection), self._trashed)

    def _trashed(self, result) -> None:
        done, notes = result
        moved = [t for t in done if t.moved]
        self.last_trashed = moved
        self.undo_btn.setEnabled(bool(moved))
        gone = {t.path for t in moved}
        self.copies.remove_paths(gone)
        self.similar.remove_paths(gone)
        self.comparison = None  # the library changed: the next regroup needs a new search
        self.status.setText("; ".join([f"{len(moved)} moved to the trash (Ctrl+Z: undo)"] +
                                      [display(n) for n in notes]))

    def undo(self) -> None:
        items, self.last_trashed = self.last_trashed, []
        self.undo_btn.setEnabled(False)
        if not items:
            return

        def done(failed) -> None:
            msg = [f"{len(items) - len(failed)} brought back from the trash"]
            msg += [f"{display(t.path)}: {t.error}" for t in failed]
            self.status.setText("; ".join(msg))
            self.ctx.libraryLoaded.connect(lambda _lib: self.find(), Qt.ConnectionType.SingleShotConnection)

        self.ctx.jobs.submit(lambda lib: restore_and_reindex(lib, items), done)
