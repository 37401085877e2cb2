"""'Why it matches': query and result side by side. First what carries the match (the exact share
of each place, the strongest regions outlined, one colour per pair: this part of the query
matches that part of the result), then each detector's heatmap with its share, named by what it
responds to, and its gallery of library patches."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QKeySequence, QPainter, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem, QPushButton,
                               QSlider, QVBoxLayout, QWidget)

from sba_desktop.engine.heatmaps import colorize, share_heatmap
from sba_desktop.text import display
from sba_desktop.jobs.explain import Explanation
from sba_desktop.ui.images import pil_to_qimage
from sba_desktop.ui.query_view import overlay

COMBINED = -1
MATCH = -2
# one colour per linked pair of regions, distinct from the inferno overlay's purples and oranges
PAIR_COLOURS = ["#00e5ff", "#76ff03", "#ff4081", "#ffffff", "#2979ff"]
INSIDE_COLOUR = "#ffd600"  # the part of the result found by looking inside (dashed)
GalleryLoader = Callable[[int, Callable[[list], None]], None]  # (position, done(patches))


def search_line(shares) -> str:
    """The default search's score in words: how much these two photos carry, how much the close
    matches it brought in."""
    total = shares.score if shares.score else 1.0
    via = ", ".join(f"{html.escape(Path(display(p)).name)} {100 * v / total:.0f} %" for p, v in shares.close_matches[:3] if v > 0)
    text = (f"In the search with close matches it scores {shares.score:.3f}: these two photos carry "
            f"{100 * shares.these_two / total:.0f} %")
    return text + (f", close matches {via}." if via else ".")


def pair_shares(links, n: int) -> list[tuple[int, int, float]]:
    """The first n linked pairs with their shares in per cent of the positive part of the match, so
    they and "everywhere else" add up to 100 % (a pair can carry more than the whole when other
    places pull the similarity down)."""
    positive = sum(max(s, 0.0) for _i, _j, s in links)
    total = max(positive, 1.0)
    return [(i, j, 100 * max(s, 0.0) / total) for i, j, s in links[:n]]


class WhyDialog(QWidget):
    """A page of the search panel (not a window of its own): Esc goes back to the results or the viewer."""

    def __init__(self, explanation: Explanation, result_name: str, parent=None,
                 gallery_loader: GalleryLoader | None = None,
                 search_by: Callable[[str], None] | None = None,
                 shown: tuple[float, int, str, bool] | None = None):
        super().__init__(parent)
        self.shown = shown  # (the grid's similarity, bars, words, above the cut) of this result
        self.gallery_loader = gallery_loader
        self.search_by = search_by
        self._gallery_for: int | None = None
        self.ex = explanation
        self._q = pil_to_qimage(explanation.query)
        self._r = pil_to_qimage(explanation.result)
        self.query_label, self.result_label = QLabel(), QLabel()
        for lab in (self.query_label, self.result_label):
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.setMinimumSize(240, 240)
        self.detectors = QListWidget()
        self.detectors.setMaximumWidth(320)
        self.detectors.setWordWrap(True)
        if explanation.query_shares is not None:
            item = QListWidgetItem("What carries the match (exact)")
            item.setData(Qt.ItemDataRole.UserRole, MATCH)
            item.setToolTip("Each place's share of the similarity, computed exactly; outlined: the strongest "
                            "regions, one colour per pair (this part of the query matches that part of the result)")
            self.detectors.addItem(item)
        item = QListWidgetItem("All detectors (weighted by their shares)")
        item.setData(Qt.ItemDataRole.UserRole, COMBINED)
        self.detectors.addItem(item)
        for pos in explanation.ranking():
            c = float(explanation.contributions[pos])
            item = QListWidgetItem(f"{100 * c:5.1f} %  {explanation.names[pos]}")
            item.setData(Qt.ItemDataRole.UserRole, pos)
            item.setToolTip(f"detector {explanation.channels[pos]}: carries {100 * c:.1f} % of the similarity. "
                            "Click to see where it fires in your library.")
            self.detectors.addItem(item)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
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
        detail = QVBoxLayout()
        detail.setContentsMargins(0, 0, 0, 0)
        detail.addWidget(QLabel("Detectors by contribution to this match"))
        detail.addWidget(self.detectors, 1)
        detail.addWidget(QLabel("Opacity"))
        detail.addWidget(self.opacity)
        self.details = QWidget()
        self.details.setLayout(detail)
        self.details_btn = QPushButton("Details: detectors and where they fire")
        self.details_btn.setCheckable(True)
        self.details_btn.toggled.connect(self.show_details)
        self.back_btn = QPushButton("Back (Esc)")
        self.back_btn.clicked.connect(self.back)
        self.title = QLabel(f"<b>Why it matches — {html.escape(result_name)}</b>")
        self.legend.setMinimumWidth(280)
        side = QVBoxLayout()
        side.addWidget(self.legend)  # plain words first
        side.addWidget(self.details_btn)
        side.addWidget(self.details, 1)
        side.addStretch(0)
        box = QWidget()
        box.setLayout(side)
        box.setMaximumWidth(340)
        top = QHBoxLayout()
        top.addLayout(pics, 1)
        top.addWidget(box)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.back_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addLayout(top, 1)
        layout.addWidget(self.gallery_title)
        layout.addWidget(self.gallery)
        self.show_details(False)
        for key in ("Ctrl+W", "Esc"):
            sc = QShortcut(QKeySequence(key), self, self.back)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.detectors.setCurrentRow(0)

    back_to: Callable[[], None] | None = None  # the page the person came from (set by the search panel)

    def back(self) -> None:
        if self.back_to is not None:
            self.back_to()
        else:
            self.close()

    def show_details(self, on: bool) -> None:
        """The detectors, the opacity and the gallery: behind one button, for the curious."""
        self.details.setVisible(on)
        self.gallery.setVisible(on)
        self.gallery_title.setVisible(on)
        if on:
            self.detectors.setFocus()

    def selected(self) -> int:
        item = self.detectors.currentItem()
        return COMBINED if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def render(self) -> None:
        sel, alpha = self.selected(), self.opacity.value() / 100.0
        ex = self.ex
        if sel == MATCH:
            qh = share_heatmap(ex.query_shares, ex.query.size)
            rh = share_heatmap(ex.result_shares, ex.result.size)
            self.legend.setText(self._match_legend())
        elif sel == COMBINED:
            qh, rh = ex.query_combined, ex.result_combined
            self.legend.setText("Brighter: where the detectors that carry this match fire (each photo scaled "
                                "to its own strongest place).")
        else:
            qh, rh = ex.query_maps[sel], ex.result_maps[sel]
            self.legend.setText(f"Brighter: where “{ex.names[sel]}” fires. It carries "
                                f"{100 * float(ex.contributions[sel]):.1f} % of this match.")
        pictures = []
        for base, heat in ((self._q, qh), (self._r, rh)):
            rgba = colorize(heat, alpha)
            pictures.append(overlay(base, rgba.tobytes(), rgba.shape[1], rgba.shape[0]))
        if sel == MATCH:
            self._outline_pairs(*pictures)
        self.query_label.setPixmap(QPixmap.fromImage(pictures[0]))
        self.result_label.setPixmap(QPixmap.fromImage(pictures[1]))
        self.last_overlay = (qh, rh)

    def _match_legend(self) -> str:
        ex = self.ex
        lines = []
        if ex.inside is not None:  # first: for a photo of the band it is why the photo is shown
            lines.append(f"<span style='color:{INSIDE_COLOUR}'>┅</span> <b>Inside this photo</b>, the part outlined "
                         f"dashed matches the whole query: similarity {ex.inside[0]:.3f} (looking inside photos). "
                         "As a whole photo:")
        weak = ex.score <= 0
        if self.shown is not None:
            score, bars, words, is_match = self.shown
            weak = weak or not is_match
            lines.append(f"<b>{html.escape(words.capitalize())}</b> {'▮' * bars}{'▯' * (4 - bars)} · similarity "
                         f"{score:.3f} in this search (the figure of the grid)")
        else:
            lines.append(f"Similarity {ex.score:.3f}")
        if weak:
            lines.append("<b>Weak match</b>: this photo is below the cut where the matches of this search end. "
                         "The places outlined are only the least unlike parts of the two photos.")
        if ex.score <= 0:
            lines.append("These photos are no more alike than two photos picked at random from your library: "
                         "there is no match to point at.")
        else:
            lines.append("Brighter: the place carries more of the likeness (each photo scaled to its own "
                         "strongest place).")
        for k, (i, j, share) in enumerate(pair_shares(ex.links or [], len(PAIR_COLOURS))):
            lines.append(f"<span style='color:{PAIR_COLOURS[k]}'>■</span> query region {i + 1} ↔ result "
                         f"region {j + 1}: {share:.0f} % of the match")
        rest = 100 - sum(share for _i, _j, share in pair_shares(ex.links or [], len(PAIR_COLOURS)))
        if ex.links and rest >= 1:
            lines.append(f"everywhere else: {rest:.0f} %")
        if ex.result_regions:
            lines.append(f"The result's strongest region alone carries {100 * ex.result_regions[0].share:.0f} %.")
        if ex.search is not None:
            lines.append(search_line(ex.search))
        return "<br>".join(lines)

    def _outline_pairs(self, query_img: QImage, result_img: QImage) -> None:
        """The linked regions as outlines, one colour per pair, on both pictures; the result's part
        that matches the whole query dashed."""
        ex = self.ex
        if ex.inside is not None:
            box = ex.result_box
            sx = result_img.width() / max(box[2] - box[0], 1e-6)
            sy = result_img.height() / max(box[3] - box[1], 1e-6)
            x0, y0, x1, y1 = ex.inside[1]
            painter = QPainter(result_img)
            painter.setPen(QPen(QColor(INSIDE_COLOUR), 3, Qt.PenStyle.DashLine))
            painter.drawRect(QRectF((x0 - box[0]) * sx + 2, (y0 - box[1]) * sy + 2, (x1 - x0) * sx - 4, (y1 - y0) * sy - 4))
            painter.end()
        for k, (i, j, _share) in enumerate((ex.links or [])[:len(PAIR_COLOURS)]):
            for img, region, box in ((query_img, ex.query_regions[i], ex.query_box),
                                     (result_img, ex.result_regions[j], ex.result_box)):
                sx = img.width() / max(box[2] - box[0], 1e-6)
                sy = img.height() / max(box[3] - box[1], 1e-6)
                x0, y0, x1, y1 = region.box
                painter = QPainter(img)
                painter.setPen(QPen(QColor(PAIR_COLOURS[k]), 3 if k == 0 else 2))
                painter.drawRect(QRectF((x0 - box[0]) * sx + 1, (y0 - box[1]) * sy + 1,
                                        (x1 - x0) * sx - 2, (y1 - y0) * sy - 2))
                painter.end()

    # ------------------------------------------------------------------ gallery
    def request_gallery(self) -> None:
        sel = self.selected()
        self.gallery.clear()
        if sel < 0 or self.gallery_loader is None:
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
