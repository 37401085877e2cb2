"""The one confirmation before photos go to the system trash: what goes (thumbnail, name, size,
folder), where it goes and how to get it back. Cancel is the default: Enter or Esc keeps the photos."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout

from sba_desktop.text import display, size_text
from sba_desktop.library.trash import trash_place

ICON = 72


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _square(pm: QPixmap) -> QIcon:
    """The thumbnail centred in a square, so every name starts at the same place."""
    out = QPixmap(ICON, ICON)
    out.fill(Qt.GlobalColor.transparent)
    scaled = pm.scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    p = QPainter(out)
    p.drawPixmap((ICON - scaled.width()) // 2, (ICON - scaled.height()) // 2, scaled)
    p.end()
    return QIcon(out)


class TrashConfirmation(QDialog):
    """Lists `paths` with their thumbnails (loaded by `thumbs` as they come); accepted = move them."""

    def __init__(self, paths: list[str], thumbs, parent=None, note: str = ""):
        super().__init__(parent)
        self.paths = list(paths)
        self.thumbs = thumbs
        n = len(self.paths)
        total = sum(_size(p) for p in self.paths)
        self.setWindowTitle("Move to trash")
        head = QLabel(f"<b>Move {n} photo{'s' if n != 1 else ''} ({size_text(total)}) to the trash?</b>")
        self.where = QLabel(f"They go to {trash_place()} and leave the library. To undo: Ctrl+Z here "
                            "(Undo), or restore them from the trash with your file manager." + note)
        self.where.setWordWrap(True)
        self.list = QListWidget()
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Enter reaches the default button: Cancel
        self._item_of: dict[str, QListWidgetItem] = {}
        for p in self.paths:
            d = display(p)
            item = QListWidgetItem(f"{Path(d).name}  ·  {size_text(_size(p))}\n{os.path.dirname(d)}")
            item.setToolTip(d)
            pm = thumbs.pixmap(p) if thumbs is not None else None
            item.setIcon(_square(pm) if pm is not None else thumbs.loading_icon() if thumbs is not None else QIcon())
            self.list.addItem(item)
            self._item_of[p] = item
        if thumbs is not None:
            thumbs.loaded.connect(self._thumb_loaded)
        self.buttons = QDialogButtonBox()
        self.cancel_btn = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.move_btn = self.buttons.addButton("Move to trash", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.move_btn.setAutoDefault(False)
        self.cancel_btn.setDefault(True)
        self.cancel_btn.setFocus()
        self.move_btn.clicked.connect(self.accept)
        self.cancel_btn.clicked.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.where)
        lay.addWidget(self.buttons)
        self.resize(560, min(640, 180 + 84 * min(n, 5)))

    def _thumb_loaded(self, path: str) -> None:
        item = self._item_of.get(path)
        pm = self.thumbs.pixmap(path) if item is not None else None
        if pm is not None:
            item.setIcon(_square(pm))

    def done(self, r: int) -> None:
        if self.thumbs is not None:
            try:
                self.thumbs.loaded.disconnect(self._thumb_loaded)
            except (RuntimeError, TypeError):
                pass
        super().done(r)


def confirm_trash(parent, paths: list[str], thumbs, note: str = "") -> bool:
    """Ask once; True when the person chose to move them."""
    return TrashConfirmation(paths, thumbs, parent, note).exec() == QDialog.DialogCode.Accepted


def ask_to_trash(parent, paths: list[str], ctx, note: str = "") -> bool:
    """The confirmation, unless the person turned it off (Settings > Safety): True to move them.
    Off, the photos still go to the system trash with Ctrl+Z; only the question is skipped."""
    return not ctx.prefs.confirm_trash or confirm_trash(parent, paths, ctx.thumbs, note)
