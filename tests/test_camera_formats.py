"""Phone and camera files: a HEIC's stored thumbnail, RAW files (DNG made from real photos' Bayer
data, with and without a preview), RAW + JPEG pairs, colour profiles, and a mixed folder indexed."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image, ImageOps

from sba_desktop.lab import camera_files
from sba_desktop.library.decode import DecodeError, decode, photo_size
from sba_desktop.library.discover import raw_companions, walk_photos
from tests.conftest import dataset

pytest.importorskip("pidng")
needs_heif_enc = pytest.mark.skipif(not camera_files.heif_enc_available(),
                                    reason="heif-enc (libheif-examples) writes HEIC thumbnails")


def shared_photo(name: str = "paris-dev", i: int = 0) -> Image.Image:
    src = sorted((dataset(name) / "images").iterdir())[i]
    with Image.open(src) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def encoder():
    from sba_desktop.engine.runtime import load_runtime
    from sba_desktop.engine.sba import DEFAULT_IMAGE_SIZE
    from sba_desktop.library.encoding import PhotoEncoder

    return PhotoEncoder(load_runtime("efficientnet_lite0"), DEFAULT_IMAGE_SIZE, keep_maps=True)


def pooled(encoder, path) -> np.ndarray:
    """The network's map of the photo, pooled (no model needed: the same for every caller)."""
    from sba_desktop.library.encoding import Source

    m = encoder.encode_one(Source(0, str(path))).map.astype(np.float32)
    return m.mean(axis=(1, 2))


@needs_heif_enc
def test_heic_thumbnail_stands_in_for_the_photo_and_sees_the_same(tmp_path, encoder):
    img = camera_files.upscaled(shared_photo(), (2016, 1512))
    camera_files.heic(img, tmp_path / "iphone.heic", thumbnail=320)
    camera_files.heic(img, tmp_path / "nokia.heic", thumbnail=None)
    thumb = decode(str(tmp_path / "iphone.heic"), 224)
    assert thumb.rgb.size == (320, 240) and (thumb.width, thumb.height) == (2016, 1512)
    # asked for more than the thumbnail holds (a big grid cell, a small region): the full photo
    assert decode(str(tmp_path / "iphone.heic"), 400).rgb.size == (2016, 1512)
    assert decode(str(tmp_path / "iphone.heic"), 224, region=(0, 0, 800, 600)).rgb.size == (2016, 1512)
    assert decode(str(tmp_path / "nokia.heic"), 224).rgb.size == (2016, 1512)
    assert photo_size(str(tmp_path / "iphone.heic")) == (2016, 1512)
    a, b = pooled(encoder, tmp_path / "iphone.heic"), pooled(encoder, tmp_path / "nokia.heic")
    other = pooled(encoder, sorted((dataset("paris-dev") / "images").iterdir())[60])
    assert cosine(a, b) > 0.93 and cosine(a, b) > cosine(a, other) + 0.1, (cosine(a, b), cosine(a, other))


def test_ten_bit_heic_decodes_to_its_colours(tmp_path):
    import pillow_heif

    rgb16 = np.zeros((48, 64, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 50000, 20000, 6000
    heif = pillow_heif.from_bytes("RGB;16", (64, 48), rgb16.tobytes())
    heif.save(tmp_path / "hdr.heic", quality=-1)
    assert pillow_heif.open_heif(tmp_path / "hdr.heic").info["bit_depth"] == 10
    d = decode(str(tmp_path / "hdr.heic"), 224)
    px = np.asarray(d.rgb).astype(int)[24, 32]
    assert d.rgb.mode == "RGB" and abs(px - np.array([194, 78, 23])).max() < 12, px


def _icc_profile(red_xyz, green_xyz, blue_xyz) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma 2.2 curves) with these colorants."""
    def xyz(v):
        return b"XYZ \0\0\0\0" + b"".join(struct.pack(">i", round(c * 65536)) for c in v)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    desc_text = b"swapped primaries\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 12 + b"\0" * 67
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red_xyz)),
            (b"gXYZ", xyz(green_xyz)), (b"bXYZ", xyz(blue_xyz)), (b"rTRC", curve), (b"gTRC", curve),
            (b"bTRC", curve)]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + b"\0" * 4  # date; platform..attributes; intent
              + b"".join(struct.pack(">i", round(c * 65536)) for c in (0.9642, 1.0, 0.8249)) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def test_a_colour_profile_is_converted_to_srgb(tmp_path):
    # sRGB's colorants with red and blue swapped: this file's "red" pixels are blue on screen
    icc = _icc_profile((0.1431, 0.0606, 0.7141), (0.3851, 0.7169, 0.0971), (0.4361, 0.2225, 0.0139))
    Image.new("RGB", (64, 48), (230, 30, 30)).save(tmp_path / "tagged.jpg", quality=95, icc_profile=icc)
    Image.new("RGB", (64, 48), (230, 30, 30)).save(tmp_path / "plain.jpg", quality=95)
    tagged = np.asarray(decode(str(tmp_path / "tagged.jpg"), 224).rgb).astype(int)[20, 30]
    plain = np.asarray(decode(str(tmp_path / "plain.jpg"), 224).rgb).astype(int)[20, 30]
    assert plain[0] > 200 and plain[2] < 60
    assert tagged[2] > 200 and tagged[0] < 60, tagged


def test_dng_with_and_without_preview_decode_upright_and_see_the_photo(tmp_path, encoder):
    img = shared_photo("paris-dev", 3)
    img.save(tmp_path / "camera.jpg", quality=92)
    # a camera held turned: the sensor's picture is sideways, the DNG says "turn 90 deg clockwise"
    sideways = img.transpose(Image.Transpose.ROTATE_90)
    camera_files.dng(sideways, tmp_path / "with_preview.dng", preview=1024, orientation=6)
    camera_files.dng(sideways, tmp_path / "no_preview.dng", preview=None, orientation=6)
    w, h = img.size
    for name in ("with_preview.dng", "no_preview.dng"):
        d = decode(str(tmp_path / name), 224)
        assert d.fmt == "raw" and (d.width, d.height) == (w, h) and photo_size(str(tmp_path / name)) == (w, h)
        assert d.rgb.width > d.rgb.height  # upright: landscape again
    assert decode(str(tmp_path / "no_preview.dng"), 224).rgb.size == (w // 2, h // 2)  # half-size demosaic
    jpeg = pooled(encoder, tmp_path / "camera.jpg")
    other = pooled(encoder, sorted((dataset("paris-dev") / "images").iterdir())[90])
    for name in ("with_preview.dng", "no_preview.dng"):
        c = cosine(jpeg, pooled(encoder, tmp_path / name))
        assert c > 0.93 and c > cosine(jpeg, other) + 0.1, (name, c, cosine(jpeg, other))


def test_a_raw_files_own_exif_gives_its_capture_time_when_the_preview_has_none(tmp_path):
    """Many cameras' preview JPEGs carry no EXIF: the capture time and camera come from the RAW
    file's own TIFF directories (without unpacking it), so similar shots can be grouped."""
    import calendar
    import time

    img = Image.fromarray(np.random.default_rng(3).integers(0, 255, (300, 400, 3), np.uint8))
    camera_files.dng(img, tmp_path / "dated.dng", preview=256, taken="2026:05:01 10:20:30")
    camera_files.dng(img, tmp_path / "undated.dng", preview=256)
    camera_files.dng(img, tmp_path / "dated_no_preview.dng", preview=None, taken="2026:05:01 10:20:31")
    when = calendar.timegm(time.strptime("2026:05:01 10:20:30", "%Y:%m:%d %H:%M:%S"))
    dated = decode(str(tmp_path / "dated.dng"), 128)
    assert dated.rgb.size[0] < 400  # the preview stood in
    assert dated.taken == when and dated.camera == "SBA Bayer Test"
    assert decode(str(tmp_path / "undated.dng"), 128).taken is None
    assert decode(str(tmp_path / "dated_no_preview.dng"), 128).taken == when + 1


def _libraw() -> str:
    import rawpy

    return ".".join(map(str, rawpy.libraw_version))


def test_broken_and_unsupported_raw_files_get_a_reason(tmp_path):
    img = shared_photo("paris-dev", 1)
    camera_files.dng(img, tmp_path / "good.dng", preview=None)
    data = (tmp_path / "good.dng").read_bytes()
    (tmp_path / "cut.dng").write_bytes(data[:200])
    (tmp_path / "notes.CR2").write_bytes(b"this is not a raw file at all" * 50)
    (tmp_path / "empty.nef").write_bytes(b"")
    reasons = {}
    for name in ("cut.dng", "notes.CR2", "empty.nef"):
        with pytest.raises(DecodeError) as exc:
            decode(str(tmp_path / name), 224)
        reasons[name] = str(exc.value)
    assert reasons["empty.nef"] == "empty file (0 bytes)"
    known = {"broken RAW: the file ends early or its image data is damaged",
             "RAW file of a kind or camera LibRaw 0.22.2 does not support".replace("0.22.2", _libraw())}
    assert reasons["cut.dng"] in known and reasons["notes.CR2"] in known, reasons
    img.save(tmp_path / "misnamed.NEF", "JPEG")  # a JPEG under a RAW file's name is read as a JPEG
    assert decode(str(tmp_path / "misnamed.NEF"), 224).fmt == "jpeg"


def test_a_mixed_folder_is_indexed_once_per_photo(tmp_path, capsys):
    from sba_desktop.cli import main

    folder = tmp_path / "card"
    folder.mkdir()
    photos = [shared_photo("ukbench-dev", i) for i in range(6)]
    photos[0].save(folder / "IMG_0001.JPG", quality=92)
    camera_files.dng(photos[0], folder / "IMG_0001.DNG", preview=None)       # RAW + JPEG: one photo
    camera_files.heic(photos[1], folder / "IMG_0002.HEIC", thumbnail=None)
    (folder / "IMG_0002.MOV").write_bytes(b"\0\0\0\x18ftypqt  " + b"\0" * 64)  # its Live Photo motion
    camera_files.dng(photos[2], folder / "DSC_0003.dng", preview=1024)
    camera_files.dng(photos[3], folder / "DSC_0004.DNG", preview=None)
    photos[4].save(folder / "export.png")
    (folder / "DSC_0005.NEF").write_bytes(b"broken" * 100)
    (folder / "holiday.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 64)
    assert raw_companions(str(folder / "IMG_0001.JPG")) == [str(folder / "IMG_0001.DNG")]
    assert sorted(f.path.rsplit("/", 1)[1] for f in walk_photos(str(folder))) == [
        "DSC_0003.dng", "DSC_0004.DNG", "DSC_0005.NEF", "IMG_0001.JPG", "IMG_0002.HEIC", "export.png"]
    code = main(["index", str(folder), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["encoded"] == 5 and report["found"] == 6
    assert [(s["path"].rsplit("/", 1)[1], "RAW" in s["reason"]) for s in report["skipped"]] == [("DSC_0005.NEF", True)]
    assert [p["path"].rsplit("/", 1)[1] for p in report["problems"]] == ["holiday.mp4"]
    assert "video" in report["problems"][0]["reason"]
    code = main(["index", str(folder)])
    text = capsys.readouterr()
    assert code == 0 and "DSC_0005.NEF" in text.out + text.err and "holiday.mp4" in text.out + text.err


def test_the_window_shows_raw_and_heic_files_upright(tmp_path):
    from sba_desktop.ui.images import photo_qimage

    img = shared_photo("paris-dev", 3)
    assert img.width > img.height
    camera_files.dng(img.transpose(Image.Transpose.ROTATE_90), tmp_path / "turned.dng", preview=1024, orientation=6)
    camera_files.heic(img, tmp_path / "phone.heic", thumbnail=None)
    for name in ("turned.dng", "phone.heic"):
        q = photo_qimage(str(tmp_path / name), 2048)
        assert not q.isNull() and q.width() > q.height(), name  # Qt alone shows neither (or sideways)
    assert photo_qimage(str(tmp_path / "missing.heic")).isNull()
