"""'Why it matches': query and result side by side with a detector's heatmap over both."""
from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QSlider,
                               QVBoxLayout, QWidget)

from ..engine.heatmaps import colorize
from ..library.explain import Explanation
from .query_view import overlay

COMBINED = -1


def pil_to_qimage(img: Image.Image) -> QImage:
    rgb = img.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888).copy()


class WhyDialog(QDialog):
    def __init__(self, explanation: Explanation, result_name: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Why it matches — {result_name}")
        self.ex = explanation
        self._q = pil_to_qimage(explanation.query)
        self._r = pil_to_qimage(explanation.result)
        self.query_label, self.result_label = QLabel(), QLabel()
        for lab in (self.query_label, self.result_label):
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.setMinimumSize(300, 300)
        self.detectors = QListWidget()
        self.detectors.setMaximumWidth(260)
        item = QListWidgetItem("Combined (weighted by contribution)")
        item.setData(Qt.ItemDataRole.UserRole, COMBINED)
        self.detectors.addItem(item)
        total = float(np.clip(explanation.contributions, 0, None).sum()) or 1.0
        for pos in explanation.ranking():
            c = float(explanation.contributions[pos])
            item = QListWidgetItem(f"detector {explanation.channels[pos]:4d}   {100 * c / total:5.1f} %")
            item.setData(Qt.ItemDataRole.UserRole, pos)
            item.setToolTip(f"channel {explanation.channels[pos]}: adds {c:+.4f} to the similarity")
            self.detectors.addItem(item)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setToolTip("Heatmap opacity")
        self.detectors.currentRowChanged.connect(lambda _: self.render())
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
        layout = QHBoxLayout(self)
        layout.addLayout(pics, 1)
        layout.addWidget(box)
        self.resize(1100, 560)
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
