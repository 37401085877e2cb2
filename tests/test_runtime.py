"""The product's inference (onnxruntime) against the torch reference, and the export's trust rules."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sba_desktop.engine import model_store, runtime
from sba_desktop.engine.registry import backbone_info
from sba_desktop.library.decode import decode
from tests.conftest import dataset


def _photos(n=6):
    ds = dataset("paris-dev")
    return sorted((ds / "images").iterdir())[:n] + sorted((dataset("ukbench-dev") / "images").iterdir())[:n]


def test_onnx_feature_maps_equal_torch_on_real_photos():
    pytest.importorskip("torch", reason="torch (the build extra) is not installed: the reference network")
    from sba_desktop.engine.torch_build.backbones import load_backbone

    ref, onnx = load_backbone(), runtime.load_runtime()
    assert onnx.version == ref.version
    worst = 0.0
    for p in _photos():
        x = onnx.preprocess(decode(str(p), 224).rgb, 224)[None]
        a, b = onnx.forward(x), ref.forward(x)
        assert a.shape == b.shape and a.shape[1] == 1280
        worst = max(worst, float(np.abs(a - b).max()))
    assert worst <= 1e-3, worst


def test_batched_forward_gives_the_vectors_of_batch_one():
    net = runtime.load_runtime()
    xs = [net.preprocess(decode(str(p), 224).rgb, 224) for p in _photos(8)]
    shape = xs[0].shape
    same = [x for x in xs if x.shape == shape]
    assert len(same) >= 3
    batched = net.forward(np.stack(same))
    single = np.concatenate([net.forward(x[None]) for x in same])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_export_is_checked_and_redone_when_stale_or_corrupt(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="exporting the network needs torch (the build extra)")
    monkeypatch.setenv("SBA_DESKTOP_MODELS", str(tmp_path))
    monkeypatch.setattr(model_store, "shipped_dir", lambda: tmp_path / "none")
    info = backbone_info("efficientnet_lite0")
    monkeypatch.setattr(runtime, "_cache", {})
    first = runtime.load_runtime()  # nothing there: exported now
    onnx, man = tmp_path / f"{info.name}.onnx", tmp_path / f"{info.name}.json"
    assert onnx.is_file() and json.loads(man.read_text())["version"] == info.version
    sha = first.network.manifest["weights_sha256"]
    assert model_store.check(tmp_path, info, sha)[1] == "ok"
    # corrupt: one byte changed in the middle of the weights
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    assert "corrupt" in model_store.check(tmp_path, info, sha)[1]
    # stale: exported from other weights
    assert "stale" in model_store.check(tmp_path, info, "0" * 64)[1]
    # a stale/corrupt file is never used: the next load exports again and the file is whole
    monkeypatch.setattr(runtime, "_cache", {})
    again = runtime.load_runtime()
    assert model_store.check(tmp_path, info, sha)[1] == "ok"
    x = np.zeros((1, 3, 64, 64), np.float32)
    np.testing.assert_allclose(again.forward(x), first.forward(x), atol=1e-5)


def test_without_weights_or_torch_a_missing_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SBA_DESKTOP_MODELS", str(tmp_path))
    monkeypatch.setattr(model_store, "shipped_dir", lambda: tmp_path / "none")
    monkeypatch.setattr(runtime, "_cache", {})
    monkeypatch.setattr(runtime, "torch_available", lambda: False)
    with pytest.raises(runtime.MissingWeightsError, match="onnx_export"):
        runtime.load_runtime()


def test_providers_prefer_accelerators_and_keep_the_cpu(monkeypatch):
    monkeypatch.delenv(runtime.PROVIDERS_ENV, raising=False)
    assert runtime.choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert runtime.choose_providers(["CPUExecutionProvider", "CUDAExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setenv(runtime.PROVIDERS_ENV, "CPU")
    assert runtime.choose_providers(["CPUExecutionProvider", "CUDAExecutionProvider"]) == ["CPUExecutionProvider"]


def test_index_and_search_never_import_torch(tmp_path):
    runtime.load_runtime()  # the export exists before the commands run (as after setup)
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in _photos(5):
        (photos / p.name).write_bytes(p.read_bytes())
    code = (
        "import sys\n"
        "from sba_desktop.cli import main\n"
        f"main(['--home', {str(tmp_path / 'home')!r}, 'index', {str(photos)!r}])\n"
        f"main(['--home', {str(tmp_path / 'home')!r}, 'search', {str(next(photos.iterdir()))!r}, '--top', '3'])\n"
        "print('TORCH', 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ}, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert "TORCH False" in out.stdout, out.stdout
    assert out.stdout.count(str(photos)) >= 3  # search printed its hits


def test_detector_names_come_from_the_real_imagenet_head():
    pytest.importorskip("torch", reason="torch (the build extra) is not installed: the reference network")
    """A channel's name = the classes the real torch head scores highest when only that channel
    is active; the runtime (no torch) reads the same names from the export manifest."""
    import torch

    from sba_desktop.engine.torch_build.backbones import imagenet_classes, load_backbone

    bb = load_backbone("efficientnet_lite0")
    names = runtime.load_runtime("efficientnet_lite0").channel_names
    classes = imagenet_classes()
    assert len(names) == bb.channels == 1280
    base = bb.head(torch.zeros(1, bb.channels, 7, 7)).detach().numpy()[0]  # biases only
    for c in (0, 17, 591, 1279):
        f = torch.zeros(1, bb.channels, 7, 7)
        f[0, c] = 1.0  # channel c alone, same response everywhere
        gain = bb.head(f).detach().numpy()[0] - base
        top = [classes[i] for i in np.argsort(-gain)[:3]]
        assert names[c] == ", ".join(top)
    # channels you can check: the one the head relies on most for "daisy" is named after daisies
    # (channel 634: "daisy, coral fungus, gasmask"); the same for "pizza" and "volcano"
    w = next(m for m in bb.head.modules() if isinstance(m, torch.nn.Linear)).weight.detach().numpy()
    for cls in ("daisy", "pizza", "volcano"):
        c = int(np.argmax(w[classes.index(cls)]))
        assert names[c].split(", ")[0] == cls, (cls, c, names[c])
