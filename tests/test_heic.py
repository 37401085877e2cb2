"""iPhone photos (HEIC) and AVIF are photos like any other: decoded, upright, found by search."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sba_desktop.library.decode import decode
from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.library import Library
from tests.conftest import dataset

pillow_heif = pytest.importorskip("pillow_heif")
pillow_heif.register_heif_opener()


def save_heic(img: Image.Image, path, orientation: int = 1) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, format="HEIF", quality=90, exif=exif.tobytes())


def test_heic_decodes_upright_with_its_exif_orientation(tmp_path):
    a = np.zeros((30, 60, 3), np.uint8)
    a[:, :30] = (220, 20, 20)   # stored: red left, blue right
    a[:, 30:] = (20, 20, 220)
    save_heic(Image.fromarray(a), tmp_path / "rotated.heic", orientation=6)  # shown turned 90 deg clockwise
    d = decode(str(tmp_path / "rotated.heic"), 224)
    assert d.fmt == "heic" and d.rgb.size == (30, 60) and (d.width, d.height) == (30, 60)
    rgb = np.asarray(d.rgb).astype(int)
    assert rgb[3, 15, 0] > 150 and rgb[3, 15, 2] < 90     # red is on top once upright
    assert rgb[-4, 15, 2] > 150 and rgb[-4, 15, 0] < 90   # blue at the bottom


def test_avif_decodes(tmp_path):
    Image.new("RGB", (64, 48), (10, 200, 30)).save(tmp_path / "p.avif")
    d = decode(str(tmp_path / "p.avif"), 224)
    assert d.fmt == "avif" and d.rgb.size == (64, 48)
    assert abs(int(np.asarray(d.rgb)[10, 10, 1]) - 200) < 12


def test_heic_photos_are_indexed_and_found(tmp_path):
    src = dataset("ukbench-dev") / "images"
    names = sorted(p.name for p in src.iterdir())[:24]  # six objects, four photos each
    folder = tmp_path / "iphone"
    folder.mkdir()
    for i, n in enumerate(names):
        with Image.open(src / n) as im:
            im = im.convert("RGB")
            if i % 2:  # stored turned, shown upright through EXIF orientation 6, as phones do
                save_heic(im.transpose(Image.Transpose.ROTATE_90), folder / f"{n[:-4]}.heic", orientation=6)
            else:
                save_heic(im, folder / f"{n[:-4]}.heic")
    lib = Library.open()
    report = IndexJob(lib, [str(folder)]).run()
    assert report.encoded == 24 and not report.skipped
    for q in (1, 9, 16):  # rotated and plain queries alike find their own object's photos
        hits = lib.search(str(folder / f"{names[q][:-4]}.heic"), top=4)
        group = {n[:-4] for n in names[q // 4 * 4:q // 4 * 4 + 4]}
        found = {h.path.rsplit("/", 1)[1][:-5] for h in hits}
        assert len(found & group) >= 3, (q, found, group)
