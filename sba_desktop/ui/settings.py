"""Settings, one tab per concern: Library (the photo folders, where the library lives), View
(thumbnail size), Safety (ask before the trash) and Model (backbone, N, M, image size, the
whole-photo region). Folders are added and removed at once, by the library panel's own
operations; the other tabs take effect on OK."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QSpinBox,
                               QTabWidget, QVBoxLayout, QWidget)

from sba_desktop.library.library import Settings
from sba_desktop.text import display
from sba_desktop.ui.preferences import THUMB_MAX, THUMB_MIN, Preferences


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, backbones: list[str], library_home: str, parent=None,
                 prefs: Preferences | None = None, folders: list[str] | None = None,
                 add_folder: Callable[[QWidget], str | None] | None = None,
                 forget_folder: Callable[[str], None] | None = None):
        """add_folder(parent) asks for a folder and starts indexing it (the folder, or None);
        forget_folder(folder) takes one out of the library. Without them the folders are shown only."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._prefs = prefs or Preferences()
        self._add, self._forget = add_folder, forget_folder
        self.tabs = QTabWidget()
        self.tabs.addTab(self._library_tab(folders or [], library_home), "Library")
        self.tabs.addTab(self._view_tab(), "View")
        self.tabs.addTab(self._safety_tab(), "Safety")
        self.tabs.addTab(self._model_tab(settings, backbones), "Model")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)
        lay.addWidget(buttons)

    # ------------------------------------------------------------------ tabs
    def _library_tab(self, folders: list[str], library_home: str) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(QLabel("<b>Photo folders</b> (watched while the application runs)"))
        self.folders = QListWidget()
        for f in folders:
            self._list_folder(f)
        lay.addWidget(self.folders, 1)
        row = QHBoxLayout()
        self.add_btn = QPushButton("Add folder…")
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.setToolTip("Forget this folder's photos: the files stay on disk")
        self.add_btn.clicked.connect(self.add_folder)
        self.remove_btn.clicked.connect(self.remove_folder)
        self.add_btn.setEnabled(self._add is not None)
        self.remove_btn.setEnabled(False)
        self.folders.currentRowChanged.connect(
            lambda r: self.remove_btn.setEnabled(self._forget is not None and r >= 0))
        row.addWidget(self.add_btn)
        row.addWidget(self.remove_btn)
        row.addStretch(1)
        lay.addLayout(row)
        note = QLabel("A folder added is indexed at once; one removed leaves the library at once "
                      "(its files are never touched).")
        note.setWordWrap(True)
        lay.addWidget(note)
        loc = QLabel(f"<b>Library location</b><br>{library_home}<br>"
                     "<small>Set SBA_DESKTOP_HOME to move the library.</small>")
        loc.setWordWrap(True)
        loc.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(loc)
        return page

    def _view_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.thumb_size = QSpinBox(minimum=THUMB_MIN, maximum=THUMB_MAX, singleStep=16, suffix=" px",
                                   value=self._prefs.thumb_size)
        self.thumb_size.setToolTip("The side of a result's thumbnail (the Size slider above the results is the same)")
        form.addRow("Thumbnail size", self.thumb_size)
        return page

    def _safety_tab(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.confirm_trash = QCheckBox("Ask before moving photos to the trash")
        self.confirm_trash.setChecked(self._prefs.confirm_trash)
        lay.addWidget(self.confirm_trash)
        note = QLabel("Off, photos go to the system trash at once; Ctrl+Z (Undo) still brings them back. "
                      "In Duplicates, the copy marked keep never goes, asked or not.")
        note.setWordWrap(True)
        lay.addWidget(note)
        lay.addStretch(1)
        return page

    def _model_tab(self, settings: Settings, backbones: list[str]) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
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
        note = QLabel("Changing these re-encodes every photo.")
        note.setWordWrap(True)
        form.addRow(note)
        self.inside = QCheckBox("Look inside photos")
        self.inside.setChecked(settings.inside)
        self.inside.setToolTip("Also find the photos where what you search for is only a small part (an object "
                               "on a shelf, in a busy scene): shown under the results as \"Inside other photos\".")
        form.addRow(self.inside)
        cost = QLabel("Indexing reads every photo once more, larger: about 3.5x the time, and 8 KB more a photo. "
                      "The search's own results do not change.")
        cost.setWordWrap(True)
        form.addRow(cost)
        return page

    # ------------------------------------------------------------------ folders
    def _list_folder(self, folder: str) -> None:
        item = QListWidgetItem(display(folder))
        item.setData(Qt.ItemDataRole.UserRole, folder)
        self.folders.addItem(item)

    def folder_paths(self) -> list[str]:
        return [self.folders.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.folders.count())]

    def add_folder(self) -> None:
        folder = self._add(self) if self._add is not None else None
        if folder and folder not in self.folder_paths():
            self._list_folder(folder)

    def remove_folder(self) -> None:
        item = self.folders.currentItem()
        if item is None or self._forget is None:
            return
        folder = item.data(Qt.ItemDataRole.UserRole)
        answer = QMessageBox.question(self, "Remove folder",
                                      f"Forget {display(folder)}? Its photos leave the library; "
                                      "the files stay on disk.")
        if answer == QMessageBox.StandardButton.Yes:
            self._forget(folder)
            self.folders.takeItem(self.folders.row(item))

    # ------------------------------------------------------------------ values
    def value(self) -> Settings:
        return Settings(self.backbone.currentText(), self.size.value(), self.n.value(), self.m.value(),
                        self._k, self.whole.value(), self.inside.isChecked())

    def preferences(self) -> Preferences:
        return Preferences(self.thumb_size.value(), self.confirm_trash.isChecked())
