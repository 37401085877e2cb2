"""Categories: example folders, auto-tagging with MN, review with the keyboard, XMP sidecars."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox,
                               QPushButton, QSlider, QVBoxLayout, QWidget)

from ..library.catalog import display
if TYPE_CHECKING:  # importing tagging at start-up would pull in torch
    from ..library.tagging import Proposal

PidRole = Qt.ItemDataRole.UserRole + 10


class CategoriesPanel(QWidget):
    """Emits requests; the main window runs them in the background and calls back."""

    chooseRootRequested = Signal()
    autoTagRequested = Signal()
    acceptRequested = Signal(int, bool)      # photo id, accepted
    acceptAllRequested = Signal(float)       # min confidence
    writeXmpRequested = Signal()

    def __init__(self, thumbs, parent=None):
        super().__init__(parent)
        self.thumbs = thumbs
        self.proposals: list[Proposal] = []
        self.info = QLabel("Choose a folder whose subfolders are your categories, "
                           "then auto-tag a folder of unsorted photos.")
        self.info.setWordWrap(True)
        root_btn = QPushButton("Category folder…")
        root_btn.clicked.connect(self.chooseRootRequested)
        self.tag_btn = QPushButton("Auto-tag unsorted folder…")
        self.tag_btn.clicked.connect(self.autoTagRequested)
        self.filter = QComboBox()
        self.filter.addItem("All categories")
        self.filter.currentIndexChanged.connect(lambda _: self._fill())
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(50)
        self.threshold_label = QLabel()
        self.threshold.valueChanged.connect(self._threshold_changed)
        accept_all = QPushButton("Accept all above threshold")
        accept_all.clicked.connect(lambda: self.acceptAllRequested.emit(self.threshold.value() / 100))
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
        self.list.setToolTip("A / Enter: accept   R / Delete: reject")
        for keys, ok in (("A", True), ("Return", True), ("R", False), ("Delete", False)):
            sc = QShortcut(QKeySequence(keys), self.list)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(lambda ok=ok: self.decide_current(ok))
        top = QHBoxLayout()
        for w in (root_btn, self.tag_btn, QLabel("Show"), self.filter, QLabel("Confidence ≥"),
                  self.threshold, self.threshold_label, accept_all, xmp_btn):
            top.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        self._threshold_changed(self.threshold.value())
        thumbs.loaded.connect(self._thumb_loaded)

    def _threshold_changed(self, v: int) -> None:
        self.threshold_label.setText(f"{v / 100:.2f}")
        self._fill()

    def set_categories(self, counts: dict[str, int]) -> None:
        self.info.setText("Categories: " + ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
                          if counts else "No categories yet.")
        current = self.filter.currentText()
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.addItem("All categories")
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
        for p in sorted(self.proposals, key=lambda p: -p.confidence):
            if (cat and p.category != cat) or p.confidence < th:
                continue
            mark = "✓ " if p.accepted else ""
            item = QListWidgetItem(f"{mark}{p.category} ({p.confidence:.2f})\n{Path(display(p.path)).name}")
            item.setData(PidRole, p.photo_id)
            item.setData(Qt.ItemDataRole.UserRole, p.path)
            pm = self.thumbs.pixmap(p.path)
            item.setIcon(QIcon(pm) if pm is not None else self.thumbs.loading_icon())
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _thumb_loaded(self, path: str) -> None:
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
                p.accepted = accepted
        if not accepted:
            self.proposals = [p for p in self.proposals if p.photo_id != pid]
        self.acceptRequested.emit(pid, accepted)
        self._fill()
        self.list.setCurrentRow(min(row + (1 if accepted else 0), self.list.count() - 1))

    def _confirm_xmp(self) -> None:
        n = sum(p.accepted for p in self.proposals)
        answer = QMessageBox.question(
            self, "Write XMP sidecars",
            f"Write the accepted categories of {n} photos as keywords into .xmp sidecar files next to "
            "the photos?\nThe photo files themselves are not modified.")
        if answer == QMessageBox.StandardButton.Yes:
            self.writeXmpRequested.emit()
