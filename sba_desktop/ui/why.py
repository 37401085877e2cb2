"""'Why it matches': query and result side by side with a detector's heatmap over both,
detectors named by what they respond to, and each detector's gallery of library patches."""
from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem,
                               QSlider, QVBoxLayout, QWidget)

from ..engine.heatmaps import colorize
from ..library.explain import Explanation
from .images import pil_to_qimage
from .query_view import overlay

COMBINED = -1
GalleryLoader = Callable[[int, Callable[[list], None]], None]  # (position, done(patches))


class WhyDialog(QDialog):
    def __init__(self, explanation: Explanation, result_name: str, parent=None,
                 gallery_loader: GalleryLoader | None = None,
                 search_by: Callable[[str], None] | None = None):
        super().__init__(parent)
        self.gallery_loader = gallery_loader
        self.search_by = search_by
        self._gallery_for: int | None = None
        self.setWindowTitle(f"Why it matches — {result_name}")
        self.ex = explanation
        self._q = pil_to_qimage(explanation.query)
        self._r = pil_to_qimage(explanation.result)
        self.query_label, self.result_label = QLabel(), QLabel()
        for lab in (self.query_label, self.result_label):
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.setMinimumSize(300, 300)
        self.detectors = QListWidget()
        self.detectors.setMaximumWidth(320)
        self.detectors.setWordWrap(True)
        item = QListWidgetItem("Combined (weighted by contribution)")
        item.setData(Qt.ItemDataRole.UserRole, COMBINED)
        self.detectors.addItem(item)
        total = float(np.clip(explanation.contributions, 0, None).sum()) or 1.0
        for pos in explanation.ranking():
            c = float(explanation.contributions[pos])
            item = QListWidgetItem(f"{100 * c / total:5.1f} %  {explanation.names[pos]}")
            item.setData(Qt.ItemDataRole.UserRole, pos)
            item.setToolTip(f"detector {explanation.channels[pos]} (named by the ImageNet classes it votes for "
                            f"most): adds {c:+.4f} to the similarity. Click to see where it fires in your library.")
            self.detectors.addItem(item)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setToolTip("Heatmap opacity")
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(96, 96))
        self.gallery.setFlow(QListView.Flow.LeftToRight)
        self.gallery.setWrapping(False)
        self.gallery.setFixedHeight(128)
        self.gallery.itemActivated.connect(self._patch_activated)
        self.gallery_title = QLabel()
        self.detectors.currentRowChanged.connect(lambda _: self.render())
        self.detectors.currentRowChanged.connect(lambda _: self.request_gallery())
        self.opacity.valueChanged.connect(lambda _: self.render())

        pics = QHBoxLayout()
        for title, lab in (("Query", self.query_label), ("Result", self.result_label)):
            col = QVBoxLayout()
            col.addWidget(QLabel(f"<b>{title}</b>"))
            col.addWidget(lab, 1)
            pics.addLayout(col, 1)
        side = QVBoxLayout()
        side.addWidget(QLabel("Detectors by contribution to this match"))
        side.addWidget(self.detectors, 1)
        side.addWidget(QLabel("Opacity"))
        side.addWidget(self.opacity)
        box = QWidget()
        box.setLayout(side)
        top = QHBoxLayout()
        top.addLayout(pics, 1)
        top.addWidget(box)
        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        layout.addWidget(self.gallery_title)
        layout.addWidget(self.gallery)
        self.resize(1100, 700)
        self.detectors.setCurrentRow(1 if self.detectors.count() > 1 else 0)

    def selected(self) -> int:
        item = self.detectors.currentItem()
        return COMBINED if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def render(self) -> None:
        sel, alpha = self.selected(), self.opacity.value() / 100.0
        if sel == COMBINED:
            qh, rh = self.ex.query_combined, self.ex.result_combined
        else:
            qh, rh = self.ex.query_maps[sel], self.ex.result_maps[sel]
        for lab, base, heat in ((self.query_label, self._q, qh), (self.result_label, self._r, rh)):
            rgba = colorize(heat, alpha)
            img = overlay(base, rgba.tobytes(), rgba.shape[1], rgba.shape[0])
            lab.setPixmap(QPixmap.fromImage(img))
        self.last_overlay = (qh, rh)

    # ------------------------------------------------------------------ gallery
    def request_gallery(self) -> None:
        sel = self.selected()
        self.gallery.clear()
        if sel == COMBINED or self.gallery_loader is None:
            self.gallery_title.setText("Pick a detector to see where it fires most in your library")
            self._gallery_for = None
            return
        self._gallery_for = sel
        self.gallery_title.setText(f"Where “{self.ex.names[sel]}” fires most in your library…")
        self.gallery_loader(sel, lambda patches, pos=sel: self.show_gallery(pos, patches))

    def show_gallery(self, position: int, patches: list) -> None:
        if position != self._gallery_for:
            return  # the user has moved on to another detector
        self.gallery.clear()
        if not patches:  # libraries indexed before 0.3.0 kept no detector peaks
            self.gallery_title.setText("No gallery yet: photos indexed before version 0.3.0 have no record of "
                                       "where detectors fire; `sba rebuild` re-encodes them.")
            return
        self.gallery_title.setText(f"Where “{self.ex.names[position]}” fires most in your library "
                                   f"({len(patches)} photos)")
        for p in patches:
            item = QListWidgetItem(QIcon(QPixmap.fromImage(pil_to_qimage(p.image))), "")
            item.setToolTip(f"{p.path}\npeak response {p.response:.2f}"
                            + ("\ndouble-click: search by this photo" if self.search_by else ""))
            item.setData(Qt.ItemDataRole.UserRole, p.path)
            self.gallery.addItem(item)

    def _patch_activated(self, item: QListWidgetItem) -> None:
        if self.search_by is not None:
            self.search_by(str(item.data(Qt.ItemDataRole.UserRole)))
