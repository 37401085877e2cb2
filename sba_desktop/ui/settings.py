"""Settings: backbone, N, M, image size, the whole-photo region; the library location is shown."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox

from sba_desktop.library.library import Settings


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, backbones: list[str], library_home: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        form = QFormLayout(self)
        self.backbone = QComboBox()
        self.backbone.addItems(backbones)
        self.backbone.setCurrentText(settings.backbone)
        self.n = QSpinBox(minimum=1, maximum=512, value=settings.n_detectors)
        self.m = QSpinBox(minimum=16, maximum=2048, value=settings.dims)
        self._k = settings.k  # the tagger calibrates itself; K stays for `sba eval`
        self.size = QSpinBox(minimum=96, maximum=1024, singleStep=32, value=settings.image_size)
        self.whole = QDoubleSpinBox(minimum=0.0, maximum=8.0, singleStep=0.5, value=settings.global_weight)
        self.whole.setToolTip("Weight of the whole photo as one more region beside the N detectors' "
                              "(0: the detectors' regions only). Holds search up among many other photos.")
        form.addRow("Backbone", self.backbone)
        form.addRow("Detectors N", self.n)
        form.addRow("Dimensions M", self.m)
        form.addRow("Image long side (px)", self.size)
        form.addRow("Whole-photo region", self.whole)
        loc = QLabel(f"{library_home}<br><small>Set SBA_DESKTOP_HOME to move the library.</small>")
        loc.setWordWrap(True)
        form.addRow("Library location", loc)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def value(self) -> Settings:
        return Settings(self.backbone.currentText(), self.size.value(), self.n.value(), self.m.value(),
                        self._k, self.whole.value())
