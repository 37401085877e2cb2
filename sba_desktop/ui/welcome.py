"""The results area before there is anything to show: what the app does and the first step,
the first indexing's progress, then what to try next."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget


class WelcomePage(QWidget):
    addFolderRequested = Signal()
    categoriesRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("welcomePage")
        self.title = QLabel()
        self.title.setObjectName("welcomeTitle")
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.add_btn = QPushButton("Add a photo folder…")
        self.add_btn.setObjectName("welcomeAdd")
        self.add_btn.setMinimumHeight(48)
        self.add_btn.setStyleSheet("font-size: 16px; padding: 8px 28px;")
        self.add_btn.clicked.connect(self.addFolderRequested)
        self.cat_btn = QPushButton("Open Categories")
        self.cat_btn.clicked.connect(self.categoriesRequested)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(420)
        self.drop_hint = QLabel("…or drop a folder anywhere on this window")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setStyleSheet("color: palette(mid);")
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        lay.addWidget(self.title)
        lay.addWidget(self.text)
        lay.addSpacing(16)
        for w in (self.add_btn, self.cat_btn, self.bar):
            lay.addWidget(w, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.drop_hint)
        lay.addStretch(3)
        self.show_empty()

    def _set(self, title: str, text: str, add: bool, cat: bool, bar: bool) -> None:
        self.title.setText(f"<h2>{title}</h2>")
        self.text.setText(text)
        self.add_btn.setVisible(add)
        self.drop_hint.setVisible(add)
        self.cat_btn.setVisible(cat)
        self.bar.setVisible(bar)
        self.state = "empty" if add else "indexing" if bar else "ready"

    def show_empty(self) -> None:
        self._set("Find photos by example in your own folders",
                  "sba-desktop looks at your photos on this computer — nothing is uploaded — so you can "
                  "search by a photo, see why two photos match, and sort photos into your own categories.",
                  add=True, cat=False, bar=False)

    def show_indexing(self, done: int, total: int, phase: str) -> None:
        if self.state != "indexing":
            self._set("Looking at your photos…",
                      "The first indexing reads every photo once; searching works as soon as it ends. "
                      "You can keep using your computer meanwhile.", add=False, cat=False, bar=True)
        self.bar.setMaximum(total or 0)
        self.bar.setValue(done)
        from sba_desktop.ui.library_panel import PHASE_WORDS

        words = PHASE_WORDS.get(phase, phase)
        self.bar.setFormat(f"{words}: %v of %m" if total else f"{words}…")

    def show_ready(self, photos: int) -> None:
        self._set(f"{photos:,} photos are ready",
                  "Drop a photo on the query panel (or press Ctrl+O) to find photos like it — or open "
                  "Categories to sort unsorted photos into your own folders.", add=False, cat=True, bar=False)
