"""The bundled weights are the real ImageNet ones, and every photo mode is read correctly."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the build extra) is not installed: the reference network")
from PIL import Image  # noqa: E402

from sba_desktop.engine import registry
from sba_desktop.engine.torch_build.backbones import MissingWeightsError, load_backbone
from sba_desktop.engine.imaging import draft_box, scaled_size, to_rgb

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def chelsea():
    skimage_data = pytest.importorskip("skimage.data")
    return Image.fromarray(skimage_data.chelsea())  # a real photo of a cat shipped in scikit-image


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v2"])
def test_real_weights_recognise_a_real_photo(name, chelsea):
    b = load_backbone(name)
    logits = b.classify(b.preprocess(chelsea, 224)[None])[0]
    assert int(logits.argmax()) in CAT_CLASSES
    fmap = b.forward(b.preprocess(chelsea, 224)[None])[0]
    assert fmap.shape[0] == b.channels and float(fmap.min()) >= 0.0


def test_coffee_is_a_cup_for_the_default_backbone():
    skimage_data = pytest.importorskip("skimage.data")
    b = load_backbone()
    top5 = np.argsort(-b.classify(b.preprocess(Image.fromarray(skimage_data.coffee()), 224)[None])[0])[:5]
    assert {967, 968} & set(top5.tolist())  # espresso, cup


def test_missing_torchvision_weights_say_which_file(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("SBA_DESKTOP_WEIGHTS", raising=False)
    assert registry.torch_hub_checkpoints() == __import__("pathlib").Path(torch.hub.get_dir()) / "checkpoints"
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        load_backbone("vgg16")


def test_preprocess_keeps_aspect_no_crop():
    b = load_backbone()
    x = b.preprocess(Image.new("RGB", (1000, 400), (128, 128, 128)), 224)
    assert x.shape == (3, 90, 224)
    assert scaled_size(1, 1, 224) == (224, 224)
    assert scaled_size(5000, 10, 224) == (224, 32)


def test_draft_box_follows_the_photos_aspect():
    # a 4608x1976 panorama: with the long side at 2x224 the short side may go down to 192,
    # so Pillow's draft can take 1/8 (576x247) instead of 1/4 (a square box would force 1/4)
    assert draft_box(224, 4608, 1976) == (448, 192)
    assert draft_box(224) == (448, 448)
    jpeg = __import__("io").BytesIO()
    Image.new("RGB", (4608, 1976), (90, 120, 200)).save(jpeg, "JPEG")
    im = Image.open(jpeg)
    im.draft("RGB", draft_box(224, *im.size))
    assert im.size == (576, 247)


def _modes():
    rgb = Image.new("RGB", (8, 6), (200, 30, 30))
    yield "L", rgb.convert("L")
    yield "1", rgb.convert("1")
    yield "P", rgb.convert("P")
    yield "CMYK", rgb.convert("CMYK")
    yield "RGBA", rgb.convert("RGBA")
    yield "LA", rgb.convert("LA")
    yield "I;16", Image.fromarray(np.full((6, 8), 40000, np.uint16))
    yield "I", Image.fromarray(np.full((6, 8), 40000, np.int32))
    yield "F", Image.fromarray(np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8))


@pytest.mark.parametrize("mode,img", list(_modes()), ids=[m for m, _ in _modes()])
def test_every_mode_becomes_rgb(mode, img):
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == (8, 6)
    if mode == "I;16":  # 40000/65535 of full scale, not clipped to white
        assert 150 <= np.asarray(out)[0, 0, 0] <= 160


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(img)).min() == 255
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert np.asarray(to_rgb(pal)).min() == 255


def test_exif_orientation_applied():
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.info["exif"] = exif.tobytes()
    import io
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    out = to_rgb(Image.open(io.BytesIO(buf.getvalue())))
    assert out.size == (10, 30)
